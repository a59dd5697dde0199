//! What wsgate says to a backend before the upgrade request: TLS to `wss://` backends (the
//! pool's CA or the system roots, `server_name`, a client certificate for mTLS) and the PROXY
//! header (v1 or v2) naming the client. Backends are [`PoolBackend`]s with certificates from a
//! [`BackendCa`] of their own, apart from the CA of the proxy's listener.

mod support;

use std::net::SocketAddr;

use futures_util::SinkExt;
use support::pools::{BackendCa, Options, PoolBackend, ProxyHeader, Visits, answer_to, tunnel};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

/// Names on every backend certificate: the URL's IP literal and a DNS name for `server_name`.
const BACKEND_NAMES: &[&str] = &["127.0.0.1", "backend.test"];

/// A `wss://` backend named `tls` with a certificate from `ca`; `client_auth`: mTLS required.
async fn tls_backend(ca: &BackendCa, visits: &Visits, client_auth: bool) -> PoolBackend {
    let options = Options {
        tls: Some(ca.server_config(BACKEND_NAMES, client_auth)),
        proxy_protocol: false,
    };
    PoolBackend::start_with("tls", visits, options).await
}

/// A plain listener routing `/echo/` to `backend` with `pool_keys`, `ca.pem` written beside the
/// config, and a client certificate from `ca` as `gw.pem` / `gw.key`.
async fn proxy_to(backend: &PoolBackend, ca: &BackendCa, pool_keys: &str) -> TestProxy {
    let (cert, key) = ca.leaf(&["wsgate.test"]);
    TestProxy::builder()
        .plain()
        .file("ca.pem", ca.pem())
        .file("gw.pem", cert)
        .file("gw.key", key)
        .pool_route(None, "/echo/", &[backend.url()], pool_keys)
        .start()
        .await
}

/// The tunnel greets and echoes through the backend's TLS.
async fn assert_tunnels(proxy: &TestProxy) {
    let (name, mut ws) = tunnel(proxy, "/echo/").await;
    assert_eq!(name, "tls");
    within(
        "sending through the tunnel",
        ws.send(Message::text("over tls")),
    )
    .await
    .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("over tls"));
}

/// A 502 for the client and no upgrade at the backend.
async fn assert_502(proxy: &TestProxy, visits: &Visits) {
    let answer = answer_to(proxy, "/echo/").await;
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert!(visits.all().is_empty(), "{:?}", visits.all());
}

// ---- wss:// backends ----

#[tokio::test]
async fn wss_backend_signed_by_the_pool_ca_tunnels_and_echoes() {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = tls_backend(&ca, &visits, false).await;
    assert!(backend.url().starts_with("wss://127.0.0.1:"));
    let proxy = proxy_to(&backend, &ca, "tls: { ca: ca.pem }").await;
    assert_tunnels(&proxy).await;
    assert_eq!(visits.all().len(), 1);
}

#[tokio::test]
async fn wss_backend_unknown_to_the_system_roots_is_502() {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = tls_backend(&ca, &visits, false).await;
    let proxy = proxy_to(&backend, &ca, "").await;
    assert_502(&proxy, &visits).await;
}

#[tokio::test]
async fn wss_backend_signed_by_another_ca_than_the_pool_ca_is_502() {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = tls_backend(&ca, &visits, false).await;
    let proxy = proxy_to(&backend, &BackendCa::new(), "tls: { ca: ca.pem }").await;
    assert_502(&proxy, &visits).await;
}

#[tokio::test]
async fn a_server_name_the_certificate_lacks_is_502() {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = tls_backend(&ca, &visits, false).await;
    let proxy = proxy_to(
        &backend,
        &ca,
        "tls: { ca: ca.pem, server_name: wrong.test }",
    )
    .await;
    assert_502(&proxy, &visits).await;
}

#[tokio::test]
async fn server_name_is_the_name_verified_instead_of_the_url_host() {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = tls_backend(&ca, &visits, false).await;
    let proxy = proxy_to(
        &backend,
        &ca,
        "tls: { ca: ca.pem, server_name: backend.test }",
    )
    .await;
    assert_tunnels(&proxy).await;
}

#[tokio::test]
async fn mtls_backend_accepts_the_pool_client_certificate() {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = tls_backend(&ca, &visits, true).await;
    let keys = "tls: { ca: ca.pem, client_cert: gw.pem, client_key: gw.key }";
    let proxy = proxy_to(&backend, &ca, keys).await;
    assert_tunnels(&proxy).await;
}

#[tokio::test]
async fn mtls_backend_without_a_client_certificate_is_502() {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = tls_backend(&ca, &visits, true).await;
    let proxy = proxy_to(&backend, &ca, "tls: { ca: ca.pem }").await;
    assert_502(&proxy, &visits).await;
}

// ---- PROXY protocol ----

/// Upgrade through a pool with `proxy_protocol: {version}` to a plain backend expecting the
/// header; returns the client's own address and the header the backend read before the request.
async fn proxied(version: &str) -> (SocketAddr, ProxyHeader, TestProxy) {
    let (ca, visits) = (BackendCa::new(), Visits::new());
    let backend = PoolBackend::start_with("pp", &visits, expects_proxy_header(None)).await;
    let proxy = proxy_to(&backend, &ca, &format!("proxy_protocol: {version}")).await;
    let mut conn = proxy.connect().await;
    let MaybeTlsStream::Plain(tcp) = &conn else {
        panic!("a plain listener gives a plain connection");
    };
    let client = tcp.local_addr().expect("client address");
    within(
        "writing the request",
        conn.write_all(&Head::upgrade("/echo/").bytes()),
    )
    .await
    .expect("write request");
    let answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101, "{answer:#?}");
    let visit = visits
        .all()
        .pop()
        .expect("the backend accepted the upgrade");
    assert_eq!(
        visit.target, "/echo/",
        "the request came right after the header"
    );
    let header = visit.proxy.expect("the backend read a PROXY header");
    (client, header, proxy)
}

/// A backend reading a PROXY header first, then TLS with a certificate from `tls` if given.
fn expects_proxy_header(tls: Option<&BackendCa>) -> Options {
    Options {
        tls: tls.map(|ca| ca.server_config(BACKEND_NAMES, false)),
        proxy_protocol: true,
    }
}

#[tokio::test]
async fn proxy_v2_header_names_the_client_before_the_upgrade() {
    let (client, header, _proxy) = proxied("v2").await;
    assert_eq!(header.version, 2);
    assert_eq!(
        header.source, client,
        "source: the client's address and port"
    );
}

#[tokio::test]
async fn proxy_v1_header_names_the_client_before_the_upgrade() {
    let (client, header, _proxy) = proxied("v1").await;
    assert_eq!(header.version, 1);
    assert_eq!(
        header.source, client,
        "source: the client's address and port"
    );
}

#[tokio::test]
async fn proxy_header_destination_is_the_address_the_client_connected_to() {
    let (_, header, proxy) = proxied("v2").await;
    assert_eq!(
        header.destination,
        proxy.addr(),
        "destination: wsgate's listening address (HAProxy PROXY spec §2.1; upstream::proxy_out)"
    );
}

#[tokio::test]
async fn proxy_header_precedes_the_tls_handshake_of_a_wss_backend() {
    let ca = BackendCa::new();
    let options = expects_proxy_header(Some(&ca));
    let visits = Visits::new();
    let backend = PoolBackend::start_with("pp", &visits, options).await;
    let proxy = proxy_to(&backend, &ca, "proxy_protocol: v2, tls: { ca: ca.pem }").await;
    let answer = answer_to(&proxy, "/echo/").await;
    assert_eq!(answer.status, 101, "PROXY header inside TLS? {answer:#?}");
    let visit = visits
        .all()
        .pop()
        .expect("the backend accepted the upgrade");
    let header = visit.proxy.expect("a PROXY header on the TCP stream");
    assert_eq!(header.version, 2);
}
