//! WebSockets over HTTP/2 (RFC 8441) on TLS listeners whose ALPN chose `h2`, to HTTP/1.1
//! backends.
//!
//! Owns: the hyper h2 server for one connection (extended CONNECT enabled, bounded streams,
//! resets, header list, windows and keep-alive; GOAWAY on drain or close), and per stream the
//! RFC 8441 §4/§5 checks, a [`Head`] synthesized from the stream with a key wsgate mints
//! for the backend, and the answer as an h2 response: a refusal, a relayed non-101, or `200` for
//! a verified 101 — then the stream's tunnel. Route, RFC 6455, admission, backend and §4.1 are
//! the shared stages in [`pass`], exactly as for h1.
//!
//! Each stream is its own session: its own admission permits, registry entry (`protocol: "h2"`),
//! frame trackers and tunnel task. The connection task keeps the global connection permit.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::ext::Protocol;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::error::Refusal;
use crate::metrics::GaugeGuard;
use crate::proxy;
use crate::proxy::conn::ConnCtx;
use crate::proxy::h2_leg::StreamLeg;
use crate::proxy::pass::{self, Answer, Stop};
use crate::proxy::respond::{self, Body};
use crate::tunnel;
use crate::wire::{BodyLength, Head};

/// Streams one connection may hold open at once (each is a session).
const MAX_STREAMS: u32 = 100;
/// Streams a client may open and reset before the server accepted them (rapid reset, CVE-2023-44487).
const MAX_PENDING_RESETS: usize = 20;
/// Streams the server may reset for protocol errors before it closes the connection.
const MAX_LOCAL_RESETS: usize = 1024;
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Modest flow-control windows: WebSocket traffic is small messages, and these bound what one
/// slow reader can make wsgate hold.
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// Serve one TLS connection that negotiated `h2`, until the client, a drain or the close token
/// ends it. Holds the connection gauge and the global permit for the whole connection.
pub async fn serve<S>(io: S, sni: Option<String>, mut ctx: ConnCtx, guard: GaugeGuard)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let permit = ctx.permit.take();
    let ctx = Arc::new(ctx);
    let limits = &ctx.runtime.limits;
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(MAX_STREAMS)
        .max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS))
        .max_local_error_reset_streams(Some(MAX_LOCAL_RESETS))
        .max_header_list_size(u32::try_from(limits.max_request_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    let sni: Option<Arc<str>> = sni.map(Arc::from);
    // One clone per live stream (its handler, then its tunnel task): a count of 1 means no
    // stream is open.
    let streams = Arc::new(());
    let service = {
        let ctx = Arc::clone(&ctx);
        let streams = Arc::downgrade(&streams);
        service_fn(move |req| {
            let (ctx, sni, alive) = (Arc::clone(&ctx), sni.clone(), streams.upgrade());
            async move { Ok::<_, Infallible>(stream(req, ctx, sni, alive).await) }
        })
    };
    let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
    let mut going_away = false;
    // A connection without a stream for a whole check period is closed (GOAWAY), as h1 closes
    // a connection that sends no request within `request_header_timeout`.
    let mut idle_check = tokio::time::interval_at(
        tokio::time::Instant::now() + limits.request_header_timeout,
        limits.request_header_timeout,
    );
    let mut idle_since_last = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(peer = %ctx.peer, error = %e, "h2 connection ended");
                }
                break;
            }
            () = ctx.close.cancelled() => {
                // The tunnels are closing on the same token; their streams end, then the connection.
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(limits.close_timeout, conn.as_mut()).await;
                break;
            }
            () = ctx.draining.cancelled(), if !going_away => {
                // A drain: GOAWAY, no new streams; open sessions go on until they end.
                going_away = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle_check.tick(), if !going_away => {
                let idle = Arc::strong_count(&streams) == 1;
                if idle && idle_since_last {
                    tracing::debug!(peer = %ctx.peer, "h2 connection without streams; GOAWAY");
                    going_away = true;
                    conn.as_mut().graceful_shutdown();
                }
                idle_since_last = idle;
            }
        }
    }
    drop((permit, guard));
}

/// One stream: a WebSocket request, answered and (when upgraded) tunnelled; or a plain
/// request on a route with `http: proxy`.
async fn stream(
    mut req: Request<Incoming>,
    ctx: Arc<ConnCtx>,
    sni: Option<Arc<str>>,
    alive: Option<Arc<()>>,
) -> Response<Body> {
    let started = Instant::now();
    // Taken before the answer leaves: hyper hands the stream over once the 200 is sent.
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut routed = None;
    let result = tokio::select! {
        r = accept(req, &ctx, sni.as_deref(), &mut routed) => r,
        () = ctx.close.cancelled() => Err(Stop::Shutdown),
    };
    let up = match result {
        Ok(Answer::Upgraded(up)) => up,
        Ok(Answer::Plain(answer)) => return respond::for_h2(answer),
        Ok(Answer::Relay(relay)) => {
            pass::record_relayed(&ctx, routed, relay.status.as_u16());
            return respond::for_h2(respond::relayed(relay));
        }
        Err(stop) => {
            pass::record_stop(&ctx, routed, &stop);
            return respond::for_h2(respond::refused(&stop));
        }
    };
    let answer = respond::switched(&up, false);
    let leg = pass::Leg {
        sni: sni.as_deref().map(str::to_owned),
        started,
        protocol: crate::session::Protocol::H2,
        guards: Vec::new(),
        permit: None,
        to_backend_first: Vec::new(),
    };
    let (backend, tunnel) = pass::tunnel(&ctx, *up, leg);
    // The stream counts as open on its connection until its tunnel ends (the leg holds `alive`).
    let client = StreamLeg::new(on_upgrade, alive);
    ctx.tracker.spawn(tunnel::run(client, backend, tunnel));
    answer
}

async fn accept<'c>(
    req: Request<Incoming>,
    ctx: &'c ConnCtx,
    sni: Option<&str>,
    routed: &mut Option<&'c str>,
) -> Result<Answer, Stop> {
    if req.method() != Method::CONNECT {
        return plain(req, ctx, sni, routed).await;
    }
    let head = websocket_head(&req)?;
    // The stream's DATA frames are the tunnel itself: nothing is a body here.
    pass::pass(ctx, &head, sni, BodyLength::Exact(0), routed).await
}

/// A request that is not an extended CONNECT: routed like any, proxied when its route says
/// `http: proxy`, otherwise refused as h1 refuses a request that is not an upgrade.
async fn plain<'c>(
    req: Request<Incoming>,
    ctx: &'c ConnCtx,
    sni: Option<&str>,
    routed: &mut Option<&'c str>,
) -> Result<Answer, Stop> {
    // A plain GET is what an h1 request without Upgrade is: not a WebSocket.
    let refusal = if req.method() == Method::GET {
        Refusal::NotWebSocket
    } else {
        Refusal::NotConnect
    };
    let head = as_h1(&req, req.method().clone())?;
    let to = pass::route(ctx, &head, sni, routed)?;
    if !proxy::plain::proxied(&to) {
        return Err(refusal.into());
    }
    let (parts, body) = req.into_parts();
    proxy::plain::forward(ctx, parts, body, &to)
        .await
        .map(Answer::Plain)
}

/// The stream's request as the HTTP/1.1 head the shared stages check: `method`, the
/// origin-form target, `Host` from `:authority`, and the client's fields. A `Host` other than
/// `:authority` stays, and the head then holds two (400); a key is wsgate's to mint.
fn as_h1(req: &Request<Incoming>, method: Method) -> Result<Head, Refusal> {
    let authority = req.uri().authority().ok_or(Refusal::BadHost)?;
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut headers = HeaderMap::with_capacity(req.headers().len() + 4);
    let host = HeaderValue::from_str(authority.as_str()).map_err(|_| Refusal::BadHost)?;
    headers.append(header::HOST, host);
    for (name, value) in req.headers() {
        let same_host = name == header::HOST
            && value
                .as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes());
        if same_host || name == header::SEC_WEBSOCKET_KEY {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    let (mut head, ()) = Request::builder()
        .method(method)
        .uri(target)
        .version(Version::HTTP_11)
        .body(())
        .map_err(|_| Refusal::BadTarget)?
        .into_parts();
    head.headers = headers;
    Ok(head)
}

/// RFC 8441 §4/§5: an extended CONNECT with `:protocol websocket`, as the HTTP/1.1 upgrade the
/// shared stages check ([`as_h1`] with `GET`), with the upgrade fields and a key minted here
/// (the backend's Accept is verified against it).
fn websocket_head(req: &Request<Incoming>) -> Result<Head, Refusal> {
    let protocol = req.extensions().get::<Protocol>();
    let protocol = protocol.ok_or(Refusal::NoConnectProtocol)?;
    if !protocol.as_str().eq_ignore_ascii_case("websocket") {
        return Err(Refusal::NotWebSocket);
    }
    let mut head = as_h1(req, Method::GET)?;
    let headers = &mut head.headers;
    headers.append(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.append(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    // Without randomness there is no key to verify an answer against: no backend is asked.
    let key = crate::wire::key::new_key().ok_or(Refusal::BackendUnavailable)?;
    let key = HeaderValue::from_str(&key).map_err(|_| Refusal::BackendUnavailable)?;
    headers.append(header::SEC_WEBSOCKET_KEY, key);
    Ok(head)
}
