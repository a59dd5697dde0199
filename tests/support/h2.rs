//! An HTTP/2 client for RFC 8441 tests: TLS with ALPN `h2` trusting the test CA, hyper's h2
//! client connection, and extended CONNECT requests that become WebSockets.

use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper::ext::Protocol;
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::client::tls_connect;
use super::proxy::TestProxy;
use super::within;

/// A WebSocket carried by one h2 stream.
pub type H2Ws = WebSocketStream<TokioIo<Upgraded>>;

/// One h2 connection to the proxy.
pub struct H2Client {
    pub send: SendRequest<Empty<Bytes>>,
    /// The protocol ALPN chose.
    pub alpn: Option<Vec<u8>>,
    conn: JoinHandle<()>,
}

impl Drop for H2Client {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// A TLS connection offering `alpn` (SNI `localhost`), trusting the proxy's test CA.
pub async fn tls_with_alpn(proxy: &TestProxy, alpn: &[&[u8]]) -> super::client::TlsClient {
    let mut config = (*proxy.ca().client_config()).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tls_connect(proxy.addr(), Arc::new(config), "localhost")
        .await
        .expect("TLS to the proxy")
}

impl H2Client {
    /// TLS offering `h2` then `http/1.1`, then the h2 handshake (panics if ALPN chose h1).
    pub async fn connect(proxy: &TestProxy) -> H2Client {
        H2Client::connect_with(proxy, (*proxy.ca().client_config()).clone()).await
    }

    /// [`Self::connect`] with this client config (its ALPN is replaced), e.g. one that presents
    /// a client certificate.
    pub async fn connect_with(proxy: &TestProxy, mut config: rustls::ClientConfig) -> H2Client {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tls = tls_connect(proxy.addr(), Arc::new(config), "localhost")
            .await
            .expect("TLS to the proxy");
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN did not choose h2");
        let handshake =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls));
        let (send, conn) = within("the h2 handshake", handshake)
            .await
            .expect("h2 handshake with the proxy");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        H2Client { send, alpn, conn }
    }

    /// Whether the connection ended (the proxy closed it).
    pub fn closed(&self) -> bool {
        self.conn.is_finished()
    }

    /// Send `req` on a new stream and wait for the answer head.
    pub async fn open(&self, req: Request<Empty<Bytes>>) -> hyper::Result<Response<Incoming>> {
        let mut send = self.send.clone();
        within("an h2 answer", send.send_request(req)).await
    }

    /// An RFC 8441 WebSocket to `path`; panics unless the answer is 200.
    pub async fn websocket(&self, path: &str) -> H2Ws {
        let answer = self.open(connect_request(path, Some("websocket"))).await;
        let answer = answer.expect("an answer to the extended CONNECT");
        assert_eq!(answer.status(), 200, "extended CONNECT to {path}");
        websocket_from(answer).await
    }
}

/// The WebSocket on the stream of a `200` answer.
pub async fn websocket_from(answer: Response<Incoming>) -> H2Ws {
    let upgraded = within("the h2 stream upgrade", hyper::upgrade::on(answer))
        .await
        .expect("the stream becomes a tunnel");
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await
}

/// `CONNECT https://localhost{path}` with `:protocol` when given, and version 13.
pub fn connect_request(path: &str, protocol: Option<&'static str>) -> Request<Empty<Bytes>> {
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://localhost{path}"))
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .expect("a valid request");
    if let Some(p) = protocol {
        req.extensions_mut().insert(Protocol::from_static(p));
    }
    req
}

/// The whole body of an answer.
pub async fn body(answer: Response<Incoming>) -> Vec<u8> {
    let collected = within("an h2 answer body", answer.into_body().collect()).await;
    collected.expect("answer body").to_bytes().to_vec()
}
