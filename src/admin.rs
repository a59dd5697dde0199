//! The admin endpoint: a tiny HTTP/1.1 server for operators and orchestrators.
//!
//! `GET /metrics` (the [`Metrics`] exposition), `GET /healthz` (200 while the process serves),
//! `GET /readyz` (200 `ready`, or 503 `draining` once the shared ready flag is cleared). Anything
//! else is 404, a method other than GET is 405. One request per connection: the head is read
//! with the data path's reader ([`head::read_raw`] + [`head::parse_request`]) within
//! [`HEAD_TIMEOUT`] and [`MAX_HEAD_BYTES`], answered, and the connection closed.
//!
//! Does not own binding (the caller passes a listener; `admin: { bind }` in the config), flipping
//! the ready flag (the gateway clears it when a drain starts), or the metrics themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Metrics};
use crate::proxy::head;

/// Whole request head within this long, or the connection is closed unanswered.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header fields in a request head.
const MAX_FIELDS: usize = 32;
/// Writing the answer may take this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Admin connections served at once; more wait in the kernel backlog.
const MAX_CONNECTIONS: usize = 16;
/// Pause after an accept error (EMFILE and friends), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

const TEXT: &str = "text/plain; charset=utf-8";

/// Serve admin requests on `listener` until `stop` is cancelled. Connections being answered when
/// it returns finish on their own, each bounded by [`HEAD_TIMEOUT`] and the write timeout.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    stop: CancellationToken,
) {
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
            r = listener.accept() => r,
        };
        let mut tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (metrics, ready) = (Arc::clone(&metrics), Arc::clone(&ready));
        tokio::spawn(async move {
            answer(&mut tcp, &metrics, &ready).await;
            drop(permit);
        });
    }
}

/// Read one request head and write its answer; a bad or slow head just closes.
async fn answer(tcp: &mut TcpStream, metrics: &Metrics, ready: &AtomicBool) {
    let read = tokio::time::timeout(HEAD_TIMEOUT, head::read_raw(tcp, MAX_HEAD_BYTES, None)).await;
    let Ok(Ok((buf, len))) = read else { return };
    let Ok(request) = head::parse_request(buf, len, MAX_FIELDS) else {
        let _ = write(tcp, &response(400, TEXT, b"bad request\n", &[])).await;
        return;
    };
    let path = request.target.split('?').next().unwrap_or_default();
    let out = route(&request.method, path, metrics, ready);
    if write(tcp, &out).await.is_err() {
        tracing::debug!("admin client went away before its answer");
    }
}

/// The answer to `method path`.
fn route(method: &str, path: &str, metrics: &Metrics, ready: &AtomicBool) -> Vec<u8> {
    let known = matches!(path, "/metrics" | "/healthz" | "/readyz");
    if !known {
        return response(404, TEXT, b"not found\n", &[]);
    }
    if method != "GET" {
        return response(405, TEXT, b"method not allowed\n", &[("Allow", "GET")]);
    }
    match path {
        "/metrics" => response(200, metrics::CONTENT_TYPE, metrics.encode().as_bytes(), &[]),
        "/healthz" => response(200, TEXT, b"ok\n", &[]),
        _ if ready.load(Ordering::Acquire) => response(200, TEXT, b"ready\n", &[]),
        _ => response(503, TEXT, b"draining\n", &[]),
    }
}

fn response(status: u16, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

async fn write(tcp: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
        tcp.write_all(bytes).await?;
        tcp.shutdown().await
    });
    sent.await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(out: &[u8]) -> &str {
        std::str::from_utf8(&out[9..12]).expect("ascii status")
    }

    #[test]
    fn routes_answer_by_path_then_method() {
        let m = Metrics::new();
        let ready = AtomicBool::new(true);
        assert_eq!(status_of(&route("GET", "/healthz", &m, &ready)), "200");
        assert_eq!(status_of(&route("GET", "/readyz", &m, &ready)), "200");
        assert_eq!(status_of(&route("GET", "/metrics", &m, &ready)), "200");
        assert_eq!(status_of(&route("GET", "/nope", &m, &ready)), "404");
        let post = route("POST", "/metrics", &m, &ready);
        assert_eq!(status_of(&post), "405");
        assert!(String::from_utf8_lossy(&post).contains("Allow: GET\r\n"));
        ready.store(false, Ordering::Release);
        let draining = route("GET", "/readyz", &m, &ready);
        assert_eq!(status_of(&draining), "503");
        assert!(draining.ends_with(b"\r\n\r\ndraining\n"));
    }
}
