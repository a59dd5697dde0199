//! Unit tests of `admit::limits`.

use super::*;
use governor::clock::FakeRelativeClock;

const SEC: Duration = Duration::from_secs(1);

fn rate(count: u32, burst: u32) -> Rate {
    Rate {
        count,
        per: SEC,
        burst,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn per_ip(
    rate: Option<Rate>,
    max: Option<u32>,
    cap: usize,
) -> (PerIpLimits<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let cfg = PerIp {
        rate,
        max_connections: max,
        scope: Default::default(),
    };
    (PerIpLimits::with_clock(&cfg, cap, clock.clone()), clock)
}

#[test]
fn burst_then_refusal_with_retry_after() {
    let (limits, clock) = per_ip(Some(rate(2, 4)), None, 100);
    for _ in 0..4 {
        assert_eq!(limits.check_rate(ip("192.0.2.1")), Ok(()));
    }
    // 2/s: one cell every 500 ms; the bucket is full until then.
    assert_eq!(
        limits.check_rate(ip("192.0.2.1")),
        Err(Duration::from_millis(500))
    );
    assert_eq!(
        limits.check_rate(ip("192.0.2.2")),
        Ok(()),
        "other clients are not affected"
    );
    clock.advance(Duration::from_millis(200));
    assert_eq!(
        limits.check_rate(ip("192.0.2.1")),
        Err(Duration::from_millis(300))
    );
    clock.advance(Duration::from_millis(300));
    assert_eq!(limits.check_rate(ip("192.0.2.1")), Ok(()));
    assert_eq!(retry_after_secs(Duration::from_millis(300)), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
}

#[test]
fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
    let (limits, _clock) = per_ip(Some(rate(1, 1)), None, 100);
    assert_eq!(limits.check_rate(ip("2001:db8:1:2::1")), Ok(()));
    assert!(
        limits.check_rate(ip("2001:db8:1:2:ffff::9")).is_err(),
        "same /64"
    );
    assert_eq!(limits.check_rate(ip("2001:db8:1:3::1")), Ok(()), "next /64");
    assert_eq!(limits.check_rate(ip("198.51.100.1")), Ok(()));
    assert!(
        limits.check_rate(ip("::ffff:198.51.100.1")).is_err(),
        "mapped = IPv4"
    );
    assert_eq!(
        limits.check_rate(ip("198.51.100.2")),
        Ok(()),
        "IPv4 keyed by address"
    );
    assert_eq!(limits.rate_keys(), 4);
    assert_eq!(
        IpKey::from(ip("::ffff:1.2.3.4")),
        IpKey::from(ip("1.2.3.4"))
    );
}

#[test]
fn per_ip_connections_are_capped_and_released_on_drop() {
    let (limits, _clock) = per_ip(None, Some(2), 100);
    let a = limits
        .try_connection(ip("192.0.2.1"))
        .expect("first")
        .expect("capped");
    let b = limits
        .try_connection(ip("192.0.2.1"))
        .expect("second")
        .expect("capped");
    assert_eq!(
        limits.try_connection(ip("::ffff:192.0.2.1")).err(),
        Some(())
    );
    let other = limits
        .try_connection(ip("192.0.2.2"))
        .expect("other client");
    assert_eq!(limits.conn_keys(), 2);
    drop(a);
    let c = limits.try_connection(ip("192.0.2.1")).expect("slot back");
    drop((b, c, other));
    assert_eq!(limits.conn_keys(), 0, "entries leave the map at zero");
    let (uncapped, _clock) = per_ip(None, None, 100);
    assert!(matches!(uncapped.try_connection(ip("192.0.2.1")), Ok(None)));
}

#[test]
fn global_and_route_permits_count_back_to_zero() {
    let global = GlobalCap::new(2);
    let permits: Vec<Permit> = (0..2).filter_map(|_| global.try_acquire()).collect();
    assert_eq!(global.open(), 2);
    assert!(global.try_acquire().is_none());
    drop(permits);
    assert_eq!(global.open(), 0);

    let route = RouteLimits::with_clock(Some(rate(1, 2)), Some(1), FakeRelativeClock::default());
    assert_eq!(route.check_rate(), Ok(()));
    assert_eq!(route.check_rate(), Ok(()));
    assert_eq!(route.check_rate(), Err(SEC));
    let p = route.try_connection().expect("slot");
    assert_eq!(route.try_connection().err(), Some(()));
    let reloaded = route.reconfigured(Some(rate(1, 2)), Some(5));
    assert_eq!(reloaded.open(), 1, "a reload keeps counting open tunnels");
    assert_eq!(
        reloaded.check_rate(),
        Err(SEC),
        "unchanged rate keeps its state"
    );
    drop(p);
    assert_eq!((route.open(), reloaded.open()), (0, 0));

    let uncapped = RouteLimits::new(None, None);
    let p = uncapped.try_connection().expect("no cap");
    assert!(p.is_some());
    assert_eq!(uncapped.open(), 1);
}

#[test]
fn per_ip_reload_shares_connection_counts() {
    let (limits, _clock) = per_ip(None, Some(1), 100);
    let p = limits.try_connection(ip("192.0.2.1")).expect("slot");
    let reloaded = limits.reconfigured(&PerIp {
        rate: None,
        max_connections: Some(1),
        scope: Default::default(),
    });
    assert_eq!(reloaded.try_connection(ip("192.0.2.1")).err(), Some(()));
    drop(p);
    assert!(reloaded.try_connection(ip("192.0.2.1")).is_ok());
}

#[test]
fn above_the_key_cap_new_clients_share_the_coarse_limiter() {
    let (limits, clock) = per_ip(Some(rate(1, 1)), None, 2);
    assert_eq!(limits.check_rate(ip("192.0.2.1")), Ok(()));
    assert_eq!(limits.check_rate(ip("192.0.2.2")), Ok(()));
    // The overflow limiter has OVERFLOW_FACTOR cells, shared by every new address.
    for i in 0..OVERFLOW_FACTOR {
        let addr = IpAddr::from([203, 0, (i / 256) as u8, (i % 256) as u8]);
        assert_eq!(limits.check_rate(addr), Ok(()), "{addr}");
    }
    assert!(
        limits.check_rate(ip("198.51.100.99")).is_err(),
        "a fresh address shares the refusal"
    );
    assert_eq!(limits.rate_keys(), 2, "no keys added above the cap");
    // Once the old keys are stale, the cap check cleans them at once and keys again.
    clock.advance(3 * SEC);
    assert_eq!(limits.check_rate(ip("198.51.100.99")), Ok(()));
    assert_eq!(limits.rate_keys(), 1);
}

#[test]
fn maintain_forgets_stale_keys_and_shrinks() {
    let (limits, clock) = per_ip(Some(rate(10, 10)), Some(5), 100_000);
    let permits: Vec<_> = (0..1000u32)
        .map(|i| {
            let addr = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            assert_eq!(limits.check_rate(addr), Ok(()));
            limits.try_connection(addr).expect("slot")
        })
        .collect();
    assert_eq!((limits.rate_keys(), limits.conn_keys()), (1000, 1000));
    limits.maintain();
    assert_eq!(limits.rate_keys(), 1000, "recent keys stay");
    drop(permits);
    clock.advance(2 * SEC);
    limits.maintain();
    assert_eq!((limits.rate_keys(), limits.conn_keys()), (0, 0));
    assert!(
        limits.conns.lock().capacity() < 100,
        "connection map shrank"
    );
}
