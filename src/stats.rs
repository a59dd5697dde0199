//! Counters and gauges the data path keeps, readable by tests, and the [`Metrics`] they feed.
//!
//! Only bounded labels: refusal reasons are `&'static str` from [`crate::error::Refusal::reason`].
//! Whatever holds the stats holds the metrics too ([`Stats::metrics`]), so the stages that count
//! here also update the Prometheus series served by `crate::admin`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;

/// Live counters of one [`crate::Gateway`].
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted, ever.
    pub connections_accepted: AtomicU64,
    /// Client connections currently held (handshaking or tunnelling).
    pub connections_open: AtomicU64,
    /// Tunnels currently spliced.
    pub tunnels_open: AtomicU64,
    /// Tunnels established, ever.
    pub tunnels_total: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_failures: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// The Prometheus series of the same gateway.
    pub metrics: Arc<Metrics>,
    /// The live sessions (admin API, drain, key revocation find them here).
    pub sessions: Arc<crate::session::Registry>,
}

impl Stats {
    /// Stats feeding `metrics` (shared with the admin endpoint, or kept across gateways).
    pub fn with_metrics(metrics: Arc<Metrics>) -> Stats {
        Stats {
            metrics,
            ..Stats::default()
        }
    }

    /// The metrics these stats feed, for the admin endpoint and the reload path.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Count one refusal under its reason label.
    pub fn refused(&self, reason: &'static str) {
        // A poisoned lock only means another thread panicked mid-increment; the map is still valid.
        let mut map = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(reason).or_default() += 1;
    }

    /// How many refusals carried this reason label.
    pub fn refusals(&self, reason: &str) -> u64 {
        let map = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        map.get(reason).copied().unwrap_or(0)
    }

    /// Every refusal reason seen so far with its count.
    pub fn refusal_counts(&self) -> BTreeMap<&'static str, u64> {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Current number of open tunnels.
    pub fn open_tunnels(&self) -> u64 {
        self.tunnels_open.load(Ordering::Relaxed)
    }

    /// Current number of open client connections.
    pub fn open_connections(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }
}

/// Increments a gauge on creation and decrements it on drop, whatever way the owner ends.
#[derive(Debug)]
pub struct GaugeGuard {
    stats: Arc<Stats>,
    gauge: fn(&Stats) -> &AtomicU64,
}

impl GaugeGuard {
    pub fn new(stats: &Arc<Stats>, gauge: fn(&Stats) -> &AtomicU64) -> Self {
        gauge(stats).fetch_add(1, Ordering::Relaxed);
        GaugeGuard {
            stats: Arc::clone(stats),
            gauge,
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        (self.gauge)(&self.stats).fetch_sub(1, Ordering::Relaxed);
    }
}
