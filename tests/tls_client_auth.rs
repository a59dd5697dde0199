//! Client certificates on a listener (`tls.client_auth`): a required certificate that is
//! missing, from another CA or revoked fails the TLS handshake with its alert; a verified one
//! names the session (CN) and reaches the backend as `X-Client-Cert-Subject` / `-SAN`, over
//! HTTP/1.1 and HTTP/2 alike; clients can never send those fields themselves.

mod support;

use std::sync::Arc;

use futures_util::SinkExt;
use rustls::ClientConfig;
use support::h2::H2Client;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// The CA that issues client certificates, apart from the proxy's own (server) CA.
struct Clients {
    ca: TestCa,
    alice: TestCert,
}

impl Clients {
    fn new() -> Clients {
        let ca = TestCa::named("wsgate clients CA");
        let alice = ca.client_leaf(
            "alice",
            &["spiffe://example.org/alice", "alice.example.org"],
        );
        Clients { ca, alice }
    }
}

/// A proxy whose listener has `client_auth` (`required`, optionally a CRL revoking `revoked`).
async fn mtls_proxy(
    clients: &Clients,
    required: bool,
    revoked: Option<&TestCert>,
) -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let mut builder = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .file("clients-ca.pem", clients.ca.cert_pem());
    let mut keys = format!("ca: clients-ca.pem, required: {required}");
    if let Some(cert) = revoked {
        builder = builder.file("clients.crl", clients.ca.crl_pem(&[cert]));
        keys.push_str(", crl: clients.crl");
    }
    let proxy = builder
        .tls_option(&format!("client_auth: {{ {keys} }}"))
        .start()
        .await;
    (proxy, backend)
}

/// A client trusting the proxy and presenting `cert`.
fn presenting(proxy: &TestProxy, cert: &TestCert) -> Arc<ClientConfig> {
    proxy.ca().client_config_presenting(cert)
}

/// Upgrade to `/echo/` with `config`, echo one message, and return the open tunnel (its session
/// stays registered while it lives) and what the backend saw.
async fn echo_through(
    proxy: &TestProxy,
    backend: &EchoBackend,
    config: Arc<ClientConfig>,
    headers: &[(&str, &str)],
) -> (Ws, SeenRequest) {
    let mut request = proxy.ws("/echo/").tls_config(config);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let (mut ws, _) = request.connect().await.expect("upgraded");
    within("send", ws.send(Message::text("hello")))
        .await
        .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("hello"));
    (ws, backend.only_request())
}

/// The handshake with `config` fails on the client's side with `alert` from the proxy, the
/// failure is counted, and no backend is asked.
async fn assert_tls_refused(
    proxy: &TestProxy,
    backend: &EchoBackend,
    config: Arc<ClientConfig>,
    alert: &str,
) {
    // In TLS 1.3 the client's handshake is done before the server judged its certificate: the
    // alert arrives on the first read, which the WebSocket handshake makes.
    let error = proxy
        .ws("/echo/")
        .tls_config(config)
        .connect()
        .await
        .expect_err("the TLS handshake must fail");
    let shown = format!("{error:?}");
    assert!(shown.contains(alert), "expected alert {alert}, got {shown}");
    let stats = proxy.stats();
    eventually("TLS failure counted", || stats.tls_failures() == 1).await;
    assert_eq!(stats.tls_failures_for("client_certificate"), 1);
    assert_eq!(backend.accepted(), 0);
    assert!(stats.sessions.is_empty());
}

#[tokio::test]
async fn required_and_a_valid_certificate_is_upgraded_with_its_names() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, true, None).await;
    let (_ws, seen) = echo_through(&proxy, &backend, presenting(&proxy, &clients.alice), &[]).await;
    assert_eq!(seen.one("X-Client-Cert-Subject"), Some("alice"));
    // The first URI SAN is preferred to the DNS one.
    assert_eq!(
        seen.one("X-Client-Cert-SAN"),
        Some("spiffe://example.org/alice")
    );
}

#[tokio::test]
async fn required_and_no_certificate_fails_the_handshake() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, true, None).await;
    let config = proxy.ca().client_config();
    assert_tls_refused(&proxy, &backend, config, "CertificateRequired").await;
}

#[tokio::test]
async fn required_and_a_certificate_from_another_ca_fails_the_handshake() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, true, None).await;
    let stranger = TestCa::named("another CA").client_leaf("mallory", &["mallory.example.org"]);
    let config = presenting(&proxy, &stranger);
    assert_tls_refused(&proxy, &backend, config, "UnknownCA").await;
}

#[tokio::test]
async fn a_revoked_certificate_fails_the_handshake_and_others_pass() {
    let clients = Clients::new();
    let bob = clients.ca.client_leaf("bob", &["bob.example.org"]);
    let (proxy, backend) = mtls_proxy(&clients, true, Some(&bob)).await;
    let config = presenting(&proxy, &bob);
    assert_tls_refused(&proxy, &backend, config, "CertificateRevoked").await;
    let (_ws, seen) = echo_through(&proxy, &backend, presenting(&proxy, &clients.alice), &[]).await;
    assert_eq!(seen.one("X-Client-Cert-Subject"), Some("alice"));
}

#[tokio::test]
async fn optional_and_no_certificate_is_upgraded_without_the_fields() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, false, None).await;
    let (_ws, seen) = echo_through(&proxy, &backend, proxy.ca().client_config(), &[]).await;
    assert_eq!(seen.one("X-Client-Cert-Subject"), None);
    assert_eq!(seen.one("X-Client-Cert-SAN"), None);
    let sessions = proxy.stats().sessions.snapshot();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].info.subject, None);
}

#[tokio::test]
async fn optional_and_a_valid_certificate_sends_the_fields() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, false, None).await;
    let carol = clients.ca.client_leaf("carol", &["carol.example.org"]);
    let (_ws, seen) = echo_through(&proxy, &backend, presenting(&proxy, &carol), &[]).await;
    assert_eq!(seen.one("X-Client-Cert-Subject"), Some("carol"));
    assert_eq!(seen.one("X-Client-Cert-SAN"), Some("carol.example.org"));
}

#[tokio::test]
async fn optional_still_refuses_a_certificate_from_another_ca() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, false, None).await;
    let stranger = TestCa::named("another CA").client_leaf("mallory", &[]);
    let config = presenting(&proxy, &stranger);
    assert_tls_refused(&proxy, &backend, config, "UnknownCA").await;
}

#[tokio::test]
async fn client_sent_certificate_fields_are_replaced_under_mtls() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, true, None).await;
    let forged = [
        ("X-Client-Cert-Subject", "admin"),
        ("x-client-cert-san", "spiffe://example.org/admin"),
    ];
    let config = presenting(&proxy, &clients.alice);
    let (_ws, seen) = echo_through(&proxy, &backend, config, &forged).await;
    assert_eq!(seen.all("X-Client-Cert-Subject"), ["alice"]);
    assert_eq!(
        seen.all("X-Client-Cert-SAN"),
        ["spiffe://example.org/alice"]
    );
}

#[tokio::test]
async fn client_sent_certificate_fields_are_dropped_without_client_auth() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let forged = [
        ("X-Client-Cert-Subject", "admin"),
        ("X-Client-Cert-SAN", "admin.example.org"),
    ];
    let (_ws, seen) = echo_through(&proxy, &backend, proxy.ca().client_config(), &forged).await;
    assert!(seen.all("X-Client-Cert-Subject").is_empty(), "{seen:?}");
    assert!(seen.all("X-Client-Cert-SAN").is_empty(), "{seen:?}");
    assert_eq!(seen.one("X-Forwarded-Proto"), Some("https"));
}

#[tokio::test]
async fn without_a_token_the_certificate_cn_is_the_session_subject() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, true, None).await;
    let config = presenting(&proxy, &clients.alice);
    let (mut ws, _) = proxy
        .ws("/echo/")
        .tls_config(config)
        .connect()
        .await
        .expect("upgraded");
    within("send", ws.send(Message::text("hi")))
        .await
        .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("hi"));
    let sessions = proxy.stats().sessions.snapshot();
    let subjects: Vec<Option<&str>> = (sessions.iter())
        .map(|s| s.info.subject.as_deref())
        .collect();
    assert_eq!(subjects, [Some("alice")]);
    assert_eq!(backend.accepted(), 1);
}

#[tokio::test]
async fn an_h2_stream_carries_the_certificate_of_its_connection() {
    let clients = Clients::new();
    let (proxy, backend) = mtls_proxy(&clients, true, None).await;
    let config = (*presenting(&proxy, &clients.alice)).clone();
    let client = H2Client::connect_with(&proxy, config).await;
    let mut ws = client.websocket("/echo/").await;
    within("send", ws.send(Message::text("over h2")))
        .await
        .expect("send");
    let echoed = within("echo", futures_util::StreamExt::next(&mut ws)).await;
    assert_eq!(
        echoed.expect("a message").expect("no error"),
        Message::text("over h2")
    );
    let seen = backend.only_request();
    assert_eq!(seen.one("X-Client-Cert-Subject"), Some("alice"));
    assert_eq!(
        seen.one("X-Client-Cert-SAN"),
        Some("spiffe://example.org/alice")
    );
    let sessions = proxy.stats().sessions.snapshot();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].info.subject.as_deref(), Some("alice"));
    assert_eq!(sessions[0].info.protocol, "h2");
}

#[tokio::test]
async fn per_subject_counts_sessions_by_certificate_without_a_token() {
    let clients = Clients::new();
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .policy("per_subject: { max_sessions: 1, on_exceed: refuse, scope: local }")
        .file("clients-ca.pem", clients.ca.cert_pem())
        .tls_option("client_auth: { ca: clients-ca.pem, required: false }")
        .start()
        .await;
    let alice = presenting(&proxy, &clients.alice);
    let (_first, _) = (proxy.ws("/echo/").tls_config(alice.clone()))
        .connect()
        .await
        .expect("alice's first session");
    let second = proxy.ws("/echo/").tls_config(alice).connect().await;
    let refused = format!("{:?}", second.expect_err("alice's second session"));
    assert!(refused.contains("429"), "{refused}");
    // Another subject has its own count; a client without a certificate cannot be counted.
    let dave = presenting(&proxy, &clients.ca.client_leaf("dave", &[]));
    let (_dave, _) = (proxy.ws("/echo/").tls_config(dave))
        .connect()
        .await
        .expect("dave's session");
    let anonymous = (proxy.ws("/echo/").tls_config(proxy.ca().client_config()))
        .connect()
        .await;
    let refused = format!("{:?}", anonymous.expect_err("no subject to count"));
    assert!(refused.contains("403"), "{refused}");
    assert_eq!(proxy.stats().sessions.len(), 2);
}

#[tokio::test]
async fn a_proxied_plain_request_cannot_send_certificate_fields_either() {
    let backend = support::plain::PlainBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/", backend.addr())
        .policy("http: proxy")
        .start()
        .await;
    let mut client = support::plain::h1_client(&proxy).await;
    let req = hyper::Request::get("/page")
        .header("host", "localhost")
        .header("x-client-cert-subject", "admin")
        .header("x-client-cert-san", "admin.example.org")
        .body(http_body_util::Full::default())
        .expect("request");
    let (status, _, _) = support::plain::send(&mut client, req).await;
    assert_eq!(status, 200);
    let seen = backend.next_request().await;
    assert!(seen.all("x-client-cert-subject").is_empty(), "{seen:?}");
    assert!(seen.all("x-client-cert-san").is_empty(), "{seen:?}");
}

#[tokio::test]
async fn a_token_subject_wins_over_the_certificate() {
    use support::tokens::{SigningKey, bearer, claims, jwt_policy};
    let clients = Clients::new();
    let backend = EchoBackend::start().await;
    let key = SigningKey::new(jsonwebtoken::Algorithm::ES256);
    let (name, pem) = key.pem_file();
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .policy(&jwt_policy(&key.pem_entry(), "", ""))
        .file(name, pem.as_bytes())
        .file("clients-ca.pem", clients.ca.cert_pem())
        .tls_option("client_auth: { ca: clients-ca.pem }")
        .start()
        .await;
    let token = key.sign(&claims(serde_json::json!({ "sub": "zoe" })));
    let config = presenting(&proxy, &clients.alice);
    let authorization = bearer(&token);
    let headers = [("Authorization", authorization.as_str())];
    let (_ws, seen) = echo_through(&proxy, &backend, config, &headers).await;
    // The backend hears of both; the session is the token's.
    assert_eq!(seen.one("X-Client-Cert-Subject"), Some("alice"));
    let sessions = proxy.stats().sessions.snapshot();
    assert_eq!(sessions[0].info.subject.as_deref(), Some("zoe"));
}
