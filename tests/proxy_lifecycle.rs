//! How tunnels end when nobody closes them: the idle timeout, draining on shutdown, immediate
//! shutdown; and the gauges every end must bring back to zero, up to a thousand at once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

async fn echo_proxy(limits: &[(&str, &str)]) -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let mut builder = TestProxy::builder().route(None, "/echo/", backend.addr());
    for (key, value) in limits {
        builder = builder.limit(key, value);
    }
    (builder.start().await, backend)
}

async fn round_trip(ws: &mut Ws, text: &str) {
    within("sending a message", ws.send(Message::text(text)))
        .await
        .expect("send");
    assert_eq!(next_message(ws).await, Message::text(text));
}

// ---- idle timeout ----

#[tokio::test]
async fn idle_tunnel_is_closed_on_both_legs() {
    let backend = ScriptedBackend::start(Script::upgrade().then(Then::Hold)).await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .limit("tunnel_idle_timeout", "300ms")
        .start()
        .await;
    let mut conn = proxy.connect().await;
    within("write", conn.write_all(&Head::upgrade("/echo/").bytes()))
        .await
        .expect("write");
    assert_eq!(read_head(&mut conn).await.status, 101);
    let start = Instant::now();
    assert!(read_until_closed(&mut conn).await.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "closed too early: {:?}",
        start.elapsed()
    );
    let seen = backend.next_seen().await;
    assert!(seen.proxy_closed, "the backend leg is closed too");
    let stats = proxy.stats();
    eventually("tunnel gauge back to 0", || stats.open_tunnels() == 0).await;
}

#[tokio::test]
async fn traffic_keeps_a_tunnel_open_past_the_idle_timeout() {
    let (proxy, _backend) = echo_proxy(&[("tunnel_idle_timeout", "500ms")]).await;
    let mut ws = proxy.ws_connect("/echo/").await;
    let start = Instant::now();
    for i in 0..15 {
        round_trip(&mut ws, &format!("tick {i}")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(start.elapsed() > Duration::from_millis(1000));
    // Then silence: the timeout applies again.
    messages_until_closed(&mut ws).await;
}

// ---- shutdown ----

/// Connect attempts until one is refused: the listener is gone.
async fn wait_until_not_listening(proxy: &TestProxy) {
    within("the listener to close", async {
        while TcpStream::connect(proxy.addr()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// The Close frame among `messages`, as `(code, reason)`.
fn close_of(messages: &[Message]) -> Option<(u16, String)> {
    messages.iter().find_map(|m| match m {
        Message::Close(Some(f)) => Some((u16::from(f.code), f.reason.to_string())),
        _ => None,
    })
}

#[tokio::test]
async fn drain_stops_accepting_sends_close_1001_and_ends_when_sessions_closed() {
    let (mut proxy, _backend) = echo_proxy(&[("drain_timeout", "60s")]).await;
    let mut ws = proxy.ws_connect("/echo/").await;
    round_trip(&mut ws, "before the drain").await;
    proxy.drain();
    wait_until_not_listening(&proxy).await;
    // tungstenite answers the Close; the proxy then closes both legs.
    let rest = messages_until_closed(&mut ws).await;
    assert_eq!(
        close_of(&rest),
        Some((1001, "going away".into())),
        "{rest:?}"
    );
    drop(ws);
    // `stopped` waits at most TIMEOUT (10 s), far less than the 60 s drain budget.
    proxy.stopped().await;
    assert_eq!(proxy.stats().open_tunnels(), 0);
}

#[tokio::test]
async fn drain_spread_keeps_later_sessions_working_until_their_turn() {
    let (mut proxy, _backend) =
        echo_proxy(&[("drain_timeout", "20s"), ("drain_spread", "2s")]).await;
    let mut first = proxy.ws_connect("/echo/").await;
    let mut second = proxy.ws_connect("/echo/").await;
    let start = Instant::now();
    proxy.drain();
    // The oldest session's turn is at once.
    let rest = messages_until_closed(&mut first).await;
    assert_eq!(close_of(&rest), Some((1001, "going away".into())));
    // The other one still works until its turn, half-way through the spread.
    round_trip(&mut second, "still here").await;
    let rest = messages_until_closed(&mut second).await;
    assert_eq!(close_of(&rest), Some((1001, "going away".into())));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "second session closed before its turn: {elapsed:?}"
    );
    proxy.stopped().await;
}

#[tokio::test]
async fn drain_cuts_sessions_that_do_not_answer_at_drain_timeout() {
    // Neither peer answers wsgate's Close.
    let backend = ScriptedBackend::start(Script::upgrade().then(Then::Hold)).await;
    let mut proxy = TestProxy::builder()
        .limit("drain_timeout", "1s")
        .limit("close_timeout", "30s")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let mut conn = proxy.connect().await;
    within("write", conn.write_all(&Head::upgrade("/echo/").bytes()))
        .await
        .expect("write");
    assert_eq!(read_head(&mut conn).await.status, 101);
    let start = Instant::now();
    proxy.drain();
    // This client never answers the Close: it is cut at the drain budget, not close_timeout.
    let got = read_until_closed(&mut conn).await;
    let (frames, _) = frames::parse(&got);
    assert_eq!(
        frames.first().and_then(|f| f.close()),
        Some((1001, "going away".into()))
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut before drain_timeout: {elapsed:?}"
    );
    proxy.stopped().await;
    assert_eq!(proxy.stats().open_tunnels(), 0);
}

#[tokio::test]
async fn immediate_shutdown_closes_tunnels_at_once() {
    let (mut proxy, _backend) = echo_proxy(&[("drain_timeout", "60s")]).await;
    let mut ws = proxy.ws_connect("/echo/").await;
    proxy.shutdown().await;
    messages_until_closed(&mut ws).await;
    assert_eq!(proxy.stats().open_tunnels(), 0);
}

// ---- gauges ----

#[tokio::test]
async fn gauges_return_to_zero_after_tunnels_and_refusals() {
    let (proxy, _backend) = echo_proxy(&[]).await;
    let stats = proxy.stats();
    for i in 0..3 {
        let mut ws = proxy.ws_connect("/echo/").await;
        eventually("one tunnel open", || stats.open_tunnels() == 1).await;
        assert_eq!(stats.open_connections(), 1);
        round_trip(&mut ws, &format!("tunnel {i}")).await;
        within("close", ws.close(None)).await.expect("send close");
        messages_until_closed(&mut ws).await;
        drop(ws);
        eventually("tunnel gauge back to 0", || stats.open_tunnels() == 0).await;
    }
    assert_eq!(
        proxy.exchange(&Head::upgrade("/nowhere/")).await.status,
        404
    );
    eventually("connection gauge back to 0", || {
        stats.open_tunnels() == 0 && stats.open_connections() == 0
    })
    .await;
    assert_eq!(stats.tunnels_total(), 3);
    let refusals: Vec<_> = stats.refusal_counts().into_iter().collect();
    assert_eq!(refusals, [("no_route", 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_tunnels_echo_and_close() {
    const TUNNELS: usize = 1000;
    // Four descriptors per tunnel live in this one process (client, proxy x2, backend): raise
    // the soft limit as `wsgate run` does, or fail early with a clear message.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).expect("read RLIMIT_NOFILE");
    assert!(
        nofile >= 4 * TUNNELS as u64 + 256,
        "RLIMIT_NOFILE hard limit {nofile} too low"
    );
    let (proxy, _backend) = echo_proxy(&[]).await;
    let proxy = Arc::new(proxy);
    let stats = proxy.stats();
    // Bound handshakes in flight so the accept backlog never overflows; tunnels stay open.
    let handshakes = Arc::new(Semaphore::new(64));
    let (opened_tx, mut opened_rx) = mpsc::channel::<()>(TUNNELS);
    let (go_tx, go_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for i in 0..TUNNELS {
        let (proxy, handshakes) = (proxy.clone(), handshakes.clone());
        let (opened_tx, mut go_rx) = (opened_tx.clone(), go_rx.clone());
        tasks.spawn(async move {
            let permit = handshakes.acquire().await.expect("semaphore open");
            let mut ws = proxy.ws_connect("/echo/").await;
            drop(permit);
            opened_tx.send(()).await.expect("test alive");
            go_rx.wait_for(|go| *go).await.expect("test alive");
            round_trip(&mut ws, &format!("tunnel {i}")).await;
            within("close", ws.close(None)).await.expect("send close");
            messages_until_closed(&mut ws).await;
        });
    }
    let long = Duration::from_secs(60);
    let all_open = async {
        for _ in 0..TUNNELS {
            opened_rx.recv().await.expect("tasks alive");
        }
    };
    tokio::time::timeout(long, all_open)
        .await
        .expect("all tunnels open within 60 s");
    eventually("all tunnels counted open", || {
        stats.open_tunnels() == TUNNELS as u64
    })
    .await;
    go_tx.send(true).expect("tasks alive");
    let all_done = async {
        while let Some(done) = tasks.join_next().await {
            done.expect("tunnel task");
        }
    };
    tokio::time::timeout(long, all_done)
        .await
        .expect("all tunnels done within 60 s");
    eventually("gauges back to 0", || {
        stats.open_tunnels() == 0 && stats.open_connections() == 0
    })
    .await;
    assert_eq!(stats.tunnels_total(), TUNNELS as u64);
}
