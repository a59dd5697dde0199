//! What one gateway shares with every connection it serves: the [`Metrics`] the stages count
//! in, the live session registry, and a typed read of the counts for tests and the drain.
//!
//! Counts nothing itself: every event is counted once, in a Prometheus series of [`Metrics`]
//! (the series served by `crate::admin`), and the readers here ([`Stats::refusals`],
//! [`Stats::open_tunnels`], ...) sum those series. So what a test reads is what an operator
//! scrapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cluster::Fleet;
use crate::metrics::Metrics;

/// The counts and sessions of one [`crate::Gateway`].
#[derive(Debug)]
pub struct Stats {
    /// The Prometheus series: the one place the stages count.
    pub metrics: Arc<Metrics>,
    /// The live sessions (admin API, drain, key revocation find them here).
    pub sessions: Arc<crate::session::Registry>,
    /// The fleet this gateway shares limits and sessions with (`cluster:`), if any.
    pub fleet: Arc<Fleet>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::with_metrics(Arc::default())
    }
}

impl Stats {
    /// Stats over `metrics` (shared with the admin endpoint, or kept across gateways).
    pub fn with_metrics(metrics: Arc<Metrics>) -> Stats {
        let sessions = Arc::new(crate::session::Registry::default());
        let fleet = Arc::new(Fleet::new(Arc::clone(&metrics), Arc::clone(&sessions)));
        Stats {
            metrics,
            sessions,
            fleet,
        }
    }

    /// The metrics these stats read, for the admin endpoint and the reload path.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// How many refusals carried this reason label ([`Metrics::refusals`]).
    pub fn refusals(&self, reason: &str) -> u64 {
        self.metrics.refusals(reason)
    }

    /// Every refusal reason seen so far with its count.
    pub fn refusal_counts(&self) -> BTreeMap<&'static str, u64> {
        self.metrics.refusal_counts()
    }

    /// Current number of open tunnels.
    pub fn open_tunnels(&self) -> u64 {
        self.metrics.open_tunnels()
    }

    /// Current number of open client connections.
    pub fn open_connections(&self) -> u64 {
        self.metrics.open_connections()
    }

    /// Tunnels established, ever.
    pub fn tunnels_total(&self) -> u64 {
        self.metrics.tunnels_total()
    }

    /// TLS handshakes that failed or timed out, ever.
    pub fn tls_failures(&self) -> u64 {
        self.metrics.tls_failures()
    }

    /// TLS handshakes that failed for `reason`, ever: `timeout`, `handshake`, or
    /// `client_certificate` (a listener with `client_auth` refused the client's certificate).
    pub fn tls_failures_for(&self, reason: &str) -> u64 {
        self.metrics.tls_failures_for(reason)
    }

    /// TCP connections accepted, ever.
    pub fn connections_accepted(&self) -> u64 {
        self.metrics.connections_accepted()
    }
}
