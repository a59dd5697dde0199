//! Backends for the pool tests. Several [`PoolBackend`]s share one [`Visits`] log, so a test can
//! say which backend took each handshake and in what order. A backend greets every tunnel with
//! its name, then echoes; it can speak TLS (certificates from a [`BackendCa`], a client
//! certificate required or not), read a PROXY header first, fail its [`HEALTH`] endpoint on
//! demand, and close or reopen its port. Health probes are counted, not logged as visits: a probe
//! arriving proves the proxy finished judging the one before (a checker probes one at a time).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;

use super::client::{Answer, Ws, next_message, read_head};
use super::expect::Backend;
use super::head::Head;
use super::proxy::TestProxy;
use super::{TIMEOUT, within};

mod ca;
mod logs;

pub use ca::BackendCa;
pub use logs::{Logs, capture_logs};

/// The path of every backend's health endpoint.
pub const HEALTH: &str = "/health";

/// One upgrade a backend accepted (health probes excluded).
#[derive(Debug, Clone)]
pub struct Visit {
    pub backend: String,
    /// Origin-form target: path and query.
    pub target: String,
    /// The PROXY header read before the request, for backends that expect one.
    pub proxy: Option<ProxyHeader>,
}

/// Addresses and version of a PROXY header, as `ppp` parsed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    pub version: u8,
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

/// The visits of every backend of a test, in the order the backends accepted them.
#[derive(Debug, Clone, Default)]
pub struct Visits(Arc<Mutex<Vec<Visit>>>);

impl Visits {
    pub fn new() -> Visits {
        Visits::default()
    }

    pub fn all(&self) -> Vec<Visit> {
        self.0.lock().expect("no panics while locked").clone()
    }

    /// The backend of each visit, in order.
    pub fn names(&self) -> Vec<String> {
        self.all().into_iter().map(|v| v.backend).collect()
    }

    /// Visits `backend` accepted.
    pub fn count(&self, backend: &str) -> usize {
        self.all().iter().filter(|v| v.backend == backend).count()
    }

    fn push(&self, visit: Visit) {
        self.0.lock().expect("no panics while locked").push(visit);
    }
}

/// How a [`PoolBackend`] talks.
#[derive(Clone, Default)]
pub struct Options {
    /// Terminate TLS with this configuration (a `wss://` backend).
    pub tls: Option<Arc<ServerConfig>>,
    /// Read a PROXY header (v1 or v2) before anything else, on the TCP stream.
    pub proxy_protocol: bool,
}

struct Shared {
    name: String,
    options: Options,
    visits: Visits,
    healthy: AtomicBool,
    accepted: AtomicUsize,
    health_passed: AtomicUsize,
    health_failed: AtomicUsize,
}

pub struct PoolBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl PoolBackend {
    /// A plain `ws://` backend named `name`, logging into `visits`.
    pub async fn start(name: &str, visits: &Visits) -> PoolBackend {
        PoolBackend::start_with(name, visits, Options::default()).await
    }

    pub async fn start_with(name: &str, visits: &Visits, options: Options) -> PoolBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind pool backend");
        let addr = listener.local_addr().expect("pool backend address");
        let shared = Arc::new(Shared {
            name: name.into(),
            options,
            visits: visits.clone(),
            healthy: AtomicBool::new(true),
            accepted: AtomicUsize::new(0),
            health_passed: AtomicUsize::new(0),
            health_failed: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        PoolBackend {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT`, or `wss://` for a TLS backend.
    pub fn url(&self) -> String {
        let scheme = if self.shared.options.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// TCP connections accepted so far (handshakes, health probes, anything).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Answer [`HEALTH`] with 101 (true) or 503 (false) from now on.
    pub fn set_healthy(&self, healthy: bool) {
        self.shared.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Health probes answered 101 so far.
    pub fn health_passed(&self) -> usize {
        self.shared.health_passed.load(Ordering::SeqCst)
    }

    /// Health probes answered 503 so far.
    pub fn health_failed(&self) -> usize {
        self.shared.health_failed.load(Ordering::SeqCst)
    }

    /// Stop listening: connects to the port are refused until [`Self::reopen_port`].
    pub fn close_port(&self) {
        if let Some(task) = self.accept.lock().expect("no panics while locked").take() {
            task.abort();
        }
    }

    /// Listen on the same port again.
    pub async fn reopen_port(&self) {
        // The abort of the old accept loop (and its listener) takes effect when it is polled.
        let listener = within("rebinding the backend port", async {
            loop {
                match TcpListener::bind(self.addr).await {
                    Ok(listener) => return listener,
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        })
        .await;
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&self.shared)));
        *self.accept.lock().expect("no panics while locked") = Some(task);
    }
}

impl Backend for PoolBackend {
    fn accepted(&self) -> usize {
        PoolBackend::accepted(self)
    }
}

impl Drop for PoolBackend {
    fn drop(&mut self) {
        self.close_port();
    }
}

/// A `ws://` URL on which nothing listens: the port was bound, then released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to release");
    let addr = listener.local_addr().expect("released port address");
    format!("ws://{addr}")
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((tcp, _)) = listener.accept().await {
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve(tcp, Arc::clone(&shared)));
    }
}

async fn serve(mut tcp: TcpStream, shared: Arc<Shared>) {
    let mut proxy = None;
    if shared.options.proxy_protocol {
        match tokio::time::timeout(TIMEOUT, read_proxy_header(&mut tcp)).await {
            Ok(Some(header)) => proxy = Some(header),
            _ => return,
        }
    }
    match &shared.options.tls {
        None => session(tcp, &shared, proxy).await,
        Some(config) => {
            let accept = TlsAcceptor::from(Arc::clone(config)).accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(TIMEOUT, accept).await {
                session(tls, &shared, proxy).await;
            }
        }
    }
}

/// Accept the upgrade (or refuse an unhealthy health probe); greet a tunnel with the backend's
/// name, then echo until the peer leaves.
async fn session<S>(stream: S, shared: &Shared, proxy: Option<ProxyHeader>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut probe = false;
    // The error type is tungstenite's `ErrorResponse`, fixed by its `Callback` trait.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == HEALTH {
            probe = true;
            if shared.healthy.load(Ordering::SeqCst) {
                shared.health_passed.fetch_add(1, Ordering::SeqCst);
                return Ok(resp);
            }
            shared.health_failed.fetch_add(1, Ordering::SeqCst);
            let mut refusal = http::Response::new(Some("unhealthy".to_owned()));
            *refusal.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            return Err(refusal);
        }
        let target = req.uri().path_and_query().map(|pq| pq.to_string());
        shared.visits.push(Visit {
            backend: shared.name.clone(),
            target: target.unwrap_or_default(),
            proxy,
        });
        Ok(resp)
    };
    let accepted = tokio_tungstenite::accept_hdr_async(stream, callback).await;
    let Ok(mut ws) = accepted else { return };
    if !probe && ws.send(Message::text(shared.name.clone())).await.is_err() {
        return;
    }
    // tungstenite answers Ping and Close by itself; the stream ends after the close handshake.
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// Read exactly one PROXY header, so nothing after it is consumed; `None` if it is not one.
async fn read_proxy_header(tcp: &mut TcpStream) -> Option<ProxyHeader> {
    use ppp::HeaderResult;
    let mut buf = vec![tcp.read_u8().await.ok()?];
    if buf[0] == b'P' {
        // v1: one text line of at most 107 bytes.
        while !buf.ends_with(b"\r\n") && buf.len() < 107 {
            buf.push(tcp.read_u8().await.ok()?);
            if buf.len() <= 6 && !b"PROXY ".starts_with(&buf) {
                return None;
            }
        }
    } else {
        // v2: 16 bytes, the last two the length of the rest.
        buf.resize(16, 0);
        tcp.read_exact(&mut buf[1..]).await.ok()?;
        if buf[..12] != *b"\r\n\r\n\0\r\nQUIT\n" {
            return None;
        }
        let rest = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        buf.resize(16 + rest, 0);
        tcp.read_exact(&mut buf[16..]).await.ok()?;
    }
    let (version, source, destination) = match HeaderResult::parse(&buf) {
        HeaderResult::V1(Ok(h)) => match h.addresses {
            ppp::v1::Addresses::Tcp4(a) => (
                1,
                (a.source_address, a.source_port).into(),
                (a.destination_address, a.destination_port).into(),
            ),
            ppp::v1::Addresses::Tcp6(a) => (
                1,
                (a.source_address, a.source_port).into(),
                (a.destination_address, a.destination_port).into(),
            ),
            ppp::v1::Addresses::Unknown => return None,
        },
        HeaderResult::V2(Ok(h)) => match h.addresses {
            ppp::v2::Addresses::IPv4(a) => (
                2,
                (a.source_address, a.source_port).into(),
                (a.destination_address, a.destination_port).into(),
            ),
            ppp::v2::Addresses::IPv6(a) => (
                2,
                (a.source_address, a.source_port).into(),
                (a.destination_address, a.destination_port).into(),
            ),
            _ => return None,
        },
        _ => return None,
    };
    Some(ProxyHeader {
        version,
        source,
        destination,
    })
}

// ---- what clients get ----

/// A WebSocket through the proxy to `path`: the name the backend greeted it with, and the tunnel.
pub async fn tunnel(proxy: &TestProxy, path: &str) -> (String, Ws) {
    let mut ws = proxy.ws_connect(path).await;
    match next_message(&mut ws).await {
        Message::Text(name) => (name.to_string(), ws),
        other => panic!("expected the backend's greeting, got {other:?}"),
    }
}

/// `n` tunnels to `path` one after another, each dropped before the next: who took each.
pub async fn landings(proxy: &TestProxy, path: &str, n: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(tunnel(proxy, path).await.0);
    }
    names
}

/// Send an upgrade for `target` and read only the answer head (a 101 or a refusal).
pub async fn answer_to(proxy: &TestProxy, target: &str) -> Answer {
    let mut conn = proxy.connect().await;
    within(
        "writing the request",
        conn.write_all(&Head::upgrade(target).bytes()),
    )
    .await
    .expect("write request");
    read_head(&mut conn).await
}
