//! `per_subject` on this instance: live sessions per token subject on one route, counted here
//! whatever the scope (a fleet-wide cap is never below the local count, so a subject already
//! full here is refused without asking Redis). The counts survive a reload of the route.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Sessions per subject on one route; an entry exists while its count is above zero.
#[derive(Debug, Default)]
pub struct SubjectCounts(Mutex<HashMap<Arc<str>, u32>>);

/// One counted session; dropping it gives the count back.
#[derive(Debug)]
pub struct Held {
    counts: Arc<SubjectCounts>,
    subject: Arc<str>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.counts.lock();
        if let Some(n) = map.get_mut(&self.subject) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.subject);
            }
        }
    }
}

impl SubjectCounts {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, u32>> {
        // Plain counters: a panic elsewhere cannot leave them half-updated.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count one more session of `subject`, unless it holds `max` already (`None`) and
    /// `anyway` is false (`close_oldest` admits the new session before the old one is gone).
    pub fn take(self: &Arc<Self>, subject: &str, max: u32, anyway: bool) -> Option<Held> {
        let mut map = self.lock();
        let subject: Arc<str> = match map.get_key_value(subject) {
            Some((_, n)) if *n >= max && !anyway => return None,
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(subject),
        };
        *map.entry(Arc::clone(&subject)).or_insert(0) += 1;
        drop(map);
        Some(Held {
            counts: Arc::clone(self),
            subject,
        })
    }

    /// Live sessions of `subject`.
    pub fn count(&self, subject: &str) -> u32 {
        self.lock().get(subject).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_subject_and_gives_back() {
        let counts = Arc::new(SubjectCounts::default());
        let a1 = counts.take("alice", 2, false).expect("first");
        let _a2 = counts.take("alice", 2, false).expect("second");
        assert!(counts.take("alice", 2, false).is_none());
        let _b = counts.take("bob", 2, false).expect("bob is apart");
        let a3 = counts.take("alice", 2, true).expect("anyway");
        assert_eq!(counts.count("alice"), 3);
        drop(a1);
        drop(a3);
        assert_eq!(counts.count("alice"), 1);
        assert!(counts.take("alice", 2, false).is_some());
    }
}
