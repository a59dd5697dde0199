//! Helpers for the admission tests: connections from another loopback address (an untrusted
//! peer), PROXY protocol preambles, refusals that come after tunnels already reached the backend,
//! `Retry-After`, and waiting out a JWKS refetch.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::SinkExt;
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::{MaybeTlsStream, tungstenite};
use wsgate::admit::jwks::MIN_REFETCH;

use super::client::{Answer, ClientStream, Ws, exchange, messages_until_closed, read_head};
use super::expect::{Backend, assert_closing};
use super::head::{ACCEPT, Head};
use super::proxy::TestProxy;
use super::tokens::{assert_echoes, bearer};
use super::{TIMEOUT, eventually, within};

/// The address every test client binds to when it plays an untrusted peer. The proxies in these
/// tests trust `127.0.0.1/32` only.
pub const UNTRUSTED: [u8; 4] = [127, 0, 0, 2];
/// The default client address (trusted when a test sets `trusted_proxies`).
pub const TRUSTED: [u8; 4] = [127, 0, 0, 1];

/// A TCP connection to `to` from `from` (any free port).
pub async fn tcp_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .unwrap_or_else(|e| panic!("bind {from:?}: {e}"));
    within("TCP connect to the proxy", socket.connect(to))
        .await
        .expect("TCP connect to the proxy")
}

/// A connection to `proxy` from `from`: `preamble` (a PROXY header, or nothing) on the raw TCP
/// connection first, then TLS with SNI `localhost` when the proxy's listener has certificates.
pub async fn connect_from(proxy: &TestProxy, from: [u8; 4], preamble: &[u8]) -> ClientStream {
    let mut tcp = tcp_from(from, proxy.addr()).await;
    if !preamble.is_empty() {
        within("writing the preamble", tcp.write_all(preamble))
            .await
            .expect("write preamble");
    }
    if proxy.certs().is_empty() {
        return MaybeTlsStream::Plain(tcp);
    }
    let connector = TlsConnector::from(proxy.ca().client_config());
    let name = ServerName::try_from("localhost").expect("valid server name");
    let tls = within("TLS handshake with the proxy", connector.connect(name, tcp))
        .await
        .expect("TLS handshake with the proxy");
    MaybeTlsStream::Rustls(tls)
}

/// Send `head` on `conn` and expect the backend's 101 for the sample key; the tunnel stays open.
pub async fn upgrade_on(conn: &mut ClientStream, head: &Head) {
    within("writing the request", conn.write_all(&head.bytes()))
        .await
        .expect("write request");
    let answer = read_head(conn).await;
    assert_eq!(answer.status, 101, "expected a tunnel, got {answer:#?}");
    assert_eq!(answer.header("Sec-WebSocket-Accept"), Some(ACCEPT));
}

/// Send `bytes` on `conn` and read until the proxy closes, tolerating a reset: what a dropped
/// connection looks like to the client.
pub async fn bytes_until_closed(conn: &mut ClientStream, bytes: &[u8]) -> Vec<u8> {
    // The proxy may already have closed; a failed write is part of being dropped.
    let _ = within("writing the request", conn.write_all(bytes)).await;
    super::client::read_until_closed(conn).await
}

/// Like [`super::assert_refused`] for a backend that already holds tunnels: `status`, `reason`
/// counted once, a closing answer, and no new connection to `backend`.
pub async fn assert_refused_on(
    conn: &mut ClientStream,
    proxy: &TestProxy,
    backend: &impl Backend,
    head: &Head,
    status: u16,
    reason: &str,
) -> Answer {
    let stats = proxy.stats();
    let (before, accepted) = (stats.refusals(reason), backend.accepted());
    let answer = exchange(conn, &head.bytes()).await;
    assert_eq!(
        answer.status, status,
        "expected {status} {reason}, got {answer:#?}"
    );
    assert_closing(&answer);
    eventually(&format!("refusal {reason} to be counted"), || {
        stats.refusals(reason) == before + 1
    })
    .await;
    assert_eq!(
        backend.accepted(),
        accepted,
        "the backend was contacted for a {reason} refusal"
    );
    answer
}

/// [`assert_refused_on`] on a fresh connection from 127.0.0.1.
pub async fn assert_refused_again(
    proxy: &TestProxy,
    backend: &impl Backend,
    head: &Head,
    status: u16,
    reason: &str,
) -> Answer {
    let mut conn = proxy.connect().await;
    assert_refused_on(&mut conn, proxy, backend, head, status, reason).await
}

/// The `Retry-After` seconds of a refusal; panics when absent or not a number.
pub fn retry_after(answer: &Answer) -> u64 {
    let value = answer
        .header("Retry-After")
        .unwrap_or_else(|| panic!("no Retry-After: {answer:#?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not delta-seconds: {value:?}"))
}

/// Close a WebSocket the polite way and wait until the proxy ended it.
pub async fn close_ws(mut ws: Ws) {
    within("sending a close", ws.close(None))
        .await
        .expect("send close");
    messages_until_closed(&mut ws).await;
}

/// A PROXY v1 header for a TCP4 connection from `src` to `dst`.
pub fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A PROXY v2 header built by `ppp` (`local`: the LOCAL command, else PROXY).
pub fn proxy_v2(src: SocketAddr, dst: SocketAddr, local: bool) -> Vec<u8> {
    use ppp::v2::{Builder, Command, Protocol, Version};
    let command = if local {
        Command::Local
    } else {
        Command::Proxy
    };
    Builder::with_addresses(Version::Two | command, Protocol::Stream, (src, dst))
        .build()
        .expect("ppp builds the header")
}

/// Parse a socket address written in a test.
pub fn sock(s: &str) -> SocketAddr {
    s.parse().expect("test socket address")
}

/// Parse an IP address written in a test.
pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP address")
}

/// Retry until `token` is admitted: wsgate refetches a JWKS for an unknown `kid` at most once
/// per [`MIN_REFETCH`], so the new key may take that long to be picked up. Every other answer
/// than 401 fails the test.
pub async fn admitted_after_a_refetch(proxy: &TestProxy, token: &str) -> Ws {
    let deadline = tokio::time::Instant::now() + MIN_REFETCH + TIMEOUT;
    loop {
        match proxy
            .ws("/chat")
            .header("Authorization", &bearer(token))
            .connect()
            .await
        {
            Ok((mut ws, _)) => {
                assert_echoes(&mut ws).await;
                return ws;
            }
            Err(tungstenite::Error::Http(r)) if r.status() == 401 => {}
            Err(e) => panic!("expected 401 until the key set is refreshed, got {e}"),
        }
        let now = tokio::time::Instant::now();
        assert!(now < deadline, "the new key was never picked up");
        // Polling pace, not synchronisation: the proxy's refetch interval is what we wait out.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
