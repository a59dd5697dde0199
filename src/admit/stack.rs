//! Admission as a tower stack over one [`Handshake`]: Origin → handshake rates → connection
//! caps → token, each a stage written once and run for HTTP/1.1 upgrades and HTTP/2 streams
//! alike. A layer refuses with a [`Denial`] or passes the handshake on, adding what it decided
//! (permits, identity, headers to set or strip) to its [`Admission`].
//!
//! The order is cheapest first: a flood of handshakes is refused by the local limiters before
//! Redis is asked (`scope: fleet`, [`fleet`]), and before any signature is checked or an auth
//! service is asked; sessions per subject come last, as they need the verified token. Connection-cap permits are taken here but
//! owned by the tunnel (a tower `ConcurrencyLimit` would release them at the response).
//! The synchronous layers answer without boxing a future; the token check, which may wait on a
//! JWKS fetch or an auth service, is the service at the bottom of the stack.

use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use tower::layer::layer_fn;
use tower::{Service, ServiceBuilder, ServiceExt};

use super::limits::PerIpLimits;
use super::{
    Admission, CAP_RETRY, Denial, Request, RoutePolicy, authenticate, certificate_subject, fleet,
    retry,
};
use crate::cluster::Fleet;
use crate::error::Refusal;

/// One handshake on its way through admission.
pub struct Handshake<'a> {
    pub policy: &'a RoutePolicy,
    pub per_ip: &'a PerIpLimits,
    /// The fleet, for the checks with `scope: fleet` and `per_subject`.
    pub fleet: &'a Fleet,
    pub req: Request<'a>,
    /// What the layers decided so far.
    pub admission: Admission,
}

type Step<'a> = Result<Handshake<'a>, Denial>;

/// Run a handshake through the whole stack.
pub async fn run(h: Handshake<'_>) -> Result<Admission, Denial> {
    let stack = ServiceBuilder::new()
        .layer(layer_fn(Origin))
        .layer(layer_fn(Rates))
        .layer(layer_fn(Caps))
        .service_fn(token);
    stack.oneshot(h).await.map(|h| h.admission)
}

/// A synchronous layer: `check` either refuses or lets the inner service go on.
fn step<'a, S>(
    inner: &mut S,
    mut h: Handshake<'a>,
    check: fn(&mut Handshake<'a>) -> Result<(), Denial>,
) -> Either<Ready<Step<'a>>, S::Future>
where
    S: Service<Handshake<'a>, Response = Handshake<'a>, Error = Denial>,
{
    match check(&mut h) {
        Ok(()) => Either::Right(inner.call(h)),
        Err(denial) => Either::Left(ready(Err(denial))),
    }
}

macro_rules! sync_layer {
    ($name:ident, $check:expr) => {
        #[derive(Clone)]
        struct $name<S>(S);

        impl<'a, S> Service<Handshake<'a>> for $name<S>
        where
            S: Service<Handshake<'a>, Response = Handshake<'a>, Error = Denial>,
        {
            type Response = Handshake<'a>;
            type Error = Denial;
            type Future = Either<Ready<Step<'a>>, S::Future>;

            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Denial>> {
                self.0.poll_ready(cx)
            }

            fn call(&mut self, h: Handshake<'a>) -> Self::Future {
                step(&mut self.0, h, $check)
            }
        }
    };
}

// Origin: the browser's page must be allowed (403), one Origin only (400).
sync_layer!(Origin, |h| match &h.policy.origins {
    Some(origins) => origins.check(h.req.head).map_err(Denial::from),
    None => Ok(()),
});

// Handshake rates: per client address (429), then per route (429), with `Retry-After`.
sync_layer!(Rates, |h| {
    (h.per_ip)
        .check_rate(h.req.client_ip)
        .map_err(|after| retry(Refusal::RateLimited, after))?;
    (h.policy.limits)
        .check_rate()
        .map_err(|after| retry(Refusal::RouteRateLimited, after))
});

// Connection caps: per client address (429), then per route (503). The permits travel with
// the admission into the tunnel.
sync_layer!(Caps, |h| {
    match h.per_ip.try_connection(h.req.client_ip) {
        Ok(p) => h.admission.permits.extend(p),
        Err(_) => return Err(retry(Refusal::IpConnectionsFull, CAP_RETRY)),
    }
    match h.policy.limits.try_connection() {
        Ok(p) => h.admission.permits.extend(p),
        Err(_) => return Err(retry(Refusal::RouteFull, CAP_RETRY)),
    }
    Ok(())
});

/// The steps that may wait: the fleet-wide rates and address cap, the token (JWT or an auth
/// service, on routes with `auth:`), the client certificate's subject when no token named one,
/// then sessions per subject.
async fn token(mut h: Handshake<'_>) -> Step<'_> {
    fleet::pre(&mut h).await?;
    if let Some(auth) = &h.policy.auth {
        authenticate(auth, &h.req, &mut h.admission).await?;
    }
    certificate_subject(&h.req, &mut h.admission);
    fleet::subject(&mut h).await?;
    Ok(h)
}
