//! The fleet keys as written: the top-level `cluster:` block (the Redis/Valkey a fleet of wsgate
//! instances shares) and `per_subject:` (under `defaults:` or on a route). The `scope:` key of a
//! `rate` and of `limits.per_ip` sits on those structs in [`super`]. Values stay text like the
//! rest of [`super`]; their meaning is documented on [`crate::config::cluster`], and they are
//! checked by `crate::config::validate` (nothing here connects).

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::Spanned;

/// `cluster:` as written: `Some` whenever the key is there, its value `None` when nothing is
/// under it (so that validation can say what is missing instead of reading it as absent).
pub type RawClusterKey = Option<Spanned<Option<RawCluster>>>;

/// For `#[serde(deserialize_with)]` on [`RawClusterKey`] (with `default` for an absent key).
pub fn cluster_key<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RawClusterKey, D::Error> {
    Spanned::<Option<RawCluster>>::deserialize(deserializer).map(Some)
}

/// `cluster`: absent = every instance counts alone.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// Required: `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]` or `rediss://...` (TLS).
    pub redis: Option<Spanned<String>>,
    /// PEM CA bundle for `rediss://` instead of the system roots; relative to the config file.
    pub ca: Option<Spanned<String>>,
    /// Start of every key and channel; absent = `wsgate:`.
    pub prefix: Option<Spanned<String>>,
    /// This instance's name in the fleet; absent = `hostname:pid`.
    pub instance: Option<Spanned<String>>,
    /// Per Redis call, 1ms..=10s; absent = 50ms.
    pub timeout: Option<Spanned<String>>,
    /// `allow` (default) or `deny`: what a fleet check decides when Redis does not answer.
    pub on_error: Option<Spanned<String>>,
}

/// `per_subject`: live sessions per token `sub` on one route (a route's key replaces the
/// `defaults:` one whole).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPerSubject {
    /// Required: 1..=100000.
    pub max_sessions: Option<Spanned<String>>,
    /// `refuse` (default, 429) or `close_oldest`.
    pub on_exceed: Option<Spanned<String>>,
    /// `local` (default) or `fleet` (needs `cluster:`).
    pub scope: Option<Spanned<String>>,
}
