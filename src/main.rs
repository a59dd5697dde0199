//! The `wsgate` command: parse the CLI, load and validate the config before binding anything
//! (exit 64 on a bad config), bind, serve until a signal, drain with a deadline.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use wsgate::Gateway;
use wsgate::config::{self, ConfigErrors};
use wsgate::lifecycle::cli_extras;

/// Exit status for a configuration error (EX_USAGE in sysexits.h).
const EXIT_CONFIG: u8 = 64;
/// Exit status when binding or running fails (EX_UNAVAILABLE).
const EXIT_RUNTIME: u8 = 69;

#[derive(Parser)]
#[command(
    name = "wsgate",
    version,
    about = "Reverse proxy and TLS terminator for WebSocket upgrades"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the config, bind its listeners and proxy until SIGTERM (drain) or SIGINT (close now).
    Run {
        /// YAML config file; relative certificate paths are resolved against its directory.
        #[arg(long, short)]
        config: PathBuf,
        /// Log line format on stderr, overriding `log.format` (the level: `log.level`, or the
        /// WSGATE_LOG environment variable, e.g. `info`, `wsgate=debug`, which wins).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Parse and validate the config and load its certificates without binding; prints `ok` or
    /// every error as FILE:LINE:COL: FIELD: MESSAGE. Exit 0 when valid, 64 otherwise.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// `json`: one object `{"ok", "errors": [{"file", "line", "column", "path", "message"}]}`
        /// on stdout instead.
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
    },
    /// Print the JSON Schema (draft 2020-12) of the config file, for editors and CI.
    Schema,
    /// List or close live sessions through a running wsgate's admin endpoint (the bearer token,
    /// if the endpoint requires one, comes from WSGATE_ADMIN_TOKEN).
    #[command(subcommand)]
    Sessions(wsgate::admin::cli::SessionsCommand),
    /// Print the version.
    Version,
    /// Print the man page (roff), e.g. `wsgate man | man -l -`.
    Man,
    /// Print a shell completion script: bash, zsh or fish.
    Completions(cli_extras::CompletionsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// jemalloc keeps a held session's heap tighter than glibc malloc (see the `jemalloc` feature).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match cli_extras::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Command::Version => {
            println!("wsgate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check { config, format } => check(&config, format),
        Command::Schema => {
            println!("{:#}", config::schema::config_schema());
            ExitCode::SUCCESS
        }
        Command::Run { config, log_format } => run(&config, log_format),
        Command::Sessions(command) => wsgate::admin::cli::main(command),
        Command::Man => cli_extras::man(Cli::command()),
        Command::Completions(args) => cli_extras::completions(&args, Cli::command()),
    }
}

fn check(path: &Path, format: CheckFormat) -> ExitCode {
    let result = load(path).map(drop);
    match format {
        CheckFormat::Json => println!("{}", config::schema::check_report(result.as_ref().copied())),
        CheckFormat::Text => match &result {
            Ok(()) => println!("ok"),
            Err(errors) => eprintln!("{errors}"),
        },
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(EXIT_CONFIG),
    }
}

/// Parse, validate, and build (certificates included) without binding.
fn load(path: &Path) -> Result<Gateway, ConfigErrors> {
    Gateway::new(config::load_file(path)?)
}

fn run(path: &Path, log_format: Option<LogFormat>) -> ExitCode {
    let config = match config::load_file(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let format = match log_format {
        Some(LogFormat::Json) => config::LogFormat::Json,
        Some(LogFormat::Text) => config::LogFormat::Text,
        None => config.log.format,
    };
    let (set_level, _log_guard) = wsgate::lifecycle::logging::init(format, &config.log.level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsgate: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    raise_nofile_limit();
    runtime.block_on(async {
        // Listed before `Gateway::new` takes the config: the files whose change triggers a reload.
        let watched = config::files::watched_files(&config);
        let gateway = match Gateway::new(config) {
            Ok(g) => g,
            Err(errors) => {
                eprintln!("{errors}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let signals = match wsgate::lifecycle::Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("wsgate: cannot install signal handlers: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        let listeners = match gateway.bind() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("wsgate: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        let reloader = gateway.reloader().with_log_level(set_level);
        if let Err(e) = wsgate::lifecycle::reload_on_hangup(reloader.clone()) {
            eprintln!("wsgate: cannot install the SIGHUP handler: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
        // A watcher that cannot start is not fatal: SIGHUP still reloads.
        let _watch = wsgate::lifecycle::watch::spawn(reloader, watched).inspect_err(
            |e| tracing::warn!(error = %e, "config files are not watched; reload with SIGHUP"),
        );
        for l in &listeners {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(listener = %l.name, %addr, "listening");
            }
        }
        if let Err(e) = gateway.start_admin().await {
            let bind = gateway
                .admin_bind()
                .map(ToString::to_string)
                .unwrap_or_default();
            eprintln!("wsgate: admin listener on {bind}: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
        wsgate::lifecycle::systemd::ready();
        let _watchdog = wsgate::lifecycle::systemd::spawn_watchdog();
        let shutdown = signals.wait(gateway.closer());
        gateway.serve(listeners, shutdown).await;
        ExitCode::SUCCESS
    })
}

/// A proxy holds two descriptors per tunnel: use the whole hard limit, as nginx's
/// `worker_rlimit_nofile` would.
fn raise_nofile_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}
