//! Token authentication against the real proxy (issue 4, "Authentication"): JWTs from PEM keys,
//! JWKS files and JWKS URLs; every way a token is refused; the four places a token travels and
//! that none of them reaches the backend; claims turned into backend headers.
//! The `auth.request` method lives in `admit_auth_request.rs`.

mod support;

use jsonwebtoken::Algorithm;
use serde_json::json;
use support::admit::admitted_after_a_refetch;
use support::tokens::*;
use support::*;

/// A proxy whose `/chat` route takes JWTs verified with `key`'s PEM public key; `more`: extra
/// keys of `auth` (`forward_token: true`, `token_from: [...]`).
async fn jwt_proxy(key: &SigningKey, more: &str) -> (TestProxy, EchoBackend) {
    guarded(&jwt_policy(&key.pem_entry(), "", more), &[key.pem_file()]).await
}

// ---- verified tokens ----

async fn pem_key_admits(alg: Algorithm) {
    let key = SigningKey::new(alg);
    let (proxy, backend) = jwt_proxy(&key, "").await;
    let token = key.sign(&claims(json!({})));
    let attempt = proxy.ws("/chat").header("Authorization", &bearer(&token));
    let (mut ws, _) = attempt
        .header("X-App", "kept")
        .connect()
        .await
        .expect("admitted");
    assert_echoes(&mut ws).await;
    let seen = backend.only_request();
    assert!(
        seen.all("Authorization").is_empty(),
        "token forwarded: {seen:#?}"
    );
    assert_eq!(seen.one("X-App"), Some("kept"));
}

#[tokio::test]
async fn es256_token_opens_the_tunnel_without_reaching_the_backend() {
    pem_key_admits(Algorithm::ES256).await;
}

#[tokio::test]
async fn rs256_token_opens_the_tunnel_without_reaching_the_backend() {
    pem_key_admits(Algorithm::RS256).await;
}

#[tokio::test]
async fn eddsa_token_opens_the_tunnel_without_reaching_the_backend() {
    pem_key_admits(Algorithm::EdDSA).await;
}

#[tokio::test]
async fn forward_token_passes_the_authorization_header_on() {
    let key = SigningKey::new(Algorithm::ES256);
    let (proxy, backend) = jwt_proxy(&key, "forward_token: true").await;
    let token = key.sign(&claims(json!({})));
    connect_with(&proxy, &token).await;
    let seen = backend.only_request();
    assert_eq!(seen.one("Authorization"), Some(bearer(&token).as_str()));
}

#[tokio::test]
async fn hs256_secret_from_the_environment_admits() {
    // `std::env::set_var` is unsafe while other test threads run: use a variable the test runner
    // already sets instead of making one up.
    let secret = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let keys = "{ secret_env: CARGO_MANIFEST_DIR, alg: HS256 }";
    let (proxy, _backend) = guarded(&jwt_policy(keys, "", ""), &[]).await;
    connect_with(&proxy, &hs256(secret.as_bytes(), &claims(json!({})))).await;
    // The same claims under another secret are refused.
    let forged = hs256(b"not the configured secret", &claims(json!({})));
    let head = Head::upgrade("/chat").header("Authorization", &bearer(&forged));
    assert_eq!(proxy.exchange(&head).await.status, 401);
}

// ---- refusals (RFC 6750 §3) ----

/// Send `head` to a proxy trusting `key` (ES256 unless the key says otherwise) and expect a
/// refusal `status`/`reason` with a `WWW-Authenticate: Bearer` challenge, the backend untouched.
async fn refused(key: &SigningKey, more: &str, head: Head, status: u16, reason: &str) -> String {
    let (proxy, backend) = jwt_proxy(key, more).await;
    let answer = assert_refused(&proxy, &backend, head, status, reason).await;
    let challenge = answer.header("WWW-Authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer realm="), "{answer:#?}");
    challenge.to_string()
}

/// A token `forge` makes with the proxy's ES256 key is refused 401 `invalid_token`.
async fn invalid_token(forge: impl FnOnce(&SigningKey) -> String) {
    let key = SigningKey::new(Algorithm::ES256);
    let head = Head::upgrade("/chat").header("Authorization", &bearer(&forge(&key)));
    let challenge = refused(&key, "", head, 401, "token_invalid").await;
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn missing_token_is_401_with_a_challenge_and_no_error_code() {
    let key = SigningKey::new(Algorithm::ES256);
    let challenge = refused(&key, "", Head::upgrade("/chat"), 401, "token_missing").await;
    assert!(!challenge.contains("error"), "{challenge}");
}

#[tokio::test]
async fn expired_token_is_invalid() {
    invalid_token(|k| k.sign(&claims(json!({ "exp": now() - 120 })))).await;
}

#[tokio::test]
async fn not_yet_valid_token_is_invalid() {
    invalid_token(|k| k.sign(&claims(json!({ "nbf": now() + 120 })))).await;
}

#[tokio::test]
async fn token_from_another_issuer_is_invalid() {
    invalid_token(|k| k.sign(&claims(json!({ "iss": "https://evil.test" })))).await;
}

#[tokio::test]
async fn token_for_another_audience_is_invalid() {
    invalid_token(|k| k.sign(&claims(json!({ "aud": "billing" })))).await;
}

#[tokio::test]
async fn token_signed_by_another_key_is_invalid() {
    invalid_token(|_| SigningKey::new(Algorithm::ES256).sign(&claims(json!({})))).await;
}

#[tokio::test]
async fn rs256_token_for_an_es256_key_is_invalid() {
    invalid_token(|_| SigningKey::new(Algorithm::RS256).sign(&claims(json!({})))).await;
}

#[tokio::test]
async fn alg_none_token_is_invalid() {
    invalid_token(|_| unsigned(&claims(json!({})))).await;
}

#[tokio::test]
async fn garbage_token_is_invalid() {
    invalid_token(|_| "not-a.jwt-at.all".into()).await;
}

#[tokio::test]
async fn hs256_token_keyed_with_the_rsa_public_key_is_invalid() {
    // Algorithm confusion: the attacker knows the public key and uses its PEM as an HMAC secret.
    let key = SigningKey::new(Algorithm::RS256);
    let forged = hs256(key.public_pem.as_bytes(), &claims(json!({})));
    let head = Head::upgrade("/chat").header("Authorization", &bearer(&forged));
    let challenge = refused(&key, "", head, 401, "token_invalid").await;
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn token_without_the_required_claim_is_403_insufficient_scope() {
    let key = SigningKey::new(Algorithm::ES256);
    let token = key.sign(&claims(json!({ "scope": "read write" })));
    let head = Head::upgrade("/chat").header("Authorization", &bearer(&token));
    let policy = jwt_policy(&key.pem_entry(), "require: { scope: chat }", "");
    let (proxy, backend) = guarded(&policy, &[key.pem_file()]).await;
    let answer = assert_refused(&proxy, &backend, head, 403, "claims_insufficient").await;
    let challenge = answer.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{answer:#?}"
    );
    // The same key with the scope granted is admitted.
    connect_with(&proxy, &key.sign(&claims(json!({ "scope": "read chat" })))).await;
}

#[tokio::test]
async fn two_authorization_headers_are_400() {
    let key = SigningKey::new(Algorithm::ES256);
    let token = key.sign(&claims(json!({})));
    let head = Head::upgrade("/chat")
        .header("Authorization", &bearer(&token))
        .header("Authorization", &bearer(&token));
    refused(&key, "", head, 400, "duplicate_token").await;
}

#[tokio::test]
async fn query_token_given_twice_is_400() {
    let key = SigningKey::new(Algorithm::ES256);
    let token = key.sign(&claims(json!({})));
    let head = Head::upgrade(&format!("/chat?access_token={token}&access_token={token}"));
    let from = "token_from: [ { query: access_token } ]";
    refused(&key, from, head, 400, "duplicate_token").await;
}

// ---- where the token travels, and that it stops at wsgate ----

#[tokio::test]
async fn query_token_is_removed_from_the_target_and_other_parameters_stay() {
    let key = SigningKey::new(Algorithm::ES256);
    let (proxy, backend) = jwt_proxy(&key, "token_from: [ { query: access_token } ]").await;
    let token = key.sign(&claims(json!({})));
    let path = format!("/chat?room=1&access_token={token}&x=2");
    let mut ws = proxy.ws_connect(&path).await;
    assert_echoes(&mut ws).await;
    assert_eq!(backend.only_request().target, "/chat?room=1&x=2");
}

#[tokio::test]
async fn cookie_token_is_removed_and_other_cookies_stay() {
    let key = SigningKey::new(Algorithm::ES256);
    let (proxy, backend) = jwt_proxy(&key, "token_from: [ { cookie: session } ]").await;
    let cookie = format!(
        "theme=dark; session={}; lang=en",
        key.sign(&claims(json!({})))
    );
    let (mut ws, _) = proxy
        .ws("/chat")
        .header("Cookie", &cookie)
        .connect()
        .await
        .expect("admitted");
    assert_echoes(&mut ws).await;
    let seen = backend.only_request();
    assert_eq!(seen.one("Cookie"), Some("theme=dark; lang=en"));
}

#[tokio::test]
async fn subprotocol_token_is_removed_and_the_backend_choice_reaches_the_client() {
    let key = SigningKey::new(Algorithm::ES256);
    let (proxy, backend) = jwt_proxy(&key, "token_from: [ subprotocol ]").await;
    let offer = format!("bearer, {}, chat", key.sign(&claims(json!({}))));
    let attempt = proxy.ws("/chat").header("Sec-WebSocket-Protocol", &offer);
    let (mut ws, response) = attempt.connect().await.expect("admitted");
    let chosen = response.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(chosen.and_then(|v| v.to_str().ok()), Some("chat"));
    assert_echoes(&mut ws).await;
    let seen = backend.only_request();
    assert_eq!(seen.one("Sec-WebSocket-Protocol"), Some("chat"));
}

#[tokio::test]
async fn subprotocol_marker_is_selected_when_the_backend_selects_none() {
    let key = SigningKey::new(Algorithm::ES256);
    // A backend that answers a correct 101 without choosing a subprotocol.
    let backend = ScriptedBackend::start(Script::upgrade()).await;
    let proxy = TestProxy::builder()
        .route(None, "/chat", backend.addr())
        .policy(&jwt_policy(
            &key.pem_entry(),
            "",
            "token_from: [ subprotocol ]",
        ))
        .file("issuer.pem", key.public_pem.clone())
        .start()
        .await;
    let token = key.sign(&claims(json!({})));
    let offer = format!("bearer, {token}, chat");
    // tungstenite, like a browser, fails a handshake that selects none of its offers.
    let attempt = proxy.ws("/chat").header("Sec-WebSocket-Protocol", &offer);
    let (mut ws, response) = attempt.connect().await.expect("admitted");
    let chosen = response.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(chosen.and_then(|v| v.to_str().ok()), Some("bearer"));
    assert_echoes(&mut ws).await;
    let seen = backend.next_seen().await;
    assert_eq!(head_field(&seen.head, "Sec-WebSocket-Protocol"), ["chat"]);
    assert!(
        !seen.head.contains(&token),
        "token forwarded: {}",
        seen.head
    );
}

#[tokio::test]
async fn claim_header_replaces_what_the_client_sent() {
    let key = SigningKey::new(Algorithm::ES256);
    let (proxy, backend) = jwt_proxy(&key, "claims_to_headers: { sub: X-User-Id }").await;
    let token = key.sign(&claims(json!({})));
    let attempt = proxy.ws("/chat").header("Authorization", &bearer(&token));
    let attempt = attempt
        .header("X-User-Id", "mallory")
        .header("x-user-id", "root");
    let (mut ws, _) = attempt.connect().await.expect("admitted");
    assert_echoes(&mut ws).await;
    let seen = backend.only_request();
    assert_eq!(seen.one("X-User-Id"), Some("alice"), "{seen:#?}");
}

// ---- key sets ----

#[tokio::test]
async fn jwks_file_verifies_its_kid_and_refuses_an_unknown_kid() {
    let key = SigningKey::new(Algorithm::EdDSA).with_kid("k1");
    let policy = jwt_policy("{ jwks_file: jwks.json }", "", "");
    let (proxy, backend) = guarded(&policy, &[("jwks.json", &jwks(&[&key]))]).await;
    let stranger = key.sign_as(Some("k2"), &claims(json!({})));
    let head = Head::upgrade("/chat").header("Authorization", &bearer(&stranger));
    let answer = assert_refused(&proxy, &backend, head, 401, "token_invalid").await;
    assert!(
        answer
            .header("WWW-Authenticate")
            .unwrap_or_default()
            .contains("invalid_token")
    );
    connect_with(&proxy, &key.sign(&claims(json!({})))).await;
    assert!(backend.only_request().all("Authorization").is_empty());
}

#[tokio::test]
async fn jwks_url_key_rotation_is_picked_up_on_an_unknown_kid() {
    let old = SigningKey::new(Algorithm::ES256).with_kid("2024");
    let new = SigningKey::new(Algorithm::ES256).with_kid("2025");
    let idp = HttpStub::start(json_answer(&jwks(&[&old]))).await;
    let keys = format!("{{ jwks_url: \"{}\" }}", idp.url("/jwks.json"));
    let (proxy, backend) = guarded(&jwt_policy(&keys, "", ""), &[]).await;
    connect_with(&proxy, &old.sign(&claims(json!({})))).await;
    let fetched = idp.heads();
    assert!(
        fetched[0].starts_with("GET /jwks.json HTTP/1.1\r\n"),
        "{fetched:?}"
    );
    // The identity provider rotates: a token with the new kid makes wsgate fetch again.
    idp.set(json_answer(&jwks(&[&old, &new])));
    admitted_after_a_refetch(&proxy, &new.sign(&claims(json!({})))).await;
    assert!(idp.heads().len() > fetched.len());
    connect_with(&proxy, &old.sign(&claims(json!({})))).await;
    assert!(
        backend
            .requests()
            .iter()
            .all(|r| r.all("Authorization").is_empty())
    );
}

#[tokio::test]
async fn jwks_url_down_at_start_refuses_tokens_until_it_is_reachable() {
    let key = SigningKey::new(Algorithm::ES256).with_kid("k1");
    // A port nothing listens on (yet): connections to it are refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("reserve a port");
    let keys = format!("{{ jwks_url: \"http://{addr}/jwks.json\" }}");
    let (proxy, backend) = guarded(&jwt_policy(&keys, "", ""), &[]).await;
    let token = key.sign(&claims(json!({})));
    let head = Head::upgrade("/chat").header("Authorization", &bearer(&token));
    assert_refused(&proxy, &backend, head, 401, "token_invalid").await;
    let idp = HttpStub::start_at(addr, json_answer(&jwks(&[&key]))).await;
    admitted_after_a_refetch(&proxy, &token).await;
    assert!(!idp.heads().is_empty());
}

#[tokio::test]
async fn jwks_url_with_a_chunk_size_near_2_pow_64_refuses_tokens_and_refresh_recovers() {
    let key = SigningKey::new(Algorithm::ES256).with_kid("k1");
    let idp = HttpStub::start(huge_chunk_answer()).await;
    let keys = format!("{{ jwks_url: \"{}\" }}", idp.url("/jwks.json"));
    let (proxy, backend) = guarded(&jwt_policy(&keys, "", ""), &[]).await;
    let token = key.sign(&claims(json!({})));
    let head = Head::upgrade("/chat").header("Authorization", &bearer(&token));
    // The fetch fails (no panic: the proxy answers), so the token has no key.
    assert_refused(&proxy, &backend, head, 401, "token_invalid").await;
    assert!(!idp.heads().is_empty(), "the JWKS URL was asked");
    // The identity provider heals: the refresh (timer or unknown kid) still runs and works.
    idp.set(json_answer(&jwks(&[&key])));
    admitted_after_a_refetch(&proxy, &token).await;
}
