//! Handshake rates and open-connection caps: global, per client IP and per route.
//!
//! This module owns the counters and limiters and the [`Permit`] that holds a connection slot
//! until it is dropped. It does not decide what the client address is
//! ([`crate::proxy::client_addr`]), when each check runs, or how a refusal is answered: the data
//! path checks [`GlobalCap`] at accept (before TLS), the per-IP and per-route limits after
//! routing, and moves the permits into the tunnel task so they are released when it ends,
//! whatever way it ends.
//!
//! Rates are GCRA (governor): `count` per `per`, `burst` cells. Per-IP state is keyed by
//! [`IpKey`] (IPv4 address, IPv6 /64, IPv4-mapped IPv6 as IPv4). Memory is bounded three ways:
//! [`PerIpLimits::maintain`] (run it every 10–60 s) forgets keys that are back to a fresh
//! state; above a hard key cap, handshakes from every client go to one coarse shared limiter
//! instead of adding keys; connection counters are removed when they return to zero.
//!
//! Limiters are generic over governor's [`Clock`] so tests drive time with `FakeRelativeClock`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::Scope;
use crate::config::policy::{PerIp, Rate};

mod route;
pub use route::RouteLimits;

/// Default hard cap on per-IP rate keys (a few MB of state).
pub const MAX_RATE_KEYS: usize = 100_000;
/// The coarse limiter used above the key cap admits this many times the per-IP rate and burst.
pub const OVERFLOW_FACTOR: u32 = 100;
/// At most one out-of-schedule cleanup per this interval while above the key cap.
const EMERGENCY_CLEAN_EVERY: Duration = Duration::from_secs(1);

type Keyed<C> =
    RateLimiter<IpKey, DefaultKeyedStateStore<IpKey>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One open-connection slot; dropping it gives the slot back.
pub struct Permit(Slot);

enum Slot {
    Count(Arc<AtomicU64>),
    Ip(Arc<IpConns>, IpKey),
    /// A fleet-wide slot: freed in Redis when dropped.
    Fleet(crate::cluster::held::Slot),
    /// A per-subject session on one route.
    Subject(super::subject::Held),
}

impl Permit {
    /// Hold a fleet-wide slot for as long as the permit lives.
    pub fn fleet(slot: crate::cluster::held::Slot) -> Permit {
        Permit(Slot::Fleet(slot))
    }

    pub(crate) fn subject(held: super::subject::Held) -> Permit {
        Permit(Slot::Subject(held))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        match &self.0 {
            Slot::Count(open) => {
                open.fetch_sub(1, Ordering::AcqRel);
            }
            Slot::Ip(conns, key) => conns.release(*key),
            // Their own `Drop` frees them.
            Slot::Fleet(_) | Slot::Subject(_) => {}
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Slot::Count(_) => f.write_str("Permit(count)"),
            Slot::Ip(_, key) => write!(f, "Permit({key:?})"),
            Slot::Fleet(slot) => write!(f, "Permit({slot:?})"),
            Slot::Subject(held) => write!(f, "Permit({held:?})"),
        }
    }
}

/// Whole seconds for `Retry-After` (RFC 9110 §10.2.3): rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The rate-limit key of a client: IPv4 address, or the /64 of an IPv6 address (one subscriber
/// usually holds a whole /64, so keying by address would let it rotate through 2^64 keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    /// An IPv4 address (also for IPv4-mapped IPv6).
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6Net64(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => IpKey::V6Net64((u128::from(v6) >> 64) as u64),
        }
    }
}

/// `count` per `per` with `burst`. Validation keeps values positive; the clamps keep a bad value
/// from panicking here.
pub(crate) fn quota(rate: &Rate, factor: u32) -> Quota {
    let cells = rate.count.max(1).saturating_mul(factor.max(1));
    let period = (rate.per / cells).max(Duration::from_nanos(1));
    let burst =
        NonZeroU32::new(rate.burst.saturating_mul(factor.max(1))).unwrap_or(NonZeroU32::MIN);
    // `with_period` is None only for a zero period, excluded above.
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

/// The global cap on open connections, checked at accept before any TLS work.
#[derive(Debug, Clone)]
pub struct GlobalCap {
    max: u64,
    open: Arc<AtomicU64>,
}

impl GlobalCap {
    /// At most `max` connections open at once (`limits.max_connections`).
    pub fn new(max: u32) -> Self {
        GlobalCap {
            max: max.into(),
            open: Arc::default(),
        }
    }

    /// The same counter under a new maximum (for a config reload: open connections keep counting).
    pub fn resized(&self, max: u32) -> Self {
        GlobalCap {
            max: max.into(),
            open: Arc::clone(&self.open),
        }
    }

    /// A slot, or `None` when `max` connections are open.
    pub fn try_acquire(&self) -> Option<Permit> {
        take_slot(&self.open, self.max).then(|| Permit(Slot::Count(Arc::clone(&self.open))))
    }

    /// Connections holding a permit now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Acquire)
    }
}

/// Increment `open` unless it already reached `max`.
fn take_slot(open: &AtomicU64, max: u64) -> bool {
    open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < max).then_some(n + 1)
    })
    .is_ok()
}

/// Open connections per client key; an entry exists only while its count is above zero.
#[derive(Default)]
struct IpConns(Mutex<HashMap<IpKey, u32>>);

impl IpConns {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpKey, u32>> {
        // The map holds plain counters; a panic elsewhere cannot leave it half-updated.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, key: IpKey) {
        let mut map = self.lock();
        if let Some(n) = map.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&key);
            }
        }
    }
}

/// `limits.per_ip`: handshake rate and open connections per client.
pub struct PerIpLimits<C: Clock = DefaultClock> {
    rate: Option<Arc<KeyedRate<C>>>,
    max_connections: Option<u32>,
    /// `per_ip.scope`: with `fleet`, both are also counted fleet-wide.
    scope: Scope,
    /// Kept even without a cap so a reload that adds one shares the map with later permits.
    conns: Arc<IpConns>,
    key_cap: usize,
    clock: C,
}

struct KeyedRate<C: Clock> {
    rate: Rate,
    keyed: Keyed<C>,
    /// Shared by every client while `keyed` is at `key_cap`.
    overflow: Direct<C>,
    key_cap: usize,
    start: C::Instant,
    /// Nanoseconds after `start` of the last cleanup forced by the key cap.
    last_emergency_clean: AtomicU64,
}

impl PerIpLimits {
    /// Limits from `limits.per_ip`, on the real clock, with [`MAX_RATE_KEYS`].
    pub fn new(cfg: &PerIp) -> Self {
        Self::with_clock(cfg, MAX_RATE_KEYS, DefaultClock::default())
    }
}

impl<C: Clock + Clone> PerIpLimits<C> {
    /// Limits with an explicit key cap and clock (tests use `FakeRelativeClock`).
    pub fn with_clock(cfg: &PerIp, key_cap: usize, clock: C) -> Self {
        let rate = cfg
            .rate
            .map(|rate| Arc::new(KeyedRate::new(rate, key_cap, &clock)));
        PerIpLimits {
            rate,
            max_connections: cfg.max_connections,
            scope: cfg.scope,
            conns: Arc::default(),
            key_cap,
            clock,
        }
    }

    /// Limits for a reloaded config. Open connections stay counted (permits taken before the
    /// reload release into the same map), and the rate state is kept when the rate is unchanged.
    pub fn reconfigured(&self, cfg: &PerIp) -> Self {
        let rate = match (&self.rate, cfg.rate) {
            (Some(old), Some(rate)) if old.rate == rate => Some(Arc::clone(old)),
            (_, rate) => rate.map(|rate| Arc::new(KeyedRate::new(rate, self.key_cap, &self.clock))),
        };
        PerIpLimits {
            rate,
            max_connections: cfg.max_connections,
            scope: cfg.scope,
            conns: Arc::clone(&self.conns),
            key_cap: self.key_cap,
            clock: self.clock.clone(),
        }
    }

    /// Count one handshake from `ip`; `Err(wait)` when over the rate (429, `Retry-After`).
    pub fn check_rate(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(r) = &self.rate else { return Ok(()) };
        let outcome = if r.keyed.len() < r.key_cap || r.clean_for_room(&self.clock) {
            r.keyed.check_key(&IpKey::from(ip))
        } else {
            r.overflow.check()
        };
        outcome.map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// A connection slot for `ip`: `Ok(None)` when no per-IP cap is configured, `Err(())` when
    /// the client already holds `max_connections` (429).
    #[allow(clippy::result_unit_err)] // one way to fail, and the caller maps it to its refusal
    pub fn try_connection(&self, ip: IpAddr) -> Result<Option<Permit>, ()> {
        let Some(max) = self.max_connections else {
            return Ok(None);
        };
        let key = IpKey::from(ip);
        let mut map = self.conns.lock();
        let open = map.get(&key).copied().unwrap_or(0);
        if open >= max {
            return Err(());
        }
        map.insert(key, open + 1);
        drop(map);
        Ok(Some(Permit(Slot::Ip(Arc::clone(&self.conns), key))))
    }

    /// The rate and connection cap to check fleet-wide as well (`scope: fleet`).
    pub fn fleet_limits(&self) -> (Option<Rate>, Option<u32>) {
        match self.scope {
            Scope::Fleet => (self.rate.as_ref().map(|r| r.rate), self.max_connections),
            Scope::Local => (None, None),
        }
    }

    /// Periodic housekeeping: forget rate keys that are back to a fresh state, give memory back,
    /// drop zero counters.
    pub fn maintain(&self) {
        if let Some(r) = &self.rate {
            r.keyed.retain_recent();
            r.keyed.shrink_to_fit();
        }
        let mut map = self.conns.lock();
        map.retain(|_, n| *n > 0);
        if map.capacity() > 4 * map.len() + 64 {
            map.shrink_to_fit();
        }
    }

    /// Rate-limit keys held now (metric).
    pub fn rate_keys(&self) -> usize {
        self.rate.as_ref().map_or(0, |r| r.keyed.len())
    }

    /// Clients with at least one open connection counted (metric).
    pub fn conn_keys(&self) -> usize {
        self.conns.lock().len()
    }
}

impl<C: Clock + Clone> KeyedRate<C> {
    fn new(rate: Rate, key_cap: usize, clock: &C) -> Self {
        KeyedRate {
            rate,
            keyed: RateLimiter::new(
                quota(&rate, 1),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            overflow: RateLimiter::direct_with_clock(quota(&rate, OVERFLOW_FACTOR), clock.clone()),
            key_cap,
            start: clock.now(),
            last_emergency_clean: AtomicU64::new(0),
        }
    }

    /// At the key cap: clean at once (at most once per [`EMERGENCY_CLEAN_EVERY`]) and say whether
    /// that made room. Until it does, every client shares `overflow`: telling known keys from new
    /// ones would need a second index as large as the one being capped.
    fn clean_for_room(&self, clock: &C) -> bool {
        let since_start = Duration::from(clock.now().duration_since(self.start));
        let now = u64::try_from(since_start.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.last_emergency_clean.load(Ordering::Acquire);
        let every = u64::try_from(EMERGENCY_CLEAN_EVERY.as_nanos()).unwrap_or(u64::MAX);
        let due = last == 0 || now.saturating_sub(last) >= every;
        if due
            && self
                .last_emergency_clean
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.keyed.retain_recent();
        }
        self.keyed.len() < self.key_cap
    }
}

impl<C: Clock> fmt::Debug for PerIpLimits<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerIpLimits")
            .field("rate", &self.rate.as_ref().map(|r| r.rate))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[cfg(test)]
mod tests;
