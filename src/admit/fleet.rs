//! The admission steps that may ask the fleet: before the token, the fleet-wide twins of the
//! rates and the address cap with `scope: fleet` (one Redis round trip); after it, sessions per
//! token subject (`per_subject`), counted here first and then, with `scope: fleet`, across the
//! fleet (one more round trip). Refusals answer like the local ones: 429 with `Retry-After`;
//! a Redis call that failed under `on_error: deny` is 503 `fleet_unavailable`.

use super::stack::Handshake;
use super::{CAP_RETRY, Denial, Permit, retry};
use crate::cluster::checks::{Pre, Refused};
use crate::config::{OnExceed, Scope};
use crate::error::Refusal;

impl From<Refused> for Denial {
    fn from(refused: Refused) -> Denial {
        match refused {
            Refused::IpRate(wait) => retry(Refusal::RateLimited, wait),
            Refused::RouteRate(wait) => retry(Refusal::RouteRateLimited, wait),
            Refused::IpFull => retry(Refusal::IpConnectionsFull, CAP_RETRY),
            Refused::SubjectFull => retry(Refusal::SubjectSessionsFull, CAP_RETRY),
            Refused::Unavailable => retry(Refusal::FleetUnavailable, CAP_RETRY),
        }
    }
}

/// The fleet-wide rates and address cap (`scope: fleet`), after the local ones passed.
pub async fn pre(h: &mut Handshake<'_>) -> Result<(), Denial> {
    let (ip_rate, ip_cap) = h.per_ip.fleet_limits();
    let route_rate = match h.policy.rate_scope {
        Scope::Fleet => h.policy.limits.rate(),
        Scope::Local => None,
    };
    let pre = Pre {
        ip: h.req.client_ip.into(),
        ip_rate,
        route: &h.policy.label,
        route_rate,
        ip_cap,
    };
    if let Some(slot) = h.fleet.admit_pre(&pre).await? {
        h.admission.permits.push(Permit::fleet(slot));
    }
    Ok(())
}

/// `per_subject`: the session's subject (the verified token's, else the client certificate's
/// CN) may hold `max_sessions` on this route.
pub async fn subject(h: &mut Handshake<'_>) -> Result<(), Denial> {
    let Some(cap) = h.policy.per_subject else {
        return Ok(());
    };
    let subject = h
        .admission
        .identity
        .as_ref()
        .and_then(|i| i.subject.clone());
    // Validation keeps `per_subject` to routes with `auth.jwt`, or to configs with a listener
    // that verifies client certificates; a session named by neither a token `sub` nor a
    // certificate cannot be counted, so it is not admitted here.
    let Some(subject) = subject else {
        tracing::info!("no token `sub` and no client certificate; per_subject cannot count it");
        return Err(Refusal::ClaimsInsufficient.into());
    };
    let replace = cap.on_exceed == OnExceed::CloseOldest;
    let local = match h.policy.subjects.take(&subject, cap.max_sessions, false) {
        Some(held) => held,
        None if !replace => return Err(Refused::SubjectFull.into()),
        None => {
            if cap.scope == Scope::Local {
                let label = &h.policy.label;
                crate::cluster::control::close_oldest(h.fleet, label, &subject);
            }
            // The new session is counted now; the one it replaces leaves when its tunnel ends.
            let anyway = h.policy.subjects.take(&subject, cap.max_sessions, true);
            anyway.ok_or(Refused::SubjectFull)?
        }
    };
    h.admission.permits.push(Permit::subject(local));
    if cap.scope == Scope::Fleet {
        let label = &h.policy.label;
        let slot = h
            .fleet
            .admit_subject(label, &subject, cap.max_sessions, replace)
            .await?;
        h.admission.permits.extend(slot.map(Permit::fleet));
    }
    Ok(())
}
