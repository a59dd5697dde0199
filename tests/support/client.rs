//! The client side: TLS or plain connections to the proxy, WebSocket handshakes through it, and
//! hand-written heads with the whole answer read back.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

use super::{find, read_head_bytes, within};

/// A client connection to the proxy, TLS or not.
pub type ClientStream = MaybeTlsStream<TcpStream>;
/// A TLS client connection, for tests that look at the TLS session.
pub type TlsClient = tokio_rustls::client::TlsStream<TcpStream>;
/// A WebSocket client through the proxy.
pub type Ws = WebSocketStream<ClientStream>;

/// tungstenite's message and frame limits off (the tests send 16 MiB); small eager buffers so a
/// thousand clients stay cheap.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(None)
        .max_frame_size(None)
}

/// TCP then TLS to `addr`, sending `sni` as server name (an IP address sends no SNI).
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    sni: &str,
) -> io::Result<TlsClient> {
    let name = ServerName::try_from(sni.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let tcp = within("TCP connect to the proxy", TcpStream::connect(addr)).await?;
    let connector = TlsConnector::from(config);
    within("TLS handshake with the proxy", connector.connect(name, tcp)).await
}

/// An HTTP answer as the client saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Every byte after the head until the connection closed (or what came with the head, for
    /// [`read_head`]).
    pub body: Vec<u8>,
}

impl Answer {
    /// Parse a status line and field lines (the head without its blank line is fine too).
    pub fn parse_head(head: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(':') {
                Some((n, v)) => (n.to_string(), v.trim().to_string()),
                None => panic!("field line without colon: {l:?}"),
            })
            .collect();
        Answer {
            status,
            headers,
            body: Vec::new(),
        }
    }

    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every value of `name`, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the comma-separated list in `name` (across all lines) holds `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read until the peer closes (EOF, TLS close, reset), within [`super::TIMEOUT`].
pub async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    within("the proxy to close the connection", async {
        let mut chunk = [0u8; 8192];
        // An error here (reset, TLS close without close_notify) also ends the connection.
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    out
}

/// Send `head` (and anything after it in the same write), read the whole answer until the proxy
/// closes. Panics when the proxy closed without a parseable answer.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Answer {
    within("writing the request", stream.write_all(bytes))
        .await
        .expect("write request");
    let raw = read_until_closed(stream).await;
    let Some(end) = find(&raw, b"\r\n\r\n") else {
        panic!(
            "proxy closed without a whole answer head; got {:?}",
            String::from_utf8_lossy(&raw)
        );
    };
    let mut answer = Answer::parse_head(&raw[..end]);
    answer.body = raw[end + 4..].to_vec();
    answer
}

/// Read one answer head (the connection stays open); `body` holds bytes read past it.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Answer {
    let (head, rest) = within("an answer head", read_head_bytes(stream))
        .await
        .expect("read answer head")
        .expect("connection closed before a whole answer head");
    let mut answer = Answer::parse_head(&head[..head.len() - 4]);
    answer.body = rest;
    answer
}

/// A WebSocket handshake through the proxy, built up like a sentence.
pub struct WsRequest {
    pub(super) addr: SocketAddr,
    pub(super) tls: Option<Arc<ClientConfig>>,
    pub(super) sni: String,
    pub(super) host: Option<String>,
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) config: WebSocketConfig,
}

impl WsRequest {
    /// A handshake to `path` on a wsgate that is not a [`TestProxy`](super::TestProxy) (a
    /// `wsgate run` child process), over TLS with `tls`.
    pub fn to(addr: SocketAddr, tls: Arc<ClientConfig>, path: &str) -> WsRequest {
        WsRequest {
            addr,
            tls: Some(tls),
            sni: "localhost".into(),
            host: None,
            path: path.into(),
            headers: Vec::new(),
            config: ws_config(),
        }
    }

    /// TLS server name to send (default `localhost`; an IP address sends none).
    pub fn sni(mut self, sni: &str) -> Self {
        self.sni = sni.into();
        self
    }

    /// `Host` to send (default: the SNI).
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Open the connection and run the client handshake (tungstenite verifies the 101).
    pub async fn connect(self) -> Result<(Ws, Response), tungstenite::Error> {
        let stream = match &self.tls {
            Some(config) => {
                MaybeTlsStream::Rustls(tls_connect(self.addr, config.clone(), &self.sni).await?)
            }
            None => {
                MaybeTlsStream::Plain(within("TCP connect", TcpStream::connect(self.addr)).await?)
            }
        };
        let host = self.host.as_deref().unwrap_or(&self.sni);
        let mut request = format!("ws://{host}{}", self.path).into_client_request()?;
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
            let value = HeaderValue::from_str(value).expect("valid header value");
            request.headers_mut().append(name, value);
        }
        let handshake =
            tokio_tungstenite::client_async_with_config(request, stream, Some(self.config));
        within("the WebSocket handshake", handshake).await
    }
}

/// The next message through the tunnel; panics if the tunnel ended or failed instead.
pub async fn next_message(ws: &mut Ws) -> Message {
    match within("a message through the tunnel", ws.next()).await {
        Some(Ok(msg)) => msg,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Read until the tunnel ends (stream end or error) and return the messages seen on the way,
/// e.g. the Close frame of a close handshake.
pub async fn messages_until_closed(ws: &mut Ws) -> Vec<Message> {
    let mut seen = Vec::new();
    within("the tunnel to end", async {
        while let Some(Ok(msg)) = ws.next().await {
            seen.push(msg);
        }
    })
    .await;
    seen
}
