//! Which backend of a pool takes each handshake, through the real proxy: smooth weighted round
//! robin (exact, it is deterministic), least connections and random-two with tunnels held open,
//! and rendezvous hashing on a query key (sticky, spread, minimal remapping when a backend leaves,
//! and the fallback when the key is missing). Every backend greets a tunnel with its name; the
//! shared [`Visits`] log says who took what, in order.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::pools::{PoolBackend, Visits, landings, tunnel};
use support::*;

/// Two backends `a` and `b` sharing one log.
async fn two(visits: &Visits) -> (PoolBackend, PoolBackend) {
    (
        PoolBackend::start("a", visits).await,
        PoolBackend::start("b", visits).await,
    )
}

/// A plain listener routing `/echo/` to `backends` with `pool_keys`.
async fn proxy_for(backends: &[String], pool_keys: &str) -> TestProxy {
    TestProxy::builder()
        .plain()
        .pool_route(None, "/echo/", backends, pool_keys)
        .start()
        .await
}

fn weighted(url: &str, weight: u32) -> String {
    format!("{{ url: \"{url}\", weight: {weight} }}")
}

// ---- round robin ----

#[tokio::test]
async fn round_robin_weights_1_to_2_give_exactly_10_and_20_of_30_interleaved() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let proxy = proxy_for(&[weighted(&a.url(), 1), weighted(&b.url(), 2)], "").await;
    let got = landings(&proxy, "/echo/", 30).await;
    assert_eq!(got.iter().filter(|n| *n == "a").count(), 10, "{got:?}");
    assert_eq!(got.iter().filter(|n| *n == "b").count(), 20, "{got:?}");
    // Smooth: b a b, b a b, ... never a burst of one backend.
    let expected: Vec<&str> = ["b", "a", "b"].repeat(10);
    assert_eq!(got, expected);
    assert_eq!(visits.names(), expected, "the backends saw the same order");
}

#[tokio::test]
async fn round_robin_is_the_default_and_alternates_equal_weights() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let proxy = proxy_for(&[a.url(), b.url()], "").await;
    let got = landings(&proxy, "/echo/", 6).await;
    assert_eq!(got, ["a", "b"].repeat(3));
}

// ---- least connections ----

#[tokio::test]
async fn least_connections_sends_the_next_tunnel_to_the_least_loaded_backend() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let proxy = proxy_for(&[a.url(), b.url()], "balance: least_connections").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tunnel(&proxy, "/echo/").await);
    }
    assert_ne!(
        held[0].0, held[1].0,
        "the second tunnel avoids the busy backend"
    );
    let on = |held: &[(String, Ws)], name: &str| held.iter().filter(|(n, _)| n == name).count();
    let (busy, idle) = if on(&held, "a") == 2 {
        ("a", "b")
    } else {
        ("b", "a")
    };
    assert_eq!((on(&held, busy), on(&held, idle)), (2, 1));
    let fourth = tunnel(&proxy, "/echo/").await;
    assert_eq!(fourth.0, idle, "2 open on {busy}, 1 on {idle}");
    held.push(fourth);

    // Both tunnels of the busy backend end: it is now the idle one.
    held.retain(|(name, _)| name != busy);
    let stats = proxy.stats();
    eventually("the two closed tunnels to end", || {
        stats.open_tunnels() == 2
    })
    .await;
    let (fifth, _ws) = tunnel(&proxy, "/echo/").await;
    assert_eq!(fifth, busy, "0 open on {busy}, 2 on {idle}");
}

#[tokio::test]
async fn random_two_over_two_backends_picks_the_less_loaded() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let proxy = proxy_for(&[a.url(), b.url()], "balance: random_two").await;
    for _ in 0..3 {
        let first = tunnel(&proxy, "/echo/").await;
        let second = tunnel(&proxy, "/echo/").await;
        assert_ne!(
            first.0, second.0,
            "both candidates compared: the idle one wins"
        );
    }
}

// ---- hashing ----

const HASH_ROOM: &str = "balance: { hash: { query: room } }";

/// The backend that takes room `room` now.
async fn room_home(proxy: &TestProxy, room: &str) -> String {
    tunnel(proxy, &format!("/echo/?room={room}")).await.0
}

#[tokio::test]
async fn hash_on_a_query_key_keeps_one_room_on_one_backend() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let c = PoolBackend::start("c", &visits).await;
    let proxy = proxy_for(&[a.url(), b.url(), c.url()], HASH_ROOM).await;
    let mut homes = BTreeSet::new();
    for _ in 0..20 {
        homes.insert(room_home(&proxy, "x").await);
    }
    assert_eq!(homes.len(), 1, "room x moved between backends: {homes:?}");
    let seen = visits.all();
    assert_eq!(seen.len(), 20);
    assert!(
        seen.iter().all(|v| v.target == "/echo/?room=x"),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn hash_spreads_rooms_over_every_backend_and_remembers_them() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let c = PoolBackend::start("c", &visits).await;
    let proxy = proxy_for(&[a.url(), b.url(), c.url()], HASH_ROOM).await;
    let mut homes = BTreeMap::new();
    for i in 0..40 {
        homes.insert(i, room_home(&proxy, &format!("r{i}")).await);
    }
    // A backend missing from 40 uniform draws over 3 has odds of about 3 · (2/3)^40 ≈ 3e-7.
    let used: BTreeSet<&String> = homes.values().collect();
    assert_eq!(used.len(), 3, "rooms not spread: {homes:?}");
    for (i, home) in &homes {
        assert_eq!(
            &room_home(&proxy, &format!("r{i}")).await,
            home,
            "room r{i}"
        );
    }
}

#[tokio::test]
async fn hash_moves_only_the_rooms_of_a_backend_that_left() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let c = PoolBackend::start("c", &visits).await;
    // The default `retries` (min(2, backends - 1)): no key has to name it for rooms to move.
    let proxy = proxy_for(&[a.url(), b.url(), c.url()], HASH_ROOM).await;
    let mut before = BTreeMap::new();
    for i in 0..30 {
        before.insert(i, room_home(&proxy, &format!("r{i}")).await);
    }
    assert!(
        before.values().any(|h| h == "c"),
        "no room on c to move: {before:?}"
    );

    // c's port closes: its rooms fail over to their next choice, the others stay.
    c.close_port();
    for (i, home) in &before {
        let now = room_home(&proxy, &format!("r{i}")).await;
        if home == "c" {
            assert_ne!(now, "c", "room r{i}");
        } else {
            assert_eq!(&now, home, "room r{i} moved although its backend is up");
        }
        assert_eq!(
            room_home(&proxy, &format!("r{i}")).await,
            now,
            "room r{i} is sticky after the move too"
        );
    }
}

#[tokio::test]
async fn hash_without_the_key_falls_back_to_least_connections() {
    let visits = Visits::new();
    let (a, b) = two(&visits).await;
    let proxy = proxy_for(&[a.url(), b.url()], HASH_ROOM).await;
    let (first, _held) = tunnel(&proxy, "/echo/").await;
    // An empty value counts as missing: hashing it would pile such clients on one backend.
    let (second, _held2) = tunnel(&proxy, "/echo/?room=").await;
    assert_ne!(
        first, second,
        "keyless tunnels go to the least loaded backend"
    );
    let (third, _) = tunnel(&proxy, "/echo/?other=1").await;
    assert!(["a", "b"].contains(&third.as_str()));
    assert_eq!(
        visits.all().len(),
        3,
        "every keyless handshake was admitted"
    );
}
