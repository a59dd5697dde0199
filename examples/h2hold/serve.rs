//! `h2hold serve`: wsgate's [`Gateway`] in this process (the data path of `wsgate run`, without
//! its reload watcher, admin endpoint and systemd hooks), with a thread that rewrites the stats
//! file every 100 ms: live heap from [`count`] (`bucket` and `size` lines), live sessions and tunnels from [`wsgate::Stats`].

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use wsgate::{Gateway, Shutdown, Stats};

use crate::count;

type Error = Box<dyn std::error::Error>;

pub fn run(config: &Path, stats_path: &Path, trace: Option<&str>) -> Result<(), Error> {
    let trace = match trace {
        Some(range) => {
            let (from, to) = range.split_once('-').ok_or("--trace FROM-TO")?;
            Some(from.parse::<usize>()?..=to.parse::<usize>()?)
        }
        None => None,
    };
    let config = wsgate::config::load_file(config).map_err(|e| e.to_string())?;
    let _level = wsgate::lifecycle::logging::init(config.log.format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let gateway = Gateway::new(config).map_err(|e| e.to_string())?;
        let stats = gateway.stats();
        let listeners = gateway.bind()?;
        for (name, addr) in gateway.listener_addrs() {
            println!("serving {name} on {addr}");
        }
        let path = stats_path.to_owned();
        std::thread::spawn(move || {
            let mut trace = trace;
            loop {
                // Armed once a session is open: what follows is sessions, not start-up.
                if !stats.sessions.is_empty()
                    && let Some(sizes) = trace.take()
                {
                    count::trace_sizes(sizes, 3);
                }
                // A failed write is retried on the next tick; the reader copies whole files.
                let _ = write_stats(&path, &stats);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut term = signal(SignalKind::terminate())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Shutdown::Immediate
        };
        gateway.serve(listeners, stop).await;
        Ok(())
    })
}

/// Write the stats to a temporary file and rename it over `path`: readers see whole files.
fn write_stats(path: &Path, stats: &Arc<Stats>) -> std::io::Result<()> {
    let (bytes, blocks) = count::live();
    let mut text = String::new();
    let _ = writeln!(text, "live_bytes {bytes}");
    let _ = writeln!(text, "live_blocks {blocks}");
    let _ = writeln!(text, "sessions {}", stats.sessions.len());
    let _ = writeln!(text, "open_tunnels {}", stats.open_tunnels());
    let _ = writeln!(text, "open_connections {}", stats.open_connections());
    for (upper, blocks, bytes) in count::classes() {
        let _ = writeln!(text, "bucket {upper} {blocks} {bytes}");
    }
    for (from, blocks) in count::steps() {
        let _ = writeln!(text, "size {from} {blocks}");
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}
