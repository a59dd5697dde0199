//! Picking a backend among 100, in every `balance:` mode. Issue 5 asks for well under 1 µs each:
//! a pick runs once per new tunnel (and once per failover attempt), on the accept path.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use wsgate::config::{Balance, HashKey};
use wsgate::upstream::balance::Balancer;

const BACKENDS: usize = 100;

fn balance(c: &mut Criterion) {
    let urls: Vec<String> = (0..BACKENDS)
        .map(|i| format!("ws://10.0.{}.{}:8080", i / 256, i % 256))
        .collect();
    let mixed: Vec<(&str, u32)> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| (u.as_str(), 1 + (i % 3) as u32))
        .collect();
    let equal: Vec<(&str, u32)> = urls.iter().map(|u| (u.as_str(), 1)).collect();
    // Live tunnels as the pool keeps them: atomics, read with Relaxed, spread 0..50.
    let live: Vec<AtomicU32> = (0..BACKENDS)
        .map(|i| AtomicU32::new((i as u32 * 37) % 50))
        .collect();
    let live = |i: usize| live.get(i).map_or(u32::MAX, |l| l.load(Ordering::Relaxed));
    // One backend down, as the health state would say.
    let usable = |i: usize| i != 13;
    let keys: Vec<String> = (0..64).map(|k| format!("room-{k}")).collect();
    let next = AtomicUsize::new(0);
    let key = || {
        let k = next.fetch_add(1, Ordering::Relaxed) % keys.len();
        keys.get(k).map(String::as_bytes)
    };

    let hash = Balance::Hash(HashKey::Path);
    let cases = [
        ("round_robin (weights 1..3)", Balance::RoundRobin, &mixed),
        (
            "least_connections (weights 1..3)",
            Balance::LeastConnections,
            &mixed,
        ),
        ("random_two (weights 1..3)", Balance::RandomTwo, &mixed),
        ("hash (weights 1..3)", hash.clone(), &mixed),
        ("hash (equal weights)", hash.clone(), &equal),
    ];
    let mut group = c.benchmark_group("pick among 100 backends");
    for (name, mode, backends) in cases {
        let balancer = Balancer::new(&mode, backends);
        group.bench_function(name, |b| {
            b.iter(|| black_box(balancer.pick(usable, live, black_box(key()))))
        });
    }
    let fallback = Balancer::new(&hash, &mixed);
    group.bench_function("hash, key missing (least connections)", |b| {
        b.iter(|| black_box(fallback.pick(usable, live, black_box(None))))
    });
    group.finish();
}

criterion_group!(benches, balance);
criterion_main!(benches);
