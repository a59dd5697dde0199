//! `session:` as written, under `defaults:` or a route: what keeps being checked after the
//! upgrade. Every key is optional so that a route can override one key of the `defaults:` block
//! and inherit the others; values stay text like the rest of [`super`], and their meaning is
//! documented on [`crate::config::policy::SessionPolicy`].

use schemars::JsonSchema;
use serde::Deserialize;

use super::Spanned;

/// `session`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    /// Absent = true on routes whose auth is `auth.jwt`, else false.
    pub close_at_token_expiry: Option<Spanned<bool>>,
    /// A positive duration.
    pub max_lifetime: Option<Spanned<String>>,
    /// Sizes (`1MiB`).
    pub max_message: Option<Spanned<String>>,
    /// Largest single frame payload, at most `max_message`.
    pub max_frame: Option<Spanned<String>>,
    /// Client → backend data messages; over it: Close 1008.
    pub messages: Option<Spanned<RawMessageRate>>,
    /// Ping a peer silent for `interval`; no Pong within `timeout`: dropped.
    pub keepalive: Option<Spanned<RawKeepalive>>,
    /// Absent = true.
    pub check_frames: Option<Spanned<bool>>,
}

/// `session.messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMessageRate {
    /// `N/s`, `N/m` or `N/h`.
    pub rate: Spanned<String>,
    /// Absent = N.
    pub burst: Option<Spanned<String>>,
}

/// `session.keepalive`: both keys required.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKeepalive {
    /// A peer silent this long is pinged.
    pub interval: Spanned<String>,
    /// No Pong this long after the ping: the peer is dropped.
    pub timeout: Spanned<String>,
}
