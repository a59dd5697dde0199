//! The live session registry: one small [`Handle`] per open tunnel (identity, counters, a close
//! request slot), so the admin API, the drain and key revocation can find sessions and ask them
//! to end, while the tunnel task stays the only owner of its sockets.
//!
//! Does not own the close sequence itself (that is `tunnel::close`), nor the reasons' codes
//! ([`reason`]). The registry is a map behind one mutex touched twice per session (open, close)
//! and by the admin API; the data path only bumps the handle's atomic counters.

pub mod reason;
pub mod revoke;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

pub use reason::Reason;

/// Who and where a session is; fixed for its life.
#[derive(Debug, Clone)]
pub struct Info {
    /// `sub` of the verified token, else the verified client certificate's CN (or SAN).
    pub subject: Option<Box<str>>,
    /// The client address (PROXY / trusted `X-Forwarded-For`, else the peer).
    pub client: IpAddr,
    /// The route label (as in session records and metrics).
    pub route: Arc<str>,
    /// The backend URL.
    pub backend: Arc<str>,
    /// When the upgrade started.
    pub started: SystemTime,
    /// The token's `exp` (Unix seconds).
    pub expires_at: Option<u64>,
    /// `kid` of the JWKS key that verified the token (key revocation closes these).
    pub key_id: Option<Box<str>>,
    pub protocol: Protocol,
}

/// How the client reached the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// An HTTP/1.1 upgrade.
    H1,
    /// An RFC 8441 stream on an HTTP/2 connection.
    H2,
}

impl Protocol {
    /// `h1` or `h2`, as listings and records name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::H1 => "h1",
            Protocol::H2 => "h2",
        }
    }
}

impl PartialEq<&str> for Protocol {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Running totals, bumped by the tunnel task as bytes and messages pass.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_to_backend: AtomicU64,
    pub bytes_to_client: AtomicU64,
    pub messages_to_backend: AtomicU64,
    pub messages_to_client: AtomicU64,
}

impl Counters {
    /// `(bytes_to_backend, bytes_to_client, messages_to_backend, messages_to_client)` now.
    pub fn read(&self) -> (u64, u64, u64, u64) {
        (
            self.bytes_to_backend.load(Ordering::Relaxed),
            self.bytes_to_client.load(Ordering::Relaxed),
            self.messages_to_backend.load(Ordering::Relaxed),
            self.messages_to_client.load(Ordering::Relaxed),
        )
    }
}

/// One live session as the registry sees it.
#[derive(Debug)]
pub struct Handle {
    pub id: u64,
    pub info: Info,
    pub counters: Counters,
    close: Mutex<CloseSlot>,
    /// Set with `close` (under its lock), read without the lock on the data path.
    asked: std::sync::atomic::AtomicBool,
}

/// A close request, and the tunnel task to wake for it.
#[derive(Debug, Default)]
struct CloseSlot {
    reason: Option<Reason>,
    /// The gateway gave up on draining: end now, no close sequence.
    cut: bool,
    waker: Option<Waker>,
}

/// What a session was asked, as its tunnel task sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Nothing yet (the task is woken when something comes).
    Nothing,
    /// End with the close sequence, for this reason.
    Close(Reason),
    /// End at once: the drain ran out of time.
    Cut,
}

impl Handle {
    /// Ask the session to end for `reason`. The first request wins; later ones are ignored.
    /// Returns whether this call was the one that asked.
    pub fn request_close(&self, reason: Reason) -> bool {
        self.ask(|slot| {
            let first = slot.reason.is_none();
            if first {
                slot.reason = Some(reason);
            }
            first
        })
    }

    /// End the session at once, whatever it is doing (the drain budget is spent).
    pub fn cut(&self) {
        self.ask(|slot| !std::mem::replace(&mut slot.cut, true));
    }

    /// Change the slot; when `change` says it did, flag it and wake the tunnel task. The
    /// waker stays registered: a cut may still follow a close request.
    fn ask(&self, change: impl FnOnce(&mut CloseSlot) -> bool) -> bool {
        let mut slot = self.close.lock().unwrap_or_else(|p| p.into_inner());
        if !change(&mut slot) {
            return false;
        }
        self.asked.store(true, Ordering::Release);
        let waker = slot.waker.clone();
        drop(slot);
        // A tunnel that has not polled yet finds the request on its first poll.
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// What the session was asked; registers the polling task to be woken by the next
    /// request. The tunnel polls it once to register, then only when [`Handle::is_asked`]
    /// says a request came.
    pub fn poll_asked(&self, cx: &mut Context<'_>) -> Asked {
        let slot = self.register(cx);
        match (&slot.reason, slot.cut) {
            (_, true) => Asked::Cut,
            (Some(r), false) => Asked::Close(r.clone()),
            (None, false) => Asked::Nothing,
        }
    }

    /// Whether the session was cut; registers the polling task like [`Handle::poll_asked`]
    /// (for a session already closing, which needs no reason any more).
    pub fn poll_cut(&self, cx: &mut Context<'_>) -> bool {
        self.register(cx).cut
    }

    fn register(&self, cx: &mut Context<'_>) -> std::sync::MutexGuard<'_, CloseSlot> {
        let mut slot = self.close.lock().unwrap_or_else(|p| p.into_inner());
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        slot
    }

    /// Resolves with the reason once a close was requested.
    pub async fn close_requested(&self) -> Reason {
        std::future::poll_fn(|cx| match self.poll_asked(cx) {
            Asked::Close(r) => Poll::Ready(r),
            Asked::Nothing | Asked::Cut => Poll::Pending,
        })
        .await
    }

    /// Whether a close was requested (one atomic load: cheap enough for every poll).
    pub fn is_asked(&self) -> bool {
        self.asked.load(Ordering::Acquire)
    }

    /// The pending close request, if any.
    pub fn requested(&self) -> Option<Reason> {
        let slot = self.close.lock().unwrap_or_else(|p| p.into_inner());
        slot.reason.clone()
    }
}

/// Every live session of one gateway.
#[derive(Debug, Default)]
pub struct Registry {
    map: Mutex<HashMap<u64, Arc<Handle>>>,
    next: AtomicU64,
    /// Set when the gateway drains: a session registered after that (its handshake was in
    /// flight) is asked to close at once.
    draining: std::sync::atomic::AtomicBool,
    /// Set when the drain ran out of time: a session registered after that is cut at once.
    cut: std::sync::atomic::AtomicBool,
}

/// A session's place in the registry; dropping it removes the session.
#[derive(Debug)]
pub struct Entry {
    pub handle: Arc<Handle>,
    registry: Weak<Registry>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(reg) = self.registry.upgrade() {
            reg.lock().remove(&self.handle.id);
        }
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Handle>>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still valid.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a session; it stays listed until the returned [`Entry`] is dropped.
    pub fn register(self: &Arc<Self>, info: Info) -> Entry {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let handle = Arc::new(Handle {
            id,
            info,
            counters: Counters::default(),
            close: Mutex::new(CloseSlot::default()),
            asked: Default::default(),
        });
        self.lock().insert(id, Arc::clone(&handle));
        if self.draining.load(Ordering::Acquire) {
            handle.request_close(Reason::Drain);
        }
        if self.cut.load(Ordering::Acquire) {
            handle.cut();
        }
        Entry {
            handle,
            registry: Arc::downgrade(self),
        }
    }

    /// From now on, sessions that register are asked to close at once (drain).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// End every session at once, and every one that registers from now on (the drain budget
    /// is spent). Returns how many were cut.
    pub fn cut_all(&self) -> usize {
        self.cut.store(true, Ordering::Release);
        let all = self.snapshot();
        all.iter().for_each(|h| h.cut());
        all.len()
    }

    /// The live sessions, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Handle>> {
        let mut all: Vec<Arc<Handle>> = self.lock().values().cloned().collect();
        all.sort_by_key(|h| h.id);
        all
    }

    /// Ask every session matching `pick` to end for `reason`; returns how many were asked
    /// (sessions already ending are not counted again).
    pub fn close_where(&self, pick: impl Fn(&Handle) -> bool, reason: &Reason) -> usize {
        self.snapshot()
            .iter()
            .filter(|h| pick(h))
            .filter(|h| h.request_close(reason.clone()))
            .count()
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(subject: &str) -> Info {
        Info {
            subject: Some(subject.into()),
            client: IpAddr::from([127, 0, 0, 1]),
            route: "/ws".into(),
            backend: "ws://127.0.0.1:1".into(),
            started: SystemTime::now(),
            expires_at: None,
            key_id: None,
            protocol: Protocol::H1,
        }
    }

    #[tokio::test]
    async fn register_list_close_and_drop() {
        let reg = Arc::new(Registry::default());
        let a = reg.register(info("alice"));
        let b = reg.register(info("bob"));
        assert_eq!(reg.len(), 2);
        let n = reg.close_where(|h| h.info.subject.as_deref() == Some("bob"), &Reason::Rate);
        assert_eq!(n, 1);
        assert_eq!(b.handle.close_requested().await, Reason::Rate);
        assert_eq!(a.handle.requested(), None);
        // First request wins; a second does not count.
        assert!(!b.handle.request_close(Reason::Drain));
        assert_eq!(reg.close_where(|_| true, &Reason::Drain), 1);
        drop(a);
        assert_eq!(reg.snapshot().len(), 1);
        drop(b);
        assert!(reg.is_empty());
    }

    /// Counts wake-ups.
    struct Wakes(AtomicU64);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_cut_wakes_a_session_already_closing_and_reaches_late_ones() {
        let reg = Arc::new(Registry::default());
        let a = reg.register(info("alice"));
        let wakes = Arc::new(Wakes(AtomicU64::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        assert_eq!(a.handle.poll_asked(&mut cx), Asked::Nothing);
        assert!(!a.handle.is_asked());
        assert!(a.handle.request_close(Reason::Drain));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(a.handle.poll_asked(&mut cx), Asked::Close(Reason::Drain));
        // A second close request changes nothing and wakes nobody.
        assert!(!a.handle.request_close(Reason::Rate));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(!a.handle.poll_cut(&mut cx));
        assert_eq!(reg.cut_all(), 1);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            2,
            "the closing session is woken"
        );
        assert!(a.handle.poll_cut(&mut cx));
        assert_eq!(a.handle.poll_asked(&mut cx), Asked::Cut);
        // A session whose handshake was in flight is cut as it registers.
        let late = reg.register(info("bob"));
        assert!(late.handle.is_asked());
        assert_eq!(late.handle.poll_asked(&mut cx), Asked::Cut);
    }
}
