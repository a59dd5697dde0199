//! A raw WebSocket peer on either leg of a tunnel, for the session close tests: it records every
//! byte the proxy sent it (so a test can assert exactly which frames a leg got, in which order,
//! and that nothing followed a Close), writes whatever frames the test hands it, and answers
//! Pings and Closes only when its [`Manners`] say so. [`RawBackend`] puts one behind the proxy
//! (after a 101 it writes itself), [`raw_client`] in front of it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::{Answer, read_head};
use super::frames::{self, Frame};
use super::head::Head;
use super::proxy::TestProxy;
use super::scripted::upgrade_answer;
use super::{eventually, read_head_bytes, within};

/// The text a peer with [`Manners::late`] sends after it got a Close, before its reply: it must
/// never reach the other leg.
pub const LATE: &str = "late";

/// How a peer reacts on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Manners {
    /// Answer each Ping with a Pong carrying its payload.
    pub pong: bool,
    /// Answer the first Close with a Close carrying the same code (nothing for a bare Close).
    pub reply_close: bool,
    /// Before that reply, send a text frame [`LATE`].
    pub late: bool,
    /// Mask what it sends (a client).
    pub masked: bool,
}

impl Manners {
    /// Answers Pings and Closes, like a well-behaved peer.
    pub fn polite(masked: bool) -> Manners {
        Manners {
            pong: true,
            reply_close: true,
            late: false,
            masked,
        }
    }
}

enum Cmd {
    Bytes(Vec<u8>),
    Shutdown,
}

/// One side of a tunnel, driven by the test.
pub struct Peer {
    tx: mpsc::UnboundedSender<Cmd>,
    log: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
}

impl Peer {
    /// Run `stream` as a peer; `early` are bytes already read past the handshake head.
    pub fn spawn<S>(stream: S, early: Vec<u8>, manners: Manners) -> Peer
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let eof = Arc::new(AtomicBool::new(false));
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                let ok = match cmd {
                    Cmd::Bytes(b) => wr.write_all(&b).await.is_ok(),
                    Cmd::Shutdown => wr.shutdown().await.is_ok(),
                };
                if !ok {
                    break;
                }
            }
        });
        let (auto, record, done) = (tx.clone(), log.clone(), eof.clone());
        tokio::spawn(async move {
            let mut scan = Scan::default();
            let mut replied = false;
            let mut chunk = vec![0u8; 64 * 1024];
            let mut data = early;
            loop {
                record.lock().expect("no panics while locked").extend(&data);
                for f in scan.feed(&data) {
                    react(&f, manners, &mut replied, &auto);
                }
                // An error (reset, TLS close without close_notify) ends the connection too.
                match rd.read(&mut chunk).await {
                    Ok(n @ 1..) => data = chunk[..n].to_vec(),
                    _ => break,
                }
            }
            done.store(true, Ordering::SeqCst);
            // Like a real peer, hang up once the other end did.
            let _ = auto.send(Cmd::Shutdown);
        });
        Peer { tx, log, eof }
    }

    /// Write `bytes` (frames made with [`super::frames`]).
    pub fn send(&self, bytes: impl Into<Vec<u8>>) {
        let _ = self.tx.send(Cmd::Bytes(bytes.into()));
    }

    /// Half-close the write side (FIN).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Cmd::Shutdown);
    }

    /// How many bytes arrived so far.
    pub fn received_len(&self) -> usize {
        self.log.lock().expect("no panics while locked").len()
    }

    /// Every frame received so far, and a trailing partial frame.
    pub fn frames(&self) -> (Vec<Frame>, Vec<u8>) {
        frames::parse(&self.log.lock().expect("no panics while locked"))
    }

    /// The proxy closed this connection.
    pub fn ended(&self) -> bool {
        self.eof.load(Ordering::SeqCst)
    }

    /// Wait until the frames received satisfy `cond`; returns them.
    pub async fn until(&self, what: &str, cond: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
        eventually(what, || cond(&self.frames().0)).await;
        self.frames().0
    }

    /// Wait until a Close arrived; returns the frames so far.
    pub async fn until_close(&self, leg: &str) -> Vec<Frame> {
        let what = format!("a Close on the {leg} leg");
        self.until(&what, |f| f.iter().any(|f| f.opcode() == 8))
            .await
    }

    /// Wait until the proxy closed the connection; returns every frame, and asserts nothing
    /// partial was left.
    pub async fn closed(&self, leg: &str) -> Vec<Frame> {
        eventually(&format!("the proxy to close the {leg} leg"), || {
            self.ended()
        })
        .await;
        let (all, rest) = self.frames();
        assert!(
            rest.is_empty(),
            "{leg} leg: a partial frame {rest:?} after {all:?}"
        );
        all
    }
}

fn react(f: &Frame, m: Manners, replied: &mut bool, out: &mpsc::UnboundedSender<Cmd>) {
    match f.opcode() {
        0x9 if m.pong => {
            let _ = out.send(Cmd::Bytes(frames::frame(0x8a, &f.payload, m.masked)));
        }
        0x8 if m.reply_close && !*replied => {
            *replied = true;
            if m.late {
                let _ = out.send(Cmd::Bytes(frames::frame(0x81, LATE.as_bytes(), m.masked)));
            }
            let code = f.payload.get(..2).unwrap_or_default();
            let _ = out.send(Cmd::Bytes(frames::frame(0x88, code, m.masked)));
        }
        _ => {}
    }
}

/// Finds control frames in a stream without holding data payloads (16 MiB messages pass).
#[derive(Default)]
struct Scan {
    buf: Vec<u8>,
    skip: usize,
}

impl Scan {
    fn feed(&mut self, mut data: &[u8]) -> Vec<Frame> {
        let n = self.skip.min(data.len());
        self.skip -= n;
        data = &data[n..];
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while self.buf.len() >= 2 {
            let masked = self.buf[1] & 0x80 != 0;
            let (len, head) = match self.buf[1] & 0x7f {
                126 if self.buf.len() >= 4 => {
                    (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                }
                127 if self.buf.len() >= 10 => {
                    let mut n = [0; 8];
                    n.copy_from_slice(&self.buf[2..10]);
                    (u64::from_be_bytes(n) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            let whole = head + if masked { 4 } else { 0 } + len;
            if self.buf[0] & 0x08 != 0 {
                if self.buf.len() < whole {
                    break;
                }
                out.extend(frames::parse(&self.buf[..whole]).0);
                self.buf.drain(..whole);
            } else if self.buf.len() >= whole {
                self.buf.drain(..whole);
            } else {
                self.skip = whole - self.buf.len();
                self.buf.clear();
            }
        }
        out
    }
}

/// A backend on `127.0.0.1:0` that answers each upgrade with a correct 101 (plus `extra` field
/// lines) and hands the connection to the test as a [`Peer`].
pub struct RawBackend {
    addr: SocketAddr,
    conns: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Peer)>>,
    task: JoinHandle<()>,
}

impl RawBackend {
    pub async fn start(extra: &[&str], manners: Manners) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind raw backend");
        let addr = listener.local_addr().expect("raw backend address");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let Ok(Some((head, early))) = read_head_bytes(&mut tcp).await else {
                    continue;
                };
                let head = String::from_utf8_lossy(&head).into_owned();
                let lines: Vec<&str> = extra.iter().map(String::as_str).collect();
                let answer = upgrade_answer(&head, &lines);
                if tcp.write_all(answer.as_bytes()).await.is_ok() {
                    let _ = tx.send((head, Peer::spawn(tcp, early, manners)));
                }
            }
        });
        RawBackend {
            addr,
            conns: tokio::sync::Mutex::new(rx),
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next upgraded connection: its request head and the peer.
    pub async fn next(&self) -> (String, Peer) {
        let mut rx = self.conns.lock().await;
        within("the proxy to connect to the backend", rx.recv())
            .await
            .expect("raw backend task alive")
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Send `head` through `proxy`, expect a 101, and run the connection as a client [`Peer`].
pub async fn raw_client(proxy: &TestProxy, head: &Head, manners: Manners) -> (Answer, Peer) {
    let mut conn = proxy.connect().await;
    within("writing the request", conn.write_all(&head.bytes()))
        .await
        .expect("write request");
    let mut answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101, "expected a tunnel, got {answer:#?}");
    let early = std::mem::take(&mut answer.body);
    (answer, Peer::spawn(conn, early, manners))
}
