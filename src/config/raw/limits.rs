//! `limits:` as written: the time and size bounds of every stage of a connection, and the
//! per-address caps. Values stay text like the rest of [`super`]; units are parsed by
//! [`crate::config::units`] and ranges checked by `crate::config::validate`, which also holds the
//! defaults.

use schemars::JsonSchema;
use serde::Deserialize;

use super::Spanned;

/// `limits`: every key optional; absent = [`crate::config::Limits::default`].
///
/// Every value is text (`10s`, `16KiB`; a bare number like `100` is read as text too) so that a
/// bad value is a validation error reported together with the others, not a serde type error
/// that stops the parse. Durations: ms, s, m, h, d; sizes: B, KiB, MiB, GiB (or KB, MB, GB).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// TCP accept → TLS handshake done; default 10s.
    pub tls_handshake_timeout: Option<Spanned<String>>,
    /// TLS done → complete HTTP upgrade request head received; default 10s.
    pub request_header_timeout: Option<Spanned<String>>,
    /// Request head size, 1KiB..=1MiB; default 16KiB.
    pub max_request_header_bytes: Option<Spanned<String>>,
    /// Header field count, 1..=10000; default 100.
    pub max_request_headers: Option<Spanned<String>>,
    /// TCP connect to the chosen backend; default 5s.
    pub backend_connect_timeout: Option<Spanned<String>>,
    /// The backend's answer to the forwarded upgrade request; default 10s.
    pub backend_handshake_timeout: Option<Spanned<String>>,
    /// Body of a non-101 backend answer relayed to the client, at most 16MiB; default 64KiB.
    pub max_relayed_body_bytes: Option<Spanned<String>>,
    /// Proxied plain requests (`http: proxy`): the client's body, the backend's answer body, and
    /// the whole exchange.
    pub max_request_body_bytes: Option<Spanned<String>>,
    /// A proxied plain request's answer body, at most 64MiB; default 1MiB.
    pub max_response_body_bytes: Option<Spanned<String>>,
    /// A whole proxied plain request: body, backend connect and answer; default 60s.
    pub http_request_timeout: Option<Spanned<String>>,
    /// Close a tunnel after this long with no bytes either way; default 1h.
    pub tunnel_idle_timeout: Option<Spanned<String>>,
    /// One side of a tunnel closed: how long the other may stay open; default 30s.
    pub tunnel_half_close_timeout: Option<Spanned<String>>,
    /// On shutdown, how long open tunnels may finish; default 30s.
    pub drain_timeout: Option<Spanned<String>>,
    /// Wait for a frame in flight, then for each peer's Close reply, this long.
    pub close_timeout: Option<Spanned<String>>,
    /// Spread drain Close frames over this window (`0s` = all at once).
    pub drain_spread: Option<Spanned<String>>,
    /// Open client connections in all.
    pub max_connections: Option<Spanned<String>>,
    /// Per client address (IPv6 by /64); absent = no per-address limit.
    pub per_ip: Option<Spanned<RawPerIp>>,
}

/// `limits.per_ip`: every key optional.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPerIp {
    /// `N/s`, `N/m` or `N/h`.
    pub handshakes: Option<Spanned<String>>,
    /// Only with `handshakes`; absent = N.
    pub burst: Option<Spanned<String>>,
    /// Open tunnels per address.
    pub max_connections: Option<Spanned<String>>,
    /// `local` (default) or `fleet`: for the rate and `max_connections` (fleet needs `cluster:`).
    pub scope: Option<Spanned<String>>,
}
