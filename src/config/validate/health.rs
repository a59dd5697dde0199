//! `pools.NAME.health` → [`HealthCheck`] (active checks: interval, timeout, rise/fall hysteresis,
//! TCP connect or WebSocket handshake) and `pools.NAME.passive` → [`Passive`] (ejection after
//! consecutive failures). Running the checks is `crate::upstream::health`'s job.

use std::time::Duration;

use super::Errors;
use super::limits::count_in;
use crate::config::raw::{RawChoice, RawHealth, RawPassive, Spanned};
use crate::config::units::parse_positive_duration;
use crate::config::{HealthCheck, HealthKind, Passive};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Below this, checks of many pools would cost more than the traffic they protect.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Upper bound of `rise` and `fall`.
const MAX_STREAK: usize = 100;
/// Upper bound of `passive.failures`.
const MAX_FAILURES: usize = 1000;

/// `health` at `at`. `None`: errors reported.
pub(super) fn health(raw: Spanned<RawHealth>, at: &str, errs: &mut Errors) -> Option<HealthCheck> {
    let raw = raw.value;
    let before = errs.list.len();
    let interval = match &raw.interval {
        None => Some(DEFAULT_INTERVAL),
        Some(i) => errs.check(i, format!("{at}.interval"), |s| {
            let d = parse_positive_duration(s)?;
            if d < MIN_INTERVAL {
                return Err(format!("`{}` is too short; at least 100ms", s.trim()));
            }
            Ok(d)
        }),
    };
    let timeout = match &raw.timeout {
        None => Some(DEFAULT_TIMEOUT),
        Some(t) => errs.check(t, format!("{at}.timeout"), parse_positive_duration),
    };
    if let (Some(interval), Some(timeout)) = (interval, timeout)
        && timeout >= interval
    {
        // Blame the key that was written: a timeout at least as long as the interval would let
        // checks of one backend overlap.
        match (&raw.timeout, &raw.interval) {
            (Some(t), _) => {
                let msg = format!(
                    "`{}` must be shorter than `interval` ({interval:?})",
                    t.value.trim()
                );
                errs.at(&t.referenced, format!("{at}.timeout"), msg);
            }
            (None, Some(i)) => {
                let msg = format!(
                    "`{}` must be longer than `timeout` ({timeout:?} by default); set a shorter `timeout`",
                    i.value.trim()
                );
                errs.at(&i.referenced, format!("{at}.interval"), msg);
            }
            // The defaults are in order.
            (None, None) => {}
        }
    }
    let streak = |raw: &Option<Spanned<String>>, name: &str, default, errs: &mut Errors| {
        let Some(raw) = raw else { return Some(default) };
        // MAX_STREAK fits in u32.
        errs.check(raw, format!("{at}.{name}"), |s| count_in(s, 1, MAX_STREAK))
            .map(|n| n as u32)
    };
    let rise = streak(&raw.rise, "rise", 2, errs);
    let fall = streak(&raw.fall, "fall", 3, errs);
    let kind = match raw.check {
        None => Some(HealthKind::Tcp),
        Some(c) => check(c, &format!("{at}.check"), errs),
    };
    if errs.list.len() != before {
        return None;
    }
    Some(HealthCheck {
        interval: interval?,
        timeout: timeout?,
        rise: rise?,
        fall: fall?,
        kind: kind?,
    })
}

/// `check`: `tcp` or `{ websocket: PATH }`.
fn check(
    raw: Spanned<RawChoice<Spanned<String>>>,
    at: &str,
    errs: &mut Errors,
) -> Option<HealthKind> {
    const EXPECTED: &str = "expected `tcp` or `{ websocket: PATH }`";
    let entries = match raw.value {
        RawChoice::Word(w) if w == "tcp" => return Some(HealthKind::Tcp),
        RawChoice::Word(w) => {
            let msg = format!("unknown check `{w}`; {EXPECTED}");
            errs.at(&raw.referenced, at, msg);
            return None;
        }
        RawChoice::Map(entries) => entries,
    };
    let Ok([(key, path)]) = <[_; 1]>::try_from(entries) else {
        let msg = format!("a check mapping has exactly one key, `websocket`; {EXPECTED}");
        errs.at(&raw.referenced, at, msg);
        return None;
    };
    let at = format!("{at}.{}", key.value);
    if key.value != "websocket" {
        let msg = format!("unknown check `{}`; {EXPECTED}", key.value);
        errs.at(&key.referenced, at, msg);
        return None;
    }
    // Sent as the request target of the check's handshake (origin-form, RFC 9112 §3.2.1).
    let problem = if !path.value.starts_with('/') {
        "must start with `/`"
    } else if path.value.contains('#') {
        "must not contain `#`"
    } else if (path.value.chars()).any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain spaces or control characters"
    } else {
        return Some(HealthKind::WebSocket(path.value));
    };
    errs.at(&path.referenced, at, format!("`{}` {problem}", path.value));
    None
}

/// `passive` at `at`: every key optional. `None`: errors reported.
pub(super) fn passive(raw: Spanned<RawPassive>, at: &str, errs: &mut Errors) -> Option<Passive> {
    let raw = raw.value;
    let d = Passive::default();
    let failures = match &raw.failures {
        None => Some(d.failures),
        // MAX_FAILURES fits in u32.
        Some(f) => errs
            .check(f, format!("{at}.failures"), |s| {
                count_in(s, 0, MAX_FAILURES)
            })
            .map(|n| n as u32),
    };
    let cooldown = match &raw.cooldown {
        None => Some(d.cooldown),
        Some(c) => errs.check(c, format!("{at}.cooldown"), parse_positive_duration),
    };
    Some(Passive {
        failures: failures?,
        cooldown: cooldown?,
    })
}
