//! The label values wsgate knows before anything happens, so every series an operator queries
//! exists at zero from the first scrape: a `rate()` or an alert on a series that does not exist
//! yet sees nothing, not 0.
//!
//! Two kinds: values fixed by the code (refusal reasons, outcomes, who closed a tunnel, frame
//! rules, legs), set up once by [`Metrics::new`]; and values named by the config (listeners,
//! routes), set up by [`Metrics::prime`] when a runtime is built or reloaded. Pools and backends
//! are set up by the health reporting (`Metrics::backend_state`) when a runtime starts serving.
//! A series of a route or listener a reload removed stays at its last value (counters must not
//! go backwards under a scraper).
//!
//! Does not own the values' meaning: `crate::error::Refusal`, `crate::tunnel::End` and
//! `crate::tunnel::frames::Violation` do; their tests check these lists against them.

use crate::error::Refusal;

use super::{
    BytesLabels, ClosedLabels, HandshakeLabels, LIMIT_REASONS, ListenerLabels, Metrics, NO_ROUTE,
    ReasonLabels, ResultLabels, RouteLabels, session,
};

/// Handshake outcomes that are not refusals.
pub const OUTCOMES: &[&str] = &["upgraded", "relayed", "client_gone", "shutdown"];

/// Reasons a connection is closed before TLS (`refused_at_accept`).
pub const ACCEPT_REFUSALS: &[&str] = &[
    "global_full",
    "listener_removed",
    "proxy_untrusted",
    "proxy_header",
];

/// TLS failure reasons.
pub const TLS_FAILURES: &[&str] = &["timeout", "handshake"];

/// Every `closed_by` label of [`super::names::TUNNELS_CLOSED`] (`crate::tunnel::End::label`).
pub const TUNNEL_CLOSED_BY: &[&str] = &[
    "client",
    "backend",
    "client_error",
    "backend_error",
    "idle_timeout",
    "half_close_timeout",
    "shutdown",
    "token_expired",
    "lifetime",
    "drain",
    "too_big",
    "protocol",
    "rate",
    "keepalive",
    "operator",
    "key_revoked",
    "replaced",
];

/// The `(code, closed_by)` pairs of [`super::names::SESSION_CLOSES`] set up at zero: the normal
/// closes and the codes wsgate itself sends. Other codes appear when they happen.
pub const SESSION_CLOSES: &[(&str, &str)] = &[
    ("1000", "client"),
    ("1001", "client"),
    ("none", "client"),
    ("1000", "backend"),
    ("1001", "backend"),
    ("1011", "backend"),
    ("none", "backend"),
    ("1001", "wsgate"),
    ("1002", "wsgate"),
    ("1008", "wsgate"),
    ("1009", "wsgate"),
    ("none", "wsgate"),
];

/// Every frame rule (`crate::tunnel::frames::Violation::label`).
pub const VIOLATIONS: &[&str] = &[
    "masking",
    "rsv",
    "opcode",
    "control",
    "fragmentation",
    "close_frame",
    "length",
    "frame_too_big",
    "message_too_big",
    "rate",
];

/// Keepalive legs.
pub const LEGS: &[&str] = &["client", "backend"];

/// Tunnel byte directions.
const DIRECTIONS: &[&str] = &["to_backend", "to_client"];

/// Reload results.
const RELOAD_RESULTS: &[&str] = &["ok", "failed"];

impl Metrics {
    /// The series whose labels the code alone fixes, at zero.
    pub(super) fn prime_fixed(&self) {
        for &reason in ACCEPT_REFUSALS {
            self.refused_at_accept.series(&ReasonLabels { reason });
        }
        for &reason in TLS_FAILURES {
            self.tls_failures.series(&ReasonLabels { reason });
        }
        for &result in RELOAD_RESULTS {
            self.reloads.get_or_create_owned(&ResultLabels { result });
        }
        for &leg in LEGS {
            let labels = session::LegLabels { leg };
            self.keepalive_pings.get_or_create_owned(&labels);
            self.keepalive_dead.get_or_create_owned(&labels);
        }
        self.fleet.prime();
        self.prime_route(NO_ROUTE);
    }

    /// Set up at zero the series of every listener and route a config names (at start and on
    /// every reload; series already there keep their values).
    pub fn prime<'a>(
        &self,
        listeners: impl IntoIterator<Item = &'a str>,
        routes: impl IntoIterator<Item = &'a str>,
    ) {
        for listener in listeners {
            self.accepted.series(&ListenerLabels {
                listener: listener.to_owned(),
            });
        }
        for route in routes {
            self.prime_route(route);
        }
    }

    fn prime_route(&self, route: &str) {
        let outcomes = OUTCOMES.iter().copied();
        let refusals = Refusal::ALL.iter().map(|r| r.reason());
        for outcome in outcomes.chain(refusals) {
            self.handshakes.series(&HandshakeLabels {
                route: route.to_owned(),
                outcome,
            });
        }
        for &reason in LIMIT_REASONS {
            (self.limit_refusals).get_or_create_owned(&super::LimitLabels {
                route: route.to_owned(),
                reason,
            });
        }
        if route == NO_ROUTE {
            return; // Nothing below happens before a route is chosen.
        }
        let labels = RouteLabels {
            route: route.to_owned(),
        };
        self.tunnels_open.series(&labels);
        self.tunnel_duration.get_or_create_owned(&labels);
        for &direction in DIRECTIONS {
            (self.tunnel_bytes).get_or_create_owned(&BytesLabels {
                route: route.to_owned(),
                direction,
            });
        }
        for &closed_by in TUNNEL_CLOSED_BY {
            (self.tunnels_closed).get_or_create_owned(&ClosedLabels {
                route: route.to_owned(),
                closed_by,
            });
        }
        self.prime_session(route);
    }
}
