//! The real client address against the real proxy: `X-Forwarded-For` believed only from
//! `trusted_proxies` (rightmost untrusted entry), PROXY protocol v1/v2 believed only from trusted
//! peers (anyone else, and anything malformed, is dropped), and that address is the one the
//! backend's `X-Forwarded-For` names and the per-address limits count.
//!
//! Every proxy here trusts `127.0.0.1/32`; the untrusted peer is a client bound to `127.0.0.2`.

mod support;

use support::admit::{
    TRUSTED, UNTRUSTED, assert_refused_on, bytes_until_closed, connect_from, proxy_v1, proxy_v2,
    sock, upgrade_on,
};
use support::*;

const TRUST_LOCALHOST: &str = "trusted_proxies: [\"127.0.0.1/32\"]";

async fn echo_proxy(top: &str, per_ip: Option<&str>) -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let mut builder = TestProxy::builder().top(top);
    if let Some(per_ip) = per_ip {
        builder = builder.limit("per_ip", per_ip);
    }
    let proxy = builder.route(None, "/echo/", backend.addr()).start().await;
    (proxy, backend)
}

/// A listener expecting PROXY headers from 127.0.0.1 (plain unless `tls`).
async fn proxy_protocol_proxy(tls: bool, per_ip: Option<&str>) -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let mut builder = TestProxy::builder()
        .top(TRUST_LOCALHOST)
        .listener_option("proxy_protocol: true");
    if !tls {
        builder = builder.plain();
    }
    if let Some(per_ip) = per_ip {
        builder = builder.limit("per_ip", per_ip);
    }
    let proxy = builder.route(None, "/echo/", backend.addr()).start().await;
    (proxy, backend)
}

fn xff(value: &str) -> Head {
    Head::upgrade("/echo/").header("X-Forwarded-For", value)
}

/// The `X-Forwarded-For` of every request the backend accepted, in order.
fn forwarded_for(backend: &EchoBackend) -> Vec<String> {
    backend
        .requests()
        .iter()
        .map(|r| r.one("X-Forwarded-For").unwrap_or_default().to_string())
        .collect()
}

/// Open a tunnel from `from` after `preamble`, sending `head`.
async fn tunnel_from(proxy: &TestProxy, from: [u8; 4], preamble: &[u8], head: &Head) {
    let mut conn = connect_from(proxy, from, preamble).await;
    upgrade_on(&mut conn, head).await;
}

// ---- X-Forwarded-For ----

#[tokio::test]
async fn trusted_peer_forwards_the_rightmost_untrusted_address() {
    let (proxy, backend) =
        echo_proxy("trusted_proxies: [\"127.0.0.1/32\", \"10.0.0.0/8\"]", None).await;
    // The client forged 6.6.6.6; our balancer saw 198.51.100.7; an inner trusted hop added 10.1.2.3.
    tunnel_from(
        &proxy,
        TRUSTED,
        b"",
        &xff("6.6.6.6, 198.51.100.7, 10.1.2.3"),
    )
    .await;
    // The same list across two field lines.
    let split = xff("6.6.6.6, 198.51.100.8").header("X-Forwarded-For", "10.1.2.3");
    tunnel_from(&proxy, TRUSTED, b"", &split).await;
    assert_eq!(forwarded_for(&backend), ["198.51.100.7", "198.51.100.8"]);
}

#[tokio::test]
async fn untrusted_peer_cannot_set_its_address() {
    let (proxy, backend) = echo_proxy(TRUST_LOCALHOST, None).await;
    tunnel_from(&proxy, UNTRUSTED, b"", &xff("198.51.100.7")).await;
    assert_eq!(forwarded_for(&backend), ["127.0.0.2"]);
}

#[tokio::test]
async fn without_trusted_proxies_the_socket_peer_is_the_client() {
    let (proxy, backend) = echo_proxy("", None).await;
    tunnel_from(&proxy, TRUSTED, b"", &xff("198.51.100.7")).await;
    assert_eq!(forwarded_for(&backend), ["127.0.0.1"]);
}

#[tokio::test]
async fn per_ip_budget_is_keyed_on_the_forwarded_address() {
    let per_ip = r#"{ handshakes: "1/m", burst: 1 }"#;
    let (proxy, backend) = echo_proxy(TRUST_LOCALHOST, Some(per_ip)).await;
    tunnel_from(&proxy, TRUSTED, b"", &xff("198.51.100.1")).await;
    let mut conn = connect_from(&proxy, TRUSTED, b"").await;
    let again = xff("198.51.100.1");
    assert_refused_on(&mut conn, &proxy, &backend, &again, 429, "rate_limited").await;
    // Another client behind the same balancer has its own budget.
    tunnel_from(&proxy, TRUSTED, b"", &xff("198.51.100.2")).await;
    assert_eq!(forwarded_for(&backend), ["198.51.100.1", "198.51.100.2"]);
}

#[tokio::test]
async fn untrusted_peer_cannot_rotate_addresses_to_escape_its_budget() {
    let per_ip = r#"{ handshakes: "1/m", burst: 1 }"#;
    let (proxy, backend) = echo_proxy(TRUST_LOCALHOST, Some(per_ip)).await;
    tunnel_from(&proxy, UNTRUSTED, b"", &xff("198.51.100.1")).await;
    let mut conn = connect_from(&proxy, UNTRUSTED, b"").await;
    let rotated = xff("198.51.100.2");
    assert_refused_on(&mut conn, &proxy, &backend, &rotated, 429, "rate_limited").await;
    assert_eq!(forwarded_for(&backend), ["127.0.0.2"]);
}

// ---- PROXY protocol ----

#[tokio::test]
async fn proxy_v1_from_a_trusted_peer_names_the_client() {
    let (proxy, backend) = proxy_protocol_proxy(false, None).await;
    let v4 = proxy_v1(sock("192.0.2.7:51000"), proxy.addr());
    tunnel_from(&proxy, TRUSTED, &v4, &Head::upgrade("/echo/")).await;
    let v6 = proxy_v1(sock("[2001:db8::7]:51000"), sock("[2001:db8::1]:443"));
    tunnel_from(&proxy, TRUSTED, &v6, &Head::upgrade("/echo/")).await;
    assert_eq!(forwarded_for(&backend), ["192.0.2.7", "2001:db8::7"]);
}

#[tokio::test]
async fn proxy_v2_from_a_trusted_peer_names_the_client() {
    let (proxy, backend) = proxy_protocol_proxy(false, None).await;
    let v4 = proxy_v2(sock("192.0.2.7:51000"), proxy.addr(), false);
    tunnel_from(&proxy, TRUSTED, &v4, &Head::upgrade("/echo/")).await;
    let v6 = proxy_v2(
        sock("[2001:db8::7]:51000"),
        sock("[2001:db8::1]:443"),
        false,
    );
    tunnel_from(&proxy, TRUSTED, &v6, &Head::upgrade("/echo/")).await;
    assert_eq!(forwarded_for(&backend), ["192.0.2.7", "2001:db8::7"]);
}

#[tokio::test]
async fn proxy_header_precedes_tls() {
    let (proxy, backend) = proxy_protocol_proxy(true, None).await;
    let v1 = proxy_v1(sock("192.0.2.7:51000"), proxy.addr());
    tunnel_from(&proxy, TRUSTED, &v1, &Head::upgrade("/echo/")).await;
    let v2 = proxy_v2(sock("192.0.2.8:51000"), proxy.addr(), false);
    tunnel_from(&proxy, TRUSTED, &v2, &Head::upgrade("/echo/")).await;
    assert_eq!(forwarded_for(&backend), ["192.0.2.7", "192.0.2.8"]);
    for request in backend.requests() {
        assert_eq!(request.one("X-Forwarded-Proto"), Some("https"));
    }
}

#[tokio::test]
async fn proxy_v2_local_keeps_the_socket_peer() {
    let (proxy, backend) = proxy_protocol_proxy(false, None).await;
    let local = proxy_v2(sock("192.0.2.7:51000"), proxy.addr(), true);
    tunnel_from(&proxy, TRUSTED, &local, &Head::upgrade("/echo/")).await;
    assert_eq!(forwarded_for(&backend), ["127.0.0.1"]);
}

#[tokio::test]
async fn proxy_source_is_the_client_for_xff_and_limits() {
    let per_ip = r#"{ handshakes: "1/m", burst: 1 }"#;
    let (proxy, backend) = proxy_protocol_proxy(false, Some(per_ip)).await;
    let from_a = proxy_v1(sock("192.0.2.7:51000"), proxy.addr());
    // 192.0.2.7 is not a trusted proxy, so the X-Forwarded-For it sends is not believed.
    tunnel_from(&proxy, TRUSTED, &from_a, &xff("6.6.6.6")).await;
    let mut conn = connect_from(&proxy, TRUSTED, &from_a).await;
    let again = Head::upgrade("/echo/");
    assert_refused_on(&mut conn, &proxy, &backend, &again, 429, "rate_limited").await;
    let from_b = proxy_v2(sock("192.0.2.8:51000"), proxy.addr(), false);
    tunnel_from(&proxy, TRUSTED, &from_b, &Head::upgrade("/echo/")).await;
    assert_eq!(forwarded_for(&backend), ["192.0.2.7", "192.0.2.8"]);
}

/// `bytes` from `from` on a PROXY-protocol listener are dropped without an answer, counted under
/// `reason`, and never reach the backend.
async fn assert_dropped(from: [u8; 4], bytes: &[u8], reason: &str) {
    let (proxy, backend) = proxy_protocol_proxy(false, None).await;
    let stats = proxy.stats();
    let mut conn = connect_from(&proxy, from, b"").await;
    let got = bytes_until_closed(&mut conn, bytes).await;
    assert!(
        got.is_empty(),
        "dropped without an answer, got {:?}",
        String::from_utf8_lossy(&got)
    );
    eventually(&format!("{reason} counted"), || stats.refusals(reason) == 1).await;
    eventually("connection gauge back to 0", || {
        stats.open_connections() == 0
    })
    .await;
    assert_eq!(backend.accepted(), 0, "the backend was contacted");
}

#[tokio::test]
async fn proxy_header_from_an_untrusted_peer_is_dropped() {
    let to = sock("127.0.0.1:443");
    for header in [
        proxy_v1(sock("192.0.2.7:51000"), to),
        proxy_v2(sock("192.0.2.7:51000"), to, false),
    ] {
        let bytes = [header, Head::upgrade("/echo/").bytes()].concat();
        assert_dropped(UNTRUSTED, &bytes, "proxy_untrusted").await;
    }
}

#[tokio::test]
async fn malformed_proxy_header_is_dropped() {
    let mut bad_version = proxy_v2(sock("192.0.2.7:51000"), sock("127.0.0.1:443"), false);
    bad_version[12] = 0x31;
    for header in [
        b"PROXY TCP4 not-an-ip 127.0.0.1 51000 443\r\n".to_vec(),
        b"PROXY TCP4 192.0.2.7 127.0.0.1 51000 443\n".to_vec(),
        bad_version,
        // No header at all: the request itself.
        Vec::new(),
    ] {
        let bytes = [header, Head::upgrade("/echo/").bytes()].concat();
        assert_dropped(TRUSTED, &bytes, "proxy_header").await;
    }
}
