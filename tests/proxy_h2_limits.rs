//! The bounds of an HTTP/2 connection (#10), seen from a raw h2 client: the SETTINGS wsgate
//! sends, the stream cap, the header list limit, the keep-alive PING, and what one stream's end
//! does (and does not do) to its neighbours.

mod support;

use std::time::Duration;

use support::h2::H2Client;
use support::h2raw::*;
use support::*;

/// `MAX_STREAMS` in `proxy::h2`.
const MAX_STREAMS: usize = 100;

/// The route labels of the live sessions, sorted.
fn routes(proxy: &TestProxy) -> Vec<String> {
    let mut all: Vec<String> = (proxy.stats().sessions.snapshot().iter())
        .map(|s| s.info.route.to_string())
        .collect();
    all.sort();
    all
}

/// Every stream echoes a message of its own: all sent, then all read back.
async fn round(c: &mut RawH2, streams: &[u32], tag: &str) {
    for &s in streams {
        c.send_ws(s, 0x1, format!("{tag} {s}").as_bytes()).await;
    }
    for &s in streams {
        let (opcode, payload) = c.ws_frame(s).await;
        assert_eq!(opcode, 0x1, "a text echo on stream {s}");
        assert_eq!(payload, format!("{tag} {s}").as_bytes(), "stream {s}");
    }
}

#[tokio::test]
async fn the_server_advertises_extended_connect_and_its_limits() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("max_request_header_bytes", "3KiB")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let mut c = RawH2::connect(&proxy).await;
    let enabled = c.setting(SETTINGS_ENABLE_CONNECT_PROTOCOL);
    assert_eq!(enabled, Some(1), "RFC 8441 §3, in {:?}", c.settings);
    let streams = c.setting(SETTINGS_MAX_CONCURRENT_STREAMS);
    assert_eq!(streams, Some(MAX_STREAMS as u32), "{:?}", c.settings);
    let header_list = c.setting(SETTINGS_MAX_HEADER_LIST_SIZE);
    assert_eq!(header_list, Some(3 * 1024), "max_request_header_bytes");
    let window = c.setting(SETTINGS_INITIAL_WINDOW_SIZE);
    assert_eq!(window, Some(64 * 1024), "the stream window");
    // What was advertised is what is served.
    let ws = c.websocket("/echo/").await;
    c.echo(ws, "over a raw h2 stream").await;
}

#[tokio::test]
async fn the_stream_past_the_cap_is_refused_and_the_others_keep_echoing() {
    let (proxy, backend) = echo_proxy().await;
    let stats = proxy.stats();
    let mut c = RawH2::connect(&proxy).await;
    let mut streams = Vec::new();
    for _ in 0..MAX_STREAMS {
        streams.push(c.open("/echo/", &[]).await);
    }
    for &s in &streams {
        assert_eq!(c.reply(s).await, Reply::Status(Some(200)), "stream {s}");
    }
    round(&mut c, &streams, "first").await;
    // RFC 9113 §5.1.2: a stream past SETTINGS_MAX_CONCURRENT_STREAMS is refused, on its own.
    let extra = c.open("/echo/", &[]).await;
    assert_eq!(c.reply(extra).await, Reply::Reset(REFUSED_STREAM));
    round(&mut c, &streams, "second").await;
    assert_eq!(c.goaway, None, "the connection goes on");
    assert_eq!(stats.sessions.len(), MAX_STREAMS);
    assert_eq!(
        backend.accepted(),
        MAX_STREAMS,
        "the refused stream reached no backend"
    );
    // The cap is on open streams: once one ends, a new one is served.
    c.reset(streams[0], CANCEL).await;
    eventually("the reset stream's session to end", || {
        stats.sessions.len() == MAX_STREAMS - 1
    })
    .await;
    // h2 frees the slot when the tunnel task drops the stream, which may be just after the
    // registry entry goes: a refusal in that instant is retried.
    for attempt in 0.. {
        let s = c.open("/echo/", &[]).await;
        match c.reply(s).await {
            Reply::Status(Some(200)) => {
                c.echo(s, "in the freed slot").await;
                break;
            }
            Reply::Reset(REFUSED_STREAM) if attempt < 20 => continue,
            other => panic!("a stream after one ended: {other:?}"),
        }
    }
    round(&mut c, &streams[1..], "third").await;
}

#[tokio::test]
async fn a_header_list_over_the_limit_is_refused_on_its_stream_only() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("max_request_header_bytes", "2KiB")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let mut c = RawH2::connect(&proxy).await;
    let before = c.websocket("/echo/").await;
    c.echo(before, "before").await;
    let big = "a".repeat(3000);
    let over = c.open("/echo/", &[("x-big", &big)]).await;
    // RFC 9113 §10.5.1: 431 on that stream, as h1 answers a head over the limit.
    let reply = c.reply(over).await;
    assert_eq!(reply, Reply::Status(Some(431)), "a header list over 2 KiB");
    c.until("the refused stream to end", |c| c.ended(over).then_some(()))
        .await;
    // The stream before it, and a stream after it with a header list under the limit, work.
    c.echo(before, "after").await;
    let fits = "b".repeat(1024);
    let under = c.open("/echo/", &[("x-big", &fits)]).await;
    assert_eq!(c.reply(under).await, Reply::Status(Some(200)));
    c.echo(under, "under the limit").await;
    assert_eq!(c.goaway, None, "the connection goes on");
    let other = H2Client::connect(&proxy).await;
    let mut ws = other.websocket("/echo/").await;
    within("close", futures_util::SinkExt::close(&mut ws))
        .await
        .expect("close");
    assert_eq!(
        backend.accepted(),
        3,
        "the oversized request reached no backend"
    );
    let seen = backend.requests();
    assert!(seen.iter().all(|r| r.one("x-big") != Some(big.as_str())));
}

#[tokio::test]
async fn a_client_that_leaves_pings_unanswered_is_disconnected() {
    let (proxy, _backend) = echo_proxy().await;
    let stats = proxy.stats();
    let mut silent = RawH2::connect(&proxy).await;
    silent.answer_pings = false;
    let mut live = RawH2::connect(&proxy).await;
    let s = silent.websocket("/echo/").await;
    silent.echo(s, "silent").await;
    let l = live.websocket("/echo/").await;
    live.echo(l, "live").await;
    assert_eq!(stats.sessions.len(), 2);
    // The keep-alive PING comes 30 s after the last frame read and waits 10 s for its ack: on
    // the test's clock, which is everyone's (one current-thread runtime).
    let clock = clock::hold();
    tokio::time::advance(Duration::from_secs(31)).await;
    silent
        .until("a PING", |c| (c.pings > 0).then_some(()))
        .await;
    // Read here means answered; the echo after it proves the server read the ack.
    live.until("a PING", |c| (c.pings > 0).then_some(())).await;
    live.echo(l, "answered").await;
    tokio::time::advance(Duration::from_secs(11)).await;
    silent.until_closed().await;
    drop(clock);
    live.echo(l, "still here").await;
    eventually("the silent client's session to end", || {
        stats.sessions.len() == 1
    })
    .await;
}

#[tokio::test]
async fn closing_or_resetting_one_stream_ends_only_its_session() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/keep/", backend.addr())
        .route(None, "/close/", backend.addr())
        .route(None, "/reset/", backend.addr())
        .start()
        .await;
    let mut c = RawH2::connect(&proxy).await;
    let keep = c.websocket("/keep/").await;
    let close = c.websocket("/close/").await;
    let reset = c.websocket("/reset/").await;
    round(&mut c, &[keep, close, reset], "first").await;
    assert_eq!(routes(&proxy), ["*/close/", "*/keep/", "*/reset/"]);
    // A client Close on one stream: the backend's Close comes back, then the stream ends.
    c.send_ws(close, 0x8, &1000u16.to_be_bytes()).await;
    let (opcode, payload) = c.ws_frame(close).await;
    assert_eq!((opcode, payload.get(..2)), (0x8, Some(&[0x03, 0xe8][..])));
    c.until("the closed stream to end", |c| c.ended(close).then_some(()))
        .await;
    eventually("the closed stream's session to go", || {
        routes(&proxy) == ["*/keep/", "*/reset/"]
    })
    .await;
    round(&mut c, &[keep, reset], "second").await;
    // RST_STREAM on another: its session goes, the last one stays.
    c.reset(reset, CANCEL).await;
    eventually("the reset stream's session to go", || {
        routes(&proxy) == ["*/keep/"]
    })
    .await;
    round(&mut c, &[keep], "third").await;
    assert_eq!(proxy.stats().open_tunnels(), 1);
    assert_eq!(c.goaway, None, "the connection goes on");
}
