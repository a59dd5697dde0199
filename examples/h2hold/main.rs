//! h2hold: hold many idle WebSockets open through wsgate — as streams of shared HTTP/2
//! connections (RFC 8441) or as HTTP/1.1 connections — to measure what an idle session costs.
//! `benches/h2hold.sh` drives it.
//!
//! ```text
//! h2hold cert DIR                      # a throwaway CA (ca.der) and a `localhost` leaf (cert.pem, key.pem)
//! h2hold hold --url wss://localhost:PORT/echo --ca DIR/ca.der --conns 20 --streams 100 --secs 5
//! h2hold hold ... --h1 --conns 2000    # one WebSocket per HTTP/1.1 connection instead
//! h2hold serve --config wsgate.yaml --stats FILE   # wsgate in this process, heap counted
//! ```
//!
//! `hold` opens every WebSocket, checks that each echoes one message, prints `READY opened=N
//! failed=F` (and writes it to `--ready`), holds them idle for `--secs`, closes them and prints
//! one JSON line. `serve` runs wsgate's [`wsgate::Gateway`] on a counting allocator and rewrites
//! `--stats` every 100 ms with the live heap bytes, by size class, and the live sessions: the
//! allocator's view beside the kernel's RSS.
#![deny(unsafe_code)]

mod client;
mod count;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: count::Counting = count::Counting;

#[derive(Parser)]
#[command(
    name = "h2hold",
    about = "Hold idle WebSockets through wsgate over h2 or h1"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a throwaway CA (ca.der) and a leaf for localhost/127.0.0.1 (cert.pem, key.pem).
    Cert { dir: PathBuf },
    /// Open, check, hold and close idle WebSockets.
    Hold(client::HoldArgs),
    /// Serve a wsgate config in this process with the heap counted.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Rewritten every 100 ms: `key value` lines, `bucket <=SIZE BLOCKS BYTES` lines per
        /// power of two, `size FROM BLOCKS` lines per 16-byte step below 8 KiB.
        #[arg(long)]
        stats: PathBuf,
        /// `FROM-TO`: once a session is open, print where the next 3 allocations of FROM..=TO
        /// bytes come from.
        #[arg(long)]
        trace: Option<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Cert { dir } => client::write_cert(&dir),
        Command::Hold(args) => client::hold(args),
        Command::Serve {
            config,
            stats,
            trace,
        } => serve::run(&config, &stats, trace.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("h2hold: {e}");
            ExitCode::FAILURE
        }
    }
}
