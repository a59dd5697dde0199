//! When to order: right away when no usable certificate is stored, then `renew_before` its
//! expiry (plus a little jitter, so a fleet started together does not renew in the same
//! second). A failed order keeps the old certificate in service, is logged at warn and counted,
//! and is retried with exponential backoff and jitter. The expiry gauge is refreshed at least
//! every [`REFRESH`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::order::{ORDER_TIMEOUT, issue};
use crate::config::AcmeConfig;
use crate::metrics::Metrics;

/// The longest sleep: the gauge is refreshed and the schedule re-read this often.
const REFRESH: Duration = Duration::from_secs(3600);
/// First retry after a failed order; doubled per failure up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(6 * 3600);
/// After a success that is already due again (`renew_before` longer than the certificate's
/// lifetime), wait this long instead of ordering in a loop.
const MIN_BETWEEN_ORDERS: Duration = Duration::from_secs(3600);

/// The renewal task of one `acme` block.
pub struct Renewal {
    pub config: AcmeConfig,
    pub shared: Arc<Shared>,
    pub metrics: Arc<Metrics>,
}

impl Renewal {
    pub async fn run(self, stop: CancellationToken) {
        let domains = self.config.domains.join(",");
        let mut failures: u32 = 0;
        // Not before this: the backoff after a failure, or the hold after a too-short success.
        let mut not_before: Option<Instant> = None;
        loop {
            let due_in = match self.shared.not_after() {
                None => Duration::ZERO,
                Some(t) => until(t.checked_sub(self.config.renew_before)),
            };
            let mut next = Instant::now() + due_in;
            if !due_in.is_zero() {
                next += jitter((due_in / 100).min(REFRESH));
            }
            if let Some(at) = not_before {
                next = next.max(at);
            }
            loop {
                self.report_expiry();
                let left = next.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(left.min(REFRESH)) => {}
                }
            }
            let had = self.shared.not_after().is_some();
            tracing::info!(%domains, renewal = had, "acme: ordering a certificate");
            let result = tokio::select! {
                () = stop.cancelled() => return,
                r = tokio::time::timeout(ORDER_TIMEOUT, issue(&self.config, &self.shared)) => r,
            };
            match result.unwrap_or_else(|_| Err(format!("no answer within {ORDER_TIMEOUT:?}"))) {
                Ok(stored) => {
                    failures = 0;
                    let expires_in = until(Some(stored.not_after));
                    self.shared.install(stored);
                    self.metrics.acme().order("ok");
                    tracing::info!(%domains, expires_in_days = expires_in.as_secs() / 86_400, "acme: certificate installed");
                    not_before = None;
                    if expires_in <= self.config.renew_before {
                        tracing::warn!(%domains, renew_before = ?self.config.renew_before, "acme: renew_before is longer than the certificate's lifetime; renewing at most hourly");
                        not_before = Some(Instant::now() + MIN_BETWEEN_ORDERS);
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    self.metrics.acme().order("error");
                    let retry_in = jittered(backoff(failures));
                    not_before = Some(Instant::now() + retry_in);
                    if had {
                        tracing::warn!(%domains, %error, ?retry_in, "acme: renewal failed; still serving the current certificate");
                    } else {
                        tracing::warn!(%domains, %error, ?retry_in, "acme: no certificate yet; handshakes for these names fail until one is issued");
                    }
                }
            }
        }
    }

    fn report_expiry(&self) {
        let days = self
            .shared
            .not_after()
            .map(|t| match t.duration_since(SystemTime::now()) {
                Ok(left) => left.as_secs_f64() / 86_400.0,
                Err(past) => -past.duration().as_secs_f64() / 86_400.0,
            });
        for name in &self.config.domains {
            self.metrics.acme().expiry_days(name, days);
        }
    }
}

/// Time from now until `at` (zero when past or unknown).
fn until(at: Option<SystemTime>) -> Duration {
    at.and_then(|t| t.duration_since(SystemTime::now()).ok())
        .unwrap_or(Duration::ZERO)
}

/// `BACKOFF_MIN · 2^(failures-1)`, at most `BACKOFF_MAX`.
fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    BACKOFF_MIN.saturating_mul(factor).min(BACKOFF_MAX)
}

/// `d` ± 25 %.
fn jittered(d: Duration) -> Duration {
    d - d / 4 + jitter(d / 2)
}

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Duration {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    if max.is_zero()
        || aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut bytes)
            .is_err()
    {
        return Duration::ZERO;
    }
    max.mul_f64(f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{BACKOFF_MAX, backoff, jitter, jittered};

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(40), BACKOFF_MAX);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(10)) < Duration::from_secs(10));
            let j = jittered(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(75) && j < Duration::from_secs(125));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
