//! A well-behaved WebSocket backend: echoes text and binary, answers pings (tungstenite does),
//! picks the first subprotocol the client offered, and records every request head it accepted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::client::ws_config;

/// A request head as the backend received it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// Origin-form target: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// Every value of `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of `name`; panics when there are several.
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(
            all.len() <= 1,
            "{name} appears {} times: {all:?}",
            all.len()
        );
        all.into_iter().next()
    }
}

pub struct EchoBackend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
    task: JoinHandle<()>,
}

impl EchoBackend {
    pub async fn start() -> EchoBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo backend");
        let addr = listener.local_addr().expect("echo backend address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (acc, reqs) = (accepted.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(echo(tcp, reqs.clone()));
            }
        });
        EchoBackend {
            addr,
            accepted,
            requests,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connections accepted so far (the proxy connected, whatever it sent).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Request heads accepted so far, in order. A head is recorded before its 101 is sent.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests
            .lock()
            .expect("no panics while locked")
            .clone()
    }

    /// The only request seen; panics unless there was exactly one.
    pub fn only_request(&self) -> SeenRequest {
        let all = self.requests();
        assert_eq!(all.len(), 1, "expected exactly one request: {all:#?}");
        all.into_iter().next().expect("length checked")
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(tcp: TcpStream, requests: Arc<Mutex<Vec<SeenRequest>>>) {
    // The error type is tungstenite's `ErrorResponse`, fixed by its `Callback` trait.
    #[allow(clippy::result_large_err)]
    let record = move |req: &Request, mut resp: Response| {
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let target = req
            .uri()
            .path_and_query()
            .map(|pq| pq.to_string())
            .unwrap_or_default();
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|p| p.trim().to_string());
        if let Some(p) = offered {
            let value = HeaderValue::from_str(&p).expect("offered token is a valid value");
            resp.headers_mut().insert("sec-websocket-protocol", value);
        }
        let seen = SeenRequest { target, headers };
        requests.lock().expect("no panics while locked").push(seen);
        Ok(resp)
    };
    let accept = tokio_tungstenite::accept_hdr_async_with_config(tcp, record, Some(ws_config()));
    let Ok(mut ws) = accept.await else { return };
    // tungstenite answers Ping and Close by itself; the stream ends after the close handshake.
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}
