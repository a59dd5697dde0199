//! Process lifecycle: turning signals into a [`Shutdown`] mode.
//!
//! SIGTERM drains (stop accepting, let tunnels finish up to `drain_timeout`); SIGINT, or a second
//! SIGTERM during a drain, closes everything at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::gateway::Shutdown;

/// Resolves on the first SIGTERM (drain) or SIGINT (immediate). A later SIGTERM or SIGINT cancels
/// `force`, which [`crate::Gateway::serve`] treats as "close the remaining tunnels now".
pub async fn signals(force: CancellationToken) -> std::io::Result<Shutdown> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mode = tokio::select! {
        _ = term.recv() => Shutdown::Drain,
        _ = int.recv() => Shutdown::Immediate,
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: closing every tunnel now");
        force.cancel();
    });
    Ok(mode)
}
