//! Properties over generated input, in the normal suite: request-target normalisation (total,
//! idempotent, never above `/`, `%2e` read as `.`) and byte sizes (what wsgate writes in a range
//! message reads back as the same number).

use proptest::prelude::*;
use wsgate::config::units::{format_size, parse_size};
use wsgate::wire::normalise;

/// Path segments that matter to normalisation, mixed with plain ones.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just(".%2e".to_owned()),
        Just("%41".to_owned()),
        "[a-z]{1,3}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..8),
        prop::option::of("[a-z=&]{0,6}"),
    )
        .prop_map(|(segments, query)| {
            let mut t = format!("/{}", segments.join("/"));
            if let Some(q) = query {
                t.push('?');
                t.push_str(&q);
            }
            t
        })
}

/// The path as a stack of segments, `None` when it climbs above the root.
fn resolve(target: &str) -> Option<Vec<String>> {
    let path = target.split('?').next().unwrap_or_default();
    let mut stack: Vec<String> = Vec::new();
    for raw in path[1..].split('/') {
        let seg = raw.replace("%2e", ".").replace("%2E", ".");
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            _ => stack.push(raw.replace("%2e", ".").replace("%2E", ".")),
        }
    }
    Some(stack)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalising_is_idempotent_and_never_climbs_above_the_root(t in target()) {
        match (normalise(&t), resolve(&t)) {
            (Ok(n), Some(stack)) => {
                prop_assert!(n.path.starts_with('/'));
                let segments: Vec<&str> = n.path[1..].split('/').filter(|s| !s.is_empty()).collect();
                prop_assert_eq!(&segments, &stack.iter().map(String::as_str).collect::<Vec<_>>());
                prop_assert!(!n.path.contains("//"), "{}", n.path);
                prop_assert!(segments.iter().all(|s| *s != "." && *s != ".."));
                let again = normalise(&n.to_request_target()).expect("a normalised target stays valid");
                prop_assert_eq!(again, n);
            }
            (Err(_), None) => {}
            (got, want) => prop_assert!(false, "{t}: {got:?} vs {want:?}"),
        }
    }

    #[test]
    fn a_size_written_for_an_operator_reads_back(bytes in any::<u64>()) {
        prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
    }

    #[test]
    fn sizes_with_units_are_exact_multiples(n in 0u64..1_000_000, unit in prop::sample::select(vec![("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)])) {
        prop_assert_eq!(parse_size(&format!("{n}{}", unit.0)), Ok(n * unit.1));
    }
}
