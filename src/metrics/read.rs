//! The gateway's own series read back as typed numbers, for tests and the drain (handed out by
//! `crate::stats::Stats`). Every number here is a sum of series of the [`names`](super::names)
//! catalog; nothing here counts, and reading never creates a series.

use std::collections::BTreeMap;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use super::Metrics;

/// The handshake outcome of a backend's non-101 answer relayed to the client.
const RELAYED: &str = "relayed";
/// The refusal reason [`RELAYED`] is read under.
const BACKEND_NON_101: &str = "backend_non_101";

/// The refusal reason a handshake outcome stands for: none for the outcomes that are not
/// refusals (a tunnel, a client gone, a shutdown).
fn refusal_of(outcome: &'static str) -> Option<&'static str> {
    match outcome {
        "upgraded" | "client_gone" | "shutdown" => None,
        RELAYED => Some(BACKEND_NON_101),
        reason => Some(reason),
    }
}

fn count(c: &Counter) -> u64 {
    c.get()
}

fn level(g: &Gauge) -> i64 {
    g.get()
}

/// A gauge's level as a count (it never goes below zero: every decrement follows its increment).
fn as_count(level: i64) -> u64 {
    u64::try_from(level).unwrap_or(0)
}

impl Metrics {
    /// Refusals with this reason label: handshakes refused with it on any route (a backend's
    /// non-101 answer, relayed, reads as `backend_non_101`), and connections closed with it at
    /// accept or in the PROXY header stage.
    pub fn refusals(&self, reason: &str) -> u64 {
        let handshakes = (self.handshakes).sum(|k| refusal_of(k.outcome) == Some(reason), count);
        let at_accept = (self.refused_at_accept).sum(|k| k.reason == reason, count);
        handshakes + at_accept
    }

    /// Every refusal reason counted so far (not the ones still at zero), with
    /// [`Metrics::refusals`] of each.
    pub fn refusal_counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        self.handshakes.for_each(|k, c| {
            if let Some(reason) = refusal_of(k.outcome) {
                *counts.entry(reason).or_default() += c.get();
            }
        });
        self.refused_at_accept.for_each(|k, c| {
            *counts.entry(k.reason).or_default() += c.get();
        });
        counts.retain(|_, n| *n > 0);
        counts
    }

    /// Tunnels open now, on every route (from the backend's verified 101 to the tunnel's end).
    pub fn open_tunnels(&self) -> u64 {
        as_count(self.tunnels_open.sum(|_| true, level))
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> u64 {
        as_count(self.connections_open.get())
    }

    /// Tunnels established, ever: handshakes that ended `upgraded`, on every route.
    pub fn tunnels_total(&self) -> u64 {
        self.handshakes.sum(|k| k.outcome == "upgraded", count)
    }

    /// TLS handshakes that failed or timed out, ever.
    pub fn tls_failures(&self) -> u64 {
        self.tls_failures.sum(|_| true, count)
    }

    /// TLS handshakes that failed for `reason` (`timeout`, `handshake`, `client_certificate`).
    pub fn tls_failures_for(&self, reason: &str) -> u64 {
        self.tls_failures.sum(|k| k.reason == reason, count)
    }

    /// TCP connections accepted, ever, on every listener.
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.sum(|_| true, count)
    }
}
