//! `limits:` → [`Limits`]: time and size bounds, the global connection cap and `per_ip` (its
//! `scope` is checked in [`super::cluster`]), plus the number and rate syntax (`N/s`, `N/m`,
//! `N/h`) that route policies share. A bad value is reported and the default kept, so that every
//! other key is still checked.

use std::time::Duration;

use super::{Errors, cluster};
use crate::config::Limits;
use crate::config::policy::{PerIp, Rate};
use crate::config::raw::{RawLimits, RawPerIp, Spanned};
use crate::config::units::{
    format_duration, format_size, parse_duration, parse_positive_duration, parse_size,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Upper bound of every connection cap, handshake count and burst: far above what one process
/// can hold, low enough that a typo (an extra zero or three) is caught.
pub(super) const MAX_COUNT: usize = 10_000_000;

/// `has_cluster`: the file has a `cluster:` block (`per_ip.scope: fleet` needs one).
pub(super) fn limits(raw: RawLimits, has_cluster: bool, errs: &mut Errors) -> Limits {
    let d = Limits::default();
    // For the cross check below: where `drain_spread` is, and whether `drain_timeout` is usable.
    let spread_at = raw.drain_spread.as_ref().map(|s| s.referenced);
    let drain_timeout_ok =
        (raw.drain_timeout.as_ref()).is_none_or(|t| parse_positive_duration(&t.value).is_ok());
    // `limits.NAME`: absent = default; a bad value is reported and the default kept.
    macro_rules! field {
        ($name:ident, $parse:expr) => {
            value_or(raw.$name, stringify!($name), d.$name, errs, $parse)
        };
    }
    let limits = Limits {
        tls_handshake_timeout: field!(tls_handshake_timeout, parse_positive_duration),
        request_header_timeout: field!(request_header_timeout, parse_positive_duration),
        max_request_header_bytes: field!(max_request_header_bytes, |s| size_in(s, KIB, MIB)),
        max_request_headers: field!(max_request_headers, |s| count_in(s, 1, 10_000)),
        backend_connect_timeout: field!(backend_connect_timeout, parse_positive_duration),
        backend_handshake_timeout: field!(backend_handshake_timeout, parse_positive_duration),
        max_relayed_body_bytes: field!(max_relayed_body_bytes, |s| size_in(s, 0, 16 * MIB)),
        max_request_body_bytes: field!(max_request_body_bytes, |s| size_in(s, 0, 64 * MIB)),
        max_response_body_bytes: field!(max_response_body_bytes, |s| size_in(s, 0, 64 * MIB)),
        http_request_timeout: field!(http_request_timeout, parse_positive_duration),
        tunnel_idle_timeout: field!(tunnel_idle_timeout, parse_positive_duration),
        tunnel_half_close_timeout: field!(tunnel_half_close_timeout, parse_positive_duration),
        drain_timeout: field!(drain_timeout, parse_positive_duration),
        close_timeout: field!(close_timeout, parse_positive_duration),
        drain_spread: field!(drain_spread, parse_duration),
        max_connections: field!(max_connections, connection_cap),
        per_ip: (raw.per_ip).map_or_else(PerIp::default, |p| per_ip(p, has_cluster, errs)),
    };
    // Every session must have had its Close before the drain deadline cuts what is left.
    if let (Some(at), true) = (spread_at, drain_timeout_ok)
        && limits.drain_spread >= limits.drain_timeout
    {
        let msg = format!(
            "must be shorter than `drain_timeout` ({}): the last Close frames would go out after the drain deadline",
            format_duration(limits.drain_timeout)
        );
        errs.at(&at, "limits.drain_spread", msg);
    }
    limits
}

/// `limits.per_ip`: every key optional; `burst` only with `handshakes`; `scope` covers both the
/// rate and `max_connections` (a bad one is reported and `local` kept).
fn per_ip(raw: Spanned<RawPerIp>, has_cluster: bool, errs: &mut Errors) -> PerIp {
    let raw = raw.value;
    let at = "limits.per_ip";
    let rate = match (raw.handshakes, raw.burst) {
        (Some(handshakes), burst) => rate(&handshakes, burst.as_ref(), at, errs),
        (None, Some(burst)) => {
            let msg = "needs `handshakes` (a burst is how many of those may arrive back to back)";
            errs.at(&burst.referenced, format!("{at}.burst"), msg);
            None
        }
        (None, None) => None,
    };
    let max_connections = raw
        .max_connections
        .and_then(|m| errs.check(&m, format!("{at}.max_connections"), connection_cap));
    let scope = cluster::scope(
        raw.scope.as_ref(),
        &format!("{at}.scope"),
        has_cluster,
        errs,
    );
    PerIp {
        rate,
        max_connections,
        scope: scope.unwrap_or_default(),
    }
}

/// `handshakes` + optional `burst` under `at`. `None`: reported.
pub(super) fn rate(
    handshakes: &Spanned<String>,
    burst: Option<&Spanned<String>>,
    at: &str,
    errs: &mut Errors,
) -> Option<Rate> {
    let per = errs.check(handshakes, format!("{at}.handshakes"), handshake_rate);
    rate_with_burst(per, burst, at, errs)
}

/// `session.messages`: `rate` (`N/s`, `N/m`, `N/h`) + optional `burst` under `at`. `None`:
/// reported.
pub(super) fn message_rate(
    rate: &Spanned<String>,
    burst: Option<&Spanned<String>>,
    at: &str,
    errs: &mut Errors,
) -> Option<Rate> {
    let per = errs.check(rate, format!("{at}.rate"), |s| count_per_unit(s, "message"));
    rate_with_burst(per, burst, at, errs)
}

fn rate_with_burst(
    per: Option<(u32, Duration)>,
    burst: Option<&Spanned<String>>,
    at: &str,
    errs: &mut Errors,
) -> Option<Rate> {
    let burst = match burst {
        None => None,
        Some(b) => Some(errs.check(b, format!("{at}.burst"), |s| count_u32(s, 1))?),
    };
    let (count, per) = per?;
    Some(Rate {
        count,
        per,
        burst: burst.unwrap_or(count),
    })
}

/// `N/s`, `N/m` or `N/h` with N in 1..=[`MAX_COUNT`].
fn handshake_rate(text: &str) -> Result<(u32, Duration), String> {
    count_per_unit(text, "handshake")
}

/// `N/s`, `N/m` or `N/h` with N in 1..=[`MAX_COUNT`] of `what` (for the messages).
fn count_per_unit(text: &str, what: &str) -> Result<(u32, Duration), String> {
    let hint = "expected COUNT/UNIT with unit s, m or h (e.g. `20/s`)";
    let text = text.trim();
    let Some((count, unit)) = text.split_once('/') else {
        return Err(format!("`{text}` is not a rate; {hint}"));
    };
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => return Err(format!("unknown unit `{other}` in `{text}`; {hint}")),
    };
    match count.trim().parse::<u64>() {
        Ok(0) => Err(format!("`{text}` must allow at least 1 {what}; {hint}")),
        Ok(n) if n <= MAX_COUNT as u64 => Ok((count_u32(count, 1)?, per)),
        Ok(_) => Err(format!(
            "`{text}` is out of range; at most {MAX_COUNT} per unit"
        )),
        Err(_) => Err(format!(
            "`{text}` does not start with a whole number; {hint}"
        )),
    }
}

/// A connection cap: 1..=[`MAX_COUNT`].
pub(super) fn connection_cap(text: &str) -> Result<u32, String> {
    count_u32(text, 1)
}

/// A whole number in `min..=MAX_COUNT`.
fn count_u32(text: &str, min: usize) -> Result<u32, String> {
    let n = count_in(text, min, MAX_COUNT)?;
    // MAX_COUNT < u32::MAX.
    u32::try_from(n).map_err(|_| format!("`{}` is too large", text.trim()))
}

fn size_in(text: &str, min: u64, max: u64) -> Result<usize, String> {
    let n = size_u64(text, min, max)?;
    // `max` is far below usize::MAX on every supported target.
    usize::try_from(n).map_err(|_| format!("`{}` is too large", text.trim()))
}

/// A size in `min..=max` bytes; the message names the range in units.
pub(super) fn size_u64(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = parse_size(text)?;
    if !(min..=max).contains(&n) {
        let (min, max) = (format_size(min), format_size(max));
        return Err(format!(
            "`{}` is out of range; expected {min}..={max}",
            text.trim()
        ));
    }
    Ok(n)
}

/// A whole number in `min..=max`; the message names the range.
pub(super) fn count_in(text: &str, min: usize, max: usize) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is out of range; expected {min}..={max}")),
        Err(_) => Err(format!(
            "`{}` is not a whole number; expected {min}..={max}",
            text.trim()
        )),
    }
}

/// Parses an optional `limits.NAME` value, reporting a failure and falling back to `default`.
fn value_or<T>(
    raw: Option<Spanned<String>>,
    name: &str,
    default: T,
    errs: &mut Errors,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> T {
    let Some(raw) = raw else { return default };
    errs.check(&raw, format!("limits.{name}"), parse)
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(handshake_rate("20/s"), Ok((20, Duration::from_secs(1))));
        assert_eq!(handshake_rate(" 5 / m "), Ok((5, Duration::from_secs(60))));
        assert_eq!(handshake_rate("1/h"), Ok((1, Duration::from_secs(3600))));
        let err = |s| handshake_rate(s).unwrap_err();
        assert!(err("20").contains("not a rate"));
        assert!(err("20/sec").contains("unknown unit `sec`"));
        assert!(err("0/s").contains("at least 1"));
        assert!(err("-1/s").contains("whole number"));
        assert!(err("1.5/s").contains("whole number"));
        assert!(err("99999999/s").contains("out of range"));
    }
}
