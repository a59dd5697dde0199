//! Failover inside one handshake: a backend that refuses, hangs or closes before answering is
//! skipped for the next one, up to the pool's `retries`, all inside one
//! `backend_handshake_timeout`; an answer, whatever its status, is final and never retried.

mod support;

use std::time::Duration;

use support::pools::{PoolBackend, Visits, closed_port_url, tunnel};
use support::*;
use tokio::time::Instant;

/// A plain listener routing `/echo/` to `backends` with `pool_keys`, and `limits`.
async fn proxy_for(backends: &[String], pool_keys: &str, limits: &[(&str, &str)]) -> TestProxy {
    let mut builder = TestProxy::builder().plain();
    for (key, value) in limits {
        builder = builder.limit(key, value);
    }
    builder
        .pool_route(None, "/echo/", backends, pool_keys)
        .start()
        .await
}

fn ws_url(backend: &ScriptedBackend) -> String {
    format!("ws://{}", backend.addr())
}

#[tokio::test]
async fn a_refused_backend_is_skipped_with_retries_1() {
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    // Passive ejection off: every round robin turn of the dead backend is a real refusal.
    let keys = "retries: 1, passive: { failures: 0 }";
    let proxy = proxy_for(&[closed_port_url(), live.url()], keys, &[]).await;
    for _ in 0..4 {
        let (name, mut ws) = tunnel(&proxy, "/echo/").await;
        assert_eq!(name, "live");
        drop(ws.close(None).await);
    }
    assert_eq!(visits.count("live"), 4);
    assert_eq!(proxy.stats().refusals("backend_unavailable"), 0);
}

#[tokio::test]
async fn by_default_a_refused_backend_is_skipped_as_nginx_does() {
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    // No `retries:`: min(2, backends - 1) = 1 for two backends.
    let keys = "passive: { failures: 0 }";
    let proxy = proxy_for(&[closed_port_url(), live.url()], keys, &[]).await;
    for _ in 0..4 {
        let (name, mut ws) = tunnel(&proxy, "/echo/").await;
        assert_eq!(name, "live");
        drop(ws.close(None).await);
    }
    assert_eq!(proxy.stats().refusals("backend_unavailable"), 0);
}

#[tokio::test]
async fn without_retries_a_refused_first_pick_is_502_even_with_a_live_second() {
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    let proxy = proxy_for(&[closed_port_url(), live.url()], "retries: 0", &[]).await;
    // Round robin tries the first backend first.
    let answer = proxy.exchange(&Head::upgrade("/echo/")).await;
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert_eq!(answer.body_text(), "backend unavailable\n");
    assert_eq!(live.accepted(), 0, "no failover without retries");
}

#[tokio::test]
async fn a_silent_backend_gets_half_the_budget_and_the_next_answers_in_time() {
    let silent = ScriptedBackend::start(Script::silent()).await;
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    let limits = [("backend_handshake_timeout", "2s")];
    let proxy = proxy_for(&[ws_url(&silent), live.url()], "retries: 1", &limits).await;
    let started = Instant::now();
    // Had the silent backend been given the whole 2s, this would be a 504.
    let (name, _ws) = tunnel(&proxy, "/echo/").await;
    let elapsed = started.elapsed();
    assert_eq!(name, "live");
    assert!(
        elapsed >= Duration::from_millis(900),
        "the silent backend was abandoned after {elapsed:?}, before its share of the budget"
    );
    let seen = silent.next_seen().await;
    assert!(seen.head.starts_with("GET /echo/ HTTP/1.1\r\n"), "{seen:?}");
    assert!(
        seen.proxy_closed,
        "the abandoned connection is closed: {seen:?}"
    );
    assert_eq!(visits.count("live"), 1);
}

#[tokio::test]
async fn a_backend_that_closes_before_answering_is_retried() {
    let closer = ScriptedBackend::start(Script::answer(Vec::new()).then(Then::Close)).await;
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    let proxy = proxy_for(&[ws_url(&closer), live.url()], "retries: 1", &[]).await;
    let (name, _ws) = tunnel(&proxy, "/echo/").await;
    assert_eq!(name, "live");
    assert_eq!(closer.accepted(), 1, "the first pick was tried");
    assert!(closer.next_seen().await.head.starts_with("GET /echo/ "));
}

#[tokio::test]
async fn the_only_backend_down_without_retries_is_502_backend_unavailable() {
    let proxy = proxy_for(&[closed_port_url()], "retries: 0", &[]).await;
    let started = Instant::now();
    let answer = proxy.exchange(&Head::upgrade("/echo/")).await;
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert_closing(&answer);
    assert_eq!(answer.body_text(), "backend unavailable\n");
    let stats = proxy.stats();
    eventually("backend_unavailable counted", || {
        stats.refusals("backend_unavailable") == 1
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a refusal is not a hang"
    );
}

#[tokio::test]
async fn every_backend_closing_is_tried_once_then_502() {
    let mut closers = Vec::new();
    for _ in 0..3 {
        closers.push(ScriptedBackend::start(Script::answer(Vec::new()).then(Then::Close)).await);
    }
    let urls: Vec<String> = closers.iter().map(ws_url).collect();
    let proxy = proxy_for(&urls, "retries: 2", &[]).await;
    let answer = proxy.exchange(&Head::upgrade("/echo/")).await;
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert_eq!(answer.body_text(), "backend closed before answering\n");
    let tried: Vec<usize> = closers.iter().map(|c| c.accepted()).collect();
    assert_eq!(
        tried,
        [1, 1, 1],
        "each backend tried once: retries 2 = 3 attempts"
    );
}

#[tokio::test]
async fn a_non_101_answer_is_relayed_and_not_retried() {
    let forbidding = ScriptedBackend::start(Script::answer(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nX-Reason: policy\r\n\r\nnope!",
    ))
    .await;
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    let proxy = proxy_for(&[ws_url(&forbidding), live.url()], "retries: 1", &[]).await;
    let answer = proxy.exchange(&Head::upgrade("/echo/")).await;
    assert_eq!(answer.status, 403, "{answer:#?}");
    assert_eq!(answer.header("X-Reason"), Some("policy"));
    assert_eq!(answer.body_text(), "nope!");
    assert_closing(&answer);
    assert_eq!(forbidding.accepted(), 1);
    assert_eq!(
        live.accepted(),
        0,
        "an answer is final: the second backend saw nothing"
    );
    let stats = proxy.stats();
    eventually("the relay counted", || {
        stats.refusals("backend_non_101") == 1
    })
    .await;
}

#[tokio::test]
async fn a_malformed_answer_is_502_and_not_retried() {
    let garbage = ScriptedBackend::start(Script::answer("HTTP/1.1 banana\r\n\r\n")).await;
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    let proxy = proxy_for(&[ws_url(&garbage), live.url()], "retries: 1", &[]).await;
    let answer = proxy.exchange(&Head::upgrade("/echo/")).await;
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert_eq!(live.accepted(), 0, "an answer is final, even a broken one");
}
