//! TLS termination: SNI picks the certificate, `min_version` is enforced, `Host` must match the
//! SNI (RFC 9110 §7.4: 421), and clients that never finish the handshake are dropped.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use rustls::ProtocolVersion;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

async fn two_cert_proxy() -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .tls_certs(&[&["a.test", "127.0.0.1"], &["b.test"]])
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    (proxy, backend)
}

fn served_cert(conn: &support::client::TlsClient) -> Vec<u8> {
    let certs = conn
        .get_ref()
        .1
        .peer_certificates()
        .expect("server sent certificates");
    certs[0].to_vec()
}

#[tokio::test]
async fn sni_picks_the_certificate_among_two() {
    let (proxy, _backend) = two_cert_proxy().await;
    let a = proxy.raw_tls("a.test").await;
    let b = proxy.raw_tls("b.test").await;
    assert_eq!(served_cert(&a), proxy.certs()[0].der.to_vec());
    assert_eq!(served_cert(&b), proxy.certs()[1].der.to_vec());
}

#[tokio::test]
async fn no_sni_gets_the_first_certificate() {
    let (proxy, _backend) = two_cert_proxy().await;
    // An IP address as server name: rustls sends no SNI and checks the IP SAN.
    let conn = proxy.raw_tls("127.0.0.1").await;
    assert_eq!(served_cert(&conn), proxy.certs()[0].der.to_vec());
}

#[tokio::test]
async fn websocket_works_through_the_second_certificate() {
    let (proxy, backend) = two_cert_proxy().await;
    let (mut ws, _) = proxy
        .ws("/echo/")
        .sni("b.test")
        .connect()
        .await
        .expect("handshake");
    within("send", ws.send(Message::text("via b")))
        .await
        .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("via b"));
    assert_eq!(backend.only_request().one("Host"), Some("b.test"));
}

#[tokio::test]
async fn min_version_1_3_refuses_a_tls_1_2_client() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .min_tls_version("1.3")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let tls12 = proxy.ca().client_config_for(&[&rustls::version::TLS12]);
    let refused = support::client::tls_connect(proxy.addr(), tls12, "localhost").await;
    assert!(refused.is_err(), "a TLS 1.2 handshake must fail");
    let stats = proxy.stats();
    eventually("TLS failure counted", || stats.tls_failures() == 1).await;
    let conn = proxy.raw_tls("localhost").await;
    assert_eq!(
        conn.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
    assert_eq!(backend.accepted(), 0);
}

#[tokio::test]
async fn tls_1_2_client_is_served_by_default() {
    let (proxy, _backend) = echo_proxy().await;
    let tls12 = proxy.ca().client_config_for(&[&rustls::version::TLS12]);
    let (mut ws, _) = proxy
        .ws("/echo/")
        .tls_config(tls12)
        .connect()
        .await
        .expect("handshake");
    within("send", ws.send(Message::text("over 1.2")))
        .await
        .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("over 1.2"));
}

#[tokio::test]
async fn host_other_than_sni_gets_421() {
    let (proxy, backend) = echo_proxy().await;
    let head = Head::upgrade("/echo/").set("Host", "ws.test");
    // proxy.connect() sends SNI localhost.
    assert_refused(&proxy, &backend, head, 421, "misdirected_request").await;
}

#[tokio::test]
async fn host_matching_sni_ignores_case_and_port() {
    let (proxy, backend) = echo_proxy().await;
    let port = proxy.addr().port();
    assert_upgraded(
        &proxy,
        Head::upgrade("/echo/").set("Host", &format!("LocalHost:{port}")),
    )
    .await;
    assert_eq!(backend.requests().len(), 1);
}

#[tokio::test]
async fn without_sni_the_host_alone_picks_the_route() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(Some("ws.test"), "/echo/", backend.addr())
        .start()
        .await;
    let (mut ws, _) = proxy
        .ws("/echo/")
        .sni("127.0.0.1")
        .host("ws.test")
        .connect()
        .await
        .expect("handshake without SNI");
    within("send", ws.send(Message::text("no sni")))
        .await
        .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("no sni"));
}

#[tokio::test]
async fn route_host_is_matched_through_sni_and_host() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(Some("ws.test"), "/echo/", backend.addr())
        .start()
        .await;
    let (mut ws, _) = proxy
        .ws("/echo/")
        .sni("ws.test")
        .connect()
        .await
        .expect("handshake");
    within("send", ws.send(Message::text("routed")))
        .await
        .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("routed"));
}

#[tokio::test]
async fn client_that_never_starts_tls_is_dropped_after_tls_handshake_timeout() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .limit("tls_handshake_timeout", "300ms")
        .start()
        .await;
    let mut tcp = within("connect", TcpStream::connect(proxy.addr()))
        .await
        .expect("connect");
    let start = tokio::time::Instant::now();
    assert!(read_until_closed(&mut tcp).await.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    let stats = proxy.stats();
    eventually("TLS failure counted", || stats.tls_failures() == 1).await;
    assert_eq!(backend.accepted(), 0);
}

#[tokio::test]
async fn plain_http_on_the_tls_listener_is_dropped() {
    let (proxy, backend) = echo_proxy().await;
    let mut tcp = within("connect", TcpStream::connect(proxy.addr()))
        .await
        .expect("connect");
    let head = Head::upgrade("/echo/").bytes();
    within("write", tcp.write_all(&head)).await.expect("write");
    let got = read_until_closed(&mut tcp).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "no HTTP answer in clear text: {got:?}"
    );
    assert_eq!(backend.accepted(), 0);
}
