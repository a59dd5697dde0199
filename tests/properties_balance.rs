//! Properties of rendezvous hashing (`balance: { hash: ... }`, `upstream::balance`) over generated
//! pools and keys: a backend is known by its URL, not its place in the list; removing one backend
//! (from the file, or only marking it unusable) moves only the keys it held; adding one moves keys
//! only onto it; each backend's share of keys follows its weight; and every spelling of one key
//! (percent-encoded query, quoted cookie, IPv4 or IPv4-mapped IPv6) hashes to the same bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use wsgate::config::{Balance, HashKey};
use wsgate::upstream::balance::{Balancer, hash_key};
use wsgate::wire::{Head, normalise};

/// A pool as the config file lists it: distinct URLs, weights from 1.
#[derive(Debug, Clone)]
struct Pool(Vec<(String, u32)>);

impl Pool {
    fn balancer(&self) -> Balancer {
        let backends: Vec<(&str, u32)> = self.0.iter().map(|(u, w)| (u.as_str(), *w)).collect();
        Balancer::new(&Balance::Hash(HashKey::Path), &backends)
    }

    /// The URL each key lands on, among the backends `usable` allows.
    fn placement(&self, keys: &[String], usable: impl Fn(usize) -> bool + Copy) -> Vec<String> {
        let b = self.balancer();
        keys.iter()
            .map(|k| {
                let i = b.pick(usable, |_| 0, Some(k.as_bytes()));
                self.0[i.expect("a usable backend")].0.clone()
            })
            .collect()
    }

    fn without(&self, gone: usize) -> Pool {
        let mut rest = self.0.clone();
        rest.remove(gone);
        Pool(rest)
    }
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        "ws://10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[1-9][0-9]{3}",
        "wss://[a-z]{1,8}\\.internal(:[1-9][0-9]{2,4})?",
    ]
}

/// `n` backends with distinct URLs and weights in `weights`.
fn pool(
    n: std::ops::Range<usize>,
    weights: std::ops::RangeInclusive<u32>,
) -> impl Strategy<Value = Pool> {
    prop::collection::btree_set(url(), n)
        .prop_flat_map(move |urls| {
            let n = urls.len();
            let urls: Vec<String> = urls.into_iter().collect();
            (
                Just(urls).prop_shuffle(),
                prop::collection::vec(weights.clone(), n),
            )
        })
        .prop_map(|(urls, weights)| Pool(urls.into_iter().zip(weights).collect()))
}

/// `n` keys sharing a generated prefix, as a real key space would (`room-1`, `room-2`, ...).
fn keys(n: usize) -> impl Strategy<Value = Vec<String>> {
    "[a-zA-Z0-9_/=-]{0,12}".prop_map(move |prefix| (0..n).map(|i| format!("{prefix}{i}")).collect())
}

fn head(fields: &[(&str, &str)]) -> Head {
    let mut request = hyper::Request::builder().uri("/");
    for (name, value) in fields {
        request = request.header(*name, *value);
    }
    request.body(()).expect("valid test fields").into_parts().0
}

/// `text` with every byte written either as itself or `%XX` in either case, as `choice` says.
fn percent_encode(text: &str, choice: &[u8]) -> String {
    text.bytes()
        .zip(choice.iter().cycle())
        .map(|(b, &c)| match c % 3 {
            0 if b.is_ascii_alphanumeric() => (b as char).to_string(),
            1 => format!("%{b:02X}"),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_backend_is_known_by_its_url_not_its_position(
        (p, shuffled) in pool(2..9, 1..=6)
            .prop_flat_map(|p| (Just(p.clone()), Just(p.0).prop_shuffle())),
        keys in keys(1000),
    ) {
        prop_assert_eq!(p.placement(&keys, |_| true), Pool(shuffled).placement(&keys, |_| true));
    }

    #[test]
    fn removing_a_backend_moves_only_its_keys(
        p in pool(2..9, 1..=6),
        gone in any::<prop::sample::Index>(),
        keys in keys(2000),
    ) {
        let gone = gone.index(p.0.len());
        let gone_url = &p.0[gone].0;
        let before = p.placement(&keys, |_| true);
        let after = p.without(gone).placement(&keys, |_| true);
        for ((key, b), a) in keys.iter().zip(&before).zip(&after) {
            if b != gone_url {
                prop_assert_eq!(a, b, "{} moved though its backend stayed", key);
            }
        }
        // A backend that is down (or already tried) is skipped exactly as if it had left.
        prop_assert_eq!(p.placement(&keys, |i| i != gone), after);
    }

    #[test]
    fn adding_a_backend_moves_keys_only_onto_it(
        p in pool(1..8, 1..=6),
        new_url in url(),
        new_weight in 1u32..=6,
        at in any::<prop::sample::Index>(),
        keys in keys(2000),
    ) {
        prop_assume!(p.0.iter().all(|(u, _)| *u != new_url));
        let before = p.placement(&keys, |_| true);
        let mut grown = p.0.clone();
        grown.insert(at.index(grown.len() + 1), (new_url.clone(), new_weight));
        let after = Pool(grown).placement(&keys, |_| true);
        for ((key, b), a) in keys.iter().zip(&before).zip(&after) {
            prop_assert!(
                a == b || *a == new_url,
                "{} moved from {} to {}, not to the new {}", key, b, a, new_url
            );
        }
    }
}

proptest! {
    // 40,000 keys per case: with every expected share at least 1/21 (2 to 5 backends, weights 1
    // to 5), a ±15 % band is over 6.5 standard deviations wide: a correct balancer never fails.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn each_backend_gets_its_weights_share_of_keys(
        p in pool(2..6, 1..=5),
        keys in keys(40_000),
    ) {
        let total: u32 = p.0.iter().map(|(_, w)| w).sum();
        let placed = p.placement(&keys, |_| true);
        for (url, weight) in &p.0 {
            let got = placed.iter().filter(|u| *u == url).count() as f64;
            let want = keys.len() as f64 * f64::from(*weight) / f64::from(total);
            prop_assert!(
                (got - want).abs() <= 0.15 * want,
                "{} (weight {} of {}): {} keys, expected {:.0} ± 15 %",
                url, weight, total, got, want
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn a_query_key_reads_the_same_however_it_is_percent_encoded(
        value in "[a-zA-Z0-9 ./é_-]{1,12}",
        spelling in prop::collection::vec(any::<u8>(), 1..12),
        before in prop::option::of("[a-h]{1,4}=[a-z0-9]{0,4}"),
    ) {
        let key = HashKey::Query("room".into());
        let plain = format!("/chat?room={}", percent_encode(&value, &[1]));
        let plain = normalise(&plain).expect("valid target");
        let mut query = String::from("/chat?");
        if let Some(b) = before {
            query.push_str(&b);
            query.push('&');
        }
        query.push_str(&format!("room={}&room=other", percent_encode(&value, &spelling)));
        let spelled = normalise(&query).expect("valid target");
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let want = hash_key(&key, &head(&[]), &plain, ip, &[]);
        prop_assert_eq!(want.as_deref(), Some(value.as_bytes()));
        prop_assert_eq!(hash_key(&key, &head(&[]), &spelled, ip, &[]), want);
    }

    #[test]
    fn a_cookie_key_reads_the_same_quoted_or_not(
        value in "[a-zA-Z0-9_-]{1,16}",
        quoted in any::<bool>(),
        spaces in "[ ]{0,2}",
        others in prop::collection::vec("[a-h]{1,4}=[a-z0-9]{1,4}", 0..3),
        second_line in any::<bool>(),
    ) {
        let key = HashKey::Cookie("sid".into());
        let target = normalise("/chat").expect("valid target");
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ours = if quoted {
            format!("sid={spaces}\"{value}\"")
        } else {
            format!("sid={spaces}{value}")
        };
        let mut pairs = others.clone();
        let line = if second_line {
            vec![("cookie", pairs.join("; ")), ("cookie", format!("{ours}; sid=later"))]
        } else {
            pairs.push(format!("{spaces}{ours}"));
            pairs.push("sid=later".into());
            vec![("cookie", pairs.join(";"))]
        };
        let fields: Vec<(&str, &str)> = line
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        prop_assert_eq!(hash_key(&key, &head(&fields), &target, ip, &[]), Some(value.into_bytes()));
    }

    #[test]
    fn a_client_ip_key_is_the_same_for_ipv4_and_its_mapped_ipv6(v4 in any::<u32>()) {
        let v4 = Ipv4Addr::from(v4);
        let mapped: Ipv6Addr = v4.to_ipv6_mapped();
        let target = normalise("/").expect("valid target");
        let of = |ip: IpAddr| hash_key(&HashKey::ClientIp, &head(&[]), &target, ip, &[]);
        prop_assert_eq!(of(IpAddr::V4(v4)), of(IpAddr::V6(mapped)));
        // ...and different clients do not collide.
        let next = Ipv4Addr::from(u32::from(v4).wrapping_add(1));
        prop_assert_ne!(of(IpAddr::V4(v4)), of(IpAddr::V4(next)));
    }
}
