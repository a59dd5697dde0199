//! A metric family that remembers which label sets it holds, so the gateway can read its own
//! series back (sums over routes, every refusal reason seen) without parsing the exposition.
//!
//! prometheus-client can look a series up by its labels ([`Family::get`]) but cannot list them;
//! [`Keyed`] keeps that list beside the family. It only indexes, it never counts: the value of
//! every series lives in the family alone, and reading never creates a series.

use std::collections::HashSet;
use std::hash::Hash;
use std::ops::AddAssign;
use std::sync::RwLock;

use prometheus_client::metrics::family::{Family, MetricConstructor};

/// A registered family and the label sets it has series for.
#[derive(Debug)]
pub(super) struct Keyed<S, M, C = fn() -> M> {
    family: Family<S, M, C>,
    keys: RwLock<HashSet<S>>,
}

impl<S, M, C> Keyed<S, M, C>
where
    S: Clone + Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    /// Index `family` (already registered: the registry holds a clone sharing its series).
    pub(super) fn new(family: Family<S, M, C>) -> Self {
        Keyed {
            family,
            keys: RwLock::new(HashSet::new()),
        }
    }

    /// The series under `labels`, created (and indexed) on first use.
    pub(super) fn series(&self, labels: &S) -> M {
        // A poisoned lock only means a panic elsewhere mid-insert; the set is still valid.
        let known = (self.keys.read())
            .unwrap_or_else(|p| p.into_inner())
            .contains(labels);
        if !known {
            (self.keys.write())
                .unwrap_or_else(|p| p.into_inner())
                .insert(labels.clone());
        }
        self.family.get_or_create_owned(labels)
    }

    /// Call `f` with every indexed label set and its series.
    pub(super) fn for_each(&self, mut f: impl FnMut(&S, &M)) {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        for key in keys.iter() {
            if let Some(series) = self.family.get(key) {
                f(key, &series);
            }
        }
    }

    /// The sum of `value` over the series whose labels `pick` accepts.
    pub(super) fn sum<N: Default + AddAssign>(
        &self,
        pick: impl Fn(&S) -> bool,
        value: impl Fn(&M) -> N,
    ) -> N {
        let mut total = N::default();
        self.for_each(|key, series| {
            if pick(key) {
                total += value(series);
            }
        });
        total
    }
}
