//! A backend for routes with `http: proxy`: hyper's HTTP/1.1 server, recording every plain
//! request whole (head and body) and answering it, and turning every WebSocket upgrade into an
//! echo session, the way an application serves its page and its socket on one port. Plus a
//! keep-alive HTTP/1.1 client to the proxy that can also upgrade its connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::proxy::TestProxy;
use super::within;

/// A plain request as the backend received it.
#[derive(Debug, Clone)]
pub struct SeenPlain {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// `HTTP/1.1`, ...
    pub version: String,
    /// Names lower-case (as hyper holds them), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SeenPlain {
    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        (self.headers.iter())
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

type AnswerFn = dyn Fn(&SeenPlain) -> Response<Full<Bytes>> + Send + Sync;

pub struct PlainBackend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    seen: Mutex<mpsc::UnboundedReceiver<SeenPlain>>,
    task: JoinHandle<()>,
}

impl Drop for PlainBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PlainBackend {
    /// Answers `200`, `text/plain`, body `plain METHOD TARGET`, at once.
    pub async fn start() -> PlainBackend {
        PlainBackend::answering(Duration::ZERO, |seen| {
            let body = format!("plain {} {}", seen.method, seen.target);
            let mut res = Response::new(Full::new(Bytes::from(body)));
            let text = HeaderValue::from_static("text/plain");
            res.headers_mut().insert(header::CONTENT_TYPE, text);
            res
        })
        .await
    }

    /// Answers each plain request with `answer`, `delay` after it arrived whole (a long poll).
    pub async fn answering(
        delay: Duration,
        answer: impl Fn(&SeenPlain) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> PlainBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("backend address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let answer: Arc<AnswerFn> = Arc::new(answer);
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (tx, answer) = (tx.clone(), Arc::clone(&answer));
                let service = hyper::service::service_fn(move |req| {
                    let (tx, answer) = (tx.clone(), Arc::clone(&answer));
                    async move { Ok::<_, Infallible>(serve(req, delay, &tx, &*answer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                tokio::spawn(conn);
            }
        });
        PlainBackend {
            addr,
            accepted,
            seen: Mutex::new(rx),
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next plain request the backend read whole.
    pub async fn next_request(&self) -> SeenPlain {
        let mut rx = self.seen.lock().await;
        within("a plain request at the backend", rx.recv())
            .await
            .expect("backend running")
    }
}

async fn serve(
    mut req: Request<Incoming>,
    delay: Duration,
    seen: &mpsc::UnboundedSender<SeenPlain>,
    answer: &AnswerFn,
) -> Response<Full<Bytes>> {
    let upgrade = (req.headers().get(header::UPGRADE))
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if let (true, Some(key)) = (upgrade, req.headers().get(header::SEC_WEBSOCKET_KEY)) {
        let accept = derive_accept_key(key.as_bytes());
        let upgraded = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = upgraded.await {
                let mut ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut res = Response::new(Full::default());
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = res.headers_mut();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept).expect("base64 is a valid value"),
        );
        return res;
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let record = SeenPlain {
        method: parts.method.to_string(),
        target: (parts.uri.path_and_query()).map_or_else(String::new, |p| p.to_string()),
        version: format!("{:?}", parts.version),
        headers: (parts.headers.iter())
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: body.to_vec(),
    };
    let res = answer(&record);
    let _ = seen.send(record);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    res
}

/// An HTTP/1.1 client on one TLS connection to the proxy (ALPN `http/1.1`), kept alive across
/// requests; `with_upgrades`, so an upgrade can follow plain requests on the same connection.
pub async fn h1_client(proxy: &TestProxy) -> SendRequest<Full<Bytes>> {
    let tls = super::h2::tls_with_alpn(proxy, &[b"http/1.1"]).await;
    let handshake = hyper::client::conn::http1::handshake(TokioIo::new(tls));
    let (send, conn) = within("the h1 client handshake", handshake)
        .await
        .expect("h1 client handshake");
    tokio::spawn(conn.with_upgrades());
    send
}

/// Send `req` and read the whole answer: status, fields, body.
pub async fn send(
    client: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Vec<u8>) {
    within("the client to be ready", client.ready())
        .await
        .expect("connection open");
    let answer = within("an answer", client.send_request(req)).await;
    let answer = answer.expect("an answer from the proxy");
    let (parts, body) = answer.into_parts();
    let body = within("the answer body", body.collect()).await;
    (
        parts.status,
        parts.headers,
        body.expect("body").to_bytes().to_vec(),
    )
}

/// A plain request with `Host: localhost`.
pub fn plain(method: &str, target: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(target)
        .header(header::HOST, "localhost")
        .body(Full::new(body.into()))
        .expect("a valid request")
}
