//! One client connection, start to finish: the whole data path in order, in one place.
//!
//! `handle` runs PROXY in and TLS; by ALPN the connection goes to [`h2::serve`] (RFC 8441
//! streams) or stays HTTP/1.1 here: [`handshake`] reads the head, runs the shared stages
//! ([`pass::pass`]: route → validate → admit → upstream → verify) and either refuses, relays a
//! non-101 answer, or hands both legs to a tunnel task spawned on its own (so the memory of this
//! exchange is gone while the tunnel lives).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admit::limits::Permit;
use crate::error::Refusal;
use crate::proxy::head::{self, HeadError, RequestHead};
use crate::proxy::pass::{self, Answer, Stop, Upgraded};
use crate::proxy::tls::TlsFailure;
use crate::proxy::{client_addr, h2, proxy_protocol, respond, tls};
use crate::runtime::{ListenerRuntime, Runtime};
use crate::stats::{GaugeGuard, Stats};
use crate::tunnel;

/// What one connection needs from the gateway.
pub struct ConnCtx {
    /// The snapshot taken when the connection arrived.
    pub runtime: Arc<Runtime>,
    pub listener: Arc<ListenerRuntime>,
    pub stats: Arc<Stats>,
    pub tracker: TaskTracker,
    pub close: CancellationToken,
    /// Cancelled when the gateway stops accepting (a drain).
    pub draining: CancellationToken,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The address the client connected to (our side of the accepted socket).
    pub local: SocketAddr,
    /// The global connection permit taken at accept: moved into the h1 tunnel, or held by the
    /// h2 connection task (never by an h2 stream's tunnel).
    pub permit: Option<Permit>,
}

/// How an h1 handshake that was not refused ended.
enum Exchange {
    /// The backend answered non-101; that answer was relayed and both sides closed.
    Relayed(u16),
    /// A verified 101 went to the client; the tunnel takes it from here, with the bytes the
    /// client sent behind its request.
    Upgraded(Box<Upgraded>, Vec<u8>),
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
        // Plain listeners speak HTTP/1.1 only (no h2c).
        return exchange(tcp, None, ctx, guard).await;
    };
    // 1. TLS: versions, no renegotiation, SNI picks the certificate (runtime::tls).
    match tls::accept(&acceptor, tcp, ctx.runtime.limits.tls_handshake_timeout).await {
        Ok(stream) => {
            let sni = tls::sni(&stream);
            // ALPN chose h2 (offered only with `http2: true`): RFC 8441 streams.
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                return h2::serve(stream, sni, ctx, guard).await;
            }
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
async fn exchange<S>(mut client: S, sni: Option<String>, mut ctx: ConnCtx, guard: GaugeGuard)
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
    let (up, to_backend_first) = match result {
        Ok(Exchange::Upgraded(up, rest)) => (*up, rest),
        Ok(Exchange::Relayed(status)) => return pass::record_relayed(&ctx, routed, status),
        Err(stop) => {
            pass::record_stop(&ctx, routed, &stop);
            if let Stop::Deny(denial) = &stop {
                respond::refuse(&mut client, denial).await;
            }
            return;
        }
    };
    let leg = pass::Leg {
        sni,
        started,
        protocol: "h1",
        guards: vec![guard],
        permit: ctx.permit.take(),
        to_backend_first,
    };
    let (backend, tunnel) = pass::tunnel(&ctx, up, leg);
    ctx.tracker.spawn(tunnel::run(client, backend, tunnel));
}

/// Read the head, run the shared stages, then write the answer: a relayed non-101 or the 101.
/// `routed` receives the route's label as soon as one is chosen.
async fn handshake<'c, S>(
    client: &mut S,
    sni: Option<&str>,
    ctx: &'c ConnCtx,
    routed: &mut Option<&'c str>,
) -> Result<Exchange, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // 2. The request head within its time, size and count bounds; strict syntax and framing.
    let head = read_request(client, ctx).await?;
    let body = head::check_framing(&head)?;
    // 3.–6. Route, RFC 6455, admission, backend, §4.1 (shared with h2 streams).
    let up = match pass::pass(ctx, &head, sni, body, routed).await? {
        Answer::Upgraded(up) => up,
        Answer::Relay(r) => {
            let reason = r.reason.as_deref();
            respond::relay(client, r.status, reason, &r.headers, &r.body).await;
            return Ok(Exchange::Relayed(r.status.as_u16()));
        }
    };
    // 7. The 101 to the client; the tunnel takes it from here.
    let marker = up.admission.marker.as_deref();
    let switching = respond::switching_protocols(&up.headers, &up.verdict, marker);
    let sent = tokio::time::timeout(
        ctx.runtime.limits.backend_handshake_timeout,
        client.write_all(&switching),
    );
    if !matches!(sent.await, Ok(Ok(()))) {
        return Err(Stop::Gone);
    }
    Ok(Exchange::Upgraded(up, head.rest))
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
