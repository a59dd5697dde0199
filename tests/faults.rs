//! Faults met while under load (issue #13, `scripts/faults/`), pinned here:
//! - a backend that starts its answer and then stalls (the one-byte-per-second backend) is
//!   refused 504 `backend_timeout` when `backend_handshake_timeout` passes, never 502
//!   `backend_closed` because wsgate's own connection driver gave up at the same deadline;
//! - a reload while a route's JWKS URL is down keeps the keys last fetched from it, so tokens
//!   are still admitted (a reload used to start from an empty set and refuse every token
//!   until the identity provider was back);
//! - a backend that stays dead through several passive ejections is one warn for its first
//!   failed attempt and one for its ejection: not one per client refused, per attempt or per
//!   cooldown.

mod support;

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;
use support::pools::{answer_to, capture_logs};
use support::tokens::{
    HttpStub, SigningKey, bearer, claims, http_answer, json_answer, jwks, jwt_policy,
};
use support::*;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsgate::{Gateway, Shutdown};

/// A head cut off mid-field, then silence: what a backend sending one byte per second has
/// written when the timeout strikes.
const PARTIAL_101: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgr";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_stalling_mid_answer_is_a_504_every_time() {
    let backend = ScriptedBackend::start(Script::answer(PARTIAL_101)).await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .limit("backend_handshake_timeout", "200ms")
        .start()
        .await;
    // Three: the pool's default passive check ejects the backend at the third failure.
    for attempt in 1..=3 {
        let began = Instant::now();
        let answer = proxy.exchange(&Head::upgrade("/echo/")).await;
        assert_eq!(answer.status, 504, "attempt {attempt}: {answer:#?}");
        assert!(
            began.elapsed() >= Duration::from_millis(200),
            "{:?}",
            began.elapsed()
        );
        assert_closing(&answer);
        let seen = backend.next_seen().await;
        assert!(seen.proxy_closed, "the stalled backend is let go: {seen:?}");
    }
    let stats = proxy.stats();
    eventually("three backend_timeout counted", || {
        stats.refusals("backend_timeout") == 3
    })
    .await;
    assert_eq!(stats.refusals("backend_closed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_while_the_jwks_url_is_down_keeps_the_last_good_keys() {
    let key = SigningKey::new(Algorithm::ES256).with_kid("k1");
    let idp = HttpStub::start(json_answer(&jwks(&[&key]))).await;
    let backend = EchoBackend::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wsgate.yaml");
    let keys = format!("{{ jwks_url: \"{}\" }}", idp.url("/jwks.json"));
    let yaml = format!(
        "listeners:\n  - {{ name: public, bind: \"127.0.0.1:0\" }}\n\
         routes:\n  - {{ path: /chat, pool: p, {} }}\n\
         pools:\n  p: {{ backends: [ {{ url: \"ws://{}\" }} ] }}\n",
        jwt_policy(&keys, "", ""),
        backend.addr()
    );
    std::fs::write(&path, &yaml).expect("write config");
    let config = wsgate::config::load_file(&path).expect("config");
    let gateway = Gateway::new(config).expect("gateway");
    let reloader = gateway.reloader();
    let listeners = gateway.bind().expect("bind");
    let addr = listeners[0].local_addr().expect("addr");
    let (stop_tx, stop_rx) = oneshot::channel();
    let stop = async move { stop_rx.await.unwrap_or(Shutdown::Immediate) };
    let server = tokio::spawn(gateway.serve(listeners, stop));
    let token = key.sign(&claims(json!({})));
    let open = || async {
        let mut request = format!("ws://{addr}/chat")
            .into_client_request()
            .expect("request");
        let value = bearer(&token).parse().expect("header value");
        request.headers_mut().insert("Authorization", value);
        within("handshake", tokio_tungstenite::connect_async(request)).await
    };
    open()
        .await
        .expect("admitted with the key fetched from the URL");

    // The identity provider goes out, then the config is reloaded (same file).
    idp.set(http_answer(503, &[], "unavailable"));
    let fetched = idp.heads().len();
    reloader.reload().await.expect("reload");
    open()
        .await
        .expect("admitted after the reload with the last good key");
    eventually("the new set tried the URL", || idp.heads().len() > fetched).await;
    open().await.expect("still admitted after the failed fetch");

    let _ = stop_tx.send(Shutdown::Immediate);
    within("the gateway to stop", server)
        .await
        .expect("serve did not panic");
}

#[tokio::test]
async fn a_backend_that_stays_dead_is_one_warn_not_one_per_client_or_cooldown() {
    let (_guard, logs) = capture_logs();
    let dead = ScriptedBackend::start(Script::silent().then(Then::Close)).await;
    let proxy = TestProxy::builder()
        .plain()
        .pool_route(
            None,
            "/echo/",
            &[format!("ws://{}", dead.addr())],
            "passive: { failures: 2, cooldown: 100ms }",
        )
        .start()
        .await;
    // Clients keep coming; every cooldown lets two more attempts through: three ejections.
    let mut refused = 0;
    within("three ejections", async {
        while dead.accepted() < 6 {
            assert_eq!(answer_to(&proxy, "/echo/").await.status, 502);
            refused += 1;
        }
    })
    .await;
    assert!(refused >= 6);
    let text = logs.text();
    let warns: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warns.len(), 2, "{refused} refused clients:\n{text}");
    assert!(
        warns[0].contains("backend closed before answering"),
        "{text}"
    );
    assert!(
        warns[1].contains("backend ejected after consecutive failures"),
        "{text}"
    );
}
