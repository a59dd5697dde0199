//! Backend answers crafted to break an HTTP parser, and the bytes right behind a 101: a chunk size
//! near 2^64 or a chunked body over `max_relayed_body_bytes` is a 502 (as an over-cap
//! Content-Length body is) and the gateway keeps serving; an interim 1xx is refused; a backend's
//! first frame sent in the same write as its 101 reaches the client before anything else.

mod support;

use support::head::server_text_frame;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// A gateway with `/bad/` on a scripted backend and `/echo/` on a well-behaved one.
async fn beside_a_good_backend(
    script: Script,
    limits: &[(&str, &str)],
) -> (TestProxy, ScriptedBackend, ScriptedBackend) {
    let bad = ScriptedBackend::start(script).await;
    let good = ScriptedBackend::start(Script::upgrade()).await;
    let mut builder =
        TestProxy::builder()
            .route(None, "/bad/", bad.addr())
            .route(None, "/echo/", good.addr());
    for (key, value) in limits {
        builder = builder.limit(key, value);
    }
    (builder.start().await, bad, good)
}

/// `/bad/` gets `status` with `reason` counted once, then `/echo/` still upgrades and echoes.
async fn refused_then_still_serving(script: Script, limits: &[(&str, &str)], reason: &str) {
    let (proxy, _bad, _good) = beside_a_good_backend(script, limits).await;
    let answer = proxy.exchange(&Head::upgrade("/bad/")).await;
    assert_eq!(answer.status, 502, "expected 502 {reason}: {answer:#?}");
    assert_closing(&answer);
    let stats = proxy.stats();
    eventually(&format!("{reason} counted"), || stats.refusals(reason) == 1).await;
    let mut ws = proxy.ws_connect("/echo/").await;
    within(
        "send",
        futures_util::SinkExt::send(&mut ws, Message::text("still here")),
    )
    .await
    .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("still here"));
}

fn chunked_403(body: &[u8]) -> Vec<u8> {
    let mut answer = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    answer.extend_from_slice(body);
    answer
}

#[tokio::test]
async fn chunk_size_near_2_pow_64_is_502_and_the_gateway_keeps_serving() {
    let mut body = b"fffffffffffffff0\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 4096));
    let script = Script::answer(chunked_403(&body));
    let limits = [("max_relayed_body_bytes", "1KiB")];
    refused_then_still_serving(script, &limits, "backend_malformed").await;
}

#[tokio::test]
async fn chunk_size_near_2_pow_64_after_a_chunk_is_502_and_the_gateway_keeps_serving() {
    // The size added to the 16 bytes already read is what used to overflow.
    let body = b"10\r\n0123456789abcdef\r\nfffffffffffffff0\r\nxyz";
    let script = Script::answer(chunked_403(body)).then(Then::Close);
    refused_then_still_serving(script, &[], "backend_closed").await;
}

#[tokio::test]
async fn chunked_body_over_max_relayed_body_bytes_is_502() {
    let chunk = format!("400\r\n{}\r\n", "y".repeat(1024));
    let script = Script::answer(chunked_403(chunk.repeat(64).as_bytes()));
    let limits = [("max_relayed_body_bytes", "1KiB")];
    refused_then_still_serving(script, &limits, "backend_malformed").await;
}

#[tokio::test]
async fn content_length_over_max_relayed_body_bytes_is_502() {
    let script = Script::answer(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n{}",
        "x".repeat(64 * 1024)
    ));
    let limits = [("max_relayed_body_bytes", "1KiB")];
    refused_then_still_serving(script, &limits, "backend_malformed").await;
}

#[tokio::test]
async fn interim_answer_to_the_upgrade_is_502() {
    let script = Script::answer("HTTP/1.1 100 Continue\r\n\r\n");
    refused_then_still_serving(script, &[], "backend_bad_upgrade").await;
}

#[tokio::test]
async fn bytes_behind_the_101_reach_the_client_first() {
    let script = Script::answer_with(|head| {
        let mut answer = upgrade_answer(head, &[]).into_bytes();
        answer.extend(server_text_frame(b"first"));
        answer.extend(server_text_frame(b"second"));
        answer
    })
    .then(Then::Echo);
    let (proxy, _bad, _good) = beside_a_good_backend(script, &[]).await;
    let mut conn = proxy.connect().await;
    within("write", conn.write_all(&Head::upgrade("/bad/").bytes()))
        .await
        .expect("write head");
    let answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101, "{answer:#?}");
    let mut ws = WebSocketStream::from_partially_read(conn, answer.body, Role::Client, None).await;
    assert_eq!(next_message(&mut ws).await, Message::text("first"));
    assert_eq!(next_message(&mut ws).await, Message::text("second"));
    within(
        "send",
        futures_util::SinkExt::send(&mut ws, Message::text("echo")),
    )
    .await
    .expect("send");
    assert_eq!(next_message(&mut ws).await, Message::text("echo"));
}
