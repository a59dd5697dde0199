//! The admin endpoint against a real proxy: `/metrics` counts what the data path did (accepts,
//! handshakes by route and outcome, limit refusals, TLS failures, tunnel closes and bytes) and
//! the open-tunnel gauges come back to 0; `/healthz`, `/readyz` (and its flip to draining), 404
//! and 405.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::SinkExt;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use wsgate::admin;

const ROUTE: &str = "*/echo/";
const LIMITED: &str = "*/limited/";

/// An admin server on `127.0.0.1:0` for the proxy's metrics; stopped when the token drops.
struct Admin {
    addr: SocketAddr,
    ready: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start_admin(proxy: &TestProxy) -> Admin {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let addr = listener.local_addr().expect("admin address");
    let ready = Arc::new(AtomicBool::new(true));
    let stop = CancellationToken::new();
    let metrics = proxy.stats().metrics();
    let fleet = Arc::clone(&proxy.stats().fleet);
    tokio::spawn(admin::serve(
        listener,
        metrics,
        Arc::clone(&ready),
        fleet,
        None,
        stop.clone(),
    ));
    Admin { addr, ready, stop }
}

impl Admin {
    /// One plain HTTP/1.1 request; the whole answer, read until the server closes.
    async fn request(&self, method: &str, path: &str) -> Answer {
        let tcp = within("admin connect", TcpStream::connect(self.addr)).await;
        let mut conn = MaybeTlsStream::Plain(tcp.expect("connect to admin"));
        let head = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\n\r\n");
        exchange(&mut conn, head.as_bytes()).await
    }

    async fn scrape(&self) -> String {
        let answer = self.request("GET", "/metrics").await;
        assert_eq!(answer.status, 200, "{answer:#?}");
        String::from_utf8(answer.body).expect("exposition is UTF-8")
    }

    /// Scrape until `series` reads `value` (the tunnel task updates after the client saw the
    /// close), failing after the harness timeout.
    async fn until(&self, series: &str, value: f64) -> String {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let text = self.scrape().await;
            if sample(&text, series) == Some(value) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} never read {value}:\n{text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// The value of the sample line `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

/// The sum of every sample whose series starts with `prefix` (a label set cut short).
fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn handshakes(route: &str, outcome: &str) -> String {
    format!(r#"wsgate_handshakes_total{{route="{route}",outcome="{outcome}"}}"#)
}

fn tunnels_open(route: &str) -> String {
    format!(r#"wsgate_tunnels_open{{route="{route}"}}"#)
}

async fn proxy_with_echo() -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .route(None, "/limited/", backend.addr())
        .policy(r#"rate: { handshakes: "1/m", burst: 1 }"#)
        .start()
        .await;
    (proxy, backend)
}

/// Whether the exposition has a sample line of the family `name` (`name`, `name_total`,
/// `name_bucket`, ... with or without labels).
fn has_samples(text: &str, name: &str) -> bool {
    text.lines().filter(|l| !l.starts_with('#')).any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with([' ', '{', '_']))
    })
}

#[tokio::test]
async fn every_series_is_there_at_zero_before_the_first_connection() {
    let (proxy, backend) = proxy_with_echo().await;
    let admin = start_admin(&proxy).await;
    let text = admin.scrape().await;
    // A certificate's days to expiry exist per `tls.acme` name, once it has a certificate: a
    // zero for a name that has none would read as "expired". This config has no `acme`.
    let per_certificate = [wsgate::metrics::names::CERTIFICATE_EXPIRY_DAYS.name];
    for name in wsgate::metrics::names::ALL {
        if per_certificate.contains(&name.name) {
            continue;
        }
        assert!(
            has_samples(&text, name.name),
            "{} has no sample:\n{text}",
            name.name
        );
    }
    for name in wsgate::metrics::process::SCRAPED {
        assert!(has_samples(&text, name), "{name} has no sample:\n{text}");
    }
    let version = env!("CARGO_PKG_VERSION");
    let build = format!(r#"wsgate_build_info{{version="{version}"}}"#);
    assert_eq!(sample(&text, &build), Some(1.0), "{text}");
    let fds = sample(&text, "process_open_fds").unwrap_or_default();
    assert!(fds > 0.0, "{text}");
    let rss = sample(&text, "process_resident_memory_bytes").unwrap_or_default();
    assert!(rss > 0.0, "{text}");
    // Known label values are there at zero: every refusal reason on every route and before
    // routing, every listener, every limit, every backend.
    for route in [ROUTE, LIMITED, "none"] {
        for refusal in wsgate::error::Refusal::ALL {
            let series = handshakes(route, refusal.reason());
            assert_eq!(sample(&text, &series), Some(0.0), "{series}:\n{text}");
        }
    }
    let limit = r#"wsgate_limit_refusals_total{route="*/limited/",reason="route_full"}"#;
    assert_eq!(sample(&text, limit), Some(0.0), "{text}");
    let accepted = r#"wsgate_connections_accepted_total{listener="test"}"#;
    assert_eq!(sample(&text, accepted), Some(0.0), "{text}");
    let up = format!(
        r#"wsgate_backend_up{{pool="p0",backend="ws://{}"}}"#,
        backend.addr()
    );
    assert_eq!(sample(&text, &up), Some(1.0), "{text}");
    let closes = r#"wsgate_session_closes_total{route="*/echo/",code="1000",closed_by="client"}"#;
    assert_eq!(sample(&text, closes), Some(0.0), "{text}");
}

#[tokio::test]
async fn metrics_count_tunnels_and_refusals_and_gauges_return_to_zero() {
    let (proxy, backend) = proxy_with_echo().await;
    let admin = start_admin(&proxy).await;
    let text = admin.scrape().await;
    assert_eq!(sample(&text, &handshakes(ROUTE, "upgraded")), Some(0.0));

    let mut tunnels = Vec::new();
    for i in 0..3 {
        let mut ws = proxy.ws_connect("/echo/").await;
        let msg = Message::text(format!("hello {i}"));
        within("send", ws.send(msg.clone())).await.expect("send");
        assert_eq!(next_message(&mut ws).await, msg);
        tunnels.push(ws);
    }
    let text = admin.until(&tunnels_open(ROUTE), 3.0).await;
    let backend_open = format!(
        r#"wsgate_backend_tunnels_open{{pool="p0",backend="ws://{}"}}"#,
        backend.addr()
    );
    assert_eq!(sample(&text, &backend_open), Some(3.0), "{text}");
    assert_eq!(sample(&text, &handshakes(ROUTE, "upgraded")), Some(3.0));

    for mut ws in tunnels {
        within("close", ws.close(None)).await.expect("close");
        messages_until_closed(&mut ws).await;
    }
    let stats = proxy.stats();
    eventually("tunnels closed", || stats.open_tunnels() == 0).await;
    let text = admin.until(&tunnels_open(ROUTE), 0.0).await;
    assert_eq!(sample(&text, &backend_open), Some(0.0), "{text}");
    // A clean WebSocket close ends with the backend's TCP close or the client's, whichever won.
    let closed = r#"wsgate_tunnels_closed_total{route="*/echo/",closed_by=""#;
    assert_eq!(sum(&text, closed), 3.0, "{text}");
    let count = r#"wsgate_tunnel_duration_seconds_count{route="*/echo/"}"#;
    assert_eq!(sample(&text, count), Some(3.0), "{text}");
    for dir in ["to_backend", "to_client"] {
        let series = format!(r#"wsgate_tunnel_bytes_total{{route="*/echo/",direction="{dir}"}}"#);
        let bytes = sample(&text, &series).unwrap_or_default();
        assert!(bytes > 0.0, "{series} = {bytes}:\n{text}");
    }

    // Refusals: before routing (`none`), on a route, and by a rate limit.
    assert_eq!(proxy.exchange(&Head::upgrade("/nope/")).await.status, 404);
    assert_eq!(proxy.exchange(&Head::get("/echo/")).await.status, 426);
    // The one handshake the route's rate allows; the client drops it at once.
    drop(assert_upgraded(&proxy, Head::upgrade("/limited/")).await);
    assert_eq!(
        proxy.exchange(&Head::upgrade("/limited/")).await.status,
        429
    );
    let text = admin.scrape().await;
    assert_eq!(sample(&text, &handshakes("none", "no_route")), Some(1.0));
    assert_eq!(
        sample(&text, &handshakes(ROUTE, "not_websocket")),
        Some(1.0)
    );
    let limited = handshakes(LIMITED, "route_rate_limited");
    assert_eq!(sample(&text, &limited), Some(1.0), "{text}");
    let limit = r#"wsgate_limit_refusals_total{route="*/limited/",reason="route_rate_limited"}"#;
    assert_eq!(sample(&text, limit), Some(1.0), "{text}");
    let accepted = r#"wsgate_connections_accepted_total{listener="test"}"#;
    assert_eq!(sample(&text, accepted), Some(7.0), "{text}");

    // A client that does not speak TLS.
    let mut tcp = within("connect", TcpStream::connect(proxy.addr()))
        .await
        .expect("connect");
    within("write", tcp.write_all(b"GET / HTTP/1.1\r\n\r\n"))
        .await
        .expect("write");
    read_until_closed(&mut tcp).await;
    let failures = r#"wsgate_tls_handshake_failures_total{reason="handshake"}"#;
    admin.until(failures, 1.0).await;
    let text = admin.until(&tunnels_open(LIMITED), 0.0).await;
    assert_eq!(sample(&text, &tunnels_open(ROUTE)), Some(0.0));
}

#[tokio::test]
async fn health_and_readiness_answer_and_readiness_flips_to_draining() {
    let (proxy, _backend) = proxy_with_echo().await;
    let admin = start_admin(&proxy).await;
    let health = admin.request("GET", "/healthz").await;
    assert_eq!((health.status, health.body_text().as_str()), (200, "ok\n"));
    let ready = admin.request("GET", "/readyz").await;
    assert_eq!((ready.status, ready.body_text().as_str()), (200, "ready\n"));
    admin.ready.store(false, Ordering::Release);
    let draining = admin.request("GET", "/readyz").await;
    assert_eq!(draining.status, 503);
    assert_eq!(draining.body_text(), "draining\n");
    assert_eq!(admin.request("GET", "/nope").await.status, 404);
    assert_eq!(admin.request("POST", "/metrics").await.status, 405);
    let metrics = admin.request("GET", "/metrics?x=1").await;
    assert_eq!(metrics.status, 200);
    let content_type = metrics
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    assert_eq!(content_type, Some(wsgate::metrics::CONTENT_TYPE));
}
