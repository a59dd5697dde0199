//! The metric names catalog: every series wsgate exports, named once, with its help text.
//!
//! Names are as registered; prometheus-client appends `_total` to counters on the wire (so
//! [`CONNECTIONS_ACCEPTED`] is scraped as `wsgate_connections_accepted_total`). Label names sit
//! with each entry; every label value is bounded by the code (reason labels are `&'static str`) or
//! by the config (listener, route, pool and backend names). Never a per-address label.
//!
//! Does not own registering or updating the series: that is [`super::Metrics`].

/// One exported metric: its registered name and its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    pub name: &'static str,
    pub help: &'static str,
}

/// Counter, `{listener}`.
pub const CONNECTIONS_ACCEPTED: Name = Name {
    name: "wsgate_connections_accepted",
    help: "TCP connections accepted, by listener",
};

/// Counter, `{reason}`: closed before any HTTP (`global_full`, `listener_removed`,
/// `proxy_untrusted`, `proxy_header`).
pub const CONNECTIONS_REFUSED: Name = Name {
    name: "wsgate_connections_refused",
    help: "Connections closed at accept or in the PROXY header stage, before TLS, by reason",
};

/// Gauge, no labels: from accept (past the caps at accept) to close, whatever the connection
/// is doing (PROXY header, TLS, HTTP, or carrying a tunnel; an HTTP/2 connection counts once).
pub const CONNECTIONS_OPEN: Name = Name {
    name: "wsgate_connections_open",
    help: "Client connections open now (handshaking, serving requests or tunnelling)",
};

/// Counter, `{reason}`: `timeout`, `client_certificate` (missing, untrusted or revoked on a
/// listener with `client_auth`) or `handshake` (any other failure).
pub const TLS_FAILURES: Name = Name {
    name: "wsgate_tls_handshake_failures",
    help: "TLS handshakes that failed or timed out, by reason",
};

/// Counter, `{route, outcome}`: `upgraded`, `relayed`, `client_gone`, `shutdown`, or a refusal
/// reason label (`crate::error::Refusal::reason`). `route` is `none` before routing.
pub const HANDSHAKES: Name = Name {
    name: "wsgate_handshakes",
    help: "HTTP upgrade handshakes by route and outcome (upgraded, relayed, or the refusal reason)",
};

/// Counter, `{route, reason}`: the rate-limit and connection-cap refusals only (`rate_limited`,
/// `route_rate_limited`, `ip_connections_full`, `route_full`, and `global_full` at accept).
pub const LIMIT_REFUSALS: Name = Name {
    name: "wsgate_limit_refusals",
    help: "Refusals by a handshake rate limit or a connection cap, by route and limit",
};

/// Gauge, `{route}`.
pub const TUNNELS_OPEN: Name = Name {
    name: "wsgate_tunnels_open",
    help: "Tunnels open now, by route",
};

/// Histogram, `{route}`, seconds from the start of the handshake to the end of the tunnel.
pub const TUNNEL_DURATION: Name = Name {
    name: "wsgate_tunnel_duration_seconds",
    help: "How long tunnels lived, from the handshake to the close, by route",
};

/// Counter, `{route, direction}`: `to_backend` or `to_client`, counted when a tunnel closes.
pub const TUNNEL_BYTES: Name = Name {
    name: "wsgate_tunnel_bytes",
    help: "Bytes relayed by closed tunnels, by route and direction",
};

/// Counter, `{route, closed_by}`: `client`, `backend`, `client_error`, `backend_error`,
/// `idle_timeout`, `half_close_timeout`, `shutdown`, or the reason wsgate ended the session
/// (`token_expired`, `lifetime`, `drain`, `too_big`, `protocol`, `rate`, `keepalive`,
/// `operator`, `key_revoked`).
pub const TUNNELS_CLOSED: Name = Name {
    name: "wsgate_tunnels_closed",
    help: "Tunnels closed, by route and by who or what closed them",
};

/// Gauge, `{pool, backend}`: 1 up, 0 down (active health checks; 1 without them).
pub const BACKEND_UP: Name = Name {
    name: "wsgate_backend_up",
    help: "Backend state according to the active health checks (1 up, 0 down)",
};

/// Gauge, `{pool, backend}`.
pub const BACKEND_TUNNELS_OPEN: Name = Name {
    name: "wsgate_backend_tunnels_open",
    help: "Tunnels open now, by pool and backend",
};

/// Counter, `{result}`: `ok` or `failed`.
pub const RELOADS: Name = Name {
    name: "wsgate_config_reloads",
    help: "Configuration reloads, by result",
};

/// Gauge, no labels.
pub const CONFIG_GENERATION: Name = Name {
    name: "wsgate_config_generation",
    help: "Generation of the configuration in use (1 at start, +1 per successful reload)",
};

/// Counter, `{route, code, closed_by}`: sessions ended, by the Close code the client got (or
/// `none`) and who ended them (`client`, `backend`, `wsgate`).
pub const SESSION_CLOSES: Name = Name {
    name: "wsgate_session_closes",
    help: "Sessions ended, by route, close code and who ended them",
};

/// Counter, `{route, kind}`: a frame that broke a rule (`masking`, `rsv`, `opcode`, `control`,
/// `fragmentation`, `close_frame`, `length`, `frame_too_big`, `message_too_big`, `rate`).
pub const FRAME_VIOLATIONS: Name = Name {
    name: "wsgate_frame_violations",
    help: "Frames that broke RFC 6455 or a session limit, by route and kind",
};

/// Counter, `{leg}`: `client` or `backend`.
pub const KEEPALIVE_PINGS: Name = Name {
    name: "wsgate_keepalive_pings",
    help: "Keepalive Pings wsgate sent, by leg",
};

/// Counter, `{leg}`: `client` or `backend`.
pub const KEEPALIVE_DEAD: Name = Name {
    name: "wsgate_keepalive_dead",
    help: "Peers found dead by keepalive (no Pong in time), by leg",
};

/// Gauge, no labels: 1 while the fleet's Redis/Valkey answers, 0 while it does not (and 0
/// without `cluster:`).
pub const REDIS_UP: Name = Name {
    name: "wsgate_redis_up",
    help: "Whether the fleet's Redis/Valkey answers (1) or not (0)",
};

/// Histogram, `{call}`: `admit`, `subject`, `heartbeat`, `register`, `release`, `publish`, `fleet`.
pub const REDIS_CALL_DURATION: Name = Name {
    name: "wsgate_redis_call_duration_seconds",
    help: "Redis/Valkey round trips by call, including the ones that failed",
};

/// Counter, `{kind}`: `timeout`, `connection`, `script`, `down` (skipped while Redis is down).
pub const REDIS_ERRORS: Name = Name {
    name: "wsgate_redis_errors",
    help: "Redis/Valkey calls that failed, by kind",
};

/// Counter, `{check, outcome}`: check `ip_rate`, `route_rate`, `ip_connections`, `subject`;
/// outcome `allowed`, `refused`, `replaced`, `error_allowed`, `error_refused`.
pub const FLEET_DECISIONS: Name = Name {
    name: "wsgate_fleet_decisions",
    help: "Fleet-wide admission checks, by check and outcome",
};

/// Gauge, `{version}`: always 1; the version of the running binary rides on the label.
pub const BUILD_INFO: Name = Name {
    name: "wsgate_build_info",
    help: "The running wsgate's version (always 1)",
};

/// Gauge, `{name}`: days until the ACME certificate serving `name` expires (fractional,
/// negative once expired; absent until a first certificate exists).
pub const CERTIFICATE_EXPIRY_DAYS: Name = Name {
    name: "wsgate_certificate_expiry_days",
    help: "Days until the automatic (ACME) certificate for a name expires",
};

/// Counter, `{result}`: `ok`, `error`. An `error` keeps the previous certificate in service.
pub const ACME_ORDERS: Name = Name {
    name: "wsgate_acme_orders",
    help: "ACME certificate orders (first issue and renewals), by result",
};

/// Every entry above, for registration checks. The `process_*` series are listed in
/// `super::process` (they are read from `/proc` at scrape time, not registered families).
pub const ALL: &[Name] = &[
    CONNECTIONS_ACCEPTED,
    CONNECTIONS_REFUSED,
    CONNECTIONS_OPEN,
    TLS_FAILURES,
    HANDSHAKES,
    LIMIT_REFUSALS,
    TUNNELS_OPEN,
    TUNNEL_DURATION,
    TUNNEL_BYTES,
    TUNNELS_CLOSED,
    BACKEND_UP,
    BACKEND_TUNNELS_OPEN,
    RELOADS,
    CONFIG_GENERATION,
    SESSION_CLOSES,
    FRAME_VIOLATIONS,
    KEEPALIVE_PINGS,
    KEEPALIVE_DEAD,
    REDIS_UP,
    REDIS_CALL_DURATION,
    REDIS_ERRORS,
    FLEET_DECISIONS,
    BUILD_INFO,
    CERTIFICATE_EXPIRY_DAYS,
    ACME_ORDERS,
];
