//! Routes with `http: proxy`: requests that are not upgrades (the page that opens the socket,
//! long-polling fallbacks) reach the route's pool with forwarding fields set and hop-by-hop ones
//! removed, within their size and time bounds; the client keeps its connection, and a browser
//! that loaded the page over h2 opens its socket on that same connection.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::h2::{H2Client, tls_with_alpn};
use support::plain::{PlainBackend, h1_client, plain, send};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

async fn proxying(backend: &PlainBackend) -> TestProxy {
    TestProxy::builder()
        .route(None, "/", backend.addr())
        .policy("http: proxy")
        .start()
        .await
}

#[tokio::test]
async fn a_plain_get_reaches_the_pool_with_forwarding_fields_and_without_hop_by_hop_ones() {
    let backend = PlainBackend::start().await;
    let proxy = proxying(&backend).await;
    let mut client = h1_client(&proxy).await;
    let req = Request::get("/app/../page?x=1")
        .header(header::HOST, "localhost")
        .header(header::CONNECTION, "keep-alive, X-Secret")
        .header("x-secret", "1")
        .header("keep-alive", "timeout=5")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("accept", "text/html")
        .body(Full::default())
        .expect("request");
    let (status, headers, body) = send(&mut client, req).await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
    assert_eq!(body, b"plain GET /page?x=1");
    let seen = backend.next_request().await;
    assert_eq!(seen.version, "HTTP/1.1");
    assert_eq!(seen.target, "/page?x=1", "the normalised target");
    for gone in ["x-secret", "keep-alive", "forwarded"] {
        assert!(seen.all(gone).is_empty(), "{gone} forwarded: {seen:?}");
    }
    for (name, want) in [
        ("host", "localhost"),
        ("accept", "text/html"),
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "localhost"),
    ] {
        assert_eq!(seen.all(name), [want], "{name} in {seen:?}");
    }
}

#[tokio::test]
async fn the_client_keeps_its_connection_for_more_requests_and_then_the_socket() {
    let backend = PlainBackend::start().await;
    let proxy = proxying(&backend).await;
    let mut client = h1_client(&proxy).await;
    let (status, _, body) = send(&mut client, plain("GET", "/", "")).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &b"plain GET /"[..])
    );
    let (status, _, body) = send(&mut client, plain("POST", "/poll?t=1", "42")).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &b"plain POST /poll?t=1"[..])
    );
    let _ = backend.next_request().await;
    let post = backend.next_request().await;
    assert_eq!(post.all("content-length"), ["2"]);
    assert_eq!(post.body, b"42");
    // The page opens its socket on the connection it came on.
    let upgrade = Request::get("/")
        .header(header::HOST, "localhost")
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "upgrade")
        .header(header::SEC_WEBSOCKET_KEY, KEY)
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .body(Full::default())
        .expect("request");
    let answer = within("the 101", client.send_request(upgrade)).await;
    let answer = answer.expect("an answer");
    assert_eq!(answer.status(), StatusCode::SWITCHING_PROTOCOLS);
    let io = within("the upgrade", hyper::upgrade::on(answer)).await;
    let io = TokioIo::new(io.expect("upgraded"));
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    within("send", ws.send(Message::text("hi")))
        .await
        .expect("send");
    let echo = within("the echo", ws.next()).await;
    assert!(matches!(echo, Some(Ok(Message::Text(t))) if t.as_str() == "hi"));
}

#[tokio::test]
async fn over_h2_the_page_and_its_socket_share_one_connection() {
    let backend = PlainBackend::start().await;
    let proxy = proxying(&backend).await;
    let client = H2Client::connect(&proxy).await;
    let page = Request::get("https://localhost/")
        .body(http_body_util::Empty::new())
        .expect("request");
    let answer = client.open(page).await.expect("an answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(support::h2::body(answer).await, b"plain GET /");
    let seen = backend.next_request().await;
    assert_eq!(
        (seen.version.as_str(), seen.all("host")),
        ("HTTP/1.1", vec!["localhost"])
    );
    let mut ws = client.websocket("/").await;
    within("send", ws.send(Message::text("over h2")))
        .await
        .expect("send");
    let echo = within("the echo", ws.next()).await;
    assert!(matches!(echo, Some(Ok(Message::Text(t))) if t.as_str() == "over h2"));
}

#[tokio::test]
async fn an_h2_post_reaches_the_backend_as_http11_with_its_length() {
    let backend = PlainBackend::start().await;
    let proxy = proxying(&backend).await;
    let tls = tls_with_alpn(&proxy, &[b"h2"]).await;
    let handshake = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tls),
    );
    let (mut send_h2, conn) = within("h2 handshake", handshake).await.expect("h2");
    tokio::spawn(conn);
    let req = Request::post("https://localhost/poll")
        .header(header::COOKIE, "a=1")
        .header(header::COOKIE, "b=2")
        .body(Full::new(Bytes::from_static(b"payload")))
        .expect("request");
    let answer = within("an answer", send_h2.send_request(req))
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let _ = within("the body", answer.into_body().collect()).await;
    let seen = backend.next_request().await;
    assert_eq!(
        (seen.method.as_str(), seen.version.as_str()),
        ("POST", "HTTP/1.1")
    );
    assert_eq!(seen.all("content-length"), ["7"]);
    assert_eq!(seen.body, b"payload");
    assert_eq!(seen.all("cookie"), ["a=1; b=2"]);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_no_backend_sees_it() {
    let backend = PlainBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/", backend.addr())
        .policy("http: proxy")
        .limit("max_request_body_bytes", "1KiB")
        .start()
        .await;
    let mut client = h1_client(&proxy).await;
    let big = "x".repeat(2048);
    let (status, _, _) = send(&mut client, plain("POST", "/upload", big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(backend.accepted(), 0, "the backend was contacted");
}

#[tokio::test]
async fn an_answer_over_the_limit_is_502() {
    let backend = PlainBackend::answering(Duration::ZERO, |_| {
        hyper::Response::new(Full::new(Bytes::from(vec![b'x'; 4096])))
    })
    .await;
    let proxy = TestProxy::builder()
        .route(None, "/", backend.addr())
        .policy("http: proxy")
        .limit("max_response_body_bytes", "1KiB")
        .start()
        .await;
    let mut client = h1_client(&proxy).await;
    let (status, _, _) = send(&mut client, plain("GET", "/big", "")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_long_poll_may_outlast_the_handshake_timeout_but_not_the_request_timeout() {
    let slow = PlainBackend::answering(Duration::from_millis(600), |_| {
        hyper::Response::new(Full::new(Bytes::from_static(b"news")))
    })
    .await;
    let proxy = TestProxy::builder()
        .route(None, "/", slow.addr())
        .policy("http: proxy")
        .limit("backend_handshake_timeout", "200ms")
        .start()
        .await;
    let mut client = h1_client(&proxy).await;
    let (status, _, body) = send(&mut client, plain("GET", "/poll", "")).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"news"[..]));
    let proxy = TestProxy::builder()
        .route(None, "/", slow.addr())
        .policy("http: proxy")
        .limit("http_request_timeout", "200ms")
        .start()
        .await;
    let mut client = h1_client(&proxy).await;
    let (status, _, _) = send(&mut client, plain("GET", "/poll", "")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn identity_fields_the_route_sets_cannot_be_forged_on_plain_requests() {
    let backend = PlainBackend::start().await;
    // Admission applies to upgrades; the plain request only loses the fields wsgate would set.
    let proxy = TestProxy::builder()
        .route(None, "/", backend.addr())
        .policy(
            "http: proxy, auth: { request: { url: \"http://127.0.0.1:9/auth\", copy_headers: [X-User] } }",
        )
        .start()
        .await;
    let mut client = h1_client(&proxy).await;
    let req = Request::get("/")
        .header(header::HOST, "localhost")
        .header("x-user", "admin")
        .body(Full::default())
        .expect("request");
    let (status, _, _) = send(&mut client, req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(backend.next_request().await.all("x-user").is_empty());
}

#[tokio::test]
async fn an_unreachable_pool_is_502() {
    let dead = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address")
    };
    let proxy = TestProxy::builder()
        .route(None, "/", dead)
        .policy("http: proxy")
        .start()
        .await;
    let mut client = h1_client(&proxy).await;
    let (status, _, _) = send(&mut client, plain("GET", "/", "")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_request_header_timeout() {
    let backend = PlainBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/", backend.addr())
        .policy("http: proxy")
        .limit("request_header_timeout", "300ms")
        .start()
        .await;
    let stats = proxy.stats();
    let mut conn = proxy.connect().await;
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    within("writing a request", conn.write_all(request))
        .await
        .expect("write");
    let start = tokio::time::Instant::now();
    let got = read_until_closed(&mut conn).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("plain GET /"),
        "one answer, then the close: {text}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "kept open while idle for {:?}",
        start.elapsed()
    );
    // Waiting for a next request that never came is no refusal.
    assert_eq!(stats.refusals("head_timeout"), 0);
}
