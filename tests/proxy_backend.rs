//! The backend's answer (RFC 6455 §4.1, client-side checks done by the proxy): a tunnel only on
//! a correct 101; any other answer relayed without its hop-by-hop fields and both sides closed;
//! broken, slow or absent backends mapped to 502/504. The client pipelines a frame after its
//! head every time: it must never reach a backend that did not upgrade correctly.

mod support;

use std::time::Duration;

use support::head::masked_text_frame;
use support::tokens::head_field;
use support::*;
use tokio::io::AsyncWriteExt;

const BAD_ACCEPT: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";

async fn through(script: Script, limits: &[(&str, &str)]) -> (TestProxy, ScriptedBackend) {
    let backend = ScriptedBackend::start(script).await;
    let mut builder = TestProxy::builder().route(None, "/echo/", backend.addr());
    for (key, value) in limits {
        builder = builder.limit(key, value);
    }
    (builder.start().await, backend)
}

/// The sample upgrade with a pipelined frame, sent in one write; the whole answer read back.
async fn send_with_pipelined_frame(proxy: &TestProxy, head: Head) -> Answer {
    let mut request = head.bytes();
    request.extend(masked_text_frame(b"pipelined"));
    exchange(&mut proxy.connect().await, &request).await
}

/// What the client got, and what the backend saw, after the backend answered per `script`.
async fn answered(script: Script, head: Head, limits: &[(&str, &str)]) -> (Answer, Seen) {
    let (proxy, backend) = through(script, limits).await;
    let answer = send_with_pipelined_frame(&proxy, head).await;
    let seen = backend.next_seen().await;
    assert!(seen.head.starts_with("GET /echo/ HTTP/1.1\r\n"), "{seen:?}");
    assert!(
        seen.early.is_empty() && seen.after.is_empty(),
        "client bytes forwarded: {seen:?}"
    );
    assert!(
        seen.proxy_closed,
        "the proxy must close the backend connection: {seen:?}"
    );
    assert_eq!(proxy.stats().open_tunnels(), 0);
    (answer, seen)
}

/// Like [`answered`], expecting a refusal with `status` and `reason` counted once and no tunnel.
async fn refused_by_backend(script: Script, head: Head, status: u16, reason: &str) -> Seen {
    let (proxy, backend) = through(script, &[("backend_handshake_timeout", "300ms")]).await;
    let answer = send_with_pipelined_frame(&proxy, head).await;
    assert_eq!(
        answer.status, status,
        "expected {status} {reason}: {answer:#?}"
    );
    assert_closing(&answer);
    let seen = backend.next_seen().await;
    assert!(
        seen.early.is_empty() && seen.after.is_empty(),
        "client bytes forwarded: {seen:?}"
    );
    let stats = proxy.stats();
    eventually(&format!("{reason} counted"), || stats.refusals(reason) == 1).await;
    assert_eq!(stats.tunnels_total(), 0);
    seen
}

fn bad_101(lines: &[&str]) -> Script {
    let mut answer = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for line in lines {
        answer.push_str(line);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    Script::answer(answer)
}

// ---- non-101 answers are relayed, then both sides closed ----

#[tokio::test]
async fn non_101_answer_is_relayed_without_hop_by_hop_fields() {
    let script = Script::answer(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nConnection: keep-alive, X-Private\r\n\
         Keep-Alive: timeout=5\r\nX-Private: secret\r\nX-Reason: policy\r\n\r\nnope!",
    );
    let (answer, _) = answered(script, Head::upgrade("/echo/"), &[]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.header("X-Reason"), Some("policy"));
    assert_eq!(answer.body_text(), "nope!");
    assert_closing(&answer);
    assert!(!answer.has_token("Connection", "keep-alive"), "{answer:#?}");
    assert_eq!(answer.header("Keep-Alive"), None);
    assert_eq!(
        answer.header("X-Private"),
        None,
        "named in Connection: hop-by-hop"
    );
}

#[tokio::test]
async fn bytes_after_a_non_101_body_are_not_relayed() {
    let script = Script::answer("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcRAW-BYTES");
    let (answer, _) = answered(script, Head::upgrade("/echo/"), &[]).await;
    assert_eq!((answer.status, answer.body_text().as_str()), (404, "abc"));
}

#[tokio::test]
async fn close_delimited_non_101_body_is_relayed() {
    let script = Script::answer("HTTP/1.1 500 Internal Server Error\r\n\r\nboom").then(Then::Close);
    let (proxy, _backend) = through(script, &[]).await;
    let answer = send_with_pipelined_frame(&proxy, Head::upgrade("/echo/")).await;
    assert_eq!((answer.status, answer.body_text().as_str()), (500, "boom"));
    assert_closing(&answer);
}

#[tokio::test]
async fn non_101_body_is_bounded_by_max_relayed_body_bytes() {
    let body = "x".repeat(64 * 1024);
    let script = Script::answer(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n{body}"
    ));
    let limits = [("max_relayed_body_bytes", "1KiB")];
    let (answer, _) = answered(script, Head::upgrade("/echo/"), &limits).await;
    assert!(
        answer.body.len() <= 1024,
        "relayed {} body bytes",
        answer.body.len()
    );
}

// ---- a 101 must satisfy RFC 6455 §4.1 ----

#[tokio::test]
async fn wrong_accept_is_502() {
    let script = bad_101(&[
        "Upgrade: websocket",
        "Connection: Upgrade",
        &format!("Sec-WebSocket-Accept: {BAD_ACCEPT}"),
    ]);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn missing_accept_is_502() {
    let script = bad_101(&["Upgrade: websocket", "Connection: Upgrade"]);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn missing_upgrade_is_502() {
    let script = bad_101(&[
        "Connection: Upgrade",
        &format!("Sec-WebSocket-Accept: {ACCEPT}"),
    ]);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn upgrade_to_another_protocol_is_502() {
    let script = bad_101(&[
        "Upgrade: h2c",
        "Connection: Upgrade",
        &format!("Sec-WebSocket-Accept: {ACCEPT}"),
    ]);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn connection_without_upgrade_is_502() {
    let script = bad_101(&[
        "Upgrade: websocket",
        "Connection: keep-alive",
        &format!("Sec-WebSocket-Accept: {ACCEPT}"),
    ]);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn unoffered_subprotocol_is_502() {
    let script =
        Script::answer_with(|h| upgrade_answer(h, &["Sec-WebSocket-Protocol: chat"]).into());
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn subprotocol_other_than_the_offered_one_is_502() {
    let script = Script::answer_with(|h| upgrade_answer(h, &["Sec-WebSocket-Protocol: b"]).into());
    let head = Head::upgrade("/echo/").header("Sec-WebSocket-Protocol", "a");
    refused_by_backend(script, head, 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn unoffered_extension_is_502() {
    let ext = "Sec-WebSocket-Extensions: permessage-deflate";
    let script = Script::answer_with(move |h| upgrade_answer(h, &[ext]).into());
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_bad_upgrade").await;
}

#[tokio::test]
async fn offered_subprotocol_and_extension_are_relayed() {
    let lines = [
        "Sec-WebSocket-Protocol: b",
        "Sec-WebSocket-Extensions: x-test",
    ];
    let script = Script::answer_with(move |h| upgrade_answer(h, &lines).into()).then(Then::Echo);
    let (proxy, backend) = through(script, &[]).await;
    let head = Head::upgrade("/echo/")
        .header("Sec-WebSocket-Protocol", "a, b")
        .header("Sec-WebSocket-Extensions", "x-test");
    let mut conn = proxy.connect().await;
    conn.write_all(&head.bytes()).await.expect("write head");
    let answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101, "{answer:#?}");
    assert_eq!(answer.header("Sec-WebSocket-Protocol"), Some("b"));
    assert_eq!(answer.header("Sec-WebSocket-Extensions"), Some("x-test"));
    let seen = backend.next_seen().await;
    // Field names reach the backend title-cased by hyper (`Sec-Websocket-Protocol`).
    assert_eq!(
        head_field(&seen.head, "Sec-WebSocket-Protocol"),
        ["a, b"],
        "{}",
        seen.head
    );
}

// ---- broken, slow and absent backends ----

#[tokio::test]
async fn garbage_before_the_status_line_is_502() {
    let script = Script::answer("SSH-2.0-OpenSSH_9.6\r\n\r\n");
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_malformed").await;
}

#[tokio::test]
async fn oversized_answer_head_is_502() {
    let big = format!(
        "HTTP/1.1 101 Switching Protocols\r\nX-Big: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    refused_by_backend(
        Script::answer(big),
        Head::upgrade("/echo/"),
        502,
        "backend_malformed",
    )
    .await;
}

#[tokio::test]
async fn backend_closing_mid_head_is_502() {
    let script = Script::answer("HTTP/1.1 101 Switching Protocols\r\nUpgr").then(Then::Close);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_closed").await;
}

#[tokio::test]
async fn backend_resetting_mid_head_is_502() {
    let script = Script::answer("HTTP/1.1 101 Switching Protocols\r\nUpgr").then(Then::Reset);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_closed").await;
}

#[tokio::test]
async fn backend_closing_without_a_byte_is_502() {
    let script = Script::silent().then(Then::Close);
    refused_by_backend(script, Head::upgrade("/echo/"), 502, "backend_closed").await;
}

#[tokio::test]
async fn silent_backend_gets_504_after_backend_handshake_timeout() {
    let start = tokio::time::Instant::now();
    let seen = refused_by_backend(
        Script::silent(),
        Head::upgrade("/echo/"),
        504,
        "backend_timeout",
    )
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert!(
        seen.proxy_closed,
        "the proxy must close the silent backend: {seen:?}"
    );
}

#[tokio::test]
async fn refused_backend_connection_is_502() {
    // A port that was just free: nothing listens there any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("address");
    drop(closed);
    let proxy = TestProxy::builder()
        .route(None, "/echo/", addr)
        .start()
        .await;
    let answer = send_with_pipelined_frame(&proxy, Head::upgrade("/echo/")).await;
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert_closing(&answer);
    let stats = proxy.stats();
    eventually("backend_unavailable counted", || {
        stats.refusals("backend_unavailable") == 1
    })
    .await;
}

#[tokio::test]
async fn backend_connect_timeout_gets_504() {
    let black_hole = FullBacklog::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", black_hole.addr)
        .limit("backend_connect_timeout", "300ms")
        .start()
        .await;
    let start = tokio::time::Instant::now();
    let answer = send_with_pipelined_frame(&proxy, Head::upgrade("/echo/")).await;
    assert_eq!(answer.status, 504, "{answer:#?}");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert_closing(&answer);
    let stats = proxy.stats();
    eventually("backend_connect_timeout counted", || {
        stats.refusals("backend_connect_timeout") == 1
    })
    .await;
}
