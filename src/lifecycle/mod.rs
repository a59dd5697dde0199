//! Process lifecycle: turning signals into a [`Shutdown`] mode.
//!
//! SIGTERM drains (stop accepting, let tunnels finish up to `drain_timeout`); SIGINT, or a second
//! signal during a drain, closes everything at once. SIGHUP reloads the config, and so does a
//! change of a file it names ([`watch`]).

pub mod cli_extras;
pub mod log_writer;
pub mod logging;
pub mod systemd;
pub mod watch;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::gateway::Shutdown;

/// Installed signal handlers. Install them before announcing readiness, so a signal sent right
/// after "listening" is never handled by the default action (exit without drain).
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Install SIGTERM and SIGINT handlers (inside a tokio runtime).
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the first SIGTERM (drain) or SIGINT (immediate). A later SIGTERM or SIGINT
    /// cancels `force`, which [`crate::Gateway::serve`] treats as "close every tunnel now".
    pub async fn wait(mut self, force: CancellationToken) -> Shutdown {
        let mode = tokio::select! {
            _ = self.term.recv() => Shutdown::Drain,
            _ = self.int.recv() => Shutdown::Immediate,
        };
        tracing::info!(?mode, "signal received");
        systemd::stopping();
        tokio::spawn(async move {
            tokio::select! {
                _ = self.term.recv() => {},
                _ = self.int.recv() => {},
            }
            tracing::warn!("second signal: closing every tunnel now");
            force.cancel();
        });
        mode
    }
}

/// Reload the config on every SIGHUP (installed now, so a SIGHUP right after start is handled).
/// Each reload is logged with its result; a failed one lists every error and keeps the running
/// config.
pub fn reload_on_hangup(reloader: crate::reload::Reloader) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            systemd::reloading();
            match reloader.reload().await {
                Ok(generation) => tracing::info!(generation, "configuration reloaded"),
                Err(errors) => {
                    for e in &errors.0 {
                        tracing::error!(error = %e, "reload refused; the running configuration stays");
                    }
                }
            }
            systemd::ready();
        }
    });
    Ok(())
}
