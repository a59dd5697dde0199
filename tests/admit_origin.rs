//! Origin policy against the real proxy: exact scheme + host + port, `*.` for subdomains only,
//! `null` only when listed, `require_origin`, duplicates, and `defaults:` inherited and
//! overridden. Every refusal is checked at the client (status, reason counted) and at the backend
//! (never contacted); every admission at the backend (the Origin it saw).

mod support;

use support::*;

/// The allowlist of the issue's example.
const ORIGINS: &str =
    r#"origins: ["https://app.example.com", "https://*.example.com", "http://localhost:3000"]"#;

async fn origin_proxy(policy: &str) -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .policy(policy)
        .start()
        .await;
    (proxy, backend)
}

fn with_origin(origin: &str) -> Head {
    Head::upgrade("/echo/").header("Origin", origin)
}

/// Each origin is admitted, in order, and reaches the backend unchanged.
async fn assert_admitted(policy: &str, origins: &[&str]) {
    let (proxy, backend) = origin_proxy(policy).await;
    for origin in origins {
        assert_upgraded(&proxy, with_origin(origin)).await;
    }
    let seen: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.one("Origin").unwrap_or_default().to_string())
        .collect();
    assert_eq!(seen, origins, "the backend saw each admitted Origin");
}

/// Each origin is refused with 403 `origin_not_allowed`, and the backend never hears of it.
async fn assert_forbidden(policy: &str, origins: &[&str]) {
    let (proxy, backend) = origin_proxy(policy).await;
    for origin in origins {
        let answer = assert_refused(
            &proxy,
            &backend,
            with_origin(origin),
            403,
            "origin_not_allowed",
        )
        .await;
        assert_eq!(answer.body_text(), "Origin not allowed\n", "for {origin}");
    }
}

// ---- allowed ----

#[tokio::test]
async fn exact_origin_is_allowed_and_forwarded() {
    assert_admitted(
        ORIGINS,
        &["https://app.example.com", "http://localhost:3000"],
    )
    .await;
}

#[tokio::test]
async fn host_case_and_default_port_are_normalised() {
    assert_admitted(
        ORIGINS,
        &["https://APP.Example.COM", "https://app.example.com:443"],
    )
    .await;
}

#[tokio::test]
async fn wildcard_allows_subdomains_at_any_depth() {
    assert_admitted(
        ORIGINS,
        &["https://chat.example.com", "https://a.b.example.com"],
    )
    .await;
}

// ---- the tricks ----

#[tokio::test]
async fn allowed_name_as_a_prefix_of_another_domain_is_403() {
    assert_forbidden(
        ORIGINS,
        &[
            "https://example.com.evil.test",
            "https://app.example.com.evil.test",
        ],
    )
    .await;
}

#[tokio::test]
async fn allowed_name_as_a_suffix_without_a_dot_is_403() {
    assert_forbidden(
        ORIGINS,
        &["https://evilexample.com", "https://wwwexample.com"],
    )
    .await;
}

#[tokio::test]
async fn wildcard_does_not_match_the_apex() {
    assert_forbidden(ORIGINS, &["https://example.com"]).await;
}

#[tokio::test]
async fn http_and_https_are_different_origins() {
    assert_forbidden(
        ORIGINS,
        &[
            "http://app.example.com",
            "http://chat.example.com",
            "https://localhost:3000",
        ],
    )
    .await;
}

#[tokio::test]
async fn another_port_is_another_origin() {
    assert_forbidden(
        ORIGINS,
        &[
            "https://app.example.com:8443",
            "https://chat.example.com:8443",
            "http://localhost:3001",
            "http://localhost",
        ],
    )
    .await;
}

#[tokio::test]
async fn several_origins_in_one_field_are_403() {
    assert_forbidden(
        ORIGINS,
        &[
            "https://evil.test https://app.example.com",
            "https://evil.test, https://app.example.com",
        ],
    )
    .await;
}

#[tokio::test]
async fn null_origin_is_403_unless_listed() {
    assert_forbidden(ORIGINS, &["null"]).await;
}

#[tokio::test]
async fn null_origin_passes_when_listed() {
    assert_admitted(r#"origins: ["https://app.example.com", "null"]"#, &["null"]).await;
}

// ---- presence ----

#[tokio::test]
async fn missing_origin_is_403_when_required() {
    for policy in [
        ORIGINS.to_string(),
        format!("{ORIGINS}, require_origin: true"),
    ] {
        let (proxy, backend) = origin_proxy(&policy).await;
        let answer = assert_refused(
            &proxy,
            &backend,
            Head::upgrade("/echo/"),
            403,
            "origin_missing",
        )
        .await;
        assert_eq!(answer.body_text(), "Origin required\n");
    }
}

#[tokio::test]
async fn missing_origin_passes_when_not_required_but_a_wrong_one_does_not() {
    let (proxy, backend) = origin_proxy(&format!("{ORIGINS}, require_origin: false")).await;
    assert_upgraded(&proxy, Head::upgrade("/echo/")).await;
    assert_eq!(backend.only_request().one("Origin"), None);
    let wrong = with_origin("https://evil.test");
    let mut conn = proxy.connect().await;
    admit::assert_refused_on(
        &mut conn,
        &proxy,
        &backend,
        &wrong,
        403,
        "origin_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn duplicate_origin_is_400_even_when_both_are_allowed() {
    let (proxy, backend) = origin_proxy(ORIGINS).await;
    let allowed_twice =
        with_origin("https://app.example.com").header("Origin", "https://app.example.com");
    assert_refused(&proxy, &backend, allowed_twice, 400, "duplicate_origin").await;
    let mixed = with_origin("https://app.example.com").header("origin", "https://evil.test");
    assert_refused(&proxy, &backend, mixed, 400, "duplicate_origin").await;
}

#[tokio::test]
async fn route_without_origins_takes_any_origin_and_none() {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    assert_upgraded(&proxy, with_origin("https://evil.test")).await;
    assert_upgraded(&proxy, Head::upgrade("/echo/")).await;
    assert_eq!(backend.requests().len(), 2);
}

// ---- defaults ----

#[tokio::test]
async fn defaults_origins_are_inherited_and_a_route_replaces_them() {
    let inherits = EchoBackend::start().await;
    let replaces = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .top("defaults:\n  origins: [\"https://app.example.com\"]")
        .route(None, "/a/", inherits.addr())
        .route(None, "/b/", replaces.addr())
        .policy(r#"origins: ["https://other.test"]"#)
        .start()
        .await;
    let head = |path: &str, origin: &str| Head::upgrade(path).header("Origin", origin);
    assert_upgraded(&proxy, head("/a/", "https://app.example.com")).await;
    assert_upgraded(&proxy, head("/b/", "https://other.test")).await;
    let refusals = [
        (head("/a/", "https://other.test"), "/a/"),
        (head("/b/", "https://app.example.com"), "/b/"),
    ];
    for (request, path) in refusals {
        let mut conn = proxy.connect().await;
        let backend: &EchoBackend = if path == "/a/" { &inherits } else { &replaces };
        admit::assert_refused_on(
            &mut conn,
            &proxy,
            backend,
            &request,
            403,
            "origin_not_allowed",
        )
        .await;
    }
    // The default's require_origin (true) applies to both routes.
    let mut conn = proxy.connect().await;
    let bare = Head::upgrade("/b/");
    admit::assert_refused_on(&mut conn, &proxy, &replaces, &bare, 403, "origin_missing").await;
    assert_eq!(
        inherits.only_request().one("Origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        replaces.only_request().one("Origin"),
        Some("https://other.test")
    );
}
