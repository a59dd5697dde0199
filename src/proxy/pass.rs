//! The middle of every handshake, HTTP/1.1 or HTTP/2 alike: route, the RFC 6455 checklist,
//! admission, the rebuilt request to a backend of the route's pool, RFC 6455 §4.1 on its answer,
//! and the backend leg taken back from hyper. Then [`tunnel`]: the session registered and its
//! tunnel assembled.
//!
//! Written once for both front ends (`conn` for h1, `h2` for RFC 8441 streams): each of them
//! turns a client request into a [`Head`] and writes its own answers (101 bytes, or an h2
//! `200`); everything between is here. Does not own reading the request or writing to the client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::admit::limits::Permit;
use crate::admit::token;
use crate::admit::{self, Admission, Denial};
use crate::config::policy::TokenSource;
use crate::error::Refusal;
use crate::metrics::{GaugeGuard, NO_ROUTE, OpenTunnel};
use crate::proxy::conn::ConnCtx;
use crate::proxy::forward;
use crate::proxy::verify::{self, Verdict};
use crate::proxy::{client_addr, validate};
use crate::runtime::route::Route;
use crate::tunnel::splice::Timeouts;
use crate::tunnel::{self, Session, Tunnel};
use crate::upstream::{self, BackendStream, LiveGuard, balance, h1};
use crate::wire::{self, BodyLength, Fields, Head, Host, Target};

/// Why a handshake stopped short of a tunnel.
pub enum Stop {
    /// The client went away: nothing to answer.
    Gone,
    /// The gateway closed every connection (end of a drain): nothing to answer.
    Shutdown,
    Deny(Denial),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Deny(r.into())
    }
}

impl From<Denial> for Stop {
    fn from(d: Denial) -> Stop {
        Stop::Deny(d)
    }
}

/// What the backend answered, once verified.
pub enum Answer {
    /// A final non-101 answer, read whole (bounded); the backend connection is already closed.
    Relay(Relay),
    /// A verified 101 and the backend leg; the client has not heard of it yet.
    Upgraded(Box<Upgraded>),
    /// A request that was not an upgrade, proxied on a route with `http: proxy`: the answer.
    Plain(hyper::Response<crate::proxy::respond::Body>),
}

/// A backend's non-101 answer, to pass on to the client.
pub struct Relay {
    pub status: StatusCode,
    /// The backend's own reason phrase, when it sent one.
    pub reason: Option<Vec<u8>>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Everything the tunnel needs, and what the client's answer is built from.
pub struct Upgraded {
    pub backend: BackendStream,
    /// Counts this tunnel on its backend (least-connections balancing).
    pub live: LiveGuard,
    /// Holds the open-tunnel gauges (route, backend) up.
    pub open: OpenTunnel,
    pub admission: Admission,
    pub client_ip: IpAddr,
    pub route: Arc<str>,
    pub backend_url: Arc<str>,
    /// What the backend sent behind its 101.
    pub to_client_first: Vec<u8>,
    /// What the session is held to after the upgrade.
    pub setup: tunnel::drive::Setup,
    /// The negotiated subprotocol and extensions, for the client's answer.
    pub verdict: Verdict,
    /// The backend's answer fields (its end-to-end ones are relayed).
    pub headers: HeaderMap,
}

/// Where a request goes, once routed.
pub struct Routed<'c> {
    pub route: &'c Arc<Route>,
    pub target: Target,
    pub host: Host,
}

/// Normalised target, `Host` (and its agreement with SNI), then the route. `routed` receives
/// the route's label as soon as one is chosen.
pub fn route<'c>(
    ctx: &'c ConnCtx,
    head: &Head,
    sni: Option<&str>,
    routed: &mut Option<&'c str>,
) -> Result<Routed<'c>, Stop> {
    let target = wire::normalise(&wire::raw_target(head))?;
    let host = validate::host(head, sni)?;
    let route = (ctx.runtime.routes)
        .find(&host.name, &target.path)
        .ok_or(Refusal::NoRoute)?;
    *routed = Some(&route.label);
    Ok(Routed {
        route,
        target,
        host,
    })
}

/// Route, validate, admit, forward, verify. `routed` receives the route's label as soon as one
/// is chosen. `head` is what the client asked for (for h2: a head synthesized from the stream,
/// carrying the key wsgate minted); `body` is what `wire::check_framing` found.
pub async fn pass<'c>(
    ctx: &'c ConnCtx,
    head: &Head,
    sni: Option<&str>,
    body: BodyLength,
    routed: &mut Option<&'c str>,
) -> Result<Answer, Stop> {
    let to = route(ctx, head, sni, routed)?;
    upgrade(ctx, head, to, body).await
}

/// The stages after routing, for a request that asks for a WebSocket.
pub async fn upgrade(
    ctx: &ConnCtx,
    head: &Head,
    to: Routed<'_>,
    body: BodyLength,
) -> Result<Answer, Stop> {
    let limits = &ctx.runtime.limits;
    let Routed {
        route,
        target,
        host,
    } = to;
    // 4. RFC 6455 §4.2.1.
    let mut upgrade = validate::upgrade(head, body)?;
    // 5. Admission: Origin, rates, caps, token; the client address from trusted proxies.
    let client_ip = client_addr::client_ip(
        ctx.peer.ip(),
        &ctx.runtime.trusted_proxies,
        head.values("x-forwarded-for"),
    );
    let admitted = admit::Request {
        head,
        target: &target,
        client_ip,
        client_cert: ctx.client_cert.as_ref(),
    };
    let (per_ip, fleet) = (&ctx.runtime.per_ip, &ctx.stats.fleet);
    let admission = admit::admit(&route.policy, per_ip, fleet, &admitted).await?;
    if let Some(found) = &admission.strip
        && let TokenSource::Subprotocol { marker } = &found.source
    {
        upgrade.protocols = token::strip_subprotocols(&upgrade.protocols, marker, &found.token);
    }
    // 6. The rebuilt request, to a backend of the route's pool (failover inside).
    let forward = forward::build(&forward::Forward {
        head,
        target: &target,
        host: &host,
        upgrade: &upgrade,
        admission: &admission,
        client_ip,
        proto: ctx.listener.proto(),
        client_cert: ctx.client_cert.as_ref(),
    })?;
    let pool = &route.pool;
    let key = (pool.hash_key.as_ref())
        .and_then(|k| balance::hash_key(k, head, &target, client_ip, &upgrade.protocols));
    let bounds = upstream::Bounds {
        connect: limits.backend_connect_timeout,
        handshake: limits.backend_handshake_timeout,
        max_head_bytes: limits.max_request_header_bytes,
    };
    let client_addr = SocketAddr::new(client_ip, ctx.peer.port());
    let upstream::Answered {
        answer,
        link,
        backend,
        deadline,
    } = upstream::exchange(
        pool,
        key.as_deref(),
        &forward,
        client_addr,
        ctx.local,
        bounds,
    )
    .await?;
    // RFC 6455 §4.1 on the answer.
    let status = answer.status().as_u16();
    let verdict = verify::check(&answer, &upgrade).map_err(|bad| {
        tracing::warn!(backend = %backend.url, rule = bad.label(), status, "bad upgrade answer");
        backend.health.report_failure(&pool.passive, &backend.url);
        Refusal::from(bad)
    })?;
    backend.health.report_success();
    if verdict == Verdict::Relay {
        let (parts, body) = answer.into_parts();
        let max = limits.max_relayed_body_bytes;
        let body = tokio::time::timeout_at(deadline, h1::read_body(body, &parts.headers, max))
            .await
            .map_err(|_| Refusal::BackendTimeout)??;
        // The backend connection closes before the client hears anything.
        drop(link);
        let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
        return Ok(Answer::Relay(Relay {
            status: parts.status,
            reason: reason.map(|r| r.as_bytes().to_vec()),
            headers: parts.headers,
            body,
        }));
    }
    // The stream back from hyper, with what the backend sent behind its 101, before the client
    // hears of the upgrade.
    let headers = answer.headers().clone();
    let (upstream, to_client_first) =
        tokio::time::timeout_at(deadline, h1::upgrade::<BackendStream>(answer, link))
            .await
            .map_err(|_| Refusal::BackendTimeout)??;
    let live = LiveGuard::new(&backend);
    let open = (ctx.stats.metrics).tunnel_opened(&route.label, &pool.name, &backend.url);
    let setup = tunnel::setup(&tunnel::Terms {
        policy: &route.policy.session,
        timeouts: Timeouts {
            idle: limits.tunnel_idle_timeout,
            half_close: limits.tunnel_half_close_timeout,
        },
        close_timeout: limits.close_timeout,
        deflate: verify::deflate(&verdict),
        expires_at: (admission.identity.as_ref())
            .and_then(|i| i.expires_at)
            .zip(route.policy.token_leeway()),
    });
    Ok(Answer::Upgraded(Box::new(Upgraded {
        backend: upstream,
        live,
        open,
        admission,
        client_ip,
        route: route.label.clone(),
        backend_url: backend.url.clone(),
        to_client_first,
        setup,
        verdict,
        headers,
    })))
}

/// Count and log a handshake that did not become a tunnel (once, with its reason).
pub fn record_stop(ctx: &ConnCtx, routed: Option<&str>, stop: &Stop) {
    let metrics = &ctx.stats.metrics;
    let route_label = routed.unwrap_or(NO_ROUTE);
    match stop {
        Stop::Gone => metrics.handshake(route_label, "client_gone"),
        Stop::Shutdown => metrics.handshake(route_label, "shutdown"),
        Stop::Deny(denial) => {
            let refusal = denial.refusal;
            metrics.handshake(route_label, refusal.reason());
            let (reason, status) = (refusal.reason(), refusal.status());
            // One record per refusal, at info: a fault behind a 502/503/504 (a backend, the
            // fleet's Redis) is logged at warn once by whatever saw it, not once per client.
            if status == 500 {
                tracing::warn!(peer = %ctx.peer, reason, status, "refused");
            } else {
                tracing::info!(peer = %ctx.peer, reason, status, "refused");
            }
        }
    }
}

/// Count and log a backend's non-101 answer passed on to the client.
pub fn record_relayed(ctx: &ConnCtx, routed: Option<&str>, status: u16) {
    (ctx.stats.metrics).handshake(routed.unwrap_or(NO_ROUTE), "relayed");
    tracing::info!(peer = %ctx.peer, status, "backend refused the upgrade; answer relayed");
}

/// How the client leg of a tunnel came to be.
pub struct Leg {
    pub sni: Option<String>,
    /// When the handshake began.
    pub started: Instant,
    /// `h1` or `h2`, for the session registry.
    pub protocol: crate::session::Protocol,
    /// Gauges held up while the tunnel lives: the connection's, when the tunnel is the
    /// connection (h1). The tunnel's own gauges are [`Upgraded`]'s `open`.
    pub guards: Vec<GaugeGuard>,
    /// The connection's global permit when the tunnel is the connection (h1); an h2 stream's
    /// tunnel holds only its own admission permits, the connection task keeps the global one.
    pub permit: Option<Permit>,
    /// Client bytes received behind the request, for the backend.
    pub to_backend_first: Vec<u8>,
}

/// Count the tunnel, register its session and assemble what the tunnel task owns. The caller
/// spawns `tunnel::run(client, backend, tunnel)` on the tracker.
pub fn tunnel(ctx: &ConnCtx, up: Upgraded, leg: Leg) -> (BackendStream, Tunnel) {
    (ctx.stats.metrics).handshake(&up.route, "upgraded");
    let (subject, expires_at, key_id) = match up.admission.identity {
        Some(i) => (i.subject, i.expires_at, i.key_id),
        None => (None, None, None),
    };
    // The registry's copy is the session's only one: the record at the end reads it there.
    let entry = ctx.stats.sessions.register(crate::session::Info {
        subject: subject.map(String::into_boxed_str),
        client: up.client_ip,
        route: up.route,
        backend: up.backend_url,
        started: std::time::SystemTime::now() - leg.started.elapsed(),
        expires_at,
        key_id: key_id.map(String::into_boxed_str),
        protocol: leg.protocol,
    });
    let mut permits = up.admission.permits;
    permits.extend(leg.permit);
    // Exactly as long as it is: the admission's vector has room for four.
    let permits = permits.into_boxed_slice();
    let tunnel = Tunnel {
        session: Session {
            peer: ctx.peer,
            sni: leg.sni.map(String::into_boxed_str),
            started: leg.started,
        },
        state: tunnel::drive::State::new(up.setup, leg.to_backend_first, up.to_client_first),
        guards: leg.guards.into_boxed_slice(),
        backend_live: Some(up.live),
        open: up.open,
        permits,
        entry,
    };
    (up.backend, tunnel)
}
