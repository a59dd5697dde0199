//! The tunnel: bytes both ways after a verified 101, read-ahead on either side forwarded, the
//! rebuilt request the backend sees, half-close, and every way a session ends (the close matrix;
//! idle timeout and shutdown live in `proxy_lifecycle.rs`).

mod support;

use futures_util::SinkExt;
use support::head::{masked_text_frame, server_text_frame};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

async fn scripted_proxy(script: Script) -> (TestProxy, ScriptedBackend) {
    let backend = ScriptedBackend::start(script).await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    (proxy, backend)
}

async fn round_trip(ws: &mut Ws, msg: Message) {
    within("sending a message", ws.send(msg.clone()))
        .await
        .expect("send");
    let got = next_message(ws).await;
    assert!(
        got == msg,
        "echo differs: sent {} bytes, got {}",
        msg.len(),
        got.len()
    );
}

// ---- data ----

#[tokio::test]
async fn text_and_binary_messages_are_echoed() {
    let (proxy, _backend) = echo_proxy().await;
    let mut ws = proxy.ws_connect("/echo/").await;
    round_trip(&mut ws, Message::text("hello through wsgate")).await;
    round_trip(&mut ws, Message::binary(vec![0u8, 1, 2, 255, 254])).await;
    round_trip(&mut ws, Message::text("")).await;
}

#[tokio::test]
async fn sixteen_mib_binary_message_is_echoed() {
    let (proxy, _backend) = echo_proxy().await;
    let mut ws = proxy.ws_connect("/echo/").await;
    let data: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    round_trip(&mut ws, Message::binary(data)).await;
}

#[tokio::test]
async fn fragmented_message_with_interleaved_ping_is_echoed() {
    let (proxy, _backend) = echo_proxy().await;
    let mut ws = proxy.ws_connect("/echo/").await;
    let frames = [
        Frame::message("hel", OpCode::Data(Data::Text), false),
        Frame::ping("mid"),
        Frame::message("lo wo", OpCode::Data(Data::Continue), false),
        Frame::message("rld", OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        within("sending a frame", ws.send(Message::Frame(frame)))
            .await
            .expect("send");
    }
    assert_eq!(next_message(&mut ws).await, Message::Pong("mid".into()));
    assert_eq!(next_message(&mut ws).await, Message::text("hello world"));
}

#[tokio::test]
async fn ping_gets_pong() {
    let (proxy, _backend) = echo_proxy().await;
    let mut ws = proxy.ws_connect("/echo/").await;
    within("ping", ws.send(Message::Ping("are you there".into())))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut ws).await,
        Message::Pong("are you there".into())
    );
}

#[tokio::test]
async fn subprotocol_chosen_by_the_backend_reaches_the_client() {
    let (proxy, backend) = echo_proxy().await;
    let (mut ws, response) = proxy
        .ws("/echo/")
        .header("Sec-WebSocket-Protocol", "chat, superchat")
        .connect()
        .await
        .expect("handshake");
    let chosen = response.headers().get("sec-websocket-protocol");
    assert_eq!(chosen.and_then(|v| v.to_str().ok()), Some("chat"));
    let seen = backend.only_request();
    assert_eq!(seen.one("Sec-WebSocket-Protocol"), Some("chat, superchat"));
    round_trip(&mut ws, Message::text("x")).await;
}

// ---- read-ahead on either side ----

#[tokio::test]
async fn frame_in_the_same_segment_as_the_101_reaches_the_client() {
    let script = Script::answer_with(|head| {
        let mut answer = upgrade_answer(head, &[]).into_bytes();
        answer.extend(server_text_frame(b"welcome"));
        answer
    })
    .then(Then::Echo);
    let (proxy, _backend) = scripted_proxy(script).await;
    let mut ws = proxy.ws_connect("/echo/").await;
    assert_eq!(next_message(&mut ws).await, Message::text("welcome"));
    round_trip(&mut ws, Message::text("and echo still works")).await;
}

#[tokio::test]
async fn pipelined_client_frame_is_forwarded_only_after_the_101() {
    let script = Script::upgrade().quiet_before_answer(std::time::Duration::from_millis(200));
    let (proxy, backend) = scripted_proxy(script).await;
    let mut request = Head::upgrade("/echo/").bytes();
    request.extend(masked_text_frame(b"pipelined"));
    let mut conn = proxy.connect().await;
    within("write", conn.write_all(&request))
        .await
        .expect("write head and frame");
    let answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101, "{answer:#?}");
    let seen = backend.next_seen().await;
    assert!(
        seen.early.is_empty(),
        "forwarded before the 101: {:?}",
        seen.early
    );
    let mut ws = WebSocketStream::from_partially_read(conn, answer.body, Role::Client, None).await;
    assert_eq!(next_message(&mut ws).await, Message::text("pipelined"));
}

// ---- the rebuilt request (RFC 9110 §7.6.1, RFC 7239) ----

#[tokio::test]
async fn backend_sees_a_rebuilt_request() {
    let (proxy, backend) = echo_proxy().await;
    let head = Head::upgrade("/private/../echo/x?q=%2e")
        .set("Connection", "keep-alive, Upgrade, X-Hop")
        .header("X-Hop", "secret")
        .header("Keep-Alive", "timeout=5")
        .header("Proxy-Connection", "keep-alive")
        .header("TE", "trailers")
        .header("Trailer", "X-Checksum")
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Forwarded-Proto", "gopher")
        .header("Forwarded", "for=203.0.113.9")
        .header("Sec-WebSocket-Protocol", "chat")
        .header("Sec-WebSocket-Extensions", "x-test")
        .header("X-App", "kept");
    assert_upgraded(&proxy, head).await;
    let seen = backend.only_request();
    assert_eq!(seen.target, "/echo/x?q=%2e");
    assert_eq!(seen.one("Host"), Some("localhost"));
    assert_eq!(seen.one("Upgrade"), Some("websocket"));
    assert!(
        seen.one("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")),
        "{seen:#?}"
    );
    assert_eq!(seen.one("Sec-WebSocket-Key"), Some(KEY));
    assert_eq!(seen.one("Sec-WebSocket-Version"), Some("13"));
    assert_eq!(seen.one("Sec-WebSocket-Protocol"), Some("chat"));
    assert_eq!(seen.one("Sec-WebSocket-Extensions"), Some("x-test"));
    assert_eq!(seen.one("X-App"), Some("kept"));
    assert_eq!(seen.one("X-Forwarded-For"), Some("127.0.0.1"));
    assert_eq!(seen.one("X-Forwarded-Proto"), Some("https"));
    assert_eq!(seen.one("X-Forwarded-Host"), Some("localhost"));
    for gone in [
        "X-Hop",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Forwarded",
    ] {
        assert!(
            seen.all(gone).is_empty(),
            "{gone} must not be forwarded: {seen:#?}"
        );
    }
}

#[tokio::test]
async fn plain_listener_forwards_proto_http() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .plain()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let mut ws = proxy.ws_connect("/echo/").await;
    round_trip(&mut ws, Message::text("plain")).await;
    assert_eq!(
        backend.only_request().one("X-Forwarded-Proto"),
        Some("http")
    );
}

// ---- half-close ----

#[tokio::test]
async fn client_half_close_reaches_the_backend_which_can_still_answer() {
    let (proxy, backend) = scripted_proxy(Script::upgrade().then(Then::WriteAfterEof)).await;
    let mut conn = proxy.connect().await;
    within("write", conn.write_all(&Head::upgrade("/echo/").bytes()))
        .await
        .expect("write");
    assert_eq!(read_head(&mut conn).await.status, 101);
    within(
        "write",
        conn.write_all(&frames::client_text("client-bytes")),
    )
    .await
    .expect("write");
    within("half-close", conn.shutdown())
        .await
        .expect("shutdown");
    assert_eq!(
        read_until_closed(&mut conn).await,
        frames::server_text("backend-after-eof")
    );
    let seen = backend.next_seen().await;
    assert_eq!(seen.after, frames::client_text("client-bytes"));
    assert!(seen.proxy_closed, "the backend saw EOF");
}

#[tokio::test]
async fn backend_half_close_reaches_the_client_which_can_still_send() {
    let (proxy, backend) = scripted_proxy(Script::upgrade().then(Then::HalfCloseFirst)).await;
    let mut conn = proxy.connect().await;
    within("write", conn.write_all(&Head::upgrade("/echo/").bytes()))
        .await
        .expect("write");
    let answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101);
    let mut got = answer.body;
    got.extend(read_until_closed(&mut conn).await);
    assert_eq!(got, frames::server_text("backend-done"));
    within("write", conn.write_all(&frames::client_text("client-late")))
        .await
        .expect("write after EOF");
    within("half-close", conn.shutdown())
        .await
        .expect("shutdown");
    let seen = backend.next_seen().await;
    assert_eq!(
        seen.after,
        frames::client_text("client-late"),
        "the client leg stayed open for writing"
    );
}

// ---- who closed ----

#[tokio::test]
async fn client_close_handshake_passes_through() {
    let (proxy, _backend) = echo_proxy().await;
    let mut ws = proxy.ws_connect("/echo/").await;
    round_trip(&mut ws, Message::text("bye soon")).await;
    within("close", ws.close(None)).await.expect("send close");
    let rest = messages_until_closed(&mut ws).await;
    assert!(matches!(rest.as_slice(), [Message::Close(_)]), "{rest:?}");
    // The backend closed its TCP leg first (RFC 6455 §7.1.1); the client closes its own now.
    drop(ws);
    let stats = proxy.stats();
    eventually("tunnel gauge back to 0", || stats.open_tunnels() == 0).await;
}

#[tokio::test]
async fn client_dropping_the_connection_closes_the_backend_leg() {
    let (proxy, backend) = scripted_proxy(Script::upgrade().then(Then::Hold)).await;
    let ws = proxy.ws_connect("/echo/").await;
    drop(ws);
    let seen = backend.next_seen().await;
    assert!(seen.proxy_closed && seen.after.is_empty(), "{seen:?}");
}

#[tokio::test]
async fn backend_closing_closes_the_client_leg() {
    let (proxy, _backend) = scripted_proxy(Script::upgrade().then(Then::Close)).await;
    let mut ws = proxy.ws_connect("/echo/").await;
    messages_until_closed(&mut ws).await;
    // The client saw the end; closing its side too ends the half-closed tunnel.
    drop(ws);
    let stats = proxy.stats();
    eventually("tunnel gauge back to 0", || stats.open_tunnels() == 0).await;
}

#[tokio::test]
async fn backend_reset_closes_the_client_leg() {
    let (proxy, _backend) = scripted_proxy(Script::upgrade().then(Then::Reset)).await;
    let mut ws = proxy.ws_connect("/echo/").await;
    messages_until_closed(&mut ws).await;
    // The client saw the end; closing its side too ends the half-closed tunnel.
    drop(ws);
    let stats = proxy.stats();
    eventually("tunnel gauge back to 0", || stats.open_tunnels() == 0).await;
}
