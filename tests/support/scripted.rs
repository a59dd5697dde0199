//! A misbehaving (or precisely behaving) backend on raw TCP: it reads one request head, answers
//! with bytes a [`Script`] computes, then does what [`Then`] says. Each connection is reported as
//! a [`Seen`] record so tests can assert what the proxy did and did not forward.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::client::ws_config;
use super::{TIMEOUT, read_head_bytes, within};

/// What the backend does after writing its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Keep the connection, recording what arrives, until the proxy closes it.
    Hold,
    /// Close (FIN) right away.
    Close,
    /// Reset (RST) right away.
    Reset,
    /// Act as a WebSocket echo server on the connection (after a 101).
    Echo,
    /// Record until the proxy half-closes, then write `backend-after-eof` and close.
    WriteAfterEof,
    /// Write a text frame `backend-done`, half-close, then record until the proxy closes.
    HalfCloseFirst,
}

type AnswerFn = dyn Fn(&str) -> Vec<u8> + Send + Sync;

/// How the backend answers each connection.
#[derive(Clone)]
pub struct Script {
    answer: Arc<AnswerFn>,
    then: Then,
    quiet: Duration,
}

impl Script {
    /// Answer these exact bytes, then hold the connection.
    pub fn answer(bytes: impl Into<Vec<u8>>) -> Script {
        let bytes = bytes.into();
        Script::answer_with(move |_| bytes.clone())
    }

    /// Answer with bytes computed from the request head, then hold the connection.
    pub fn answer_with(f: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Script {
        Script {
            answer: Arc::new(f),
            then: Then::Hold,
            quiet: Duration::ZERO,
        }
    }

    /// A correct 101 for the request, then a WebSocket echo server.
    pub fn upgrade() -> Script {
        Script::answer_with(|head| upgrade_answer(head, &[]).into_bytes()).then(Then::Echo)
    }

    /// Read the request, never answer, hold the connection.
    pub fn silent() -> Script {
        Script::answer(Vec::new())
    }

    pub fn then(mut self, then: Then) -> Script {
        self.then = then;
        self
    }

    /// Before answering, keep reading for `quiet` and record anything that arrives in
    /// [`Seen::early`]: bytes the proxy must not have sent before it saw our answer.
    pub fn quiet_before_answer(mut self, quiet: Duration) -> Script {
        self.quiet = quiet;
        self
    }
}

/// What the backend saw on one connection.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The request head through its blank line (empty if none arrived).
    pub head: String,
    /// Bytes after the head that arrived before the backend answered.
    pub early: Vec<u8>,
    /// Bytes that arrived after the answer (`Hold`, `WriteAfterEof`, `HalfCloseFirst`).
    pub after: Vec<u8>,
    /// The proxy closed (or half-closed) its side within the timeout.
    pub proxy_closed: bool,
}

pub struct ScriptedBackend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    seen: Mutex<mpsc::UnboundedReceiver<Seen>>,
    task: JoinHandle<()>,
}

impl ScriptedBackend {
    pub async fn start(script: Script) -> ScriptedBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind scripted backend");
        let addr = listener.local_addr().expect("scripted backend address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let acc = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(tcp, script.clone(), tx.clone()));
            }
        });
        ScriptedBackend {
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

    /// The record of the next connection, once the backend is done with it (for `Echo`: once it
    /// answered).
    pub async fn next_seen(&self) -> Seen {
        let mut rx = self.seen.lock().await;
        within("the backend to finish a connection", rx.recv())
            .await
            .expect("backend task alive")
    }
}

impl Drop for ScriptedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut tcp: TcpStream, script: Script, report: mpsc::UnboundedSender<Seen>) {
    let mut seen = Seen::default();
    let Ok(Ok(Some((head, rest)))) = tokio::time::timeout(TIMEOUT, read_head_bytes(&mut tcp)).await
    else {
        seen.proxy_closed = true;
        let _ = report.send(seen);
        return;
    };
    seen.head = String::from_utf8_lossy(&head).into_owned();
    seen.early = rest;
    if !script.quiet.is_zero() {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + script.quiet;
        while let Ok(Ok(n @ 1..)) = tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            seen.early.extend_from_slice(&buf[..n]);
        }
    }
    let answer = (script.answer)(&seen.head);
    if !answer.is_empty() && tcp.write_all(&answer).await.is_err() {
        let _ = report.send(seen);
        return;
    }
    match script.then {
        Then::Hold => seen.proxy_closed = record_until_eof(&mut tcp, &mut seen.after).await,
        Then::Close => drop(tcp),
        Then::Reset => {
            let _ = tcp.set_zero_linger();
            drop(tcp);
        }
        Then::Echo => {
            let early = seen.early.clone();
            let _ = report.send(seen);
            echo(tcp, early).await;
            return;
        }
        Then::WriteAfterEof => {
            seen.proxy_closed = record_until_eof(&mut tcp, &mut seen.after).await;
            let _ = tcp
                .write_all(&super::frames::server_text("backend-after-eof"))
                .await;
            let _ = tcp.shutdown().await;
        }
        Then::HalfCloseFirst => {
            let _ = tcp
                .write_all(&super::frames::server_text("backend-done"))
                .await;
            let _ = tcp.shutdown().await;
            seen.proxy_closed = record_until_eof(&mut tcp, &mut seen.after).await;
        }
    }
    let _ = report.send(seen);
}

/// Append everything read to `out` until EOF or error; false if [`TIMEOUT`] passed first.
async fn record_until_eof(tcp: &mut TcpStream, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 8192];
    let read_all = async {
        while let Ok(n @ 1..) = tcp.read(&mut buf).await {
            out.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(TIMEOUT, read_all).await.is_ok()
}

async fn echo(tcp: TcpStream, early: Vec<u8>) {
    let mut ws =
        WebSocketStream::from_partially_read(tcp, early, Role::Server, Some(ws_config())).await;
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// The `Sec-WebSocket-Accept` for the key in `head` (RFC 6455 §4.2.2 step 5.4).
pub fn accept_for(head: &str) -> String {
    let key = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, v)| v.trim())
        .unwrap_or_default();
    derive_accept_key(key.as_bytes())
}

/// A correct 101 for `head`, with `extra` field lines, ending with the blank line.
pub fn upgrade_answer(head: &str, extra: &[&str]) -> String {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_for(head)
    );
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

/// A listening socket whose accept queue is full, so a connect to it hangs (the kernel drops the
/// SYN): how a black-holed backend looks to the proxy. Keep it alive for the test.
pub struct FullBacklog {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    pub async fn start() -> FullBacklog {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
        // Backlog 0: Linux queues one connection and drops SYNs after that.
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("address");
        let mut queued = Vec::new();
        for _ in 0..8 {
            let attempt = TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(200), attempt).await {
                Ok(Ok(conn)) => queued.push(conn),
                Ok(Err(e)) => panic!("filling the backlog: {e}"),
                Err(_) => {
                    return FullBacklog {
                        addr,
                        _listener: listener,
                        _queued: queued,
                    };
                }
            }
        }
        panic!("the accept queue never filled up");
    }
}
