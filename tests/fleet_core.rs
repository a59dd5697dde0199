//! The fleet core against a real `redis-server`, without the proxy around it: two [`Fleet`]s
//! (two instances) on one Redis. Rates answer like governor (burst, then one per interval,
//! with the wait), caps count across instances and free at once, `close_oldest` reaches the
//! instance that holds the oldest session, lost data is registered again by the heartbeat,
//! and a Redis that is gone is decided by `on_error` within the call budget.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use support::redis::{RedisServer, Reply};
use wsgate::cluster::Fleet;
use wsgate::cluster::checks::{Pre, Refused};
use wsgate::config::policy::Rate;
use wsgate::config::{ClusterConfig, OnError};
use wsgate::metrics::Metrics;
use wsgate::session::{Info, Reason, Registry};

fn cluster(redis: &RedisServer, prefix: &str, instance: &str, on_error: OnError) -> ClusterConfig {
    ClusterConfig {
        redis: redis.url(),
        ca: None,
        prefix: prefix.to_owned(),
        instance: instance.to_owned(),
        timeout: Duration::from_millis(200),
        on_error,
    }
}

fn fleet(cfg: &ClusterConfig) -> Arc<Fleet> {
    let f = Arc::new(Fleet::new(
        Arc::new(Metrics::new()),
        Arc::new(Registry::default()),
    ));
    f.configure(Some(cfg)).expect("link");
    f
}

fn ip() -> IpAddr {
    IpAddr::from([192, 0, 2, 7])
}

fn session(reg: &Arc<Registry>, subject: &str) -> wsgate::session::Entry {
    reg.register(Info {
        subject: Some(subject.into()),
        client: ip(),
        route: "*/ws".into(),
        backend: "ws://127.0.0.1:1".into(),
        started: SystemTime::now(),
        expires_at: None,
        key_id: None,
        protocol: wsgate::session::Protocol::H1,
    })
}

#[tokio::test]
async fn a_fleet_rate_admits_the_burst_across_instances_then_says_how_long_to_wait() {
    let redis = RedisServer::start().await;
    let a = fleet(&cluster(&redis, "rate:", "gw-a", OnError::Deny));
    let b = fleet(&cluster(&redis, "rate:", "gw-b", OnError::Deny));
    let rate = Rate {
        count: 5,
        per: Duration::from_secs(60),
        burst: 5,
    };
    let pre = Pre {
        ip: ip().into(),
        ip_rate: None,
        route: "*/ws",
        route_rate: Some(rate),
        ip_cap: None,
    };
    let mut admitted = 0;
    for i in 0..12 {
        let f = if i % 2 == 0 { &a } else { &b };
        match f.admit_pre(&pre).await {
            Ok(None) => admitted += 1,
            Err(Refused::RouteRate(wait)) => {
                assert!(
                    wait > Duration::from_secs(5) && wait <= Duration::from_secs(12),
                    "{wait:?}"
                );
            }
            other => panic!("handshake {i}: {other:?}"),
        }
    }
    assert_eq!(admitted, 5, "the burst of 5 is shared by both instances");
    assert_eq!(a.metrics().fleet().decisions("route_rate", "allowed"), 3);
    let keys = redis.keys("rate:{rate*").await;
    assert_eq!(keys, vec!["rate:{rate:route:*/ws}".to_owned()], "{keys:?}");
}

#[tokio::test]
async fn an_address_cap_counts_across_instances_and_frees_a_slot_at_once() {
    let redis = RedisServer::start().await;
    let a = fleet(&cluster(&redis, "cap:", "gw-a", OnError::Deny));
    let b = fleet(&cluster(&redis, "cap:", "gw-b", OnError::Deny));
    let pre = Pre {
        ip: ip().into(),
        ip_rate: None,
        route: "*/ws",
        route_rate: None,
        ip_cap: Some(2),
    };
    let one = a.admit_pre(&pre).await.expect("first").expect("a slot");
    let _two = b.admit_pre(&pre).await.expect("second").expect("a slot");
    assert_eq!(a.admit_pre(&pre).await.unwrap_err(), Refused::IpFull);
    assert_eq!(b.admit_pre(&pre).await.unwrap_err(), Refused::IpFull);
    drop(one);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match b.admit_pre(&pre).await {
            Ok(Some(_slot)) => break,
            Err(Refused::IpFull) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("the freed slot was not given back in time: {other:?}"),
        }
    }
}

#[tokio::test]
async fn close_oldest_reaches_the_instance_that_holds_the_oldest_session() {
    let redis = RedisServer::start().await;
    let a = fleet(&cluster(&redis, "old:", "gw-a", OnError::Deny));
    let b = fleet(&cluster(&redis, "old:", "gw-b", OnError::Deny));
    // Both listen on the control channel before anything is published.
    subscribed(&redis, "old:control", 2).await;
    let s1 = session(a.sessions(), "alice");
    let _k1 = a.admit_subject("*/ws", "alice", 2, true).await.expect("1");
    let s2 = session(b.sessions(), "alice");
    let _k2 = b.admit_subject("*/ws", "alice", 2, true).await.expect("2");
    let _k3 = b
        .admit_subject("*/ws", "alice", 2, true)
        .await
        .expect("3 replaces 1");
    let asked = tokio::time::timeout(Duration::from_secs(2), s1.handle.close_requested()).await;
    assert_eq!(asked.expect("closed in time"), Reason::Replaced);
    assert_eq!(s2.handle.requested(), None, "the newer session stays");
    assert_eq!(b.metrics().fleet().decisions("subject", "replaced"), 1);
    // With refuse, a full subject is refused.
    assert_eq!(
        a.admit_subject("*/ws", "alice", 2, false)
            .await
            .unwrap_err(),
        Refused::SubjectFull
    );
}

#[tokio::test]
async fn slots_are_registered_again_after_redis_lost_its_data() {
    let mut redis = RedisServer::start().await;
    let a = fleet(&cluster(&redis, "lost:", "gw-a", OnError::Allow));
    let b = fleet(&cluster(&redis, "lost:", "gw-b", OnError::Allow));
    let _k1 = a.admit_subject("*/ws", "alice", 2, false).await.expect("1");
    let _k2 = a.admit_subject("*/ws", "alice", 2, false).await.expect("2");
    assert_eq!(
        b.admit_subject("*/ws", "alice", 2, false)
            .await
            .unwrap_err(),
        Refused::SubjectFull
    );
    redis.restart().await;
    // Within a heartbeat or two (2 s each), a's slots are back and b is refused again.
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        match b.admit_subject("*/ws", "alice", 2, false).await {
            Err(Refused::SubjectFull) => break,
            Ok(slot) => {
                drop(slot);
                assert!(
                    Instant::now() < deadline,
                    "slots were not registered again in time"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn redis_gone_is_decided_by_on_error_within_the_budget() {
    let mut redis = RedisServer::start().await;
    let allow = fleet(&cluster(&redis, "down:", "gw-a", OnError::Allow));
    let deny = fleet(&cluster(&redis, "down:", "gw-b", OnError::Deny));
    assert!(allow.admit_subject("*/ws", "bob", 5, false).await.is_ok());
    redis.stop().await;
    for _ in 0..3 {
        let started = Instant::now();
        assert!(matches!(
            allow.admit_subject("*/ws", "bob", 5, false).await,
            Ok(None)
        ));
        assert_eq!(
            deny.admit_subject("*/ws", "bob", 5, false)
                .await
                .unwrap_err(),
            Refused::Unavailable
        );
        assert!(
            started.elapsed() < Duration::from_millis(200 * 2 + 300),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(deny.metrics().fleet().decisions("subject", "error_refused") >= 3);
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while deny.admit_subject("*/ws", "bob", 5, false).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "fleet checks did not come back with Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until `n` clients listen on `channel` (every instance subscribed).
async fn subscribed(redis: &RedisServer, channel: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = redis.cmd(&["PUBSUB", "NUMSUB", channel]).await;
        if let Ok(Reply::Array(items)) = &reply
            && matches!(items.get(1), Some(Reply::Int(k)) if *k >= n)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{channel}: {reply:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn leaving_frees_the_slots_and_the_fleet_list_at_once() {
    let redis = RedisServer::start().await;
    let a = fleet(&cluster(&redis, "leave:", "gw-a", OnError::Deny));
    let b = fleet(&cluster(&redis, "leave:", "gw-b", OnError::Deny));
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.instances().await.map_or(0, |l| l.len()) < 2 {
        assert!(Instant::now() < deadline, "both instances heartbeat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = b.instances().await.expect("instances");
    assert!(
        listed
            .iter()
            .any(|i| i.name == "gw-a" && i.last_heartbeat_ms > 0)
    );
    let held = a
        .admit_subject("*/ws", "carol", 1, false)
        .await
        .expect("held");
    assert_eq!(
        b.admit_subject("*/ws", "carol", 1, false)
            .await
            .unwrap_err(),
        Refused::SubjectFull
    );
    // The session ends, then the instance shuts down: nothing waits for the 8 s expiry.
    drop(held);
    a.leave().await;
    assert!(!a.is_configured());
    let names: Vec<String> = b
        .instances()
        .await
        .expect("instances")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["gw-b".to_owned()]);
    assert!(
        b.admit_subject("*/ws", "carol", 1, false)
            .await
            .expect("free")
            .is_some()
    );
}

#[tokio::test]
async fn rediss_with_a_private_ca_verifies_the_server() {
    let ca = support::TestCa::new();
    let leaf = ca.leaf(&["localhost"]);
    let redis = RedisServer::start_tls(&leaf.cert_pem, &leaf.key_pem).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("redis-ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).expect("write CA");
    let mut cfg = cluster(&redis, "tls:", "gw-a", OnError::Deny);
    cfg.redis = redis.tls_url();
    cfg.ca = Some(ca_file);
    let a = fleet(&cfg);
    assert!(
        a.admit_subject("*/ws", "dave", 1, false)
            .await
            .expect("over TLS")
            .is_some()
    );
    assert!(redis.keys("tls:*").await.len() >= 2);
    // A CA that did not sign the server's certificate: the check cannot be made.
    let other = support::TestCa::new();
    std::fs::write(cfg.ca.as_ref().expect("ca"), other.cert_pem()).expect("write CA");
    let b = fleet(&ClusterConfig {
        instance: "gw-b".into(),
        ..cfg
    });
    assert_eq!(
        b.admit_subject("*/ws", "erin", 1, false).await.unwrap_err(),
        Refused::Unavailable
    );
}

#[tokio::test]
async fn the_slot_asked_for_never_counts_against_itself_and_a_refused_one_is_left_out() {
    let redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let (m, i) = ("race:{sub:x}:m", "race:{sub:x}:i");
    let now: i64 = redis::cmd("TIME")
        .query_async::<(i64, i64)>(&mut conn)
        .await
        .map(|(s, us)| s * 1000 + us / 1000)
        .expect("TIME");
    // A heartbeat registered gw-a/1 while its own ACQUIRE was on the way.
    let _: () = redis::cmd("ZADD")
        .arg(m)
        .arg(now)
        .arg("gw-a/1")
        .query_async(&mut conn)
        .await
        .expect("zadd");
    let _: () = redis::cmd("ZADD")
        .arg(i)
        .arg(now)
        .arg("gw-a")
        .query_async(&mut conn)
        .await
        .expect("zadd");
    let acquire = |member: &str| {
        let mut inv = wsgate::cluster::scripts::ACQUIRE.prepare_invoke();
        inv.key(m)
            .key(i)
            .arg(member)
            .arg("gw-a")
            .arg(1)
            .arg(0)
            .arg(8000)
            .arg(60000);
        inv
    };
    let (admitted, counted, _): (i64, i64, Vec<String>) = acquire("gw-a/1")
        .invoke_async(&mut conn)
        .await
        .expect("acquire");
    assert_eq!((admitted, counted), (1, 1));
    // Full now: gw-a/2 is refused and not left behind.
    let (admitted, _, _): (i64, i64, Vec<String>) = acquire("gw-a/2")
        .invoke_async(&mut conn)
        .await
        .expect("acquire");
    assert_eq!(admitted, 0);
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(m)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("zrange");
    assert_eq!(members, vec!["gw-a/1".to_owned()]);
}
