//! Every input the fuzz targets in `fuzz/` found crashing wsgate, pinned in the normal suite:
//! each test drives the same product function as its target with the input inline, and where
//! the input arrives over the network, also a real proxy that must drop the connection and keep
//! serving. Named after the target and what the input was.

mod support;

use std::time::Duration;

use support::admit::{TRUSTED, bytes_until_closed, connect_from, proxy_v1, sock, upgrade_on};
use support::*;
use wsgate::proxy::proxy_protocol::{ProxyError, read_header};

/// `proxy_header`, crash-66cce2e9dbc519d98cf817d8956d514418192779 (the stream after the
/// target's 4 configuration bytes): a v1 line with a CR followed by a two-byte UTF-8
/// character. `ppp` cuts a v1 line at its first CR plus two bytes, inside the character, and
/// panicked; wsgate now refuses anything but US-ASCII first (spec §2.1).
const NON_ASCII_V1: &[u8] =
    b"PROXY TCP6 2001\xc6\xa2b8CP001\xc6\xa2b8:0201\xc6\xa2U 0 \r\xc6\xa22443\r\nhello";
/// The same fault, minimal.
const NON_ASCII_V1_SHORT: &[u8] = b"PROXY UNKNOWN\r\xc3\xa9\r\n";

#[tokio::test]
async fn proxy_header_v1_with_a_multibyte_character_after_a_cr_is_malformed() {
    for input in [NON_ASCII_V1, NON_ASCII_V1_SHORT] {
        let mut reader = input;
        let got = read_header(&mut reader, Duration::from_secs(5)).await;
        assert!(
            matches!(got, Err(ProxyError::Malformed(_))),
            "{:?}: {got:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[tokio::test]
async fn proxy_header_v1_not_ascii_is_dropped_and_the_listener_keeps_serving() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .top("trusted_proxies: [\"127.0.0.1/32\"]")
        .listener_option("proxy_protocol: true")
        .plain()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    let stats = proxy.stats();
    for (i, header) in [NON_ASCII_V1, NON_ASCII_V1_SHORT].into_iter().enumerate() {
        let mut conn = connect_from(&proxy, TRUSTED, b"").await;
        let bytes = [header, &Head::upgrade("/echo/").bytes()[..]].concat();
        let got = bytes_until_closed(&mut conn, &bytes).await;
        assert!(got.is_empty(), "dropped without an answer, got {got:?}");
        let counted = i as u64 + 1;
        eventually("the malformed header counted", || {
            stats.refusals("proxy_header") == counted
        })
        .await;
    }
    assert_eq!(backend.accepted(), 0, "the backend was contacted");
    // The same listener still tunnels a well-formed client.
    let good = proxy_v1(sock("192.0.2.7:51000"), proxy.addr());
    let mut conn = connect_from(&proxy, TRUSTED, &good).await;
    upgrade_on(&mut conn, &Head::upgrade("/echo/")).await;
}
