//! Human-friendly units in the config file: durations (`500ms`, `10s`, `5m`, `1h`, `1d`) and byte
//! sizes (`512B`, `16KiB`, `1MiB`, `1GiB`, `64KB`, `1MB`, or a bare integer = bytes).
//!
//! Only whole numbers are accepted: `1.5s` is an error that suggests `1500ms`, so what the
//! operator wrote is exactly what runs. Range checks (e.g. "greater than 0", "at most 1MiB") are
//! the caller's: see [`crate::config::validate`]. Errors are plain sentences meant to follow
//! `file:line:col: path: ` in a [`crate::config::ConfigError`].

use std::time::Duration;

/// Duration units (matched exactly, so `ms` never reads as `m`).
const DURATION_UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Size units and their multipliers in bytes; binary (`KiB`) and decimal (`KB`) both exist
/// because operators write both and mean different things.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

const DURATION_HINT: &str = "expected a whole number followed by ms, s, m, h or d (e.g. `10s`)";
const SIZE_HINT: &str = "expected a whole number of bytes, optionally followed by B, KiB, MiB, GiB, KB, MB or GB (e.g. `16KiB`)";

/// Parses a duration such as `500ms` or `1h`. Zero (`0s`) is accepted; see
/// [`parse_positive_duration`] where it is not.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text, DURATION_HINT)?;
    if unit.is_empty() {
        return Err(format!("`{}` has no unit; {DURATION_HINT}", text.trim()));
    }
    let Some(&(_, millis)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(unknown_unit(text, unit, "ms, s, m, h or d"));
    };
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{}` is too large", text.trim()))
}

/// Like [`parse_duration`] but rejects zero: a zero timeout would refuse every connection.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("`{}` must be greater than 0", text.trim()));
    }
    Ok(duration)
}

/// Parses a byte size such as `16KiB`, `1MB` or `4096` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text, SIZE_HINT)?;
    if unit.is_empty() {
        return Ok(number);
    }
    let Some(&(_, bytes)) = SIZE_UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(unknown_unit(
            text,
            unit,
            "B, KiB, MiB, GiB, KB, MB or GB (units are case-sensitive)",
        ));
    };
    number
        .checked_mul(bytes)
        .ok_or_else(|| format!("`{}` is too large", text.trim()))
}

/// Formats a byte count the way an operator would write it, for range messages (`16KiB`).
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Formats a duration the way an operator would write it, for messages: whole seconds as `30s`,
/// anything else in milliseconds (`1500ms`); below a millisecond is dropped, as the config
/// cannot express it. [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Splits `"  16KiB "` into `(16, "KiB")`; one optional space between number and unit is allowed.
fn split_number<'a>(text: &'a str, hint: &str) -> Result<(u64, &'a str), String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty value; {hint}"));
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, rest) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        if trimmed.starts_with('-') {
            return Err(format!("`{trimmed}` is negative; {hint}"));
        }
        return Err(format!("`{trimmed}` is not a number with a unit; {hint}"));
    }
    if rest.starts_with(['.', ',']) {
        return Err(format!(
            "`{trimmed}` is not a whole number; use a smaller unit instead of a fraction"
        ));
    }
    let number = digits
        .parse::<u64>()
        .map_err(|_| format!("`{trimmed}` is too large"))?;
    Ok((number, rest.strip_prefix(' ').unwrap_or(rest)))
}

fn unknown_unit(text: &str, unit: &str, expected: &str) -> String {
    format!(
        "unknown unit `{unit}` in `{}`; expected {expected}",
        text.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 10 s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_errors_say_what_is_wrong() {
        let err = |s| parse_duration(s).unwrap_err();
        assert!(err("10").contains("has no unit"), "{}", err("10"));
        assert!(err("1.5s").contains("not a whole number"));
        assert!(err("10x").contains("unknown unit `x`"));
        assert!(err("10S").contains("unknown unit `S`"));
        assert!(err("s").contains("not a number"));
        assert!(err("-1s").contains("negative"));
        assert!(err("").contains("empty"));
        assert!(err("10 s s").contains("unknown unit"));
        assert!(err("99999999999999999999s").contains("too large"));
        assert!(err("999999999999999999d").contains("too large"));
    }

    #[test]
    fn zero_rejected_where_asked() {
        assert!(
            parse_positive_duration("0ms")
                .unwrap_err()
                .contains("greater than 0")
        );
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn sizes_binary_decimal_and_bare() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn size_errors_say_what_is_wrong() {
        let err = |s| parse_size(s).unwrap_err();
        assert!(err("16kib").contains("unknown unit `kib`"));
        assert!(err("1.5MiB").contains("not a whole number"));
        assert!(err("KiB").contains("not a number"));
        assert!(err("99999999999GiB").contains("too large"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn sizes_format_back_to_units() {
        assert_eq!(format_size(16 * 1024), "16KiB");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
    }
}
