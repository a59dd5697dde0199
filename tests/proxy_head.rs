//! Request-head stage: time, size and count bounds; syntax and framing that must never be
//! forwarded; origin-form targets; `Host`. Each test pins one refusal row: the status the client
//! gets, the reason counted, and that the backend never saw a connection.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;

async fn proxy_with(limits: &[(&str, &str)]) -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let mut builder = TestProxy::builder().route(None, "/echo/", backend.addr());
    for (key, value) in limits {
        builder = builder.limit(key, value);
    }
    (builder.start().await, backend)
}

async fn refused(request: impl Into<Vec<u8>>, status: u16, reason: &str) -> Answer {
    let (proxy, backend) = proxy_with(&[]).await;
    assert_refused(&proxy, &backend, request, status, reason).await
}

// ---- time ----

#[tokio::test]
async fn partial_head_is_closed_after_request_header_timeout() {
    let (proxy, backend) = proxy_with(&[("request_header_timeout", "300ms")]).await;
    let stats = proxy.stats();
    let mut conn = proxy.connect().await;
    let start = tokio::time::Instant::now();
    let partial = b"GET /echo/ HTTP/1.1\r\nHost: localhost\r\n";
    within("sending half a head", conn.write_all(partial))
        .await
        .expect("write");
    // Closed without an answer, as nginx does; counted as a refusal all the same.
    let got = read_until_closed(&mut conn).await;
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    eventually("head_timeout to be counted", || {
        stats.refusals("head_timeout") == 1
    })
    .await;
    assert_eq!(backend.accepted(), 0);
}

#[tokio::test]
async fn silent_client_is_closed_after_request_header_timeout() {
    let (proxy, backend) = proxy_with(&[("request_header_timeout", "300ms")]).await;
    let mut conn = proxy.connect().await;
    let start = tokio::time::Instant::now();
    let got = read_until_closed(&mut conn).await;
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    // Closing silently or with a 408 are both fine for a client that never spoke.
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{got:?}"
    );
    assert_eq!(backend.accepted(), 0);
}

#[tokio::test]
async fn trickled_head_times_out_as_a_whole() {
    let (proxy, backend) = proxy_with(&[("request_header_timeout", "300ms")]).await;
    let (mut rx, mut tx) = tokio::io::split(proxy.connect().await);
    let start = tokio::time::Instant::now();
    // One field line every 100 ms for 2 s: a per-read timer would never fire.
    let writer = tokio::spawn(async move {
        let _ = tx
            .write_all(b"GET /echo/ HTTP/1.1\r\nHost: localhost\r\n")
            .await;
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tx
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let got = read_until_closed(&mut rx).await;
    let elapsed = start.elapsed();
    writer.abort();
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(
        elapsed < Duration::from_millis(1500),
        "head bound is per head: {elapsed:?}"
    );
    assert_eq!(backend.accepted(), 0);
}

// ---- size and count ----

#[tokio::test]
async fn head_over_max_request_header_bytes_gets_431() {
    let (proxy, backend) = proxy_with(&[("max_request_header_bytes", "1KiB")]).await;
    let head = Head::upgrade("/echo/").header("X-Big", &"a".repeat(2000));
    assert_refused(&proxy, &backend, head, 431, "head_too_large").await;
}

#[tokio::test]
async fn more_than_max_request_headers_gets_431() {
    let (proxy, backend) = proxy_with(&[("max_request_headers", "10")]).await;
    let head = (0..15).fold(Head::upgrade("/echo/"), |h, i| {
        h.header(&format!("X-N{i}"), "1")
    });
    // hyper answers 431 itself and does not say which bound was hit.
    assert_refused(&proxy, &backend, head, 431, "head_too_large").await;
}

// ---- syntax (RFC 9112 §5) ----

#[tokio::test]
async fn whitespace_before_colon_is_400() {
    refused(
        Head::upgrade("/echo/").line("X-Test : 1"),
        400,
        "malformed_head",
    )
    .await;
}

#[tokio::test]
async fn bare_cr_in_a_field_value_is_400() {
    refused(
        Head::upgrade("/echo/").line("X-Test: a\rb"),
        400,
        "malformed_head",
    )
    .await;
}

#[tokio::test]
async fn nul_in_a_field_value_is_400() {
    refused(
        Head::upgrade("/echo/").line("X-Test: a\0b"),
        400,
        "malformed_head",
    )
    .await;
}

#[tokio::test]
async fn obs_fold_is_400() {
    let head = Head::upgrade("/echo/")
        .header("X-Test", "a")
        .line(" folded");
    refused(head, 400, "malformed_head").await;
}

#[tokio::test]
async fn invalid_field_name_is_400() {
    refused(
        Head::upgrade("/echo/").line("X(Test): 1"),
        400,
        "malformed_head",
    )
    .await;
}

#[tokio::test]
async fn empty_field_name_is_400() {
    refused(Head::upgrade("/echo/").line(": 1"), 400, "malformed_head").await;
}

#[tokio::test]
async fn request_line_without_version_is_400() {
    let raw = "GET /echo/\r\nHost: localhost\r\n\r\n";
    refused(raw, 400, "malformed_head").await;
}

// ---- framing (RFC 9112 §6.3) ----

// hyper's parser refuses the ambiguous framings itself (400, counted as `malformed_head`);
// what it lets through, wsgate refuses on an upgrade (`body_on_upgrade`).

#[tokio::test]
async fn content_length_with_transfer_encoding_is_400() {
    let head = Head::upgrade("/echo/")
        .header("Content-Length", "0")
        .header("Transfer-Encoding", "chunked");
    // hyper lets the chunked framing win (RFC 9112 §6.3) and drops Content-Length; an upgrade
    // with a body is refused all the same.
    refused(head, 400, "body_on_upgrade").await;
}

#[tokio::test]
async fn differing_content_lengths_are_400() {
    let head = Head::upgrade("/echo/")
        .header("Content-Length", "0")
        .header("Content-Length", "5");
    refused(head, 400, "malformed_head").await;
}

#[tokio::test]
async fn identical_content_lengths_are_one_field() {
    // RFC 9110 §8.6: a recipient may treat identical repeated values as one.
    let head = Head::upgrade("/echo/")
        .header("Content-Length", "0")
        .header("Content-Length", "0");
    let (proxy, _backend) = proxy_with(&[]).await;
    assert_upgraded(&proxy, head).await;
}

#[tokio::test]
async fn invalid_content_length_is_400() {
    let head = Head::upgrade("/echo/").header("Content-Length", "abc");
    refused(head, 400, "malformed_head").await;
}

#[tokio::test]
async fn unknown_transfer_encoding_is_400() {
    let head = Head::upgrade("/echo/").header("Transfer-Encoding", "gzip");
    refused(head, 400, "malformed_head").await;
}

#[tokio::test]
async fn chunked_body_on_an_upgrade_is_400() {
    let head = Head::upgrade("/echo/").header("Transfer-Encoding", "chunked");
    refused(head, 400, "body_on_upgrade").await;
}

#[tokio::test]
async fn content_length_zero_is_not_a_body() {
    let (proxy, _backend) = proxy_with(&[]).await;
    assert_upgraded(
        &proxy,
        Head::upgrade("/echo/").header("Content-Length", "0"),
    )
    .await;
}

// ---- target (RFC 9112 §3.2: only origin-form) ----

#[tokio::test]
async fn absolute_form_target_is_400() {
    refused(Head::upgrade("http://localhost/echo/"), 400, "bad_target").await;
}

#[tokio::test]
async fn asterisk_form_target_is_400() {
    refused(Head::upgrade("*"), 400, "bad_target").await;
}

#[tokio::test]
async fn authority_form_target_is_400() {
    refused(Head::upgrade("localhost:443"), 400, "bad_target").await;
}

// ---- Host (RFC 9112 §3.2, RFC 6455 §4.1 item 4) ----

#[tokio::test]
async fn missing_host_is_400() {
    refused(Head::upgrade("/echo/").remove("Host"), 400, "bad_host").await;
}

#[tokio::test]
async fn repeated_host_is_400() {
    refused(
        Head::upgrade("/echo/").header("Host", "localhost"),
        400,
        "bad_host",
    )
    .await;
}
