//! WebSockets over HTTP/2 (RFC 8441, #10): TLS listeners offer `h2`, each extended CONNECT stream
//! becomes its own session to an HTTP/1.1 backend, refusals and backend answers arrive on the
//! stream, and `http2: false` keeps a listener on HTTP/1.1.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::h2::{H2Client, H2Ws, body, connect_request, tls_with_alpn};
use support::*;
use tokio_tungstenite::tungstenite::Message;

async fn echo(ws: &mut H2Ws, text: &str) {
    within("send", ws.send(Message::text(text)))
        .await
        .expect("send");
    let back = within("the echo", ws.next()).await;
    match back {
        Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), text),
        other => panic!("expected the echo of {text:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn extended_connect_echoes_through_an_h1_backend() {
    let (proxy, backend) = echo_proxy().await;
    // The extended CONNECT succeeding at all proves SETTINGS_ENABLE_CONNECT_PROTOCOL was sent:
    // hyper's client refuses `:protocol` to a server that did not advertise it.
    let client = H2Client::connect(&proxy).await;
    let mut ws = client.websocket("/echo/chat?room=1").await;
    echo(&mut ws, "hello over h2").await;
    let seen = backend.only_request();
    assert_eq!(seen.one("upgrade"), Some("websocket"));
    assert!(seen.one("sec-websocket-key").is_some(), "a minted key");
    assert_eq!(seen.one("host"), Some("localhost"));
    within("close", ws.close(None)).await.expect("close");
    let stats = proxy.stats();
    eventually("the tunnel gauge to return to zero", || {
        stats.open_tunnels() == 0
    })
    .await;
}

#[tokio::test]
async fn sessions_are_registered_as_h2() {
    let (proxy, _backend) = echo_proxy().await;
    let client = H2Client::connect(&proxy).await;
    let mut a = client.websocket("/echo/").await;
    let mut b = client.websocket("/echo/").await;
    echo(&mut a, "a").await;
    echo(&mut b, "b").await;
    let all = proxy.stats().sessions.snapshot();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter().all(|s| s.info.protocol == "h2"),
        "every stream is an h2 session"
    );
}

#[tokio::test]
async fn http2_false_keeps_the_listener_on_http1() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .listener_option("http2: false")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let tls = tls_with_alpn(&proxy, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut ws = proxy.ws_connect("/echo/").await;
    within("send", ws.send(Message::text("h1")))
        .await
        .expect("send");
    let back = within("the echo", ws.next()).await;
    assert!(matches!(back, Some(Ok(Message::Text(t))) if t.as_str() == "h1"));
}

#[tokio::test]
async fn h1_still_works_on_an_h2_listener() {
    let (proxy, _backend) = echo_proxy().await;
    let mut ws = proxy.ws_connect("/echo/").await;
    within("send", ws.send(Message::text("h1")))
        .await
        .expect("send");
    let back = within("the echo", ws.next()).await;
    assert!(matches!(back, Some(Ok(Message::Text(t))) if t.as_str() == "h1"));
    let all = proxy.stats().sessions.snapshot();
    assert_eq!(all[0].info.protocol, "h1");
}

#[tokio::test]
async fn wrong_accept_from_the_backend_is_502_on_that_stream() {
    let bad = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n";
    let backend = ScriptedBackend::start(Script::answer(bad)).await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let client = H2Client::connect(&proxy).await;
    let answer = client
        .open(connect_request("/echo/", Some("websocket")))
        .await;
    let answer = answer.expect("an answer");
    assert_eq!(answer.status(), 502);
    assert!(answer.headers().get("sec-websocket-accept").is_none());
    assert_eq!(proxy.stats().open_tunnels(), 0);
}

#[tokio::test]
async fn a_backend_non_101_is_relayed_on_the_stream() {
    let answer = "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nX-Why: policy\r\n\
                  Connection: close\r\n\r\nnope";
    let backend = ScriptedBackend::start(Script::answer(answer)).await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let client = H2Client::connect(&proxy).await;
    let answer = client
        .open(connect_request("/echo/", Some("websocket")))
        .await;
    let answer = answer.expect("an answer");
    assert_eq!(answer.status(), 403);
    assert_eq!(
        answer.headers().get("x-why").map(|v| v.as_bytes()),
        Some(&b"policy"[..])
    );
    assert_eq!(body(answer).await, b"nope");
}

#[tokio::test]
async fn requests_that_are_not_websockets_are_refused_like_h1() {
    let (proxy, backend) = echo_proxy().await;
    let client = H2Client::connect(&proxy).await;
    // A plain GET: not a WebSocket (426), as h1 answers a request without Upgrade.
    let get = hyper::Request::get("https://localhost/echo/")
        .body(http_body_util::Empty::new())
        .expect("request");
    let answer = client.open(get).await.expect("an answer");
    assert_eq!(answer.status(), 426);
    assert!(
        answer.headers().get("connection").is_none(),
        "no h1 fields in h2"
    );
    // Another method: 405 naming CONNECT.
    let post = hyper::Request::post("https://localhost/echo/")
        .body(http_body_util::Empty::new())
        .expect("request");
    let answer = client.open(post).await.expect("an answer");
    assert_eq!(answer.status(), 405);
    assert_eq!(
        answer.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"CONNECT"[..])
    );
    // CONNECT without :protocol: 400. Unknown route: 404. Version 8: 426 naming 13.
    let answer = client
        .open(connect_request("/echo/", None))
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 400);
    let answer = client
        .open(connect_request("/nowhere/", Some("websocket")))
        .await;
    assert_eq!(answer.expect("an answer").status(), 404);
    let mut v8 = connect_request("/echo/", Some("websocket"));
    v8.headers_mut()
        .insert("sec-websocket-version", "8".parse().expect("value"));
    let answer = client.open(v8).await.expect("an answer");
    assert_eq!(answer.status(), 426);
    let version = answer.headers().get("sec-websocket-version");
    assert_eq!(version.map(|v| v.as_bytes()), Some(&b"13"[..]));
    assert_eq!(body(answer).await, b"unsupported Sec-WebSocket-Version\n");
    // The connection still serves WebSockets after all that.
    let mut ws = client.websocket("/echo/").await;
    echo(&mut ws, "still here").await;
    assert_eq!(backend.accepted(), 1);
}

/// Every WebSocket echoes a message of its own, all at once.
async fn round(all: &mut [H2Ws], tag: &str) {
    let each = all
        .iter_mut()
        .enumerate()
        .map(|(i, ws)| async move { echo(ws, &format!("{tag} {i}")).await });
    futures_util::future::join_all(each).await;
}

#[tokio::test]
async fn fifty_streams_on_one_connection_are_fifty_sessions() {
    let (proxy, _backend) = echo_proxy().await;
    let client = H2Client::connect(&proxy).await;
    let opened = (0..50).map(|_| client.websocket("/echo/"));
    let mut all: Vec<H2Ws> = futures_util::future::join_all(opened).await;
    round(&mut all, "first").await;
    let stats = proxy.stats();
    assert_eq!(stats.open_tunnels(), 50);
    // Closing one stream's session leaves the 49 others working.
    let mut one = all.remove(7);
    within("close", one.close(None)).await.expect("close");
    eventually("one session to end", || stats.open_tunnels() == 49).await;
    round(&mut all, "second").await;
}

#[tokio::test]
async fn rapid_resets_do_not_stop_another_connection() {
    let (proxy, _backend) = echo_proxy().await;
    let abuser = H2Client::connect(&proxy).await;
    for _ in 0..200 {
        // Open a stream and drop it at once: the client resets it.
        let mut send = abuser.send.clone();
        let pending = send.send_request(connect_request("/echo/", Some("websocket")));
        drop(tokio::time::timeout(std::time::Duration::ZERO, pending).await);
    }
    let client = H2Client::connect(&proxy).await;
    let mut ws = client.websocket("/echo/").await;
    echo(&mut ws, "unaffected").await;
}

#[tokio::test]
async fn drain_closes_h2_sessions_with_1001_and_the_connection_ends() {
    let (mut proxy, _backend) = echo_proxy().await;
    let client = H2Client::connect(&proxy).await;
    let mut ws = client.websocket("/echo/").await;
    echo(&mut ws, "before").await;
    proxy.drain();
    loop {
        match within("the Close", ws.next()).await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1001);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected Close 1001, got {other:?}"),
        }
    }
    // GOAWAY, the stream done on both sides: the connection task ends, and with it the drain.
    drop(ws);
    proxy.stopped().await;
    assert_eq!(proxy.stats().open_tunnels(), 0);
}

#[tokio::test]
async fn an_h2_connection_without_streams_is_closed_like_a_silent_h1_one() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("request_header_timeout", "300ms")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let idle = H2Client::connect(&proxy).await;
    let busy = H2Client::connect(&proxy).await;
    let mut ws = busy.websocket("/echo/").await;
    eventually("the idle h2 connection to be closed", || idle.closed()).await;
    // A connection with a live stream stays, however long it is.
    echo(&mut ws, "still open").await;
    assert!(!busy.closed(), "the connection with a session was closed");
}
