//! Prometheus metrics: one [`Metrics`] per gateway, owning a prometheus-client registry and the
//! typed families the data path updates, and the text exposition served at `/metrics`.
//!
//! The one place wsgate counts: every event the data path sees is counted once, here, in a
//! series of the [`names`] catalog. Owns: registering those series, the methods the stages call
//! (`accepted`, `handshake`, `tunnel_opened`, ...), and reading them back as typed numbers
//! (`read`: refusals by reason, open tunnels, ...), which `crate::stats::Stats` hands to tests
//! and the drain. The open-tunnel gauges are held by an [`OpenTunnel`] guard the tunnel task
//! owns, the open-connection gauge by a [`GaugeGuard`] the connection owns, so they come back
//! down whatever way their owner ends.
//! Does not own: serving HTTP (`crate::admin`), deciding reason labels (`crate::error::Refusal`,
//! `crate::tunnel::drive::End`), or the live session registry (`crate::session`).
//!
//! Labels are bounded: reasons and outcomes are `&'static str`; listener, route, pool and backend
//! come from the config. Never a per-address label.

pub mod acme;
pub mod fleet;
mod guard;
mod keyed;
pub(crate) mod known;
pub mod names;
pub mod process;
mod read;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use keyed::Keyed;

/// `Content-Type` of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the tunnel duration buckets: 100 ms to a day.
const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];

/// Handshake outcomes that are a rate limit or a connection cap (also counted in
/// [`names::LIMIT_REFUSALS`]).
const LIMIT_REASONS: &[&str] = &[
    "rate_limited",
    "route_rate_limited",
    "ip_connections_full",
    "route_full",
    "global_full",
    "subject_sessions_full",
];

/// Route label before a route was chosen.
pub const NO_ROUTE: &str = "none";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    route: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    route: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClosedLabels {
    route: String,
    closed_by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    pool: String,
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

/// Every metric of one gateway. Cheap to share as `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    accepted: Keyed<ListenerLabels, Counter>,
    refused_at_accept: Keyed<ReasonLabels, Counter>,
    tls_failures: Keyed<ReasonLabels, Counter>,
    handshakes: Keyed<HandshakeLabels, Counter>,
    limit_refusals: Family<LimitLabels, Counter>,
    connections_open: Gauge,
    tunnels_open: Keyed<RouteLabels, Gauge>,
    tunnel_duration: Family<RouteLabels, Histogram>,
    tunnel_bytes: Family<BytesLabels, Counter>,
    tunnels_closed: Family<ClosedLabels, Counter>,
    backend_up: Family<BackendLabels, Gauge>,
    backend_tunnels_open: Family<BackendLabels, Gauge>,
    reloads: Family<ResultLabels, Counter>,
    config_generation: Gauge,
    session_closes: Family<session::CloseLabels, Counter>,
    frame_violations: Family<session::ViolationLabels, Counter>,
    keepalive_pings: Family<session::LegLabels, Counter>,
    keepalive_dead: Family<session::LegLabels, Counter>,
    fleet: fleet::FleetMetrics,
    /// Registered for its one series at 1; kept so the registry is not its only owner.
    _build_info: Family<process::BuildLabels, Gauge>,
    acme: acme::AcmeMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Register a clone of `metric` (families share their state with their clones).
fn register<M: Metric + Clone>(registry: &mut Registry, name: names::Name, metric: &M) -> M {
    registry.register(name.name, name.help, metric.clone());
    metric.clone()
}

impl Metrics {
    /// A fresh registry with every series of the catalog registered (and none observed yet).
    pub fn new() -> Metrics {
        use names::*;
        let mut r = Registry::default();
        // Fields are evaluated in order: every family is registered before `r` moves in last.
        let mut metrics = Metrics {
            accepted: Keyed::new(register(&mut r, CONNECTIONS_ACCEPTED, &Family::default())),
            refused_at_accept: Keyed::new(register(
                &mut r,
                CONNECTIONS_REFUSED,
                &Family::default(),
            )),
            tls_failures: Keyed::new(register(&mut r, TLS_FAILURES, &Family::default())),
            handshakes: Keyed::new(register(&mut r, HANDSHAKES, &Family::default())),
            limit_refusals: register(&mut r, LIMIT_REFUSALS, &Family::default()),
            connections_open: register(&mut r, CONNECTIONS_OPEN, &Gauge::default()),
            tunnels_open: Keyed::new(register(&mut r, TUNNELS_OPEN, &Family::default())),
            tunnel_duration: register(
                &mut r,
                TUNNEL_DURATION,
                &Family::new_with_constructor(duration_histogram),
            ),
            tunnel_bytes: register(&mut r, TUNNEL_BYTES, &Family::default()),
            tunnels_closed: register(&mut r, TUNNELS_CLOSED, &Family::default()),
            backend_up: register(&mut r, BACKEND_UP, &Family::default()),
            backend_tunnels_open: register(&mut r, BACKEND_TUNNELS_OPEN, &Family::default()),
            reloads: register(&mut r, RELOADS, &Family::default()),
            config_generation: register(&mut r, CONFIG_GENERATION, &Gauge::default()),
            session_closes: register(&mut r, SESSION_CLOSES, &Family::default()),
            frame_violations: register(&mut r, FRAME_VIOLATIONS, &Family::default()),
            keepalive_pings: register(&mut r, KEEPALIVE_PINGS, &Family::default()),
            keepalive_dead: register(&mut r, KEEPALIVE_DEAD, &Family::default()),
            fleet: fleet::FleetMetrics::register(&mut r),
            _build_info: process::build_info(&mut r),
            acme: acme::AcmeMetrics::register(&mut r),
            registry: r,
        };
        metrics
            .registry
            .register_collector(Box::new(process::ProcessCollector));
        metrics.prime_fixed();
        metrics
    }

    /// The certificate series (`crate::acme` updates them).
    pub fn acme(&self) -> &acme::AcmeMetrics {
        &self.acme
    }

    /// The fleet series (`crate::cluster` updates them).
    pub fn fleet(&self) -> &fleet::FleetMetrics {
        &self.fleet
    }

    /// A TCP connection was accepted on `listener`.
    pub fn accepted(&self, listener: &str) {
        self.accepted
            .series(&ListenerLabels {
                listener: listener.to_owned(),
            })
            .inc();
    }

    /// A client connection is held (from accept to close: handshaking, serving requests or
    /// tunnelling): the open-connections gauge is up until the returned guard is dropped.
    pub fn connection_opened(&self) -> GaugeGuard {
        GaugeGuard::hold(self.connections_open.clone())
    }

    /// A connection was closed before TLS: a cap at accept, or the PROXY header stage.
    pub fn refused_at_accept(&self, reason: &'static str) {
        self.refused_at_accept
            .series(&ReasonLabels { reason })
            .inc();
        self.count_limit(NO_ROUTE, reason);
    }

    /// A TLS handshake failed: `"timeout"` or `"handshake"`.
    pub fn tls_failure(&self, reason: &'static str) {
        self.tls_failures.series(&ReasonLabels { reason }).inc();
    }

    /// A handshake ended: `outcome` is `"upgraded"`, `"relayed"`, `"client_gone"`, `"shutdown"`
    /// or a refusal reason; `route` is the route label, or [`NO_ROUTE`].
    pub fn handshake(&self, route: &str, outcome: &'static str) {
        self.handshakes
            .series(&HandshakeLabels {
                route: route.to_owned(),
                outcome,
            })
            .inc();
        self.count_limit(route, outcome);
    }

    fn count_limit(&self, route: &str, reason: &'static str) {
        if LIMIT_REASONS.contains(&reason) {
            self.limit_refusals
                .get_or_create(&LimitLabels {
                    route: route.to_owned(),
                    reason,
                })
                .inc();
        }
    }

    /// A tunnel to `backend` of `pool` opened on `route`: both open-tunnel gauges go up until
    /// the returned guard is dropped.
    pub fn tunnel_opened(
        self: &Arc<Self>,
        route: &Arc<str>,
        pool: &str,
        backend: &str,
    ) -> OpenTunnel {
        let route_gauge = self.tunnels_open.series(&RouteLabels {
            route: route.to_string(),
        });
        let backend_gauge = self.backend_gauge(pool, backend);
        route_gauge.inc();
        backend_gauge.inc();
        OpenTunnel {
            metrics: Arc::clone(self),
            route: Arc::clone(route),
            route_gauge,
            backend_gauge,
        }
    }

    /// A tunnel on `route` closed: its duration, the bytes it relayed each way, and who closed
    /// it (`crate::tunnel::drive::End::label`, or `"shutdown"`). [`OpenTunnel::closed`] calls
    /// this; the gauges are the guard's.
    pub fn tunnel_closed(
        &self,
        route: &str,
        duration: Duration,
        bytes_to_backend: u64,
        bytes_to_client: u64,
        closed_by: &'static str,
    ) {
        let route_labels = RouteLabels {
            route: route.to_owned(),
        };
        self.tunnel_duration
            .get_or_create(&route_labels)
            .observe(duration.as_secs_f64());
        for (direction, bytes) in [
            ("to_backend", bytes_to_backend),
            ("to_client", bytes_to_client),
        ] {
            self.tunnel_bytes
                .get_or_create(&BytesLabels {
                    route: route_labels.route.clone(),
                    direction,
                })
                .inc_by(bytes);
        }
        self.tunnels_closed
            .get_or_create(&ClosedLabels {
                route: route_labels.route,
                closed_by,
            })
            .inc();
    }

    fn backend_gauge(&self, pool: &str, backend: &str) -> Gauge {
        self.backend_tunnels_open
            .get_or_create_owned(&BackendLabels {
                pool: pool.to_owned(),
                backend: backend.to_owned(),
            })
    }

    /// The health state of a backend (set at start and on every change the checker sees). Also
    /// makes its open-tunnels series exist at 0.
    pub fn backend_state(&self, pool: &str, backend: &str, up: bool) {
        let labels = BackendLabels {
            pool: pool.to_owned(),
            backend: backend.to_owned(),
        };
        self.backend_up.get_or_create(&labels).set(i64::from(up));
        // Creating the series is the point; the guard only reads it.
        drop(self.backend_tunnels_open.get_or_create(&labels));
    }

    /// Set the open-tunnels gauge of a backend outright (tunnels counted elsewhere; the data
    /// path uses [`Metrics::tunnel_opened`], which counts by increments).
    pub fn backend_open(&self, pool: &str, backend: &str, open: i64) {
        self.backend_gauge(pool, backend).set(open);
    }

    /// Drop the series of a backend no longer configured (after a reload removed it).
    pub fn forget_backend(&self, pool: &str, backend: &str) {
        let labels = BackendLabels {
            pool: pool.to_owned(),
            backend: backend.to_owned(),
        };
        self.backend_up.remove(&labels);
        self.backend_tunnels_open.remove(&labels);
    }

    /// A reload finished: `"ok"` or `"failed"`.
    pub fn reload(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// The configuration generation now serving.
    pub fn config_generation(&self, generation: u64) {
        self.config_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// The whole exposition in OpenMetrics text ([`CONTENT_TYPE`]), ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; an encoder error would leave a partial exposition,
        // which is still better served than nothing.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}

mod session;
pub use guard::{GaugeGuard, OpenTunnel};
pub use session::SessionEnd;
#[cfg(test)]
mod tests;
