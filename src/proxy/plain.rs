//! Requests that are not WebSocket upgrades, on a route with `http: proxy`: the page that opens
//! the socket and long-polling fallbacks, over HTTP/1.1 or as h2 streams alike.
//!
//! Owns what the front knows about such a request (its route, normalised target and `Host`, the
//! client's address from trusted proxies, the pool's hash key) and handing it to
//! [`upstream::plain::forward`], which bounds and performs the exchange. Admission (Origin,
//! token, rates, caps) is for upgrades: a page load carries no token and a long-poll client
//! would spend the handshake rate; the fields a route's auth sets are still removed, so a plain
//! request cannot forge them, and so are `X-Client-Cert-*` (wsgate sets those on upgrades only). The connection's global permit covers the request.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::config::policy::HttpMode;
use crate::proxy::client_addr;
use crate::proxy::conn::ConnCtx;
use crate::proxy::pass::{Routed, Stop};
use crate::proxy::respond::Body;
use crate::runtime::client_auth::{CLIENT_CERT_SAN, CLIENT_CERT_SUBJECT};
use crate::upstream::balance;
use crate::upstream::plain::{self, Plain, PlainBounds};
use crate::wire::{Fields, Head};

/// True when the route proxies requests that are not upgrades.
pub fn proxied(to: &Routed<'_>) -> bool {
    to.route.http == HttpMode::Proxy
}

/// Forward a plain request to the route's pool. The target and `Host` sent are the ones the
/// request was routed on (`to`), not the request's own.
pub async fn forward(
    ctx: &ConnCtx,
    head: Head,
    body: Incoming,
    to: &Routed<'_>,
) -> Result<Response<Body>, Stop> {
    let client_ip = client_addr::client_ip(
        ctx.peer.ip(),
        &ctx.runtime.trusted_proxies,
        head.values("x-forwarded-for"),
    );
    let pool = &to.route.pool;
    let key = (pool.hash_key.as_ref())
        .and_then(|k| balance::hash_key(k, &head, &to.target, client_ip, &[]));
    let mut remove = plain::identity_fields(to.route.policy.auth.as_ref().map(|a| &*a.config));
    remove.extend([CLIENT_CERT_SUBJECT, CLIENT_CERT_SAN].map(str::to_owned));
    let target = to.target.to_request_target();
    let forwarded_for = client_ip.to_string();
    let plain = Plain {
        pool,
        key: key.as_deref(),
        client: SocketAddr::new(client_ip, ctx.peer.port()),
        local: ctx.local,
        target: &target,
        host: &to.host.raw,
        forwarded_for: &forwarded_for,
        proto: ctx.listener.proto(),
        remove: &remove,
        bounds: PlainBounds::from_limits(&ctx.runtime.limits),
    };
    let answer = plain::forward(Request::from_parts(head, body), &plain).await?;
    let status = answer.status().as_u16();
    tracing::debug!(peer = %ctx.peer, route = %to.route.label, status, "plain request proxied");
    Ok(answer)
}
