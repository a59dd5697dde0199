//! A small cache of tokens that verified, so a client reconnecting with the same token (the usual
//! case: a browser tab, a mobile app after a network change) costs a hash lookup instead of a
//! signature check.
//!
//! Only successes are cached, keyed by SHA-256 of the token, per verifier (a token good for one
//! route's rules says nothing about another's). An entry lives until the token's `exp` or for
//! [`MAX_AGE`], whichever is sooner, and only while the JWKS sets it was verified against are
//! unchanged: a key removed from a JWKS stops admitting its tokens at the next fetch. The map is bounded: when full, expired entries are dropped, and if none are,
//! the whole map is cleared (simple, and a full cache only means re-verifying).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;

use super::jwt::Identity;

/// Longest time a verified token is trusted without checking it again.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Most tokens remembered per verifier.
pub const MAX_ENTRIES: usize = 10_000;

type Key = [u8; 32];

/// Verified tokens of one verifier.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    map: Mutex<HashMap<Key, Entry>>,
}

struct Entry {
    identity: Identity,
    /// Unix seconds after which the entry is stale.
    until: u64,
    /// The key-set generation it was verified under; a new JWKS set invalidates it.
    generation: u64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

impl VerifiedCache {
    /// The identity of a token verified before, under the same key-set `generation`, and still
    /// within its cache life.
    pub fn get(&self, token: &str, generation: u64) -> Option<Identity> {
        let key = hash(token);
        let now = unix_now();
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&key) {
            Some(e) if e.until > now && e.generation == generation => Some(e.identity.clone()),
            _ => None,
        }
    }

    /// Remember a token that verified under key-set `generation`.
    pub fn insert(&self, token: &str, identity: &Identity, generation: u64) {
        let now = unix_now();
        let until = identity
            .expires_at
            .unwrap_or(0)
            .min(now + MAX_AGE.as_secs());
        if until <= now {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| e.until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        let entry = Entry {
            identity: identity.clone(),
            until,
            generation,
        };
        map.insert(hash(token), entry);
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn hash(token: &str) -> Key {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(d.as_ref());
    key
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(expires_at: Option<u64>) -> Identity {
        Identity {
            key_id: None,
            subject: Some("alice".into()),
            expires_at,
            claims: serde_json::Map::new(),
        }
    }

    #[test]
    fn remembers_successes_until_expiry_and_bounds_itself() {
        let cache = VerifiedCache::default();
        let now = unix_now();
        assert!(cache.get("t1", 0).is_none());
        cache.insert("t1", &identity(Some(now + 3600)), 0);
        let hit = cache.get("t1", 0).and_then(|i| i.subject);
        assert_eq!(hit.as_deref(), Some("alice"));
        assert!(cache.get("t2", 0).is_none());
        // A new key set invalidates what was verified under the old one.
        assert!(cache.get("t1", 1).is_none());
        // Expired or expiry-less tokens are never cached.
        cache.insert("old", &identity(Some(now - 1)), 0);
        cache.insert("no-exp", &identity(None), 0);
        assert!(cache.get("old", 0).is_none() && cache.get("no-exp", 0).is_none());
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(&format!("k{i}"), &identity(Some(now + 3600)), 0);
        }
        assert!(cache.len() <= MAX_ENTRIES);
    }
}
