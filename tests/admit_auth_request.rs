//! `auth.request` against the real proxy (issue 4, "Authentication"): wsgate asks an HTTP
//! service on 127.0.0.1 about each upgrade, like nginx `auth_request`. 2xx admits and its
//! `copy_headers` reach the backend; 401/403 are relayed; anything else, a dead service or a
//! timeout is 503. Each test checks what the client got and what the backend (and the service)
//! saw. Questions ride one kept-alive connection; an answer that cannot be read whole (a chunk
//! size near 2^64) is 503, not a panic.

mod support;

use support::tokens::*;
use support::*;

/// A proxy whose `/chat` route asks `service` (copying `X-User` and `X-Roles` from its answer).
async fn guarded_by(service: &HttpStub, timeout: &str) -> (TestProxy, EchoBackend) {
    let url = service.url("/auth?v=1");
    let request = format!("url: \"{url}\", timeout: {timeout}, copy_headers: [X-User, X-Roles]");
    guarded(&format!("auth: {{ request: {{ {request} }} }}"), &[]).await
}

/// A client request carrying credentials and values for the headers the service sets.
fn client_head() -> Head {
    Head::upgrade("/chat/room?id=7")
        .header("Authorization", "Bearer opaque-session-token")
        .header("Cookie", "session=abc; theme=dark")
        .header("X-App", "web")
        .header("X-User", "mallory")
        .header("x-roles", "admin")
}

const ALLOW: &[(&str, &str)] = &[
    ("X-User", "alice"),
    ("X-Roles", "reader"),
    ("X-Other", "no"),
];

#[tokio::test]
async fn allowed_client_gets_a_tunnel_and_the_backend_gets_the_service_headers() {
    let service = HttpStub::start(http_answer(200, ALLOW, "")).await;
    let (proxy, backend) = guarded_by(&service, "2s").await;
    let attempt = proxy.ws("/chat").header("X-User", "mallory");
    let (mut ws, _) = attempt
        .header("x-roles", "admin")
        .connect()
        .await
        .expect("admitted");
    assert_echoes(&mut ws).await;
    let seen = backend.only_request();
    assert_eq!(seen.one("X-User"), Some("alice"), "{seen:#?}");
    assert_eq!(seen.one("X-Roles"), Some("reader"), "{seen:#?}");
    assert!(
        seen.all("X-Other").is_empty(),
        "not in copy_headers: {seen:#?}"
    );
}

#[tokio::test]
async fn the_service_receives_the_original_path_and_client_headers() {
    let service = HttpStub::start(http_answer(204, ALLOW, "")).await;
    let (proxy, backend) = guarded_by(&service, "2s").await;
    let _tunnel = assert_upgraded(&proxy, client_head()).await;
    let heads = service.heads();
    assert_eq!(heads.len(), 1, "one question per upgrade: {heads:?}");
    let asked = &heads[0];
    assert!(asked.starts_with("GET /auth?v=1 HTTP/1.1\r\n"), "{asked}");
    let field = |name| head_field(asked, name);
    assert_eq!(field("Host"), [service.addr().to_string()]);
    assert_eq!(field("X-Original-URI"), ["/chat/room?id=7"]);
    assert_eq!(field("X-Original-Method"), ["GET"]);
    assert_eq!(field("X-Forwarded-For"), ["127.0.0.1"]);
    assert_eq!(field("X-Forwarded-Host"), ["localhost"]);
    assert_eq!(field("Authorization"), ["Bearer opaque-session-token"]);
    assert_eq!(field("Cookie"), ["session=abc; theme=dark"]);
    assert_eq!(field("X-App"), ["web"]);
    assert_eq!(field("Sec-WebSocket-Key"), [KEY]);
    assert!(field("Upgrade").is_empty(), "hop-by-hop sent: {asked}");
    let seen = backend.only_request();
    assert_eq!(seen.target, "/chat/room?id=7");
    assert_eq!(seen.one("X-User"), Some("alice"));
    assert_eq!(seen.one("X-Roles"), Some("reader"));
    assert_eq!(seen.one("X-App"), Some("web"));
}

/// The service answers `reply`; the client must get `status` for `reason`, the backend nothing.
async fn refused_by(reply: Reply, timeout: &str, status: u16, reason: &str) -> Answer {
    let service = HttpStub::start(reply).await;
    let (proxy, backend) = guarded_by(&service, timeout).await;
    let answer = assert_refused(&proxy, &backend, client_head(), status, reason).await;
    assert!(backend.requests().is_empty());
    assert_eq!(service.heads().len(), 1, "the service was asked once");
    answer
}

#[tokio::test]
async fn service_401_is_relayed_with_a_challenge() {
    let challenge = [("WWW-Authenticate", "Bearer realm=\"idp\"")];
    let reply = http_answer(401, &challenge, "who are you");
    let answer = refused_by(reply, "2s", 401, "auth_denied").await;
    let got = answer.header("WWW-Authenticate").unwrap_or_default();
    assert!(got.starts_with("Bearer"), "{answer:#?}");
}

#[tokio::test]
async fn service_401_challenge_reaches_the_client() {
    // auth_request.rs: "401/403 are relayed (with WWW-Authenticate)"; the service knows which
    // scheme and realm its clients must use.
    let challenge = [("WWW-Authenticate", "Basic realm=\"intranet\"")];
    let reply = http_answer(401, &challenge, "");
    let answer = refused_by(reply, "2s", 401, "auth_denied").await;
    assert_eq!(
        answer.headers_named("WWW-Authenticate"),
        ["Basic realm=\"intranet\""],
        "{answer:#?}"
    );
}

#[tokio::test]
async fn service_403_is_relayed() {
    let answer = refused_by(http_answer(403, &[], "no"), "2s", 403, "auth_denied").await;
    assert!(answer.header("WWW-Authenticate").is_none(), "{answer:#?}");
}

#[tokio::test]
async fn service_500_is_503() {
    refused_by(http_answer(500, &[], "oops"), "2s", 503, "auth_unavailable").await;
}

#[tokio::test]
async fn service_redirect_is_503() {
    let to_login = [("Location", "/login")];
    refused_by(
        http_answer(302, &to_login, ""),
        "2s",
        503,
        "auth_unavailable",
    )
    .await;
}

#[tokio::test]
async fn silent_service_is_503_after_the_timeout() {
    let started = tokio::time::Instant::now();
    refused_by(Reply::Silent, "300ms", 503, "auth_unavailable").await;
    // Well under TIMEOUT: the configured 300 ms bounded the wait, not the harness.
    assert!(started.elapsed() < TIMEOUT / 2, "{:?}", started.elapsed());
}

#[tokio::test]
async fn unreachable_service_is_503() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("reserve a port");
    let policy = format!("auth: {{ request: {{ url: \"http://{addr}/auth\", timeout: 2s }} }}");
    let (proxy, backend) = guarded(&policy, &[]).await;
    assert_refused(&proxy, &backend, client_head(), 503, "auth_unavailable").await;
}

#[tokio::test]
async fn service_answer_with_a_chunk_size_near_2_pow_64_is_503_and_the_next_handshake_works() {
    let service = HttpStub::start(huge_chunk_answer()).await;
    let (proxy, backend) = guarded_by(&service, "2s").await;
    assert_refused(&proxy, &backend, client_head(), 503, "auth_unavailable").await;
    service.set(http_answer(200, ALLOW, ""));
    let (mut ws, _) = proxy.ws("/chat").connect().await.expect("admitted");
    assert_echoes(&mut ws).await;
    assert_eq!(backend.only_request().one("X-User"), Some("alice"));
    assert_eq!(service.heads().len(), 2);
}

#[tokio::test]
async fn handshakes_reuse_the_connection_to_the_service() {
    const HANDSHAKES: usize = 5;
    let service = HttpStub::start(keep_alive_answer(200, ALLOW, "")).await;
    let (proxy, backend) = guarded_by(&service, "2s").await;
    for _ in 0..HANDSHAKES {
        let (mut ws, _) = proxy.ws("/chat").connect().await.expect("admitted");
        assert_echoes(&mut ws).await;
    }
    assert_eq!(
        service.heads().len(),
        HANDSHAKES,
        "one question per upgrade"
    );
    assert_eq!(backend.requests().len(), HANDSHAKES);
    let connects = service.connects();
    assert!(
        connects < HANDSHAKES,
        "{connects} connections for {HANDSHAKES} questions: keep-alive not reused"
    );
    for asked in service.heads() {
        assert!(head_field(&asked, "Connection").is_empty(), "{asked}");
    }
}
