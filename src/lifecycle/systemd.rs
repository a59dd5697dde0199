//! systemd integration: readiness, reload and stop notifications (`sd_notify(3)`), the watchdog,
//! and listening sockets inherited through socket activation (`sd_listen_fds(3)`).
//!
//! Everything here is a no-op when wsgate is not started by systemd (no `NOTIFY_SOCKET`, no
//! `WATCHDOG_USEC`, no `LISTEN_FDS`), so callers need no `if systemd` of their own. A lost
//! notification is logged and otherwise ignored: it must never take the proxy down, and systemd's
//! own start/stop timeouts catch a service that goes silent.
//!
//! Not here: the unit files (`systemd/`), binding configured addresses and choosing between a
//! bound and an inherited socket ([`crate::Gateway::bind`]), and the reload itself.
//!
//! No `unsafe`: sd-notify sends the datagrams and reads `CLOCK_MONOTONIC` for `MONOTONIC_USEC`;
//! listenfd turns an inherited descriptor into a `TcpListener` after checking that it is a TCP
//! stream socket (sd-notify only hands out `RawFd`s, and `FromRawFd` is `unsafe`).

use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;

/// Startup (or a reload) is complete: the listeners accept connections.
pub fn ready() {
    send(&[NotifyState::Ready], "READY=1");
}

/// A reload starts. Sent with `MONOTONIC_USEC` (`CLOCK_MONOTONIC` in µs), which `Type=notify-reload`
/// (systemd ≥ 253) requires to tell this reload from an earlier one; older systemd ignores it.
/// Follow with [`ready`] when the reload is done, whether it succeeded or kept the old config.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now], "RELOADING=1"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read CLOCK_MONOTONIC; sending RELOADING=1 alone");
            send(&[NotifyState::Reloading], "RELOADING=1");
        }
    }
}

/// The drain (or an immediate stop) starts: systemd shows the unit as "deactivating" and stops
/// expecting watchdog pings to mean "healthy".
pub fn stopping() {
    send(&[NotifyState::Stopping], "STOPPING=1");
}

/// When systemd enabled the watchdog (`WatchdogSec=`), ping it at half the interval from a task
/// on the current tokio runtime, so a runtime that stops polling also stops the pings and systemd
/// restarts the service. `None` when the watchdog is off or there is no runtime to run on.
pub fn spawn_watchdog() -> Option<JoinHandle<()>> {
    let every = ping_interval(sd_notify::watchdog_enabled()?)?;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("systemd watchdog enabled but no tokio runtime to ping from");
        return None;
    };
    tracing::debug!(?every, "systemd watchdog pings");
    Some(runtime.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog], "WATCHDOG=1");
        }
    }))
}

/// Half the watchdog timeout, as `sd_watchdog_enabled(3)` recommends; `None` for a zero timeout
/// (systemd's "disabled"). A sub-millisecond timeout is pinged every millisecond.
fn ping_interval(timeout: Duration) -> Option<Duration> {
    if timeout.is_zero() {
        return None;
    }
    Some((timeout / 2).max(Duration::from_millis(1)))
}

/// Listening sockets passed by systemd (a `.socket` unit, or `systemd-socket-activate`), keyed
/// by their `FileDescriptorName=` (`LISTEN_FDNAMES`; `unknown` when systemd sent no names).
/// Each is a TCP listener in non-blocking mode, ready for `tokio::net::TcpListener::from_std`.
///
/// Empty when `LISTEN_FDS` is absent or `LISTEN_PID` names another process. An error when the
/// variables are malformed, a descriptor is not a TCP stream socket, or two descriptors share a
/// name (give each `.socket` unit its own `FileDescriptorName=`).
///
/// Call it once, at startup: listenfd then removes `LISTEN_PID` and `LISTEN_FDS` from the
/// environment (so a second call finds nothing, and no child process believes the sockets are
/// its own). std serialises its own environment access; what stays racy is C code calling
/// `getenv` on another thread at that moment (a DNS lookup on the blocking pool), so the safest
/// place is before the tokio runtime starts, and the next safest is bind time, before serving.
pub fn listeners() -> io::Result<HashMap<String, TcpListener>> {
    // sd-notify first: it checks LISTEN_PID and reads the names before listenfd clears the
    // variables. Both number the descriptors from 3 in LISTEN_FDS order.
    let named: Vec<(i32, String)> = sd_notify::listen_fds_with_names()?.collect();
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let mut fds = listenfd::ListenFd::from_env();
    let mut out = HashMap::with_capacity(named.len());
    for (idx, (fd, name)) in named.into_iter().enumerate() {
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("inherited socket {name:?} (fd {fd}): {e}"),
            )
        };
        let listener = fds
            .take_tcp_listener(idx)
            .map_err(context)?
            .ok_or_else(|| context(io::Error::new(io::ErrorKind::NotFound, "not passed")))?;
        listener.set_nonblocking(true).map_err(context)?;
        if out.contains_key(&name) {
            let msg = "another inherited socket has the same name";
            return Err(context(io::Error::new(io::ErrorKind::InvalidInput, msg)));
        }
        tracing::debug!(listener = %name, fd, addr = ?listener.local_addr().ok(), "inherited socket");
        out.insert(name, listener);
    }
    Ok(out)
}

/// Whether the last notification failed, so a failing watchdog logs once per outage instead of
/// every 15 s.
static FAILING: AtomicBool = AtomicBool::new(false);

/// Send `state` to `NOTIFY_SOCKET` (nothing when unset). The datagram is small and systemd reads
/// its notify socket promptly, so the blocking send is brief even on a runtime thread.
fn send(state: &[NotifyState<'_>], what: &str) {
    match sd_notify::notify(state) {
        Ok(()) => {
            if FAILING.swap(false, Ordering::Relaxed) {
                tracing::info!(state = what, "systemd notifications work again");
            }
        }
        Err(e) => {
            if FAILING.swap(true, Ordering::Relaxed) {
                tracing::debug!(state = what, error = %e, "systemd notification failed");
            } else {
                tracing::warn!(state = what, error = %e, "systemd notification failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_pings_at_half_the_timeout() {
        assert_eq!(
            ping_interval(Duration::from_secs(30)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            ping_interval(Duration::from_micros(1)),
            Some(Duration::from_millis(1))
        );
        assert_eq!(ping_interval(Duration::ZERO), None);
    }

    #[test]
    fn without_systemd_everything_is_a_no_op() {
        // The test harness is not started by systemd: no NOTIFY_SOCKET, no LISTEN_FDS.
        if std::env::var_os("NOTIFY_SOCKET").is_some() || std::env::var_os("LISTEN_FDS").is_some() {
            return;
        }
        ready();
        reloading();
        stopping();
        assert!(spawn_watchdog().is_none());
        assert!(
            listeners()
                .expect("no LISTEN_FDS is not an error")
                .is_empty()
        );
    }
}
