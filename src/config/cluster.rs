//! Typed `cluster:` block and the fleet keys of the policy (`scope:`, `per_subject:`): what a
//! fleet of wsgate instances shares through Redis/Valkey. Filled by `validate`; used by
//! `crate::cluster`. Nothing here connects: `wsgate check` validates a fleet config offline.

use std::path::PathBuf;
use std::time::Duration;

/// Default `cluster.prefix`.
pub const DEFAULT_PREFIX: &str = "wsgate:";
/// Default `cluster.timeout`: one Redis call, past it the call counts as failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// `cluster:` (absent = every instance counts alone).
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `redis://` or `rediss://` URL as written (may hold `user:pass@`: never logged).
    pub redis: String,
    /// `ca:` PEM bundle trusted for `rediss://` instead of the system roots (resolved path).
    pub ca: Option<PathBuf>,
    /// Every key and channel starts with it (default [`DEFAULT_PREFIX`]).
    pub prefix: String,
    /// This instance's name in the fleet (default `hostname:pid`).
    pub instance: String,
    /// Per Redis call (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// What a fleet check whose Redis call failed decides.
    pub on_error: OnError,
}

impl ClusterConfig {
    /// The Redis URL with any password replaced by `***`, for logs and messages.
    pub fn redis_redacted(&self) -> String {
        redact(&self.redis)
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis", &self.redis_redacted())
            .field("ca", &self.ca)
            .field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .finish()
    }
}

/// `scheme://user:pass@host` → `scheme://user:***@host`; other text is returned as is.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://***@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

/// `cluster.on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Admit the handshake (local limits still apply).
    #[default]
    Allow,
    /// Refuse it with 503.
    Deny,
}

/// `scope:` of a rate or a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// This instance counts alone.
    #[default]
    Local,
    /// Counted across the fleet in Redis (needs `cluster:`); the local check still runs first.
    Fleet,
}

/// `per_subject:` on a route or under `defaults:`: live sessions per token `sub` on one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerSubject {
    pub max_sessions: u32,
    pub on_exceed: OnExceed,
    pub scope: Scope,
}

/// `per_subject.on_exceed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExceed {
    /// Refuse the new session with 429.
    #[default]
    Refuse,
    /// Close the subject's oldest session (1008 `replaced`) and admit the new one.
    CloseOldest,
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://u:secret@h:6379/0"),
            "redis://u:***@h:6379/0"
        );
        assert_eq!(redact("rediss://:pw@h/1"), "rediss://:***@h/1");
        assert_eq!(redact("redis://tok@h"), "redis://***@h");
        assert_eq!(redact("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
