//! Backend health: active checks with rise/fall hysteresis, and passive ejection after
//! consecutive failures seen on the data path.
//!
//! Owns: the per-backend state ([`BackendHealth`], atomics shared by the balancer and the checker
//! task) and the checker tasks ([`spawn_checks`]); the probes themselves (TCP connect, or a real
//! RFC 6455 handshake with a verified Accept and a clean Close 1000, over TLS for `wss://`) are
//! `health::probe`.
//! Does not own picking a backend (`balance`), deciding what counts as a passive failure (the
//! caller: connect failures, resets, bad handshakes), or keeping state across reloads (the pool
//! keys [`BackendHealth`] by backend URL).
//!
//! Time is `tokio::time::Instant`; the `_at` methods take `now` so tests need no sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::config::{HealthCheck, Passive};
use crate::metrics::Metrics;

mod probe;

use probe::{probe, random_fraction};

/// Health of one backend. Starts up and not ejected.
#[derive(Debug)]
pub struct BackendHealth {
    /// Verdict of the active checks (always true without them).
    up: AtomicBool,
    /// Consecutive active results that disagree with `up`.
    streak: AtomicU32,
    /// Consecutive passive failures.
    failures: AtomicU32,
    /// End of the passive ejection in milliseconds since `epoch`; 0 = none.
    ejected_until: AtomicU64,
    /// An ejection was logged at warn and no connection has gone through since: a backend that
    /// stays dead is logged once, not again at every cooldown.
    reported: AtomicBool,
    epoch: Instant,
}

impl Default for BackendHealth {
    fn default() -> Self {
        BackendHealth::new()
    }
}

impl BackendHealth {
    pub fn new() -> Self {
        BackendHealth {
            up: AtomicBool::new(true),
            streak: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    /// Up according to the active checks (true when there are none).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// May the balancer pick this backend now: up, and not passively ejected.
    pub fn is_usable(&self) -> bool {
        self.is_usable_at(Instant::now())
    }

    pub fn is_usable_at(&self, now: Instant) -> bool {
        self.is_up() && !self.is_ejected_at(now)
    }

    /// Inside a passive ejection's cooldown at `now`.
    pub fn is_ejected_at(&self, now: Instant) -> bool {
        let until = self.ejected_until.load(Ordering::Acquire);
        until != 0 && self.millis(now) < until
    }

    /// A connection and handshake went through: the passive failure count starts over.
    pub fn report_success(&self) {
        self.report_success_at(Instant::now());
    }

    /// Whether a failed attempt at this backend is already told: a failure earlier in the same
    /// run of failures, or an ejection with no success since. Callers log attempt failures at
    /// debug then, at warn otherwise (the first one of an outage).
    pub fn failure_told(&self) -> bool {
        self.reported.load(Ordering::Acquire) || self.failures.load(Ordering::Acquire) > 0
    }

    pub fn report_success_at(&self, now: Instant) {
        self.failures.store(0, Ordering::Release);
        self.reported.store(false, Ordering::Release);
        let until = self.ejected_until.load(Ordering::Acquire);
        if until != 0 && self.millis(now) >= until {
            // Clear the expired ejection once, so a long-passed one is not mistaken for a new one.
            let _ =
                self.ejected_until
                    .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// A connect failure, reset or bad handshake. At `passive.failures` in a row the backend is
    /// ejected for `passive.cooldown` (logged at warn once per outage: an ejection after the
    /// cooldown with no success in between is logged at debug); `failures: 0` never ejects.
    pub fn report_failure(&self, passive: &Passive, url: &str) {
        self.report_failure_at(passive, url, Instant::now());
    }

    /// [`report_failure`](Self::report_failure) at `now`; true when this failure ejected.
    pub fn report_failure_at(&self, passive: &Passive, url: &str, now: Instant) -> bool {
        if passive.failures == 0 {
            return false;
        }
        let n = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        // Only the failure that finds the count still at its own value resets it and ejects, so
        // concurrent failures eject (and log) once.
        if n < passive.failures
            || (self.failures)
                .compare_exchange(n, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        if self.is_ejected_at(now) {
            // Failures of connections begun before the ejection: already out, keep the end.
            return false;
        }
        let cooldown = u64::try_from(passive.cooldown.as_millis()).unwrap_or(u64::MAX);
        let until = self.millis(now).saturating_add(cooldown).max(1);
        self.ejected_until.store(until, Ordering::Release);
        if self.reported.swap(true, Ordering::AcqRel) {
            tracing::debug!(backend = url, "backend ejected again (no success since)");
        } else {
            tracing::warn!(
                backend = url,
                failures = passive.failures,
                cooldown = ?passive.cooldown,
                "backend ejected after consecutive failures"
            );
        }
        true
    }

    /// One active check result with rise/fall hysteresis; logs and returns the new state when it
    /// changes (`Some(true)` = now up).
    pub fn record_check(&self, ok: bool, rise: u32, fall: u32, url: &str) -> Option<bool> {
        let change = self.transition(ok, rise, fall)?;
        log_change("", url, change, None);
        Some(change)
    }

    /// [`record_check`](Self::record_check) without the log line. One checker per backend calls
    /// this, so plain loads and stores suffice.
    fn transition(&self, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        let up = self.is_up();
        if ok == up {
            self.streak.store(0, Ordering::Relaxed);
            return None;
        }
        let streak = self.streak.load(Ordering::Relaxed).saturating_add(1);
        let needed = if up { fall } else { rise }.max(1);
        if streak < needed {
            self.streak.store(streak, Ordering::Relaxed);
            return None;
        }
        self.streak.store(0, Ordering::Relaxed);
        self.up.store(ok, Ordering::Release);
        Some(ok)
    }

    fn millis(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(elapsed).unwrap_or(u64::MAX)
    }
}

fn log_change(pool: &str, url: &str, up: bool, reason: Option<&str>) {
    if up {
        tracing::info!(pool, backend = url, "backend up (active checks pass)");
    } else {
        let reason = reason.unwrap_or("check failed");
        tracing::warn!(
            pool,
            backend = url,
            reason,
            "backend down (active checks fail)"
        );
    }
}

/// A backend as the checker sees it.
#[derive(Clone)]
pub struct Target {
    /// As configured, for logs.
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// Name for SNI, certificate verification and the check's `Host`.
    pub host: String,
    /// `Some` for `wss://` backends.
    pub tls: Option<TlsConnector>,
    /// The pool sends a PROXY header first: so do its checks (the backend expects one).
    pub proxy: Option<crate::config::ProxyVersion>,
    pub health: Arc<BackendHealth>,
}

/// Check every target every `check.interval` (±10%, so a fleet does not probe in step), each
/// probe within `check.timeout`, until `stop` is cancelled. The handle ends after every checker.
pub fn spawn_checks(
    pool: &str,
    targets: Vec<Target>,
    check: HealthCheck,
    stop: CancellationToken,
) -> JoinHandle<()> {
    spawn_checks_reporting(pool, targets, check, stop, None)
}

/// [`spawn_checks`], also setting `wsgate_backend_up` on every change a checker sees.
pub fn spawn_checks_reporting(
    pool: &str,
    targets: Vec<Target>,
    check: HealthCheck,
    stop: CancellationToken,
    metrics: Option<Arc<Metrics>>,
) -> JoinHandle<()> {
    let pool: Arc<str> = Arc::from(pool);
    let check = Arc::new(check);
    tokio::spawn(async move {
        let mut checkers = JoinSet::new();
        for target in targets {
            let (pool, check, stop) = (Arc::clone(&pool), Arc::clone(&check), stop.clone());
            let report = Report {
                pool,
                metrics: metrics.clone(),
            };
            checkers.spawn(check_loop(report, target, check, stop));
        }
        while checkers.join_next().await.is_some() {}
    })
}

/// Where a checker reports: its pool's name (logs) and, if given, the metrics.
struct Report {
    pool: Arc<str>,
    metrics: Option<Arc<Metrics>>,
}

async fn check_loop(
    report: Report,
    target: Target,
    check: Arc<HealthCheck>,
    stop: CancellationToken,
) {
    // The first probes are spread over a tenth of the interval rather than fired at once.
    let mut delay = check.interval.mul_f64(0.1 * random_fraction());
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = probe(&target, &check) => outcome,
        };
        if let Err(reason) = &outcome {
            tracing::debug!(pool = &*report.pool, backend = %target.url, reason, "health check failed");
        }
        if let Some(up) = target
            .health
            .transition(outcome.is_ok(), check.rise, check.fall)
        {
            log_change(&report.pool, &target.url, up, outcome.err().as_deref());
            if let Some(metrics) = &report.metrics {
                metrics.backend_state(&report.pool, &target.url, up);
            }
        }
        delay = check.interval.mul_f64(0.9 + 0.2 * random_fraction());
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
