//! Backend health through the real proxy: active WebSocket and TCP checks take a failing backend
//! out of rotation and bring it back with rise/fall hysteresis; passive ejection skips a backend
//! after consecutive failures on the data path; with every backend out, clients get a 502 at once.
//!
//! No sleeps: a checker probes one backend at a time, so the arrival of probe `n + 1` at the
//! backend proves the proxy has judged probe `n`. The waits count probes with `eventually`.

mod support;

use std::time::Duration;

use support::pools::{Options, PoolBackend, Visits, answer_to, capture_logs, landings};
use support::*;

/// A plain listener routing `/echo/` to `backends` with `pool_keys`.
async fn proxy_for(backends: &[String], pool_keys: &str) -> TestProxy {
    TestProxy::builder()
        .plain()
        .pool_route(None, "/echo/", backends, pool_keys)
        .start()
        .await
}

fn ws_url(backend: &ScriptedBackend) -> String {
    format!("ws://{}", backend.addr())
}

/// Two backends `a` and `b` sharing one log.
async fn two(visits: &Visits) -> (PoolBackend, PoolBackend) {
    (
        PoolBackend::start("a", visits).await,
        PoolBackend::start("b", visits).await,
    )
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

/// The status of the next `n` handshakes, one after another.
async fn statuses(proxy: &TestProxy, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(answer_to(proxy, "/echo/").await.status);
    }
    out
}

// ---- active checks ----

const WS_CHECK: &str = "health: { interval: 200ms, timeout: 150ms, rise: 1, fall: 2, \
                        check: { websocket: /health } }";

#[tokio::test]
async fn websocket_check_takes_a_failing_backend_out_and_brings_it_back() {
    let (_guard, logs) = capture_logs();
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let proxy = proxy_for(&[a.url(), b.url()], WS_CHECK).await;
    let both = landings(&proxy, "/echo/", 2).await;
    assert_eq!((count(&both, "a"), count(&both, "b")), (1, 1), "{both:?}");

    b.set_healthy(false);
    // fall 2: when the third failing probe arrives, the second has been judged.
    eventually("b to fail three probes", || b.health_failed() >= 3).await;
    let out = landings(&proxy, "/echo/", 6).await;
    assert_eq!(count(&out, "a"), 6, "traffic still reaches b: {out:?}");
    assert!(
        logs.text().contains("backend down (active checks fail)"),
        "{}",
        logs.text()
    );

    b.set_healthy(true);
    let passed = b.health_passed();
    // rise 1: when the second passing probe arrives, the first has been judged.
    eventually("b to pass two probes", || b.health_passed() >= passed + 2).await;
    let back = landings(&proxy, "/echo/", 4).await;
    assert_eq!(count(&back, "b"), 2, "b is back in the rotation: {back:?}");
    assert!(logs.text().contains("backend up (active checks pass)"));
    assert!(
        visits.all().iter().all(|v| v.target == "/echo/"),
        "probes are not traffic"
    );
}

#[tokio::test]
async fn tcp_check_takes_a_closed_port_out_and_brings_it_back() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    // No retries and no passive ejection: until the check marks b down, every pick of b is a 502.
    let keys = "health: { interval: 200ms, timeout: 150ms, rise: 1, fall: 1, check: tcp }, retries: 0, \
                passive: { failures: 0 }";
    let proxy = proxy_for(&[a.url(), b.url()], keys).await;
    b.close_port();
    // Round robin alternates while b counts as up: four successes in a row mean it is down.
    within("the check to mark b down", async {
        let mut in_a_row = 0;
        while in_a_row < 4 {
            match answer_to(&proxy, "/echo/").await.status {
                101 => in_a_row += 1,
                _ => in_a_row = 0,
            }
        }
    })
    .await;
    assert_eq!(statuses(&proxy, 6).await, [101; 6]);

    let accepted = b.accepted();
    b.reopen_port().await;
    // rise 1: when the second probe connects, the first has been judged.
    eventually("b to pass two TCP checks", || b.accepted() >= accepted + 2).await;
    let back = landings(&proxy, "/echo/", 4).await;
    assert_eq!(count(&back, "b"), 2, "b is back in the rotation: {back:?}");
}

#[tokio::test]
async fn every_backend_failing_its_check_is_502_at_once() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    a.set_healthy(false);
    b.set_healthy(false);
    let keys = WS_CHECK.replace("fall: 2", "fall: 1") + ", retries: 1";
    let proxy = TestProxy::builder()
        .plain()
        .limit("backend_handshake_timeout", "10s")
        .pool_route(None, "/echo/", &[a.url(), b.url()], &keys)
        .start()
        .await;
    eventually("both backends to fail two probes", || {
        a.health_failed() >= 2 && b.health_failed() >= 2
    })
    .await;
    let head = Head::upgrade("/echo/");
    let quick = tokio::time::timeout(Duration::from_secs(1), proxy.exchange(&head));
    let answer = quick
        .await
        .expect("a 502 at once, not a wait for the handshake timeout");
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert_eq!(answer.body_text(), "backend unavailable\n");
    assert!(
        visits.all().is_empty(),
        "no backend was asked: {:?}",
        visits.all()
    );
}

#[tokio::test]
async fn websocket_checks_of_a_proxy_protocol_pool_send_the_proxy_header() {
    let visits = Visits::new();
    let options = Options {
        tls: None,
        proxy_protocol: true,
    };
    let backend = PoolBackend::start_with("pp", &visits, options).await;
    let keys = format!("proxy_protocol: v2, {WS_CHECK}").replace("fall: 2", "fall: 1");
    let proxy = proxy_for(&[backend.url()], &keys).await;
    // The second probe connects only after the first was judged.
    eventually("two probes", || backend.accepted() >= 2).await;
    assert!(
        backend.health_passed() >= 1,
        "a backend that requires a PROXY header gets probes without one (HAProxy sends it on \
         checks when the server has send-proxy)"
    );
    let answer = answer_to(&proxy, "/echo/").await;
    assert_eq!(
        answer.status, 101,
        "the checks marked the only backend down: {answer:#?}"
    );
}

// ---- passive ejection ----

#[tokio::test]
async fn two_garbage_answers_eject_the_backend_and_say_so() {
    let (_guard, logs) = capture_logs();
    let garbage = ScriptedBackend::start(Script::answer("HTTP/1.1 banana\r\n\r\n")).await;
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    let keys = "passive: { failures: 2, cooldown: 30s }, retries: 1";
    let proxy = proxy_for(&[ws_url(&garbage), live.url()], keys).await;
    // Round robin alternates; a garbage answer is final (502), the second one ejects.
    let got = statuses(&proxy, 8).await;
    assert_eq!(got, [502, 101, 502, 101, 101, 101, 101, 101]);
    assert_eq!(garbage.accepted(), 2, "skipped once ejected");
    let text = logs.text();
    assert!(
        text.contains("backend ejected after consecutive failures")
            && text.contains(&ws_url(&garbage)),
        "{text}"
    );
}

#[tokio::test]
async fn with_retries_an_ejected_backend_costs_clients_nothing() {
    let closer = ScriptedBackend::start(Script::answer(Vec::new()).then(Then::Close)).await;
    let visits = Visits::new();
    let live = PoolBackend::start("live", &visits).await;
    let keys = "passive: { failures: 2, cooldown: 30s }, retries: 1";
    let proxy = proxy_for(&[ws_url(&closer), live.url()], keys).await;
    assert_eq!(statuses(&proxy, 8).await, [101; 8]);
    assert_eq!(closer.accepted(), 2, "tried until ejected, then skipped");
    assert_eq!(visits.count("live"), 8);
}

#[tokio::test]
async fn every_backend_ejected_is_502_without_contacting_them() {
    let one = ScriptedBackend::start(Script::answer(Vec::new()).then(Then::Close)).await;
    let two = ScriptedBackend::start(Script::answer(Vec::new()).then(Then::Close)).await;
    let keys = "passive: { failures: 1, cooldown: 30s }, retries: 1";
    let proxy = proxy_for(&[ws_url(&one), ws_url(&two)], keys).await;
    let first = proxy.exchange(&Head::upgrade("/echo/")).await;
    assert_eq!(first.status, 502, "{first:#?}");
    assert_eq!((one.accepted(), two.accepted()), (1, 1));
    let head = Head::upgrade("/echo/");
    let quick = tokio::time::timeout(Duration::from_secs(1), proxy.exchange(&head));
    let answer = quick.await.expect("a 502 at once");
    assert_eq!(answer.status, 502, "{answer:#?}");
    assert_eq!(answer.body_text(), "backend unavailable\n");
    assert_eq!(
        (one.accepted(), two.accepted()),
        (1, 1),
        "ejected backends are not tried"
    );
}
