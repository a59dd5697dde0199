//! Logging: tracing to stderr (journald picks it up under systemd), text or JSON lines, the level
//! from `log.level` (or `WSGATE_LOG`, which wins), changeable by a reload. Lines are formatted on
//! the calling thread and written by one writer thread ([`super::log_writer`]), so a session
//! record never puts a `write` to stderr on the data path.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt, reload};

use super::log_writer::{self, LogGuard};
use crate::config::LogFormat;

/// Sets a new level directive (ignored while `WSGATE_LOG` is set, or when it does not parse).
pub type LevelSetter = Arc<dyn Fn(&str) + Send + Sync>;

/// Install the global subscriber. Call once, before anything logs; keep the guard until the end
/// of `main` (dropping it writes out what is queued).
pub fn init(format: LogFormat, level: &str) -> (LevelSetter, Option<LogGuard>) {
    let env_override = std::env::var("WSGATE_LOG").ok();
    let directive = env_override.as_deref().unwrap_or(level);
    let filter = EnvFilter::try_new(directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    // Without a writer thread (the system refused one), lines go to stderr directly.
    let (writer, guard) = match log_writer::spawn(std::io::stderr(), log_writer::QUEUE_LINES) {
        Ok((writer, guard)) => (BoxMakeWriter::new(writer), Some(guard)),
        Err(_) => (BoxMakeWriter::new(std::io::stderr), None),
    };
    let layer = fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr (journald restarting, a dead pipe) must not turn into a panic.
        .log_internal_errors(false)
        .with_writer(writer);
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json()).try_init(),
    };
    let current = Current::new(level);
    let setter = Arc::new(move |level: &str| {
        // Every reload passes `log.level`; most keep it: nothing to change, nothing to log.
        if env_override.is_some() || !current.differs(level) {
            return;
        }
        match EnvFilter::try_new(level) {
            Ok(f) => {
                if handle.reload(f).is_ok() {
                    current.set(level);
                    tracing::info!(level, "log level changed");
                }
            }
            Err(e) => tracing::warn!(level, error = %e, "log level not changed"),
        }
    });
    (setter, guard)
}

/// The `log.level` directive in force.
struct Current(Mutex<String>);

impl Current {
    fn new(level: &str) -> Current {
        Current(Mutex::new(level.to_owned()))
    }

    /// Whether `level` is another directive than the one in force (a poisoned lock: assume so).
    fn differs(&self, level: &str) -> bool {
        self.0.lock().map(|c| *c != level).unwrap_or(true)
    }

    fn set(&self, level: &str) {
        if let Ok(mut c) = self.0.lock() {
            level.clone_into(&mut c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Current;

    #[test]
    fn a_reload_with_the_same_level_changes_nothing() {
        let current = Current::new("info");
        assert!(!current.differs("info"));
        assert!(current.differs("warn,wsgate::session=info"));
        current.set("warn,wsgate::session=info");
        assert!(!current.differs("warn,wsgate::session=info"));
        assert!(current.differs("info"));
    }
}
