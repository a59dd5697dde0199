//! Requests that are not WebSocket upgrades, on routes with `http: proxy`: the page that opens
//! the socket, and long-polling fallbacks (socket.io starts with polling; SockJS falls back to
//! it). One request in, one bounded answer out, over HTTP/1.1 to a backend of the route's pool,
//! whatever version the client spoke (an h2 stream becomes an HTTP/1.1 request).
//!
//! Owns: reading the client's body, picking and connecting a backend with the pool's failover
//! (`connect::open`: TCP, PROXY header, TLS, the same as for upgrades), the rebuilt request and
//! the relayed answer ([`fields`]: hop-by-hop fields out, `X-Forwarded-*` set), the exchange on
//! hyper's HTTP/1 client, and the refusal for each way it fails. Does not own: deciding that a
//! request is plain and that its route proxies it, the route, the client's address or its
//! `X-Forwarded-For` chain, admission, or writing the answer to the client (the caller's hyper
//! server does, keep-alive included).
//!
//! Bounds, in order, all inside one `http_request_timeout` from the call:
//! - the client's body is read whole, at most `max_request_body_bytes`, before any backend is
//!   contacted, so an oversize body never reaches one (413; a declared length over the bound is
//!   refused without reading a byte); too slow: 408;
//! - each connect attempt within `backend_connect_timeout`; only connect failures move on to the
//!   next backend (up to the pool's `retries`), never a request already sent;
//! - the answer head within what is left of `http_request_timeout`, not within
//!   `backend_handshake_timeout`: a long-polling backend holds its head back until it has news;
//!   at most `max_request_header_bytes` of it (504 / 502);
//! - the answer body read whole, at most `max_response_body_bytes` (over it: 502), so the client
//!   gets a complete answer with a `Content-Length` or a 502, never half of one.
//!
//! Each request gets a fresh backend connection, closed with the answer: no keep-alive pool
//! towards backends (the client's side may keep its connection).

mod fields;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as HttpBody, Bytes};
use hyper::client::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use super::{Backend, BackendStream, Pool, connect, h1};
use crate::config::Limits;
use crate::config::policy::{AuthConfig, AuthMethod};
use crate::error::Refusal;

/// The answer body: read whole and bounded, so it has an exact length.
pub type Body = Full<Bytes>;

/// Bound on the number of fields in an answer head.
const MAX_ANSWER_FIELDS: usize = 100;
/// hyper refuses a read buffer bound below this (its initial buffer size).
const HYPER_MIN_BUF: usize = 8 * 1024;

/// Where one plain request goes and what wsgate knows about its client.
pub struct Plain<'a> {
    /// The route's pool.
    pub pool: &'a Pool,
    /// The hash key when the pool hashes (`None` falls back to least connections).
    pub key: Option<&'a [u8]>,
    /// The client's address (after PROXY protocol / trusted `X-Forwarded-For`), for a PROXY
    /// header towards the backend.
    pub client: SocketAddr,
    /// The address the client connected to, for a PROXY header.
    pub local: SocketAddr,
    /// The normalised origin-form target the route was chosen on (path and query): what the
    /// backend receives, never the client's raw target.
    pub target: &'a str,
    /// The `Host` the route was chosen on, as the client sent it (`Host`, or `:authority` on
    /// h2): sent as `Host` and `X-Forwarded-Host`.
    pub host: &'a str,
    /// The whole `X-Forwarded-For` value to send (the trusted chain plus the client, or just
    /// the client): the client's own value is always dropped.
    pub forwarded_for: &'a str,
    /// `https` or `http`: how the client reached wsgate (`X-Forwarded-Proto`).
    pub proto: &'static str,
    /// Lower-case names removed from the client's request: the fields wsgate sets itself on
    /// this route ([`identity_fields`]), so a client cannot forge them.
    pub remove: &'a [String],
    pub bounds: PlainBounds,
}

/// Time and size bounds of one plain request.
#[derive(Debug, Clone, Copy)]
pub struct PlainBounds {
    /// Each connect attempt (TCP, then TLS): `backend_connect_timeout`.
    pub connect: Duration,
    /// The whole exchange, from the call: `http_request_timeout`.
    pub exchange: Duration,
    /// `max_request_body_bytes`.
    pub max_request_body: usize,
    /// `max_response_body_bytes`.
    pub max_response_body: usize,
    /// The answer head: `max_request_header_bytes`, as for upgrades.
    pub max_answer_head: usize,
}

impl PlainBounds {
    /// The bounds `limits:` sets.
    pub fn from_limits(limits: &Limits) -> PlainBounds {
        PlainBounds {
            connect: limits.backend_connect_timeout,
            exchange: limits.http_request_timeout,
            max_request_body: limits.max_request_body_bytes,
            max_response_body: limits.max_response_body_bytes,
            max_answer_head: limits.max_request_header_bytes,
        }
    }
}

/// The lower-case names of the request fields wsgate sets on a route with this `auth` (claims
/// copied to headers, an auth service's `copy_headers`): what [`Plain::remove`] must hold.
pub fn identity_fields(auth: Option<&AuthConfig>) -> Vec<String> {
    let Some(auth) = auth else {
        return Vec::new();
    };
    let mut names: Vec<String> = (auth.claims_to_headers.iter())
        .map(|(_, h)| h.to_ascii_lowercase())
        .collect();
    if let AuthMethod::Request(rc) = &auth.method {
        names.extend(rc.copy_headers.iter().map(|h| h.to_ascii_lowercase()));
    }
    names
}

/// Forward `req` to a backend of `to.pool` and return its answer, or the refusal to answer
/// instead. `req` is the client's request as hyper's server (h1 or h2) delivers it; its target,
/// `Host` and forwarding fields are replaced from `to`.
pub async fn forward<B>(req: Request<B>, to: &Plain<'_>) -> Result<Response<Body>, Refusal>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bounds = to.bounds;
    let deadline = Instant::now() + bounds.exchange;
    let (parts, body) = req.into_parts();
    let body = read_request_body(body, bounds.max_request_body, deadline).await?;
    let request = fields::request(parts, body, to)?;
    let (backend, stream) = connect(to, deadline).await?;
    let (mut sender, conn) = http1::Builder::new()
        .title_case_headers(true)
        .max_headers(MAX_ANSWER_FIELDS)
        .max_buf_size(bounds.max_answer_head.max(HYPER_MIN_BUF))
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| h1::refusal_for(&e))?;
    // Dropped on every way out of here, which closes the backend connection.
    let _driver = Driver::spawn(conn);
    let fail = |refusal: Refusal, what: &str| {
        tracing::warn!(backend = %backend.url, reason = refusal.reason(), "{what}");
        backend
            .health
            .report_failure(&to.pool.passive, &backend.url);
        refusal
    };
    let answer = match timeout_at(deadline, sender.send_request(request)).await {
        Err(_) => {
            return Err(fail(
                Refusal::BackendTimeout,
                "backend did not answer in time",
            ));
        }
        Ok(Err(e)) => return Err(fail(h1::refusal_for(&e), "backend answer unusable")),
        Ok(Ok(answer)) => answer,
    };
    // A 101 to a request that asked for no upgrade is nothing a client could use.
    if answer.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(fail(
            Refusal::BackendMalformed,
            "backend switched protocols",
        ));
    }
    backend.health.report_success();
    let (parts, body) = answer.into_parts();
    let max = bounds.max_response_body;
    let body = timeout_at(deadline, h1::read_body(Some(body), &parts.headers, max))
        .await
        .map_err(|_| Refusal::BackendTimeout)
        .and_then(|read| read)
        .inspect_err(|r| {
            tracing::warn!(backend = %backend.url, reason = r.reason(), "backend answer body not relayed");
        })?;
    Ok(fields::answer(parts, Bytes::from(body)))
}

/// The client's body, whole: at most `max` bytes, by `deadline`.
async fn read_request_body<B>(body: B, max: usize, deadline: Instant) -> Result<Bytes, Refusal>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A declared length over the bound is refused before a byte is read (and before hyper
    // sends `100 Continue` for it).
    if usize::try_from(body.size_hint().lower()).map_or(true, |n| n > max) {
        return Err(Refusal::RequestBodyTooLarge);
    }
    match timeout_at(deadline, Limited::new(body, max).collect()).await {
        Err(_) => Err(Refusal::RequestBodyTimeout),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Refusal::RequestBodyTooLarge)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "request body broke off");
            Err(Refusal::RequestBodyIncomplete)
        }
        // Trailers, if any, are not forwarded.
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// A connected backend of the pool: the next usable one after each connect failure, up to the
/// pool's `retries`, each attempt within `bounds.connect`, all by `deadline`.
async fn connect(
    to: &Plain<'_>,
    deadline: Instant,
) -> Result<(Arc<Backend>, BackendStream), Refusal> {
    let pool = to.pool;
    let mut tried: Vec<usize> = Vec::new();
    let mut last = None;
    for _ in 0..=pool.retries {
        let Some(backend) = pool.next_untried(&mut tried, to.key) else {
            break;
        };
        let opening = connect::open(pool, &backend, to.client, to.local, to.bounds.connect);
        match timeout_at(deadline, opening).await {
            Ok(Ok(stream)) => return Ok((backend, stream)),
            Ok(Err(refusal)) => {
                backend.health.report_failure(&pool.passive, &backend.url);
                last = Some(refusal);
            }
            Err(_) => {
                tracing::warn!(backend = %backend.url, "backend connect outlasted the request");
                return Err(Refusal::BackendConnectTimeout);
            }
        }
    }
    Err(last.unwrap_or(Refusal::BackendUnavailable))
}

/// The task driving one backend connection. It lives no longer than the exchange (which is
/// bounded): dropping it aborts the task, which closes the connection.
struct Driver(JoinHandle<()>);

impl Driver {
    fn spawn<F>(conn: F) -> Driver
    where
        F: Future<Output = hyper::Result<()>> + Send + 'static,
    {
        let driven = async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "backend connection ended");
            }
        };
        // In the caller's span, so its log lines name the client and the route.
        Driver(tokio::spawn(driven.instrument(tracing::Span::current())))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}
