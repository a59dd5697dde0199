//! One client connection, start to finish: the whole data path in order, in one place.
//!
//! `handle` runs TLS, then [`handshake`] runs the stages (head → route → validate → upstream →
//! verify) and either refuses, relays a non-101 answer, or hands both legs to a tunnel task
//! spawned on its own (so the memory of this exchange is gone while the tunnel lives).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admit::limits::Permit;
use crate::admit::token;
use crate::admit::{self, Admission, Denial};
use crate::config::policy::TokenSource;
use crate::error::Refusal;
use crate::metrics::{NO_ROUTE, OpenTunnel};
use crate::proxy::head::{self, Fields, HeadError, RequestHead};
use crate::proxy::tls::TlsFailure;
use crate::proxy::verify::{self, Verdict};
use crate::proxy::{client_addr, proxy_protocol, respond, route, tls, validate};
use crate::runtime::{ListenerRuntime, Runtime};
use crate::stats::{GaugeGuard, Stats};
use crate::tunnel::splice::Timeouts;
use crate::tunnel::{self, Session, Tunnel};
use crate::upstream::{self, BackendStream, LiveGuard, balance, h1, request};

/// What one connection needs from the gateway.
pub struct ConnCtx {
    /// The snapshot taken when the connection arrived.
    pub runtime: Arc<Runtime>,
    pub listener: Arc<ListenerRuntime>,
    pub stats: Arc<Stats>,
    pub tracker: TaskTracker,
    pub close: CancellationToken,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The address the client connected to (our side of the accepted socket).
    pub local: SocketAddr,
    /// The global connection permit taken at accept.
    pub permit: Permit,
}

/// Why a handshake stopped short of a tunnel.
enum Stop {
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

/// How a handshake that was not refused ended.
enum Exchange {
    /// The backend answered non-101; that answer was relayed and both sides closed.
    Relayed(u16),
    /// A verified 101 went to the client; here is everything the tunnel needs.
    Upgraded(Box<Upgraded>),
}

struct Upgraded {
    backend: BackendStream,
    /// Counts this tunnel on its backend (least-connections balancing).
    live: LiveGuard,
    /// Holds the open-tunnel gauges (route, backend) up.
    open: OpenTunnel,
    admission: Admission,
    client_ip: IpAddr,
    route: String,
    backend_url: String,
    to_backend_first: Vec<u8>,
    to_client_first: Vec<u8>,
    /// What the session is held to after the upgrade.
    setup: tunnel::drive::Setup,
}

/// Serve one accepted TCP connection.
pub async fn handle(mut tcp: TcpStream, mut ctx: ConnCtx) {
    let guard = GaugeGuard::new(&ctx.stats, |s| &s.connections_open);
    // 0. PROXY protocol, believed only from trusted peers; anyone else is dropped.
    if ctx.listener.proxy_protocol {
        if !client_addr::is_trusted(ctx.peer.ip(), &ctx.runtime.trusted_proxies) {
            ctx.stats.refused("proxy_untrusted");
            ctx.stats.metrics.refused_at_accept("proxy_untrusted");
            tracing::info!(peer = %ctx.peer, "PROXY header from an untrusted peer; dropped");
            return;
        }
        match proxy_protocol::read_header(&mut tcp, ctx.runtime.limits.tls_handshake_timeout).await
        {
            Ok(header) => {
                if let Some(source) = header.source {
                    ctx.peer = source;
                }
            }
            Err(e) => {
                ctx.stats.refused("proxy_header");
                ctx.stats.metrics.refused_at_accept("proxy_header");
                tracing::info!(peer = %ctx.peer, error = ?e, "bad PROXY header; dropped");
                return;
            }
        }
    }
    let Some(acceptor) = ctx.listener.tls.clone() else {
        return exchange(tcp, None, ctx, guard).await;
    };
    // 1. TLS: versions, no renegotiation, SNI picks the certificate (runtime::tls).
    match tls::accept(&acceptor, tcp, ctx.runtime.limits.tls_handshake_timeout).await {
        Ok(stream) => {
            let sni = tls::sni(&stream);
            exchange(stream, sni, ctx, guard).await;
        }
        Err(failure) => {
            ctx.stats.tls_failures.fetch_add(1, Ordering::Relaxed);
            let reason = match failure {
                TlsFailure::Timeout => "timeout",
                TlsFailure::Handshake(_) => "handshake",
            };
            ctx.stats.metrics.tls_failure(reason);
            tracing::debug!(peer = %ctx.peer, ?failure, "TLS handshake failed");
        }
    }
}

/// Run the handshake, then refuse, or spawn the tunnel.
async fn exchange<S>(mut client: S, sni: Option<String>, ctx: ConnCtx, guard: GaugeGuard)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    // The route label once routing chose one, for the handshake outcome series.
    let mut routed = None;
    let result = tokio::select! {
        r = handshake(&mut client, sni.as_deref(), &ctx, &mut routed) => r,
        () = ctx.close.cancelled() => Err(Stop::Shutdown),
    };
    let metrics = &ctx.stats.metrics;
    let route_label = routed.unwrap_or(NO_ROUTE);
    let up = match result {
        Ok(Exchange::Upgraded(up)) => *up,
        Ok(Exchange::Relayed(status)) => {
            ctx.stats.refused("backend_non_101");
            metrics.handshake(route_label, "relayed");
            tracing::info!(peer = %ctx.peer, status, "backend refused the upgrade; answer relayed");
            return;
        }
        Err(Stop::Gone) => {
            metrics.handshake(route_label, "client_gone");
            return;
        }
        Err(Stop::Shutdown) => {
            metrics.handshake(route_label, "shutdown");
            return;
        }
        Err(Stop::Deny(denial)) => {
            let refusal = denial.refusal;
            ctx.stats.refused(refusal.reason());
            metrics.handshake(route_label, refusal.reason());
            let (reason, status) = (refusal.reason(), refusal.status());
            if status >= 500 {
                tracing::warn!(peer = %ctx.peer, reason, status, "refused");
            } else {
                tracing::info!(peer = %ctx.peer, reason, status, "refused");
            }
            respond::refuse(&mut client, &denial).await;
            return;
        }
    };
    ctx.stats.tunnels_total.fetch_add(1, Ordering::Relaxed);
    metrics.handshake(route_label, "upgraded");
    let identity = up.admission.identity.as_ref();
    let entry = ctx.stats.sessions.register(crate::session::Info {
        subject: identity.and_then(|i| i.subject.clone()),
        client: up.client_ip,
        route: up.route.clone(),
        backend: up.backend_url.clone(),
        started: std::time::SystemTime::now() - started.elapsed(),
        expires_at: identity.and_then(|i| i.expires_at),
        key_id: identity.and_then(|i| i.key_id.clone()),
        protocol: "h1",
    });
    let tunnel = Tunnel {
        session: Session {
            peer: ctx.peer,
            sni,
            client: up.client_ip,
            expires_at: up.admission.identity.as_ref().and_then(|i| i.expires_at),
            subject: up.admission.identity.and_then(|i| i.subject),
            route: up.route,
            backend: up.backend_url,
            started,
        },
        to_backend_first: up.to_backend_first,
        to_client_first: up.to_client_first,
        setup: up.setup,
        close: ctx.close.clone(),
        guards: vec![guard, GaugeGuard::new(&ctx.stats, |s| &s.tunnels_open)],
        backend_live: Some(up.live),
        open: up.open,
        permits: {
            let mut p = up.admission.permits;
            p.push(ctx.permit);
            p
        },
        entry,
    };
    ctx.tracker.spawn(tunnel::run(client, up.backend, tunnel));
}

/// The stages, in order. `routed` receives the route's label as soon as one is chosen.
async fn handshake<'c, S>(
    client: &mut S,
    sni: Option<&str>,
    ctx: &'c ConnCtx,
    routed: &mut Option<&'c str>,
) -> Result<Exchange, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &ctx.runtime.limits;
    // 2. The request head within its time, size and count bounds; strict syntax and framing.
    let head = read_request(client, ctx).await?;
    let body = head::check_framing(&head)?;
    // 3. Normalised target, Host (and SNI agreement), route.
    let target = route::normalise(&head.target)?;
    let host = validate::host(&head, sni)?;
    let route = ctx
        .runtime
        .routes
        .find(&host.name, &target.path)
        .ok_or(Refusal::NoRoute)?;
    *routed = Some(&route.label);
    // 4. RFC 6455 §4.2.1.
    let mut upgrade = validate::upgrade(&head, body)?;
    // 5. Admission: Origin, rates, caps, token; the client address from trusted proxies.
    let client_ip = client_addr::client_ip(
        ctx.peer.ip(),
        &ctx.runtime.trusted_proxies,
        head.values("x-forwarded-for"),
    );
    let admission = admit::admit(
        &route.policy,
        &ctx.runtime.per_ip,
        &admit::Request {
            head: &head,
            target: &target,
            client_ip,
        },
    )
    .await?;
    if let Some(found) = &admission.strip
        && let TokenSource::Subprotocol { marker } = &found.source
    {
        upgrade.protocols = token::strip_subprotocols(&upgrade.protocols, marker, &found.token);
    }
    // 6. The rebuilt request, to a backend of the route's pool (failover inside).
    let forward = request::build(&request::Forward {
        head: &head,
        target: &target,
        host: &host,
        upgrade: &upgrade,
        admission: &admission,
        client_ip,
        proto: ctx.listener.proto(),
    })?;
    let pool = &route.pool;
    let key = pool
        .hash_key
        .as_ref()
        .and_then(|k| balance::hash_key(k, &head, &target, client_ip, &upgrade.protocols));
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
        let reason = reason.map(hyper::ext::ReasonPhrase::as_bytes);
        respond::relay(client, parts.status, reason, &parts.headers, &body).await;
        return Ok(Exchange::Relayed(status));
    }
    // The stream back from hyper, with what the backend sent behind its 101, before the client
    // hears of the upgrade.
    let switching =
        respond::switching_protocols(answer.headers(), &verdict, admission.marker.as_deref());
    let (upstream, to_client_first) =
        tokio::time::timeout_at(deadline, h1::upgrade::<BackendStream>(answer, link))
            .await
            .map_err(|_| Refusal::BackendTimeout)??;
    // 7. The 101 to the client; the tunnel takes it from here.
    let live = LiveGuard::new(&backend);
    let open = ctx
        .stats
        .metrics
        .tunnel_opened(&route.label, &pool.name, &backend.url);
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
    let sent = tokio::time::timeout(
        limits.backend_handshake_timeout,
        client.write_all(&switching),
    );
    if !matches!(sent.await, Ok(Ok(()))) {
        return Err(Stop::Gone);
    }
    Ok(Exchange::Upgraded(Box::new(Upgraded {
        backend: upstream,
        live,
        open,
        admission,
        client_ip,
        route: route.label.clone(),
        backend_url: backend.url.clone(),
        to_backend_first: head.rest,
        to_client_first,
        setup,
    })))
}

/// Read and parse the request head within `request_header_timeout`.
async fn read_request<S: AsyncRead + Unpin>(
    client: &mut S,
    ctx: &ConnCtx,
) -> Result<RequestHead, Stop> {
    let limits = &ctx.runtime.limits;
    let raw = tokio::time::timeout(
        limits.request_header_timeout,
        head::read_raw(client, limits.max_request_header_bytes, None),
    )
    .await
    .map_err(|_| Stop::from(Refusal::HeadTimeout))?;
    let parsed =
        raw.and_then(|(buf, len)| head::parse_request(buf, len, limits.max_request_headers));
    parsed.map_err(|e| match e {
        HeadError::ClosedEmpty | HeadError::Closed => Stop::Gone,
        HeadError::TooLarge => Refusal::HeadTooLarge.into(),
        HeadError::TooManyFields => Refusal::TooManyHeaders.into(),
        HeadError::Malformed => Refusal::MalformedHead.into(),
    })
}
