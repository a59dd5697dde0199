//! The fleet slots this instance holds: per cap tag, each member's number and start time. The
//! heartbeat touches every tag listed here and re-registers them all after Redis lost its data;
//! a [`Slot`] dropped (its tunnel ended, or admission gave up) leaves the list at once and its
//! release goes to the background releaser, which retries a failed one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

/// A member to take out of a cap: its tag and number.
pub type Release = (Arc<str>, u64);

/// A tag's members: number and start (Unix ms).
pub type Members = Vec<(u64, u64)>;

/// Every slot held, by tag.
pub struct Held {
    map: Mutex<HashMap<Arc<str>, HashMap<u64, u64>>>,
    next: AtomicU64,
    releases: mpsc::UnboundedSender<Release>,
    /// Releases sent to the releaser and not yet done (freed in Redis, or given up).
    unsettled: AtomicUsize,
}

impl Held {
    /// An empty list; dropped slots are sent on `releases`.
    pub fn new(releases: mpsc::UnboundedSender<Release>) -> Held {
        Held {
            map: Mutex::default(),
            next: AtomicU64::new(0),
            releases,
            unsettled: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, HashMap<u64, u64>>> {
        // Plain maps: a panic elsewhere cannot leave them half-updated.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new member number under `tag`, listed before it is sent, so that a heartbeat running
    /// meanwhile touches its tag.
    pub fn reserve(self: &Arc<Self>, tag: &str) -> Slot {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let tag: Arc<str> = Arc::from(tag);
        let started = now_ms();
        self.lock()
            .entry(Arc::clone(&tag))
            .or_default()
            .insert(n, started);
        Slot {
            tag,
            n,
            held: Arc::clone(self),
            taken: true,
        }
    }

    /// Every tag held now.
    pub fn tags(&self) -> Vec<Arc<str>> {
        self.lock().keys().cloned().collect()
    }

    /// Every tag with its members (number, start ms), for re-registration.
    pub fn members(&self) -> Vec<(Arc<str>, Members)> {
        self.lock()
            .iter()
            .map(|(tag, m)| (Arc::clone(tag), m.iter().map(|(n, s)| (*n, *s)).collect()))
            .collect()
    }

    /// Slots held now.
    pub fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    /// Whether no slot is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn release(&self, tag: &Arc<str>, n: u64, taken: bool) {
        let mut map = self.lock();
        if let Some(members) = map.get_mut(tag) {
            members.remove(&n);
            if members.is_empty() {
                map.remove(tag);
            }
        }
        drop(map);
        if !taken {
            return;
        }
        // The releaser outlives every slot while the process runs; at exit nothing is lost
        // that the heartbeat expiry would not free.
        if self.releases.send((Arc::clone(tag), n)).is_ok() {
            self.unsettled.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The releaser is done with `n` releases.
    pub fn settled(&self, n: usize) {
        let _ = (self.unsettled).fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            Some(u.saturating_sub(n))
        });
    }

    /// Releases not yet done.
    pub fn unsettled(&self) -> usize {
        self.unsettled.load(Ordering::Acquire)
    }
}

/// One fleet slot; dropping it frees it fleet-wide.
pub struct Slot {
    tag: Arc<str>,
    n: u64,
    held: Arc<Held>,
    /// False when Redis refused it: dropping it then sends nothing.
    taken: bool,
}

impl Slot {
    /// Its member name under `instance`.
    pub fn member(&self, instance: &str) -> String {
        member(instance, self.n)
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Give up a slot Redis did not grant: unlisted, nothing to free.
    pub fn refused(mut self) {
        self.taken = false;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.held.release(&self.tag, self.n, self.taken);
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({}#{})", self.tag.escape_debug(), self.n)
    }
}

/// `instance/n`: the owner is everything before the last `/` (instance names hold none).
pub fn member(instance: &str, n: u64) -> String {
    format!("{instance}/{n}")
}

/// Milliseconds since the Unix epoch on this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_list_and_release() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let held = Arc::new(Held::new(tx));
        let a = held.reserve("ip:192.0.2.1");
        let b = held.reserve("ip:192.0.2.1");
        let c = held.reserve("sub:x");
        assert_eq!(held.len(), 3);
        assert_eq!(held.tags().len(), 2);
        assert_eq!(a.member("gw-1"), "gw-1/1");
        drop(b);
        assert_eq!(rx.try_recv().unwrap(), (Arc::from("ip:192.0.2.1"), 2));
        drop(a);
        drop(c);
        assert!(held.is_empty());
        assert_eq!(rx.try_recv().unwrap().1, 1);
        assert_eq!(rx.try_recv().unwrap().1, 3);
    }
}
