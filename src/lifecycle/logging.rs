//! Logging: tracing to stderr (journald picks it up under systemd), text or JSON lines, the level
//! from `log.level` (or `WSGATE_LOG`, which wins), changeable by a reload.

use std::io::IsTerminal;
use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt, reload};

use crate::config::LogFormat;

/// Sets a new level directive (ignored while `WSGATE_LOG` is set, or when it does not parse).
pub type LevelSetter = Arc<dyn Fn(&str) + Send + Sync>;

/// Install the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat, level: &str) -> LevelSetter {
    let env_override = std::env::var("WSGATE_LOG").ok();
    let directive = env_override.as_deref().unwrap_or(level);
    let filter = EnvFilter::try_new(directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let layer = fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr (journald restarting, a dead pipe) must not turn into a panic.
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json()).try_init(),
    };
    Arc::new(move |level: &str| {
        if env_override.is_some() {
            return;
        }
        match EnvFilter::try_new(level) {
            Ok(f) => {
                if handle.reload(f).is_ok() {
                    tracing::info!(level, "log level changed");
                }
            }
            Err(e) => tracing::warn!(level, error = %e, "log level not changed"),
        }
    })
}
