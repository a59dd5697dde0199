//! Series about automatic certificates (`tls.acme`): days until each name's certificate
//! expires, and how orders end. A failed renewal shows as an `error` order while the expiry
//! gauge keeps falling. Updated by `crate::acme`; registered by [`super::Metrics::new`].

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{names, register};

/// `name`: a DNS name from a `tls.acme.domains` list (bounded by the config).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The ACME series.
#[derive(Debug)]
pub struct AcmeMetrics {
    expiry: Family<NameLabels, Gauge<f64, AtomicU64>>,
    orders: Family<ResultLabels, Counter>,
}

impl AcmeMetrics {
    pub(super) fn register(r: &mut Registry) -> AcmeMetrics {
        let orders: Family<ResultLabels, Counter> =
            register(r, names::ACME_ORDERS, &Family::default());
        // Both results exist from the first scrape, so `increase()` sees 0, not nothing.
        for result in ["ok", "error"] {
            let _ = orders.get_or_create(&ResultLabels { result });
        }
        AcmeMetrics {
            expiry: register(r, names::CERTIFICATE_EXPIRY_DAYS, &Family::default()),
            orders,
        }
    }

    /// Days until the certificate serving `name` expires (negative once expired); `None`
    /// while there is no certificate yet (the series is absent then).
    pub fn expiry_days(&self, name: &str, days: Option<f64>) {
        let labels = NameLabels { name: name.into() };
        match days {
            Some(d) => {
                self.expiry.get_or_create(&labels).set(d);
            }
            None => {
                self.expiry.remove(&labels);
            }
        }
    }

    /// An order ended: `ok` or `error`.
    pub fn order(&self, result: &'static str) {
        self.orders.get_or_create(&ResultLabels { result }).inc();
    }

    /// The expiry gauge of `name`, for tests.
    pub fn expiry_of(&self, name: &str) -> Option<f64> {
        let labels = NameLabels { name: name.into() };
        self.expiry.get(&labels).map(|g| g.get())
    }

    /// Orders that ended with `result`, for tests.
    pub fn orders(&self, result: &'static str) -> u64 {
        self.orders
            .get(&ResultLabels { result })
            .map_or(0, |c| c.get())
    }
}
