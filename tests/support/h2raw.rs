//! A hand-written HTTP/2 client for what hyper's client will not do: read the server's SETTINGS
//! as sent, open more streams than the server allows, send a header list larger than it
//! accepts, reset a stream, and leave PINGs unanswered.
//!
//! Frames per RFC 9113 §4–6, fields through [`super::hpack`] (literals out, `:status` in).
//! WebSockets on the streams are small unfragmented frames (RFC 6455 §5), masked outbound.

use std::collections::{HashMap, HashSet};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::TlsClient;
use super::h2::tls_with_alpn;
use super::hpack::{put_string, status};
use super::proxy::TestProxy;
use super::within;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// RFC 9113 §6.5.2 setting identifiers.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;
/// RFC 8441 §3.
pub const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
/// RFC 9113 §7 error codes.
pub const CANCEL: u32 = 0x8;
pub const REFUSED_STREAM: u32 = 0x7;

/// How the server answered a stream: a status, or a reset with its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(Option<u16>),
    Reset(u32),
}

/// One raw h2 connection over TLS (ALPN `h2`), past both prefaces.
pub struct RawH2 {
    tls: TlsClient,
    inbox: Vec<u8>,
    /// The server's first SETTINGS frame, in the order sent.
    pub settings: Vec<(u16, u32)>,
    /// Whether PINGs are acknowledged as they are read (a live client); off, none ever is.
    pub answer_pings: bool,
    /// PINGs (not acks) the server sent so far.
    pub pings: usize,
    /// The error code of the server's GOAWAY, once one came.
    pub goaway: Option<u32>,
    replies: HashMap<u32, Reply>,
    data: HashMap<u32, Vec<u8>>,
    ended: HashSet<u32>,
    next_stream: u32,
}

impl RawH2 {
    /// TLS offering only `h2`, the client preface with generous receive windows, and the
    /// server's SETTINGS read and acknowledged.
    pub async fn connect(proxy: &TestProxy) -> RawH2 {
        let tls = tls_with_alpn(proxy, &[b"h2"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut c = RawH2 {
            tls,
            inbox: Vec::new(),
            settings: Vec::new(),
            answer_pings: true,
            pings: 0,
            goaway: None,
            replies: HashMap::new(),
            data: HashMap::new(),
            ended: HashSet::new(),
            next_stream: 1,
        };
        let mut hello = PREFACE.to_vec();
        let window = 1u32 << 20;
        let mut ours = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
        ours.extend_from_slice(&window.to_be_bytes());
        hello.extend(frame(SETTINGS, 0, 0, &ours));
        hello.extend(frame(WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes()));
        c.write(&hello).await;
        c.until("the server's SETTINGS", |c| {
            (!c.settings.is_empty()).then_some(())
        })
        .await;
        c
    }

    /// The value the server's SETTINGS gave `id`, if it named it.
    pub fn setting(&self, id: u16) -> Option<u32> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| *v)
    }

    /// Send an extended CONNECT (`:protocol websocket`) for `path` with extra fields; returns the
    /// stream id. Does not wait for the answer.
    pub async fn open(&mut self, path: &str, extra: &[(&str, &str)]) -> u32 {
        let id = self.next_stream;
        self.next_stream += 2;
        let mut block = Vec::new();
        let base = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", path),
            ("sec-websocket-version", "13"),
        ];
        for (name, value) in base.iter().chain(extra) {
            block.push(0x00);
            put_string(&mut block, name.as_bytes());
            put_string(&mut block, value.as_bytes());
        }
        self.write(&frame(HEADERS, END_HEADERS, id, &block)).await;
        id
    }

    /// The server's answer on `stream` (its first HEADERS, or a reset).
    pub async fn reply(&mut self, stream: u32) -> Reply {
        let what = format!("an answer on stream {stream}");
        self.until(&what, |c| c.replies.get(&stream).copied()).await
    }

    /// A WebSocket on a new stream to `path`; panics unless the answer is 200.
    pub async fn websocket(&mut self, path: &str) -> u32 {
        let id = self.open(path, &[]).await;
        assert_eq!(self.reply(id).await, Reply::Status(Some(200)), "{path}");
        id
    }

    /// Send a masked WebSocket frame with `opcode` on `stream`.
    pub async fn send_ws(&mut self, stream: u32, opcode: u8, payload: &[u8]) {
        assert!(payload.len() < 126, "small frames only");
        let mask = [0x5a, 0x17, 0xc3, 0x88];
        let mut ws = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        ws.extend_from_slice(&mask);
        ws.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        self.write(&frame(DATA, 0, stream, &ws)).await;
    }

    /// The next whole WebSocket frame on `stream`: `(opcode, payload)`.
    pub async fn ws_frame(&mut self, stream: u32) -> (u8, Vec<u8>) {
        let what = format!("a WebSocket frame on stream {stream}");
        self.until(&what, |c| {
            let buf = c.data.get_mut(&stream)?;
            let (opcode, payload, used) = parse_ws(buf)?;
            buf.drain(..used);
            Some((opcode, payload))
        })
        .await
    }

    /// Send `text` on `stream` and check it comes back.
    pub async fn echo(&mut self, stream: u32, text: &str) {
        self.send_ws(stream, 0x1, text.as_bytes()).await;
        let (opcode, payload) = self.ws_frame(stream).await;
        assert_eq!((opcode, payload.as_slice()), (0x1, text.as_bytes()));
    }

    /// RST_STREAM on `stream` with `code`.
    pub async fn reset(&mut self, stream: u32, code: u32) {
        self.write(&frame(RST_STREAM, 0, stream, &code.to_be_bytes()))
            .await;
    }

    /// Whether the server ended `stream` (END_STREAM or RST_STREAM seen).
    pub fn ended(&self, stream: u32) -> bool {
        self.ended.contains(&stream)
    }

    /// Read frames until the connection ends (EOF, TLS error); `GOAWAY` is recorded on the way.
    pub async fn until_closed(&mut self) {
        within("the server to close the connection", async {
            while self.pump().await {}
        })
        .await;
    }

    /// Read frames until `done` gives a value; panics if the connection ends first.
    pub async fn until<T>(
        &mut self,
        what: &str,
        mut done: impl FnMut(&mut Self) -> Option<T>,
    ) -> T {
        within(what, async {
            loop {
                if let Some(t) = done(self) {
                    return t;
                }
                assert!(self.pump().await, "connection closed waiting for {what}");
            }
        })
        .await
    }

    async fn write(&mut self, bytes: &[u8]) {
        let sent = within("an h2 write", async {
            self.tls.write_all(bytes).await?;
            self.tls.flush().await
        });
        sent.await.expect("write to the proxy");
    }

    /// Read and handle one frame; false once the connection ended.
    async fn pump(&mut self) -> bool {
        let Some((kind, flags, stream, payload)) = self.read_frame().await else {
            return false;
        };
        match kind {
            SETTINGS if flags & ACK == 0 => {
                if self.settings.is_empty() {
                    self.settings = payload
                        .chunks_exact(6)
                        .map(|s| (u16::from_be_bytes([s[0], s[1]]), be32(&s[2..])))
                        .collect();
                }
                self.write(&frame(SETTINGS, ACK, 0, &[])).await;
            }
            PING if flags & ACK == 0 => {
                self.pings += 1;
                if self.answer_pings {
                    self.write(&frame(PING, ACK, 0, &payload)).await;
                }
            }
            GOAWAY => self.goaway = Some(be32(&payload[4..8])),
            RST_STREAM => {
                self.replies
                    .entry(stream)
                    .or_insert(Reply::Reset(be32(&payload)));
                self.ended.insert(stream);
            }
            HEADERS => {
                let block = unpad(flags, &payload, flags & PRIORITY != 0);
                let status = Reply::Status(status(block));
                self.replies.entry(stream).or_insert(status);
            }
            DATA => {
                let body = unpad(flags, &payload, false);
                self.data.entry(stream).or_default().extend_from_slice(body);
            }
            _ => {}
        }
        if flags & END_STREAM != 0 && (kind == DATA || kind == HEADERS) {
            self.ended.insert(stream);
        }
        true
    }

    async fn read_frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        loop {
            if self.inbox.len() >= 9 {
                let len = be32(&[0, self.inbox[0], self.inbox[1], self.inbox[2]]) as usize;
                if self.inbox.len() >= 9 + len {
                    let head: Vec<u8> = self.inbox.drain(..9).collect();
                    let payload = self.inbox.drain(..len).collect();
                    return Some((head[3], head[4], be32(&head[5..9]) & 0x7fff_ffff, payload));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            // An error (reset, TLS close without close_notify) ends the connection as EOF does.
            match self.tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A frame: 9-byte header (RFC 9113 §4.1) and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("frame size")
        .to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The payload less its padding and, for HEADERS with PRIORITY, the 5 priority bytes.
fn unpad(flags: u8, payload: &[u8], priority: bool) -> &[u8] {
    let (pad, mut body) = if flags & PADDED != 0 {
        (usize::from(payload[0]), &payload[1..])
    } else {
        (0, payload)
    };
    body = &body[..body.len() - pad];
    if priority { &body[5..] } else { body }
}

/// One whole unfragmented WebSocket frame at the start of `buf`: `(opcode, payload, bytes used)`.
fn parse_ws(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        at += 4;
        Some(buf.get(at - 4..at)?.to_vec())
    } else {
        None
    };
    let payload = buf.get(at..at + len)?;
    let payload = match mask {
        Some(m) => payload
            .iter()
            .zip(m.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect(),
        None => payload.to_vec(),
    };
    Some((b0 & 0x0f, payload, at + len))
}
