//! A route's handshake rate and open-connection cap ([`RouteLimits`]), on the same GCRA quota
//! and slot counting as the per-address limits of the parent module.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::RateLimiter;
use governor::clock::{Clock, DefaultClock};

use super::{Direct, Permit, Slot, quota, take_slot};
use crate::config::policy::Rate;

/// A route's handshake rate and open-connection cap.
pub struct RouteLimits<C: Clock = DefaultClock> {
    rate: Option<Arc<(Rate, Direct<C>)>>,
    max: Option<u32>,
    open: Arc<AtomicU64>,
    clock: C,
}

impl RouteLimits {
    /// Limits from a route's `rate:` and `max_connections:`, on the real clock.
    pub fn new(rate: Option<Rate>, max_connections: Option<u32>) -> Self {
        Self::with_clock(rate, max_connections, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RouteLimits<C> {
    /// Limits on an explicit clock (tests use `FakeRelativeClock`).
    pub fn with_clock(rate: Option<Rate>, max_connections: Option<u32>, clock: C) -> Self {
        let rate = rate.map(|r| {
            Arc::new((
                r,
                RateLimiter::direct_with_clock(quota(&r, 1), clock.clone()),
            ))
        });
        RouteLimits {
            rate,
            max: max_connections,
            open: Arc::default(),
            clock,
        }
    }

    /// Limits for a reloaded route: tunnels already open stay counted, and the rate state is
    /// kept when the rate is unchanged.
    pub fn reconfigured(&self, rate: Option<Rate>, max_connections: Option<u32>) -> Self {
        let rate = match (&self.rate, rate) {
            (Some(old), Some(r)) if old.0 == r => Some(Arc::clone(old)),
            (_, r) => r.map(|r| {
                Arc::new((
                    r,
                    RateLimiter::direct_with_clock(quota(&r, 1), self.clock.clone()),
                ))
            }),
        };
        RouteLimits {
            rate,
            max: max_connections,
            open: Arc::clone(&self.open),
            clock: self.clock.clone(),
        }
    }

    /// Count one handshake on the route; `Err(wait)` when over the rate (429, `Retry-After`).
    pub fn check_rate(&self) -> Result<(), Duration> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        rate.1
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// A tunnel slot on the route, `Err(())` at `max_connections` (503). Always `Some` here:
    /// every tunnel is counted so [`open`](Self::open) is right with or without a cap.
    #[allow(clippy::result_unit_err)] // one way to fail, and the caller maps it to its refusal
    pub fn try_connection(&self) -> Result<Option<Permit>, ()> {
        let max = self.max.map_or(u64::MAX, u64::from);
        if !take_slot(&self.open, max) {
            return Err(());
        }
        Ok(Some(Permit(Slot::Count(Arc::clone(&self.open)))))
    }

    /// The route's rate, if it has one.
    pub fn rate(&self) -> Option<Rate> {
        self.rate.as_ref().map(|r| r.0)
    }

    /// Tunnels open on the route now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Acquire)
    }
}

impl<C: Clock> fmt::Debug for RouteLimits<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteLimits")
            .field("rate", &self.rate.as_ref().map(|r| r.0))
            .field("max_connections", &self.max)
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish()
    }
}
