//! Properties of the config file's units (`config::units`) over generated text: a duration
//! wsgate writes in a message reads back as the same duration; every number in every unit is its
//! exact multiple, or an error when that overflows (never a wrapped value); numbers too long for
//! 64 bits are errors; whitespace around a value changes nothing; `parse_positive_duration` is
//! `parse_duration` without zero; and no text at all makes a parser panic. (Sizes written by
//! `format_size` reading back are in `tests/properties.rs`.)

use std::time::Duration;

use proptest::prelude::*;
use wsgate::config::units::{
    format_duration, format_size, parse_duration, parse_positive_duration, parse_size,
};

const DURATION_UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// Numbers that matter: small ones, ones near where a multiplication overflows, any u64.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..100_000,
        Just(u64::MAX),
        (1u64..=86_400_000).prop_map(|unit| u64::MAX / unit),
        (1u64..=86_400_000).prop_map(|unit| u64::MAX / unit + 1),
        any::<u64>(),
    ]
}

/// Text close to a value: digits, unit letters, signs, separators, whitespace, non-ASCII digits.
fn near_value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[0-9]{1,25}",
            prop::sample::select(vec![
                "ms", "s", "m", "h", "d", "B", "KiB", "MiB", "GiB", "KB", "MB", "GB", "kib", "S",
                " ", "  ", "\t", ".", ",", "-", "+", "_", "e", "0x", "µs", "٣", "１", "\u{a0}",
                "\u{301}",
            ])
            .prop_map(str::to_owned),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_duration_written_for_an_operator_reads_back(ms in number()) {
        let d = Duration::from_millis(ms);
        let text = format_duration(d);
        prop_assert_eq!(parse_duration(&text), Ok(d), "{}", text);
        prop_assert!(text.ends_with("ms") || ms % 1000 == 0, "{}", text);
    }

    #[test]
    fn a_duration_is_its_exact_multiple_or_too_large(
        n in number(),
        unit in prop::sample::select(DURATION_UNITS),
        space in any::<bool>(),
    ) {
        let text = format!("{n}{}{}", if space { " " } else { "" }, unit.0);
        match n.checked_mul(unit.1) {
            Some(ms) => prop_assert_eq!(parse_duration(&text), Ok(Duration::from_millis(ms))),
            None => {
                let err = parse_duration(&text).expect_err("an overflow is an error");
                prop_assert!(err.contains("too large"), "{}: {}", text, err);
            }
        }
    }

    #[test]
    fn a_size_is_its_exact_multiple_or_too_large(
        n in number(),
        unit in prop::sample::select(SIZE_UNITS),
    ) {
        let text = format!("{n}{}", unit.0);
        match n.checked_mul(unit.1) {
            Some(bytes) => {
                prop_assert_eq!(parse_size(&text), Ok(bytes));
                prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
            }
            None => {
                let err = parse_size(&text).expect_err("an overflow is an error");
                prop_assert!(err.contains("too large"), "{}: {}", text, err);
            }
        }
    }

    #[test]
    fn numbers_longer_than_64_bits_are_errors(
        digits in "[1-9][0-9]{20,60}",
        unit in prop::sample::select(vec!["ms", "s", "d", "", "B", "GiB"]),
    ) {
        let text = format!("{digits}{unit}");
        prop_assert!(parse_size(&text).is_err(), "{}", text);
        prop_assert!(parse_duration(&text).is_err(), "{}", text);
    }

    #[test]
    fn whitespace_around_a_value_changes_nothing(
        value in near_value(),
        before in "[ \t]{0,3}",
        after in "[ \t]{0,3}",
    ) {
        let padded = format!("{before}{value}{after}");
        prop_assert_eq!(parse_duration(&padded), parse_duration(&value));
        prop_assert_eq!(parse_size(&padded), parse_size(&value));
    }

    #[test]
    fn a_positive_duration_is_a_duration_other_than_zero(text in near_value()) {
        match (parse_duration(&text), parse_positive_duration(&text)) {
            (Ok(d), Ok(p)) => prop_assert!(d == p && !d.is_zero(), "{}", text),
            (Ok(d), Err(_)) => prop_assert!(d.is_zero(), "{}", text),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (Err(_), Ok(_)) => prop_assert!(false, "{} is positive but not a duration", text),
        }
    }

    #[test]
    fn no_text_makes_a_parser_panic(text in prop_oneof![near_value(), any::<String>()]) {
        // Each returns; an accepted value starts with an ASCII digit once trimmed.
        for ok in [
            parse_duration(&text).is_ok(),
            parse_positive_duration(&text).is_ok(),
            parse_size(&text).is_ok(),
        ] {
            if ok {
                prop_assert!(text.trim().starts_with(|c: char| c.is_ascii_digit()), "{:?}", text);
            }
        }
    }
}
