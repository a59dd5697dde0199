//! The admin endpoint: a small HTTP/1.1 server (hyper) for operators and orchestrators.
//!
//! Open to anyone who can reach the admin address: `GET /metrics` (the [`Metrics`] exposition),
//! `GET /healthz` (200 while the process serves), `GET /readyz` (200 `ready`, or 503 `draining`
//! once the shared ready flag is cleared). Behind the bearer token when one is configured:
//! `GET /sessions` and `POST /sessions/close` ([`sessions`]), `GET /fleet` ([`fleet`]). Anything else is 404; a known path
//! with another method is 405 with `Allow`.
//!
//! This module owns the serve loop and its bounds: at most [`MAX_CONNECTIONS`] connections at
//! once (a permit is taken before `accept`), the request head within [`HEAD_TIMEOUT`] (hyper's
//! `header_read_timeout`) and [`MAX_HEAD_BYTES`], one request per connection, each connection
//! over within [`CONNECTION_TIMEOUT`], and `stop` ending the loop and asking open connections
//! to finish. It also owns routing, the bearer check and the plain answers.
//!
//! Does not own binding ([`listen`]: TCP or a Unix socket; [`server`] binds and rebinds on
//! reload what `admin: { bind }` names), reading
//! the token from the environment (the runtime does, from `admin.token_env`), flipping the ready
//! flag (the gateway clears it when a drain starts), the metrics themselves, or how a session
//! honours a close request (`crate::session`, the tunnel task). The `wsgate sessions` client is
//! [`cli`].

pub mod cli;
pub mod client;
pub mod fleet;
pub mod listen;
pub mod server;
pub mod sessions;
pub mod time;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::cluster::Fleet;
use crate::metrics::{self, Metrics};

/// Whole request head within this long, or the connection is closed unanswered.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read (hyper's read buffer; also its minimum).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A whole connection (head, body, answer) is over within this long.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Admin connections served at once; more wait in the kernel backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// Most header fields in a request head.
const MAX_FIELDS: usize = 32;
/// Pause after an accept error (EMFILE and friends), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// An admin answer.
pub type Answer = Response<Full<Bytes>>;

/// What the admin routes read.
struct Shared {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    fleet: Arc<Fleet>,
    token: Option<String>,
}

/// Serve admin requests on `listener` (a `TcpListener` or a bound [`listen::AdminListener`])
/// until `stop` is cancelled; a Unix socket file is removed when this returns. `token`, when given, is the
/// bearer `/sessions` and `/sessions/close` require (an empty one admits nobody). Connections open when `stop` fires are
/// asked to finish their answer and close, each still bounded by [`CONNECTION_TIMEOUT`].
pub async fn serve(
    listener: impl Into<listen::AdminListener>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    fleet: Arc<Fleet>,
    token: Option<String>,
    stop: CancellationToken,
) {
    let shared = Arc::new(Shared {
        metrics,
        ready,
        fleet,
        token,
    });
    let listener = listener.into();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            p = Arc::clone(&slots).acquire_owned() => p,
        };
        // The semaphore is never closed, so this only fails if that changes: stop serving then.
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            r = accept(&listener) => r,
        };
        let (shared, stop) = (Arc::clone(&shared), stop.clone());
        match accepted {
            Ok(Accepted::Tcp(io)) => {
                tokio::spawn(async move {
                    connection(io, shared, stop).await;
                    drop(permit);
                });
            }
            Ok(Accepted::Unix(io)) => {
                tokio::spawn(async move {
                    connection(io, shared, stop).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// An accepted admin connection.
enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &listen::AdminListener) -> std::io::Result<Accepted> {
    match listener {
        listen::AdminListener::Tcp(l) => l.accept().await.map(|(io, _)| Accepted::Tcp(io)),
        listen::AdminListener::Unix(l, _) => l.accept().await.map(|(io, _)| Accepted::Unix(io)),
    }
}

/// One connection: one request, answered, then closed; bounded as the module doc says.
async fn connection<IO>(io: IO, shared: Arc<Shared>, stop: CancellationToken)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(answer(req, &shared).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_FIELDS)
        .keep_alive(false);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let bounded = tokio::time::timeout(CONNECTION_TIMEOUT, async {
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            () = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    });
    match bounded.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "admin connection ended with an error"),
        Err(_) => tracing::debug!("admin connection took too long; closed"),
    }
}

/// Route one request: path, then the bearer (for the session routes), then method.
async fn answer(req: Request<Incoming>, shared: &Shared) -> Answer {
    let path = req.uri().path().to_owned();
    let protected = matches!(path.as_str(), "/sessions" | "/sessions/close" | "/fleet");
    if protected && !authorized(req.headers(), shared.token.as_deref()) {
        let mut out = sessions::error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        out.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return out;
    }
    let allow = match path.as_str() {
        "/metrics" | "/healthz" | "/readyz" | "/sessions" | "/fleet" => "GET",
        "/sessions/close" => "POST",
        _ => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    if req.method().as_str() != allow {
        let mut out = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        out.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return out;
    }
    match path.as_str() {
        "/metrics" => plain(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            shared.metrics.encode().into(),
        ),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if shared.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/sessions" => sessions::list(req.uri().query(), shared.fleet.sessions()),
        "/fleet" => fleet::list(&shared.fleet).await,
        _ => sessions::close(req.into_body(), &shared.fleet).await,
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>` (always true with no token set;
/// never with an empty one: that fails closed). The token is compared in constant time; the
/// scheme is case-insensitive (RFC 7235 §2.1).
fn authorized(headers: &hyper::HeaderMap, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    if token.is_empty() {
        return false;
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let Some((scheme, given)) = value.as_bytes().split_at_checked(7) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(b"bearer ")
        && aws_lc_rs::constant_time::verify_slices_are_equal(given, token.as_bytes()).is_ok()
}

/// An answer with `body` as `content_type`, never cached.
fn plain(status: StatusCode, content_type: &'static str, body: Bytes) -> Answer {
    let mut out = Response::new(Full::new(body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

fn text(status: StatusCode, body: &'static str) -> Answer {
    plain(status, TEXT, Bytes::from_static(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("test header"),
        );
        h
    }

    #[test]
    fn bearer_must_match_when_a_token_is_set() {
        let token = Some("s3cret");
        assert!(authorized(&hyper::HeaderMap::new(), None));
        assert!(!authorized(&hyper::HeaderMap::new(), token));
        assert!(authorized(&with_auth("Bearer s3cret"), token));
        assert!(authorized(&with_auth("bearer s3cret"), token));
        assert!(!authorized(&with_auth("Bearer s3cre"), token));
        assert!(!authorized(&with_auth("Bearer s3cret2"), token));
        assert!(!authorized(&with_auth("Basic s3cret"), token));
        assert!(!authorized(&with_auth("Bearer"), token));
        assert!(!authorized(&with_auth("Bearer "), Some("")));
    }
}
