//! Routing and the RFC 6455 §4.2.1 checklist. Each refusal row is one test: the status and the
//! headers the client gets, the reason counted, and no connection to the backend. The accepting
//! rows check that what is valid is not refused.

mod support;

use support::*;

async fn refused(request: Head, status: u16, reason: &str) -> Answer {
    let (proxy, backend) = echo_proxy().await;
    assert_refused(&proxy, &backend, request, status, reason).await
}

async fn upgraded_to(request: Head) -> String {
    let (proxy, backend) = echo_proxy().await;
    assert_upgraded(&proxy, request).await;
    backend.only_request().target
}

// ---- routes: host + segment-aware prefix on the normalised path ----

#[tokio::test]
async fn unknown_path_gets_404() {
    refused(Head::upgrade("/other/"), 404, "no_route").await;
}

#[tokio::test]
async fn route_prefix_matches_whole_segments_only() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo", backend.addr())
        .start()
        .await;
    assert_refused(&proxy, &backend, Head::upgrade("/echoes"), 404, "no_route").await;
    assert_upgraded(&proxy, Head::upgrade("/echo")).await;
    assert_upgraded(&proxy, Head::upgrade("/echo/x")).await;
    let targets: Vec<_> = backend.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/echo", "/echo/x"]);
}

#[tokio::test]
async fn route_for_another_host_gets_404() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(Some("ws.test"), "/echo/", backend.addr())
        .start()
        .await;
    assert_refused(&proxy, &backend, Head::upgrade("/echo/"), 404, "no_route").await;
}

#[tokio::test]
async fn exact_host_route_wins_over_any_host() {
    let any = EchoBackend::start().await;
    let exact = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", any.addr())
        .route(Some("localhost"), "/echo/", exact.addr())
        .start()
        .await;
    assert_upgraded(&proxy, Head::upgrade("/echo/")).await;
    assert_eq!((any.accepted(), exact.requests().len()), (0, 1));
}

#[tokio::test]
async fn longest_prefix_wins() {
    let short = EchoBackend::start().await;
    let long = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", short.addr())
        .route(None, "/echo/deep/", long.addr())
        .start()
        .await;
    assert_upgraded(&proxy, Head::upgrade("/echo/deep/x")).await;
    assert_eq!((short.accepted(), long.requests().len()), (0, 1));
}

#[tokio::test]
async fn dot_segments_are_removed_before_routing() {
    assert_eq!(
        upgraded_to(Head::upgrade("/private/../echo/./x")).await,
        "/echo/x"
    );
}

#[tokio::test]
async fn percent_encoded_dot_segments_are_removed_before_routing() {
    assert_eq!(
        upgraded_to(Head::upgrade("/private/%2e%2E/echo/%2e/x")).await,
        "/echo/x"
    );
}

#[tokio::test]
async fn dot_segments_cannot_climb_out_of_a_route() {
    refused(Head::upgrade("/echo/../private/"), 404, "no_route").await;
    refused(Head::upgrade("/echo/%2E%2e/private/"), 404, "no_route").await;
}

#[tokio::test]
async fn repeated_slashes_are_merged_before_routing() {
    assert_eq!(upgraded_to(Head::upgrade("//echo//x")).await, "/echo/x");
}

#[tokio::test]
async fn query_is_forwarded_unchanged() {
    assert_eq!(
        upgraded_to(Head::upgrade("/echo/?a=1&b=%2e")).await,
        "/echo/?a=1&b=%2e"
    );
}

// ---- RFC 6455 §4.2.1 ----

#[tokio::test]
async fn plain_get_on_a_route_gets_426_naming_websocket() {
    let answer = refused(Head::get("/echo/"), 426, "not_websocket").await;
    assert!(answer.has_token("Upgrade", "websocket"), "{answer:#?}");
}

#[tokio::test]
async fn h2c_upgrade_gets_426() {
    let answer = refused(
        Head::upgrade("/echo/").set("Upgrade", "h2c"),
        426,
        "not_websocket",
    )
    .await;
    assert!(answer.has_token("Upgrade", "websocket"), "{answer:#?}");
}

#[tokio::test]
async fn upgrade_token_is_case_insensitive() {
    upgraded_to(Head::upgrade("/echo/").set("Upgrade", "WebSocket")).await;
}

#[tokio::test]
async fn post_gets_405_allowing_get() {
    let answer = refused(
        Head::upgrade("/echo/").method("POST"),
        405,
        "method_not_allowed",
    )
    .await;
    assert_eq!(answer.header("Allow"), Some("GET"));
}

#[tokio::test]
async fn http_1_0_is_400() {
    refused(
        Head::upgrade("/echo/").version("HTTP/1.0"),
        400,
        "http_version",
    )
    .await;
}

#[tokio::test]
async fn connection_without_upgrade_is_400() {
    let head = Head::upgrade("/echo/").set("Connection", "keep-alive");
    refused(head, 400, "connection_not_upgrade").await;
}

#[tokio::test]
async fn missing_connection_is_400() {
    refused(
        Head::upgrade("/echo/").remove("Connection"),
        400,
        "connection_not_upgrade",
    )
    .await;
}

#[tokio::test]
async fn connection_token_list_holding_upgrade_is_accepted() {
    upgraded_to(Head::upgrade("/echo/").set("Connection", "keep-alive, Upgrade")).await;
}

#[tokio::test]
async fn connection_tokens_across_field_lines_are_accepted() {
    let head = Head::upgrade("/echo/")
        .set("Connection", "keep-alive")
        .header("Connection", "upgrade");
    upgraded_to(head).await;
}

#[tokio::test]
async fn missing_key_is_400() {
    refused(
        Head::upgrade("/echo/").remove("Sec-WebSocket-Key"),
        400,
        "bad_key",
    )
    .await;
}

#[tokio::test]
async fn repeated_key_is_400() {
    let head = Head::upgrade("/echo/").header("Sec-WebSocket-Key", KEY);
    refused(head, 400, "bad_key").await;
}

#[tokio::test]
async fn key_that_is_not_base64_is_400() {
    let head = Head::upgrade("/echo/").set("Sec-WebSocket-Key", "not base64 at all!!!!!!!");
    refused(head, 400, "bad_key").await;
}

#[tokio::test]
async fn key_of_15_bytes_is_400() {
    // base64 of 15 bytes: valid base64, wrong length (RFC 6455 §4.1 item 7 wants 16).
    let head = Head::upgrade("/echo/").set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA");
    refused(head, 400, "bad_key").await;
}

#[tokio::test]
async fn missing_version_gets_426_naming_13() {
    let head = Head::upgrade("/echo/").remove("Sec-WebSocket-Version");
    let answer = refused(head, 426, "ws_version").await;
    assert_eq!(answer.header("Sec-WebSocket-Version"), Some("13"));
}

#[tokio::test]
async fn version_8_gets_426_naming_13() {
    let head = Head::upgrade("/echo/").set("Sec-WebSocket-Version", "8");
    let answer = refused(head, 426, "ws_version").await;
    assert_eq!(answer.header("Sec-WebSocket-Version"), Some("13"));
}

#[tokio::test]
async fn repeated_version_gets_426() {
    let head = Head::upgrade("/echo/").header("Sec-WebSocket-Version", "13");
    let answer = refused(head, 426, "ws_version").await;
    assert_eq!(answer.header("Sec-WebSocket-Version"), Some("13"));
}

#[tokio::test]
async fn body_announced_by_content_length_is_400() {
    let head = Head::upgrade("/echo/").header("Content-Length", "5");
    refused(head, 400, "body_on_upgrade").await;
}

#[tokio::test]
async fn chunked_body_is_400() {
    let head = Head::upgrade("/echo/").header("Transfer-Encoding", "chunked");
    refused(head, 400, "body_on_upgrade").await;
}
