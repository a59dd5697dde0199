//! Limits counted across a fleet (issue #11): several wsgate instances share one Redis, and a
//! `scope: fleet` rate (route or per address) admits its burst once for the whole fleet, not once
//! per instance; `per_subject` caps a token subject's live sessions on every instance together
//! and frees the slot when a session closes. A `scope: local` control shows each test can fail.
//!
//! Also the self-test of the Redis harness the fleet tests stand on (start, stop, restart empty,
//! freeze), which needs nothing from the feature.
//!
//! Rates are `5/m`: no cell comes back while a test runs, whatever the machine's speed.

mod support;

use std::time::Duration;

use support::admit::close_ws;
use support::fleet::{
    CHAT, Fleet, Outcome, Refused, admitted, admitted_within, handshake, per_subject, refused,
};
use support::redis::{RedisServer, Reply};
use support::*;
use tokio::net::TcpStream;
use tokio::time::timeout;

const ECHO: &str = "/echo/";
/// Handshakes fired round-robin at the instances of a rate test.
const FIRED: usize = 15;
/// The burst of every rate here, fleet-wide or per instance.
const BURST: usize = 5;

// ---- the harness ----

#[tokio::test]
async fn the_redis_harness_starts_stops_and_restarts_empty() {
    let mut redis = RedisServer::start().await;
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/0"));
    let ok = Reply::Simple("OK".into());
    assert_eq!(redis.cmd(&["SET", "t:k", "v"]).await.expect("SET"), ok);
    assert_eq!(redis.keys("t:*").await, ["t:k"]);
    assert_eq!(redis.dbsize().await, 1);

    // A second server is private: another port, its own empty data set.
    let other = RedisServer::start().await;
    assert_ne!(other.port(), port);
    assert_eq!(other.dbsize().await, 0);

    redis.stop().await;
    let connect = TcpStream::connect(("127.0.0.1", port)).await;
    assert!(connect.is_err(), "port {port} still accepts after stop");
    assert!(redis.cmd(&["PING"]).await.is_err());

    redis.restart().await;
    assert_eq!(redis.port(), port, "restart keeps the port");
    assert_eq!(redis.dbsize().await, 0, "a restart loses the data");
    assert!(redis.keys("*").await.is_empty());
    assert_eq!(redis.cmd(&["SET", "t:k", "w"]).await.expect("SET"), ok);

    // Frozen: connections are accepted but nothing is answered.
    redis.freeze();
    let hung = timeout(Duration::from_millis(300), redis.cmd(&["PING"])).await;
    assert!(hung.is_err(), "a frozen redis answered: {hung:?}");
    redis.thaw();
    let pong = redis.cmd(&["PING"]).await.expect("PING after thaw");
    assert_eq!(pong, Reply::Simple("PONG".into()));
    assert_eq!(redis.dbsize().await, 1, "a freeze keeps the data");

    drop(redis);
    let connect = TcpStream::connect(("127.0.0.1", port)).await;
    assert!(connect.is_err(), "port {port} still accepts after drop");
}

// ---- fleet rates ----

/// Fire [`FIRED`] handshakes to `/echo/` round-robin over `proxies`, one at a time; the tunnels
/// admitted (kept open) and the refusals.
async fn round_robin(proxies: &[TestProxy]) -> (Vec<Ws>, Vec<Refused>) {
    let (mut admitted, mut refused) = (Vec::new(), Vec::new());
    for i in 0..FIRED {
        match handshake(&proxies[i % proxies.len()], ECHO, None).await {
            Outcome::Admitted(ws) => admitted.push(*ws),
            Outcome::Refused(r) => refused.push(r),
        }
    }
    (admitted, refused)
}

/// Every refusal is 429 with `Retry-After`, and the instances counted them under `reason`.
async fn assert_rate_refusals(proxies: &[TestProxy], refused: &[Refused], reason: &str) {
    for r in refused {
        assert_eq!(r.status, 429, "{r:?}");
        let secs = r.retry_after.as_deref().and_then(|v| v.parse::<u64>().ok());
        assert!(secs.is_some_and(|s| s >= 1), "Retry-After: {r:?}");
    }
    let stats: Vec<_> = proxies.iter().map(TestProxy::stats).collect();
    let want = refused.len() as u64;
    eventually(&format!("{want} {reason} refusals counted"), || {
        stats.iter().map(|s| s.refusals(reason)).sum::<u64>() == want
    })
    .await;
}

/// Three instances with a `/echo/` route whose rate has `scope`.
async fn route_rate_fleet(fleet: &Fleet, scope: &str) -> Vec<TestProxy> {
    let rate = format!(r#"rate: {{ handshakes: "5/m", burst: {BURST}, scope: {scope} }}"#);
    let mut all = Vec::new();
    for i in 1..=3 {
        let proxy = fleet
            .builder(&format!("route-{scope}-{i}"))
            .route(None, ECHO, fleet.backend.addr())
            .policy(&rate)
            .start()
            .await;
        all.push(proxy);
    }
    all
}

/// Three instances with `limits.per_ip` of `scope` and an unlimited `/echo/` route.
async fn per_ip_fleet(fleet: &Fleet, scope: &str) -> Vec<TestProxy> {
    let per_ip =
        format!(r#"{{ handshakes: "5/m", burst: {BURST}, max_connections: 200, scope: {scope} }}"#);
    let mut all = Vec::new();
    for i in 1..=3 {
        let proxy = fleet
            .builder(&format!("ip-{scope}-{i}"))
            .limit("per_ip", &per_ip)
            .route(None, ECHO, fleet.backend.addr())
            .start()
            .await;
        all.push(proxy);
    }
    all
}

#[tokio::test]
async fn a_fleet_route_rate_admits_its_burst_once_for_all_instances() {
    let fleet = Fleet::start("route-rate").await;
    let proxies = route_rate_fleet(&fleet, "fleet").await;
    let (admitted, refused) = round_robin(&proxies).await;
    assert_eq!(admitted.len(), BURST, "admitted across the fleet");
    assert_rate_refusals(&proxies, &refused, "route_rate_limited").await;
    assert_eq!(fleet.backend.requests().len(), BURST);
}

#[tokio::test]
async fn a_fleet_per_ip_rate_admits_its_burst_once_for_all_instances() {
    let fleet = Fleet::start("ip-rate").await;
    let proxies = per_ip_fleet(&fleet, "fleet").await;
    let (admitted, refused) = round_robin(&proxies).await;
    assert_eq!(admitted.len(), BURST, "admitted across the fleet");
    assert_rate_refusals(&proxies, &refused, "rate_limited").await;
    assert_eq!(fleet.backend.requests().len(), BURST);
}

#[tokio::test]
async fn local_rates_count_per_instance_even_in_a_fleet() {
    // The control: the same fleets with `scope: local` admit each instance's burst.
    let fleet = Fleet::start("local-rates").await;
    for per_ip in [false, true] {
        let proxies = if per_ip {
            per_ip_fleet(&fleet, "local").await
        } else {
            route_rate_fleet(&fleet, "local").await
        };
        let (admitted, refused) = round_robin(&proxies).await;
        assert!(admitted.len() > BURST, "only {} admitted", admitted.len());
        assert_eq!(admitted.len(), FIRED, "refused: {refused:?}");
    }
}

// ---- per_subject: refuse ----

#[tokio::test]
async fn a_subject_holds_at_most_max_sessions_across_the_fleet() {
    let fleet = Fleet::start("subject-refuse").await;
    let gw = fleet.chats(3, &per_subject(2, "refuse")).await;
    let alice = fleet.token("alice");
    let first = admitted(&gw[0], &alice, "alice on gw-1").await;
    let _second = admitted(&gw[1], &alice, "alice on gw-2").await;
    let full = "subject_sessions_full";
    refused(&gw[2], CHAT, Some(&alice), 429, full).await;
    assert_eq!(
        fleet.backend.requests().len(),
        2,
        "the refusal reached the backend"
    );
    // Another subject is not affected.
    let _bob = admitted(&gw[2], &fleet.token("bob"), "bob on gw-3").await;

    // A closed session frees its fleet slot at once.
    close_ws(first).await;
    let limit = Duration::from_secs(2);
    let _third = admitted_within(gw[2].addr(), &alice, limit, "alice after a close").await;
    refused(&gw[0], CHAT, Some(&alice), 429, full).await;
}

#[tokio::test]
async fn a_local_subject_cap_counts_per_instance_even_in_a_fleet() {
    let fleet = Fleet::start("subject-local").await;
    let local = "per_subject: { max_sessions: 2, on_exceed: refuse, scope: local }";
    let gw = fleet.chats(2, local).await;
    let alice = fleet.token("alice");
    let _a1 = admitted(&gw[0], &alice, "alice 1 on gw-1").await;
    let _a2 = admitted(&gw[0], &alice, "alice 2 on gw-1").await;
    refused(&gw[0], CHAT, Some(&alice), 429, "subject_sessions_full").await;
    let _b1 = admitted(&gw[1], &alice, "alice 3 on gw-2").await;
}
