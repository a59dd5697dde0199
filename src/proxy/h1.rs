//! WebSocket upgrades over HTTP/1.1, on hyper's `http1` server: plain listeners, and TLS
//! listeners whose ALPN did not choose `h2`.
//!
//! Owns: hyper's bounds for one connection (head size and field count, head read timeout,
//! keep-alive off after any refusal: every answer to a refused upgrade carries
//! `Connection: close`), the per-request service (framing, then the shared stages in [`pass`]),
//! and the hand-over after a verified 101: hyper gives the connection back (`into_parts`), the
//! bytes it read behind the request go to the backend first, and the tunnel task starts with
//! nothing of hyper left (no buffers, no request). A connection hyper ended with an error (a
//! malformed head, a head too large or too slow) is counted and closed gently.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::error::Refusal;
use crate::metrics::GaugeGuard;
use crate::proxy::conn::ConnCtx;
use crate::proxy::pass::{self, Answer, Stop, Upgraded};
use crate::proxy::plain;
use crate::proxy::respond::{self, Body};
use crate::tunnel;
use crate::wire::{self, Fields};

/// A verified upgrade waiting for hyper to finish writing its 101.
struct Handoff {
    up: Box<Upgraded>,
    started: Instant,
}

type Slot = Arc<Mutex<Option<Handoff>>>;
type Answering = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Serve one HTTP/1.1 connection until it closes or becomes a tunnel. Holds the connection
/// gauge and the global permit, and hands both to the tunnel.
pub async fn serve<S>(io: S, sni: Option<String>, mut ctx: ConnCtx, guard: GaugeGuard)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let permit = ctx.permit.take();
    let ctx = Arc::new(ctx);
    let limits = &ctx.runtime.limits;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_header_timeout)
        .max_headers(limits.max_request_headers)
        .max_header_size(limits.max_request_header_bytes)
        .title_case_headers(true);
    let slot: Slot = Arc::new(Mutex::new(None));
    let service = {
        let (ctx, slot) = (Arc::clone(&ctx), Arc::clone(&slot));
        let sni: Option<Arc<str>> = sni.clone().map(Arc::from);
        service_fn(move |req| -> Answering {
            let (ctx, sni, slot) = (Arc::clone(&ctx), sni.clone(), Arc::clone(&slot));
            Box::pin(async move { Ok(answer(req, &ctx, sni.as_deref(), &slot).await) })
        })
    };
    // In a block of its own, so that hyper's connection takes no room in this future's state
    // while the closing below is awaited.
    let (ended, parts) = {
        let mut conn = builder.serve_connection(TokioIo::new(io), service);
        let mut draining = false;
        let ended = loop {
            tokio::select! {
                ended = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break ended,
                // The handshake in flight is cut (its future dropped); the socket just closes.
                () = ctx.close.cancelled() => return,
                () = ctx.draining.cancelled(), if !draining => {
                    // No next request on this connection; one in flight still gets its answer.
                    draining = true;
                    Pin::new(&mut conn).graceful_shutdown();
                }
            }
        };
        (ended, conn.into_parts())
    };
    let http1::Parts { io, read_buf, .. } = parts;
    let mut io = io.into_inner();
    let handoff = slot.lock().ok().and_then(|mut s| s.take());
    match (ended, handoff) {
        (Ok(()), Some(Handoff { up, started })) => {
            let leg = pass::Leg {
                sni,
                started,
                protocol: crate::session::Protocol::H1,
                guards: vec![guard],
                permit,
                to_backend_first: read_buf.to_vec(),
            };
            drop(read_buf);
            let (backend, tunnel) = pass::tunnel(&ctx, *up, leg);
            ctx.tracker.spawn(tunnel::run(io, backend, tunnel));
        }
        (ended, _) => {
            if let Err(e) = ended {
                hyper_error(&ctx, &e, !read_buf.is_empty());
            }
            respond::close_gently(&mut io).await;
            drop((permit, guard));
        }
    }
}

/// One request: an upgrade checked and forwarded, or refused.
async fn answer(
    req: Request<Incoming>,
    ctx: &ConnCtx,
    sni: Option<&str>,
    slot: &Slot,
) -> Response<Body> {
    let started = Instant::now();
    let mut routed = None;
    let result = tokio::select! {
        r = upgrade(req, ctx, sni, &mut routed) => r,
        () = ctx.close.cancelled() => Err(Stop::Shutdown),
    };
    match result {
        Ok(Answer::Upgraded(up)) => {
            let answer = respond::switched(&up, true);
            if let Ok(mut s) = slot.lock() {
                *s = Some(Handoff { up, started });
            }
            answer
        }
        Ok(Answer::Relay(relay)) => {
            pass::record_relayed(ctx, routed, relay.status.as_u16());
            respond::closing(respond::relayed(relay))
        }
        // Keep-alive stays up: the page, then its socket, may share the connection.
        Ok(Answer::Plain(answer)) => answer,
        Err(stop) => {
            pass::record_stop(ctx, routed, &stop);
            respond::closing(respond::refused(&stop))
        }
    }
}

async fn upgrade<'c>(
    req: Request<Incoming>,
    ctx: &'c ConnCtx,
    sni: Option<&str>,
    routed: &mut Option<&'c str>,
) -> Result<Answer, Stop> {
    let (head, body) = req.into_parts();
    let framing = wire::check_framing(&head)?;
    let to = pass::route(ctx, &head, sni, routed)?;
    if plain::proxied(&to) && !head.has_token("upgrade", "websocket") {
        return plain::forward(ctx, head, body, &to)
            .await
            .map(Answer::Plain);
    }
    // The body (none on an upgrade) is never read: its framing alone decides.
    pass::upgrade(ctx, &head, to, framing).await
}

/// Count what hyper refused itself (it has already answered `400` or `431`), and a head that
/// did not arrive in time (closed without an answer, as nginx does).
fn hyper_error(ctx: &ConnCtx, e: &hyper::Error, partial: bool) {
    let refusal = if e.is_parse_too_large() {
        Refusal::HeadTooLarge
    } else if e.is_parse() || e.is_parse_version_h2() {
        Refusal::MalformedHead
    } else if e.is_timeout() && partial {
        Refusal::HeadTimeout
    } else {
        tracing::debug!(peer = %ctx.peer, error = %e, "h1 connection ended");
        return;
    };
    pass::record_stop(ctx, None, &Stop::Deny(refusal.into()));
}
