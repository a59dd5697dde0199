//! Key revocation: when a JWKS refresh no longer holds the key a session's token was verified
//! with, that session is closed with 1008 `key revoked`.
//!
//! The key sets live in the runtime (`admit::jwks`); they know nothing of sessions and only
//! report each refresh through a hook, which this module points at the gateway's registry.

use std::sync::{Arc, Weak};

use super::{Handle, Reason, Registry};
use crate::runtime::Runtime;

/// Wire every JWKS URL of `runtime`'s routes to `sessions` (called for each runtime built).
pub fn watch_key_sets(runtime: &Runtime, sessions: &Arc<Registry>) {
    let sets = runtime.routes.iter().filter_map(|route| {
        let auth = route.policy.auth.as_ref()?;
        Some(auth.jwt.as_ref()?.remote_sets())
    });
    for set in sets.flatten() {
        let registry = Arc::downgrade(sessions);
        set.on_refresh(Box::new(move |url, kids| revoke(&registry, url, kids)));
    }
}

/// Close the sessions verified by a key of the set at `url` that is not among `kids` now.
fn revoke(registry: &Weak<Registry>, url: &str, kids: &[&str]) {
    let Some(registry) = registry.upgrade() else {
        return;
    };
    let gone = |h: &Handle| {
        let Some(id) = h.info.key_id.as_deref() else {
            return false;
        };
        let kid = id.strip_prefix(url).and_then(|rest| rest.strip_prefix('#'));
        kid.is_some_and(|kid| !kids.contains(&kid))
    };
    let n = registry.close_where(gone, &Reason::KeyRevoked);
    if n > 0 {
        tracing::warn!(%url, sessions = n, "a JWKS refresh removed a key; its sessions are closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Info;

    #[test]
    fn only_sessions_of_a_removed_key_of_that_url_close() {
        let reg = Arc::new(Registry::default());
        let with = |key: Option<&str>| {
            reg.register(Info {
                subject: None,
                client: std::net::IpAddr::from([127, 0, 0, 1]),
                route: "r".into(),
                backend: "b".into(),
                started: std::time::SystemTime::now(),
                expires_at: None,
                key_id: key.map(Into::into),
                protocol: crate::session::Protocol::H1,
            })
        };
        let old = with(Some("https://idp/jwks#k1"));
        let kept = with(Some("https://idp/jwks#k2"));
        let other_set = with(Some("https://other/jwks#k1"));
        let no_key = with(None);
        revoke(&Arc::downgrade(&reg), "https://idp/jwks", &["k2", "k3"]);
        assert_eq!(old.handle.requested(), Some(Reason::KeyRevoked));
        for e in [&kept, &other_set, &no_key] {
            assert_eq!(e.handle.requested(), None);
        }
    }
}
