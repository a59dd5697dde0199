//! Handshake rates and connection caps against the real proxy: per address, per route and
//! global; `Retry-After` on every rate and cap refusal; permits given back whatever way a tunnel
//! ends; and the half-close timeout that ends a tunnel one side already left.
//!
//! Rates are written as `1/m` so no cell comes back while a test runs: the outcome does not
//! depend on the speed of the machine.

mod support;

use std::time::Duration;

use support::admit::{assert_refused_again, bytes_until_closed, close_ws, retry_after};
use support::client::tls_connect;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_tungstenite::MaybeTlsStream;

fn upgrade() -> Head {
    Head::upgrade("/echo/")
}

/// `Retry-After` is present, whole seconds, at least 1 (RFC 9110 §10.2.3) and no more than the
/// slowest rate in these tests could ask for.
fn assert_retry_after(answer: &Answer) {
    let secs = retry_after(answer);
    assert!(
        (1..=120).contains(&secs),
        "Retry-After {secs} not in 1..=120"
    );
}

// ---- handshake rates ----

#[tokio::test]
async fn per_ip_rate_admits_the_burst_then_429_with_retry_after() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("per_ip", r#"{ handshakes: "1/m", burst: 2 }"#)
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    assert_upgraded(&proxy, upgrade()).await;
    assert_upgraded(&proxy, upgrade()).await;
    let answer = assert_refused_again(&proxy, &backend, &upgrade(), 429, "rate_limited").await;
    assert_retry_after(&answer);
    assert_eq!(
        answer.body_text(),
        "too many handshakes from this address\n"
    );
    assert_eq!(
        backend.requests().len(),
        2,
        "only the burst reached the backend"
    );
}

#[tokio::test]
async fn origin_refusals_do_not_spend_the_rate_budget() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("per_ip", r#"{ handshakes: "1/m", burst: 1 }"#)
        .route(None, "/echo/", backend.addr())
        .policy(r#"origins: ["https://app.example.com"]"#)
        .start()
        .await;
    let evil = upgrade().header("Origin", "https://evil.test");
    for _ in 0..3 {
        assert_refused(&proxy, &backend, evil.clone(), 403, "origin_not_allowed").await;
    }
    let good = upgrade().header("Origin", "https://app.example.com");
    assert_upgraded(&proxy, good.clone()).await;
    assert_refused_again(&proxy, &backend, &good, 429, "rate_limited").await;
}

#[tokio::test]
async fn route_rate_gives_429_with_retry_after_and_spares_other_routes() {
    let limited = EchoBackend::start().await;
    let other = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", limited.addr())
        .policy(r#"rate: { handshakes: "1/m", burst: 2 }"#)
        .route(None, "/other/", other.addr())
        .start()
        .await;
    assert_upgraded(&proxy, upgrade()).await;
    assert_upgraded(&proxy, upgrade()).await;
    let answer =
        assert_refused_again(&proxy, &limited, &upgrade(), 429, "route_rate_limited").await;
    assert_retry_after(&answer);
    assert_eq!(limited.requests().len(), 2);
    for _ in 0..3 {
        assert_upgraded(&proxy, Head::upgrade("/other/")).await;
    }
    assert_eq!(other.requests().len(), 3);
}

// ---- connection caps ----

#[tokio::test]
async fn per_ip_cap_gives_429_while_full_and_admits_after_a_close() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("per_ip", "{ max_connections: 2 }")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let stats = proxy.stats();
    let first = proxy.ws_connect("/echo/").await;
    let _second = proxy.ws_connect("/echo/").await;
    eventually("two tunnels open", || stats.open_tunnels() == 2).await;
    let answer =
        assert_refused_again(&proxy, &backend, &upgrade(), 429, "ip_connections_full").await;
    assert_retry_after(&answer);
    close_ws(first).await;
    eventually("one tunnel open", || stats.open_tunnels() == 1).await;
    let _third = proxy.ws_connect("/echo/").await;
    assert_eq!(backend.requests().len(), 3);
}

#[tokio::test]
async fn route_cap_gives_503_with_retry_after_and_admits_after_a_close() {
    let capped = EchoBackend::start().await;
    let other = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", capped.addr())
        .policy("max_connections: 1")
        .route(None, "/other/", other.addr())
        .start()
        .await;
    let stats = proxy.stats();
    let first = proxy.ws_connect("/echo/").await;
    let answer = assert_refused_again(&proxy, &capped, &upgrade(), 503, "route_full").await;
    assert_retry_after(&answer);
    assert_eq!(answer.body_text(), "route at capacity\n");
    let _elsewhere = proxy.ws_connect("/other/").await;
    close_ws(first).await;
    eventually("one tunnel open", || stats.open_tunnels() == 1).await;
    let _again = proxy.ws_connect("/echo/").await;
    assert_eq!(capped.requests().len(), 2);
}

#[tokio::test]
async fn global_cap_closes_the_extra_connection_without_an_answer() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .plain()
        .limit("max_connections", "2")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let stats = proxy.stats();
    let first = proxy.ws_connect("/echo/").await;
    let _second = proxy.ws_connect("/echo/").await;
    eventually("two connections open", || stats.open_connections() == 2).await;
    let mut extra = proxy.connect().await;
    let got = bytes_until_closed(&mut extra, &upgrade().bytes()).await;
    assert!(
        got.is_empty(),
        "no HTTP answer: {:?}",
        String::from_utf8_lossy(&got)
    );
    eventually("global_full counted", || stats.refusals("global_full") == 1).await;
    assert_eq!(backend.accepted(), 2);
    close_ws(first).await;
    eventually("one connection open", || stats.open_connections() == 1).await;
    let _third = proxy.ws_connect("/echo/").await;
    assert_eq!(backend.requests().len(), 3);
}

#[tokio::test]
async fn global_cap_refuses_before_any_tls_work() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("max_connections", "1")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let stats = proxy.stats();
    let _held = proxy.ws_connect("/echo/").await;
    let refused = tls_connect(proxy.addr(), proxy.ca().client_config(), "localhost").await;
    assert!(refused.is_err(), "TLS through a full proxy succeeded");
    eventually("global_full counted", || stats.refusals("global_full") == 1).await;
    assert_eq!(stats.tls_failures(), 0, "the proxy never started TLS");
}

#[tokio::test]
async fn permits_return_to_zero_whatever_way_tunnels_end() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .limit("max_connections", "3")
        .limit("per_ip", "{ max_connections: 2 }")
        .route(None, "/echo/", backend.addr())
        .policy("max_connections: 2")
        .start()
        .await;
    let stats = proxy.stats();
    for round in 0..3 {
        let polite = proxy.ws_connect("/echo/").await;
        let abrupt = proxy.ws_connect("/echo/").await;
        // The third is refused at the per-address cap; its global permit goes back as well.
        assert_refused_again(&proxy, &backend, &upgrade(), 429, "ip_connections_full").await;
        close_ws(polite).await;
        drop(abrupt);
        eventually(&format!("gauges back to 0 after round {round}"), || {
            stats.open_tunnels() == 0 && stats.open_connections() == 0
        })
        .await;
    }
    assert_eq!(backend.requests().len(), 6);
    assert_eq!(stats.tunnels_total(), 6);
}

// ---- half-close timeout ----

#[tokio::test]
async fn half_close_timeout_closes_the_client_after_the_backend_left() {
    let backend = ScriptedBackend::start(Script::upgrade().then(Then::HalfCloseFirst)).await;
    let proxy = TestProxy::builder()
        .plain()
        .limit("tunnel_half_close_timeout", "300ms")
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let stats = proxy.stats();
    let mut conn = proxy.connect().await;
    within("write", conn.write_all(&upgrade().bytes()))
        .await
        .expect("write");
    let answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101);
    let mut got = answer.body;
    got.extend(read_until_closed(&mut conn).await);
    assert_eq!(
        got,
        frames::server_text("backend-done"),
        "the backend's half-close reached the client"
    );
    let half_closed = Instant::now();
    // The client keeps its side open; the proxy ends the tunnel at the timeout.
    let seen = backend.next_seen().await;
    assert!(
        seen.proxy_closed,
        "the proxy closed the backend leg: {seen:?}"
    );
    eventually("tunnel gauge back to 0", || {
        stats.open_tunnels() == 0 && stats.open_connections() == 0
    })
    .await;
    assert!(
        half_closed.elapsed() >= Duration::from_millis(200),
        "closed after {:?}, before the 300ms timeout",
        half_closed.elapsed()
    );
    // Closed, not half-closed: what the client writes now is answered with a reset.
    let MaybeTlsStream::Plain(tcp) = &conn else {
        unreachable!("plain listener")
    };
    eventually(
        "a write to the closed client leg to fail",
        || matches!(tcp.try_write(b"x"), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock),
    )
    .await;
}
