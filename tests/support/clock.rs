//! A test clock that moves only when told: for timers too long to wait out (the h2 keep-alive
//! PING every 30 s), while real sockets carry the bytes.
//!
//! tokio's paused clock auto-advances to the next timer whenever the runtime parks, and with
//! real sockets it parks every time bytes cross between two tasks: a 10 s [`super::within`]
//! would expire while a frame is in flight. A running blocking task keeps a paused clock still
//! (`tokio::time::pause`, "Preventing auto-advance"), so [`hold`] runs one until its guard
//! drops — or, should the test hang, for at most [`REAL_BOUND`] of wall time, after which the
//! test's own bounded waits expire as usual.

use std::sync::mpsc;
use std::time::Duration;

/// The most wall time a held clock stays held.
pub const REAL_BOUND: Duration = Duration::from_secs(30);

/// The clock stays still until this drops (then it runs again, from where it was advanced to).
pub struct HeldClock {
    _release: mpsc::Sender<()>,
}

impl Drop for HeldClock {
    fn drop(&mut self) {
        tokio::time::resume();
    }
}

/// Pause tokio's clock with auto-advance off: only `tokio::time::advance` moves it. Needs the
/// current-thread runtime of `#[tokio::test]`.
pub fn hold() -> HeldClock {
    tokio::time::pause();
    let (release, held) = mpsc::channel::<()>();
    // Inhibits auto-advance from the moment it is spawned until it returns.
    tokio::task::spawn_blocking(move || {
        let _ = held.recv_timeout(REAL_BOUND);
    });
    HeldClock { _release: release }
}
