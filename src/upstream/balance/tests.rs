//! Unit tests of `upstream::balance`: distributions over many picks, and the hash key of a request.

use std::collections::HashMap;

use super::*;

fn urls(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ws://10.0.0.{i}:8080")).collect()
}

fn balancer(balance: Balance, urls: &[String], weights: &[u32]) -> Balancer {
    let backends: Vec<(&str, u32)> = urls
        .iter()
        .zip(weights)
        .map(|(u, &w)| (u.as_str(), w))
        .collect();
    Balancer::new(&balance, &backends)
}

fn hashing() -> Balance {
    Balance::Hash(HashKey::Path)
}

const ALL: fn(usize) -> bool = |_| true;
const IDLE: fn(usize) -> u32 = |_| 0;

fn counts(picks: impl IntoIterator<Item = usize>, n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for i in picks {
        c[i] += 1;
    }
    c
}

#[test]
fn round_robin_weights_are_exact_and_smooth() {
    let b = balancer(Balance::RoundRobin, &urls(3), &[1, 2, 3]);
    let picks: Vec<usize> = (0..600)
        .map(|_| b.pick(ALL, IDLE, None).expect("usable"))
        .collect();
    assert_eq!(counts(picks.iter().copied(), 3), [100, 200, 300]);
    // Smooth: every cycle of 6 holds the exact proportions, and no backend runs twice in a row
    // more than once per cycle.
    for cycle in picks.chunks(6) {
        assert_eq!(counts(cycle.iter().copied(), 3), [1, 2, 3], "{picks:?}");
    }
    let longest_run = picks
        .chunk_by(|a, b| a == b)
        .map(<[usize]>::len)
        .max()
        .unwrap_or(0);
    assert!(longest_run <= 2, "{picks:?}");
}

#[test]
fn round_robin_skips_unusable_and_keeps_proportions() {
    let b = balancer(Balance::RoundRobin, &urls(3), &[1, 2, 3]);
    // Warm up, so the skipped backend's frozen state is not trivially zero.
    for _ in 0..7 {
        b.pick(ALL, IDLE, None);
    }
    let without_1 = |i: usize| i != 1;
    let picks: Vec<usize> = (0..400)
        .map(|_| b.pick(without_1, IDLE, None).expect("usable"))
        .collect();
    let c = counts(picks, 3);
    assert_eq!(c[1], 0);
    assert!(c[0].abs_diff(100) <= 1 && c[2].abs_diff(300) <= 1, "{c:?}");
    // Back in: the full proportions return at once (within one cycle of slack).
    let c = counts(
        (0..600).map(|_| b.pick(ALL, IDLE, None).expect("usable")),
        3,
    );
    for (got, want) in c.iter().zip([100, 200, 300]) {
        assert!(got.abs_diff(want) <= 3, "{c:?}");
    }
    assert_eq!(b.pick(|_| false, IDLE, None), None);
}

#[test]
fn least_connections_picks_the_least_loaded_by_weight() {
    let b = balancer(Balance::LeastConnections, &urls(3), &[1, 1, 1]);
    let live = [5, 2, 9];
    for _ in 0..100 {
        assert_eq!(b.pick(ALL, |i| live[i], None), Some(1));
    }
    assert_eq!(b.pick(|i| i != 1, |i| live[i], None), Some(0));

    // (2 + 1) / 1 = 3 against (5 + 1) / 3 = 2: the heavier backend takes more tunnels.
    let b = balancer(Balance::LeastConnections, &urls(2), &[1, 3]);
    assert_eq!(b.pick(ALL, |i| [2, 5][i], None), Some(1));

    // Tunnels held open: the pool fills in proportion to the weights.
    let b = balancer(Balance::LeastConnections, &urls(3), &[1, 2, 3]);
    let mut held = [0u32; 3];
    for _ in 0..600 {
        let i = b.pick(ALL, |i| held[i], None).expect("usable");
        held[i] += 1;
    }
    for (got, want) in held.iter().zip([100, 200, 300]) {
        assert!(got.abs_diff(want) <= 1, "{held:?}");
    }
}

#[test]
fn least_connections_spreads_ties() {
    let b = balancer(Balance::LeastConnections, &urls(4), &[1; 4]);
    let c = counts(
        (0..4000).map(|_| b.pick(ALL, |_| 7, None).expect("usable")),
        4,
    );
    assert!(c.iter().all(|&n| n > 700), "{c:?}");
}

#[test]
fn random_two_never_picks_the_most_loaded() {
    let b = balancer(Balance::RandomTwo, &urls(3), &[1; 3]);
    let live = [100, 0, 50];
    let c = counts(
        (0..3000).map(|_| b.pick(ALL, |i| live[i], None).expect("usable")),
        3,
    );
    assert_eq!(c[0], 0, "{c:?}");
    // The lightest wins whenever drawn: in 2 of the 3 pairs.
    assert!(c[1] > 1700 && c[2] > 700, "{c:?}");

    assert_eq!(b.pick(|i| i == 0, |i| live[i], None), Some(0));
    assert_eq!(b.pick(|_| false, |i| live[i], None), None);
    let one = balancer(Balance::RandomTwo, &urls(1), &[1]);
    assert_eq!(one.pick(ALL, IDLE, None), Some(0));
}

#[test]
fn hash_is_sticky_across_calls_and_instances() {
    let weights = [1, 2, 1, 3, 1];
    let a = balancer(hashing(), &urls(5), &weights);
    let b = balancer(hashing(), &urls(5), &weights);
    for k in 0..200 {
        let key = format!("room-{k}");
        let first = a.pick(ALL, IDLE, Some(key.as_bytes()));
        for _ in 0..20 {
            assert_eq!(a.pick(ALL, |i| i as u32 * 7, Some(key.as_bytes())), first);
        }
        assert_eq!(b.pick(ALL, IDLE, Some(key.as_bytes())), first);
    }
}

#[test]
fn hash_answers_are_pinned_across_builds() {
    // If this fails, the seed, the key digest or the score changed: a rolling upgrade would
    // send every key elsewhere than the old instances do. Do not update it lightly.
    let equal = balancer(hashing(), &urls(5), &[1; 5]);
    let weighted = balancer(hashing(), &urls(5), &[1, 2, 1, 3, 1]);
    let pick = |b: &Balancer, k: &str| b.pick(ALL, IDLE, Some(k.as_bytes()));
    let got: Vec<_> = ["room-1", "room-2", "room-3", "alice", "bob"]
        .iter()
        .map(|k| (pick(&equal, k), pick(&weighted, k)))
        .collect();
    assert_eq!(got, PINNED);
}

const PINNED: [(Option<usize>, Option<usize>); 5] = [
    (Some(2), Some(1)),
    (Some(1), Some(1)),
    (Some(4), Some(4)),
    (Some(0), Some(0)),
    (Some(4), Some(4)),
];

/// Where each of `keys` lands, by URL.
fn placement(b: &Balancer, urls: &[String], usable: impl Fn(usize) -> bool + Copy) -> Vec<String> {
    (0..10_000)
        .map(|k| {
            let key = format!("user-{k}");
            let i = b.pick(usable, IDLE, Some(key.as_bytes())).expect("usable");
            urls[i].clone()
        })
        .collect()
}

#[test]
fn hash_removing_a_backend_moves_only_its_keys() {
    for weights in [[1u32; 5], [1, 2, 3, 2, 1]] {
        let all = urls(5);
        let before = placement(&balancer(hashing(), &all, &weights), &all, ALL);
        let gone = &all[2];
        let (rest, rest_w): (Vec<String>, Vec<u32>) = all
            .iter()
            .zip(weights)
            .filter(|(u, _)| *u != gone)
            .map(|(u, w)| (u.clone(), w))
            .unzip();
        let after = placement(&balancer(hashing(), &rest, &rest_w), &rest, ALL);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if b == gone {
                moved += 1;
            } else {
                assert_eq!(b, a, "a key not on the removed backend moved");
            }
        }
        let share = f64::from(weights[2]) / f64::from(weights.iter().sum::<u32>());
        let expected = 10_000.0 * share;
        assert!(
            (f64::from(moved) - expected).abs() < 0.1 * expected,
            "{moved}"
        );
        // The same when the backend is only unusable (down, or tried in this failover round).
        let b = balancer(hashing(), &all, &weights);
        assert_eq!(after, placement(&b, &all, |i| i != 2));
    }
}

#[test]
fn hash_distribution_follows_weights() {
    let weights = [1, 2, 3, 4];
    let all = urls(4);
    let b = balancer(hashing(), &all, &weights);
    let mut by_url: HashMap<String, usize> = HashMap::new();
    for url in placement(&b, &all, ALL) {
        *by_url.entry(url).or_default() += 1;
    }
    for (url, w) in all.iter().zip(weights) {
        let share = by_url.get(url).copied().unwrap_or(0) as f64 / 10_000.0;
        assert!((share - f64::from(w) / 10.0).abs() < 0.02, "{url}: {share}");
    }
}

/// The textbook form: every usable backend scored `-weight / ln(u)`, the highest wins.
fn rendezvous_by_the_book(backends: &[(&str, u32)], key: &[u8]) -> Option<usize> {
    let digest = xxh3_64_with_seed(key, SEED).to_le_bytes();
    let score = |i: usize| {
        let (url, weight) = backends[i];
        let draw = xxh3_64_with_seed(&digest, SEED ^ xxh3_64_with_seed(url.as_bytes(), SEED));
        let u = ((draw >> 12) as f64 + 0.5) / (1u64 << 52) as f64;
        -f64::from(weight) / u.ln()
    };
    (0..backends.len()).max_by(|&a, &b| score(a).total_cmp(&score(b)))
}

#[test]
fn hash_by_weight_class_equals_the_textbook_score() {
    let all = urls(40);
    // 3 distinct weights (classes on the stack), then 40 (classes on the heap).
    for weights in [
        (0..40).map(|i| 1 + i % 3).collect::<Vec<u32>>(),
        (1..=40).collect(),
    ] {
        let backends: Vec<(&str, u32)> = all.iter().map(String::as_str).zip(weights).collect();
        let b = Balancer::new(&hashing(), &backends);
        for k in 0..2000 {
            let key = format!("k{k}");
            let want = rendezvous_by_the_book(&backends, key.as_bytes());
            assert_eq!(b.pick(ALL, IDLE, Some(key.as_bytes())), want, "{key}");
        }
    }
}

#[test]
fn hash_without_a_key_falls_back_to_least_connections() {
    let b = balancer(hashing(), &urls(3), &[1; 3]);
    for _ in 0..50 {
        assert_eq!(b.pick(ALL, |i| [3, 0, 5][i], None), Some(1));
    }
    assert_eq!(b.pick(|_| false, IDLE, Some(b"k")), None);
}

#[test]
fn every_mode_handles_an_empty_pool() {
    for mode in [
        Balance::RoundRobin,
        Balance::LeastConnections,
        Balance::RandomTwo,
        hashing(),
    ] {
        let b = Balancer::new(&mode, &[]);
        assert_eq!(b.pick(ALL, IDLE, Some(b"k")), None);
        assert_eq!(b.pick(ALL, IDLE, None), None);
    }
}

#[test]
fn ln_matches_libm() {
    let mut x = 1e-15;
    while x < 1.0 {
        let (ours, std) = (ln(x), x.ln());
        assert!(((ours - std) / std).abs() < 1e-13, "{x}: {ours} {std}");
        x *= 1.0137;
    }
    assert!(ln(0.999_999_999_999).abs() < 2e-12);
}

fn head(fields: &[(&str, &str)]) -> Head {
    crate::wire::test_head("/", fields)
}

fn key_of(
    key: HashKey,
    fields: &[(&str, &str)],
    query: &str,
    protocols: &[&str],
) -> Option<Vec<u8>> {
    let target = Target {
        path: "/chat/room".into(),
        query: query.into(),
    };
    let protocols: Vec<String> = protocols.iter().map(|p| (*p).into()).collect();
    let ip = "192.0.2.7".parse().expect("literal");
    hash_key(&key, &head(fields), &target, ip, &protocols)
}

#[test]
fn hash_key_of_each_kind() {
    let h = |n: &str| HashKey::Header(n.into());
    let two = [("X-Room", "a"), ("x-room", "b")];
    assert_eq!(key_of(h("x-room"), &two, "", &[]), Some(b"a".to_vec()));
    assert_eq!(key_of(h("x-room"), &[], "", &[]), None);
    assert_eq!(key_of(h("x-room"), &[("X-Room", "")], "", &[]), None);

    let c = |n: &str| HashKey::Cookie(n.into());
    let cookies = [
        ("Cookie", "theme=dark; sid"),
        ("Cookie", "sid=\"s1\"; sid=s2"),
    ];
    assert_eq!(key_of(c("sid"), &cookies, "", &[]), Some(b"s1".to_vec()));
    assert_eq!(
        key_of(c("theme"), &cookies, "", &[]),
        Some(b"dark".to_vec())
    );
    assert_eq!(key_of(c("SID"), &cookies, "", &[]), None);

    let q = |n: &str| HashKey::Query(n.into());
    let query = "?a=1&room%5Fid=caf%C3%A9%2F1&room_id=2&bad=%zz";
    assert_eq!(key_of(q("room_id"), &[], query, &[]), Some("café/1".into()));
    assert_eq!(key_of(q("bad"), &[], query, &[]), Some(b"%zz".to_vec()));
    assert_eq!(key_of(q("room"), &[], query, &[]), None);
    assert_eq!(key_of(q("a"), &[], "?a", &[]), None);

    assert_eq!(
        key_of(HashKey::Path, &[], "?x=1", &[]),
        Some(b"/chat/room".to_vec())
    );

    let v4 = key_of(HashKey::ClientIp, &[], "", &[]).expect("always present");
    let mapped: std::net::Ipv6Addr = "::ffff:192.0.2.7".parse().expect("literal");
    assert_eq!(v4, mapped.octets());

    let s = HashKey::Subprotocol;
    assert_eq!(
        key_of(s.clone(), &[], "", &["chat.v2", "chat"]),
        Some(b"chat.v2".to_vec())
    );
    assert_eq!(key_of(s, &[], "", &[]), None);
}

#[test]
fn balancer_is_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Balancer>();
}
