//! The fleet-wide admission checks, each answering like its local twin: handshake rates (GCRA),
//! the per-address connection cap and the per-subject session cap. The checks that run before
//! the token (rates, address cap) go to Redis in one pipeline, the subject cap after the token
//! in one more: at most two round trips per admitted handshake.
//!
//! A call that fails (timeout, connection, Redis down) is decided by `cluster.on_error`:
//! `allow` admits (the local limits already ran), `deny` refuses with 503.

use std::time::Duration;

use redis::{FromRedisValue, Value};

use super::Fleet;
use super::control::{self, Message, Replace};
use super::held::Slot;
use super::keys::{ip_tag, subject_tag};
use super::link::Link;
use super::{DEAD_AFTER, KEY_TTL, scripts};
use crate::admit::limits::IpKey;
use crate::config::OnError;
use crate::config::policy::Rate;

/// Why the fleet refused a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    IpRate(Duration),
    RouteRate(Duration),
    IpFull,
    SubjectFull,
    /// Redis could not be asked and `on_error` is `deny`.
    Unavailable,
}

/// The checks before the token that run fleet-wide for one handshake.
#[derive(Debug, Clone, Copy)]
pub struct Pre<'a> {
    pub ip: IpKey,
    pub ip_rate: Option<Rate>,
    pub route: &'a str,
    pub route_rate: Option<Rate>,
    pub ip_cap: Option<u32>,
}

impl Pre<'_> {
    fn is_empty(&self) -> bool {
        self.ip_rate.is_none() && self.route_rate.is_none() && self.ip_cap.is_none()
    }
}

/// The GCRA emission interval of `rate` in µs, and its burst.
fn gcra_args(rate: &Rate) -> [String; 2] {
    let interval = (rate.per.as_micros() / u128::from(rate.count.max(1))).max(1);
    [interval.to_string(), rate.burst.max(1).to_string()]
}

fn acquire(pipe: &mut redis::Pipeline, link: &Link, slot: &Slot, max: u32, oldest: bool) {
    let (m, i) = link.keys.cap(slot.tag());
    let args = [
        slot.member(&link.cfg.instance),
        link.cfg.instance.clone(),
        max.to_string(),
        if oldest { "1" } else { "0" }.to_owned(),
        DEAD_AFTER.as_millis().to_string(),
        KEY_TTL.as_millis().to_string(),
    ];
    scripts::call(pipe, &scripts::ACQUIRE, &[&m, &i], &args);
}

fn parse<T: FromRedisValue>(v: Option<Value>) -> Option<T> {
    redis::from_redis_value(v?).ok()
}

impl Fleet {
    /// The fleet-wide rate and address-cap checks of one handshake, in one round trip. Returns
    /// the address-cap slot (held by the tunnel) when that cap is fleet-wide.
    pub async fn admit_pre(&self, pre: &Pre<'_>) -> Result<Option<Slot>, Refused> {
        let Some(link) = self.link() else {
            return Ok(None);
        };
        if pre.is_empty() {
            return Ok(None);
        }
        let mut pipe = redis::pipe();
        if let Some(rate) = &pre.ip_rate {
            let key = link.keys.ip_rate(pre.ip);
            scripts::call(&mut pipe, &scripts::GCRA, &[&key], &gcra_args(rate));
        }
        if let Some(rate) = &pre.route_rate {
            let key = link.keys.route_rate(pre.route);
            scripts::call(&mut pipe, &scripts::GCRA, &[&key], &gcra_args(rate));
        }
        let slot = pre.ip_cap.map(|max| {
            let slot = self.held().reserve(&ip_tag(pre.ip));
            acquire(&mut pipe, &link, &slot, max, false);
            slot
        });
        let budget = link.admission_budget();
        let answers = match link.run::<Vec<Value>>("admit", &pipe, budget, true).await {
            Ok(a) => a,
            Err(_) => {
                let checks = [
                    pre.ip_rate.map(|_| "ip_rate"),
                    pre.route_rate.map(|_| "route_rate"),
                    pre.ip_cap.map(|_| "ip_connections"),
                ];
                let deny = checks
                    .into_iter()
                    .flatten()
                    .fold(false, |_, c| self.on_error(&link, c));
                return if deny {
                    Err(Refused::Unavailable)
                } else {
                    Ok(None)
                };
            }
        };
        let mut answers = answers.into_iter();
        let mut verdict = Ok(());
        for (rate, check, refuse) in [
            (
                &pre.ip_rate,
                "ip_rate",
                Refused::IpRate as fn(Duration) -> Refused,
            ),
            (&pre.route_rate, "route_rate", Refused::RouteRate),
        ] {
            if rate.is_none() {
                continue;
            }
            let (admitted, wait_us): (i64, i64) = parse(answers.next()).unwrap_or((1, 0));
            if admitted == 1 {
                self.decision(check, "allowed");
            } else {
                self.decision(check, "refused");
                let wait = Duration::from_micros(wait_us.unsigned_abs());
                verdict = verdict.and(Err(refuse(wait)));
            }
        }
        let Some(slot) = slot else {
            return verdict.map(|()| None);
        };
        let (admitted, _, _): (i64, i64, Vec<String>) =
            parse(answers.next()).unwrap_or((1, 0, Vec::new()));
        if admitted != 1 {
            self.decision("ip_connections", "refused");
            slot.refused();
            return verdict.and(Err(Refused::IpFull)).map(|()| None);
        }
        self.decision("ip_connections", "allowed");
        // A rate refused this handshake: the slot just taken is given back (dropped).
        verdict.map(|()| Some(slot))
    }

    /// The fleet-wide per-subject cap of one handshake (one round trip). With `close_oldest`
    /// the subject's oldest sessions are closed (here or on their instance) to make room.
    pub async fn admit_subject(
        &self,
        route: &str,
        subject: &str,
        max: u32,
        close_oldest: bool,
    ) -> Result<Option<Slot>, Refused> {
        let Some(link) = self.link() else {
            return Ok(None);
        };
        let slot = self.held().reserve(&subject_tag(route, subject));
        let mut pipe = redis::pipe();
        acquire(&mut pipe, &link, &slot, max, close_oldest);
        let budget = link.admission_budget();
        let answer = link
            .run::<((i64, i64, Vec<String>),)>("subject", &pipe, budget, true)
            .await;
        let (admitted, _, evicted) = match answer {
            Ok((a,)) => a,
            Err(_) => {
                drop(slot);
                return if self.on_error(&link, "subject") {
                    Err(Refused::Unavailable)
                } else {
                    Ok(None)
                };
            }
        };
        if admitted != 1 {
            self.decision("subject", "refused");
            slot.refused();
            return Err(Refused::SubjectFull);
        }
        if evicted.is_empty() {
            self.decision("subject", "allowed");
        } else {
            self.decision("subject", "replaced");
        }
        for member in evicted {
            let owner = member.rsplit_once('/').map_or("", |(owner, _)| owner);
            if owner == link.cfg.instance {
                control::close_oldest(self, route, subject);
            } else {
                let message = Message::replace(
                    &link.cfg.instance,
                    Replace {
                        instance: owner.to_owned(),
                        route: route.to_owned(),
                        subject: subject.to_owned(),
                    },
                );
                let link = std::sync::Arc::clone(&link);
                tokio::spawn(async move {
                    if let Err(e) = control::publish(&link, message).await {
                        tracing::warn!(error = e.kind(), "fleet: replace not published");
                    }
                });
            }
        }
        Ok(Some(slot))
    }

    /// Count a failed call for `check`; true when `on_error: deny` refuses it.
    fn on_error(&self, link: &Link, check: &'static str) -> bool {
        match link.cfg.on_error {
            OnError::Allow => {
                self.decision(check, "error_allowed");
                false
            }
            OnError::Deny => {
                self.decision(check, "error_refused");
                true
            }
        }
    }

    fn decision(&self, check: &'static str, outcome: &'static str) {
        self.metrics().fleet().decision(check, outcome);
    }
}
