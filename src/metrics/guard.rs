//! Guards that hold a gauge up while their owner lives: [`OpenTunnel`] (a tunnel's route and
//! backend gauges, and its close record) and [`GaugeGuard`] (an open connection). Dropping the
//! guard brings the gauges down, whatever way the owner ends.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;

use super::Metrics;

/// One open tunnel on the gauges: holds them up while it lives, brings them down when dropped.
#[derive(Debug)]
pub struct OpenTunnel {
    pub(super) metrics: Arc<Metrics>,
    pub(super) route: Arc<str>,
    pub(super) route_gauge: Gauge,
    pub(super) backend_gauge: Gauge,
}

impl OpenTunnel {
    /// Record the close (duration, bytes, who closed); the gauges come down on drop.
    pub fn closed(&self, duration: Duration, to_backend: u64, to_client: u64, by: &'static str) {
        self.metrics
            .tunnel_closed(&self.route, duration, to_backend, to_client, by);
    }
}

impl Drop for OpenTunnel {
    fn drop(&mut self) {
        self.route_gauge.dec();
        self.backend_gauge.dec();
    }
}

/// Holds a gauge one higher while it lives: up on creation, down on drop, whatever way its
/// owner ends.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub(super) fn hold(gauge: Gauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
