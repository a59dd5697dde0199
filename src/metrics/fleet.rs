//! Series about the fleet's shared state: whether Redis/Valkey answers, how long its round trips
//! take, how they fail, and what the fleet-wide admission checks decided. Updated by
//! `crate::cluster`; registered with every other series by [`super::Metrics::new`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{names, register};

/// Upper bounds (seconds) of the Redis call buckets: 100 µs to 1 s.
const CALL_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    check: &'static str,
    outcome: &'static str,
}

/// Every `call` label of [`names::REDIS_CALL_DURATION`].
pub const CALLS: &[&str] = &[
    "admit",
    "subject",
    "heartbeat",
    "register",
    "release",
    "publish",
    "fleet",
];

/// Every `kind` label of [`names::REDIS_ERRORS`].
pub const ERROR_KINDS: &[&str] = &["timeout", "connection", "script", "down"];

/// Every `(check, outcome)` of [`names::FLEET_DECISIONS`] (`ip_connections` and the rates are
/// never `replaced`).
pub const DECISIONS: &[(&str, &[&str])] = &[
    (
        "ip_rate",
        &["allowed", "refused", "error_allowed", "error_refused"],
    ),
    (
        "route_rate",
        &["allowed", "refused", "error_allowed", "error_refused"],
    ),
    (
        "ip_connections",
        &["allowed", "refused", "error_allowed", "error_refused"],
    ),
    (
        "subject",
        &[
            "allowed",
            "refused",
            "replaced",
            "error_allowed",
            "error_refused",
        ],
    ),
];

/// The fleet series.
#[derive(Debug)]
pub struct FleetMetrics {
    up: Gauge,
    calls: Family<CallLabels, Histogram>,
    errors: Family<KindLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    /// Every round trip, for benches (the histogram's count is not readable back).
    round_trips: AtomicU64,
}

impl FleetMetrics {
    pub(super) fn register(r: &mut Registry) -> FleetMetrics {
        FleetMetrics {
            up: register(r, names::REDIS_UP, &Gauge::default()),
            calls: register(
                r,
                names::REDIS_CALL_DURATION,
                &Family::new_with_constructor(|| Histogram::new(CALL_BUCKETS.iter().copied())),
            ),
            errors: register(r, names::REDIS_ERRORS, &Family::default()),
            decisions: register(r, names::FLEET_DECISIONS, &Family::default()),
            round_trips: AtomicU64::new(0),
        }
    }

    /// Every series at zero (the Redis call histograms empty), so a dashboard shows the fleet
    /// from the first scrape; `wsgate_redis_up` reads 0 until a fleet is configured and answers.
    pub(super) fn prime(&self) {
        for &call in CALLS {
            self.calls.get_or_create_owned(&CallLabels { call });
        }
        for &kind in ERROR_KINDS {
            self.errors.get_or_create_owned(&KindLabels { kind });
        }
        for &(check, outcomes) in DECISIONS {
            for &outcome in outcomes {
                self.decisions
                    .get_or_create_owned(&DecisionLabels { check, outcome });
            }
        }
    }

    /// Redis answers (`true`) or not.
    pub fn redis_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// One round trip of `call` took `took` (whatever its result).
    pub fn call(&self, call: &'static str, took: Duration) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.calls
            .get_or_create(&CallLabels { call })
            .observe(took.as_secs_f64());
    }

    /// A call failed: `timeout`, `connection`, `script` or `down`.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// A fleet check decided `outcome`.
    pub fn decision(&self, check: &'static str, outcome: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels { check, outcome })
            .inc();
    }

    /// How many times `check` decided `outcome` (tests and benches).
    pub fn decisions(&self, check: &'static str, outcome: &'static str) -> u64 {
        self.decisions
            .get_or_create(&DecisionLabels { check, outcome })
            .get()
    }

    /// Redis round trips so far, all calls together (benches count them per handshake).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}
