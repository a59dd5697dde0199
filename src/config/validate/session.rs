//! `session:` (under `defaults:` and on a route) → [`SessionPolicy`]: what keeps being checked
//! after the upgrade. A route's `session` keys are merged over the `defaults:` ones key by key
//! (unlike the admission keys, which replace each other whole), then `close_at_token_expiry` is
//! resolved against the route's effective `auth`. Rates and sizes share the syntax of
//! [`super::limits`]; enforcing the policy on a live tunnel is the session layer's job.

use std::time::Duration;

use serde_saphyr::Location;

use super::Errors;
use super::limits::{message_rate, size_u64};
use crate::config::policy::{AuthConfig, AuthMethod, Keepalive, Rate, SessionPolicy};
use crate::config::raw::{RawKeepalive, RawSession, Spanned};
use crate::config::units::{parse_positive_duration, parse_size};

/// Largest `max_message` / `max_frame`: far above any sane WebSocket message, low enough that a
/// typo (`1TB`) is caught instead of silently meaning "no limit".
const MAX_SIZE: u64 = 1 << 30;

/// Longest `max_lifetime`; beyond a year the key means nothing a restart would not do first.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

/// A size with its text and place, for the `max_frame` ≤ `max_message` check across blocks.
#[derive(Clone)]
struct Size {
    bytes: u64,
    text: String,
    at: Location,
}

/// One `session:` block (`defaults:` or a route's), each key `Some` when set and valid.
#[derive(Default)]
pub(super) struct SessionParts {
    /// With its place, for the "needs `auth.jwt`" error.
    close_at_token_expiry: Option<(bool, Location)>,
    max_lifetime: Option<Duration>,
    max_message: Option<Size>,
    max_frame: Option<Size>,
    messages: Option<Rate>,
    keepalive: Option<Keepalive>,
    check_frames: Option<bool>,
}

impl SessionParts {
    /// Checks the keys of one block; `at` is the block's owner (`defaults`, `routes[2]`).
    pub(super) fn parse(raw: Option<Spanned<RawSession>>, at: &str, errs: &mut Errors) -> Self {
        let Some(raw) = raw else {
            return SessionParts::default();
        };
        let (raw, at) = (raw.value, format!("{at}.session"));
        let max_lifetime = (raw.max_lifetime.as_ref())
            .and_then(|l| errs.check(l, format!("{at}.max_lifetime"), lifetime));
        let mut size = |raw: Option<Spanned<String>>, key: &str| {
            let raw = raw?;
            let bytes = errs.check(&raw, format!("{at}.{key}"), session_size)?;
            let text = raw.value.trim().to_owned();
            Some(Size {
                bytes,
                text,
                at: raw.referenced,
            })
        };
        let max_message = size(raw.max_message, "max_message");
        let mut max_frame = size(raw.max_frame, "max_frame");
        if let (Some(frame), Some(message)) = (&max_frame, &max_message)
            && frame.bytes > message.bytes
        {
            let msg = frame_over_message(frame, message, "");
            errs.at(&frame.at, format!("{at}.max_frame"), msg);
            max_frame = None;
        }
        let messages = raw.messages.and_then(|m| {
            let m = m.value;
            message_rate(&m.rate, m.burst.as_ref(), &format!("{at}.messages"), errs)
        });
        let keepalive = (raw.keepalive).and_then(|k| keepalive(&k.value, &at, errs));
        SessionParts {
            close_at_token_expiry: (raw.close_at_token_expiry).map(|c| (c.value, c.referenced)),
            max_lifetime,
            max_message,
            max_frame,
            messages,
            keepalive,
            check_frames: raw.check_frames.map(|c| c.value),
        }
    }

    /// This route's keys over `defaults`, key by key; `auth` is the route's effective auth.
    /// `None` when an error is found here (reported). `defaults_failed`: the `defaults:` block
    /// had errors, so a rule that depends on what it would have set is not judged.
    pub(super) fn merge(
        self,
        defaults: &SessionParts,
        auth: Option<&AuthConfig>,
        defaults_failed: bool,
        at: &str,
        errs: &mut Errors,
    ) -> Option<SessionPolicy> {
        let at = format!("{at}.session");
        // Only a verified JWT has an `exp` to close at.
        let jwt = auth.is_some_and(|a| matches!(a.method, AuthMethod::Jwt(_)));
        let close_at_token_expiry = match self.close_at_token_expiry {
            Some((true, loc)) if !jwt && !defaults_failed => {
                let msg = "needs `auth.jwt` on this route or under `defaults:`: only a verified JWT has an `exp` to close at";
                errs.at(&loc, format!("{at}.close_at_token_expiry"), msg);
                return None;
            }
            Some((explicit, _)) => explicit && jwt,
            // A `defaults:` value applies where it can: `true` on the JWT routes only, like
            // `defaults: { require_origin }` on routes without origins.
            None => defaults
                .close_at_token_expiry
                .map_or(jwt, |(d, _)| d && jwt),
        };
        // Both sizes from one block were checked when it was parsed; here one of the two is the
        // route's own and the other comes from `defaults:`. The error goes to the route's.
        let frame_is_own = self.max_frame.is_some();
        let max_message = self.max_message.or_else(|| defaults.max_message.clone());
        let max_frame = self.max_frame.or_else(|| defaults.max_frame.clone());
        if let (Some(frame), Some(message)) = (&max_frame, &max_message)
            && frame.bytes > message.bytes
        {
            if frame_is_own {
                let msg = frame_over_message(frame, message, ", from `defaults:`");
                errs.at(&frame.at, format!("{at}.max_frame"), msg);
            } else {
                let msg = format!(
                    "`{}` is smaller than `max_frame` ({}, from `defaults:`); a frame is one piece of a message",
                    message.text, frame.text
                );
                errs.at(&message.at, format!("{at}.max_message"), msg);
            }
            return None;
        }
        Some(SessionPolicy {
            close_at_token_expiry,
            max_lifetime: self.max_lifetime.or(defaults.max_lifetime),
            max_message: max_message.map(|m| m.bytes),
            max_frame: max_frame.map(|f| f.bytes),
            messages: self.messages.or(defaults.messages),
            keepalive: self.keepalive.or(defaults.keepalive),
            check_frames: self.check_frames.or(defaults.check_frames).unwrap_or(true),
        })
    }
}

fn frame_over_message(frame: &Size, message: &Size, origin: &str) -> String {
    format!(
        "`{}` is larger than `max_message` ({}{origin}); a frame is one piece of a message",
        frame.text, message.text
    )
}

/// `max_lifetime`: positive, at most [`MAX_LIFETIME`].
fn lifetime(text: &str) -> Result<Duration, String> {
    let d = parse_positive_duration(text)?;
    if d > MAX_LIFETIME {
        return Err(format!(
            "`{}` is too long; at most 365d (leave the key out for no limit)",
            text.trim()
        ));
    }
    Ok(d)
}

/// `max_message` / `max_frame`: 1 byte ..= [`MAX_SIZE`].
fn session_size(text: &str) -> Result<u64, String> {
    if parse_size(text)? == 0 {
        return Err(format!(
            "`{}` must be greater than 0 (leave the key out for no limit)",
            text.trim()
        ));
    }
    size_u64(text, 1, MAX_SIZE)
}

/// `keepalive`: `interval` and `timeout`, both positive. `None`: reported.
fn keepalive(raw: &RawKeepalive, at: &str, errs: &mut Errors) -> Option<Keepalive> {
    let at = format!("{at}.keepalive");
    let interval = errs.check(
        &raw.interval,
        format!("{at}.interval"),
        parse_positive_duration,
    );
    let timeout = errs.check(
        &raw.timeout,
        format!("{at}.timeout"),
        parse_positive_duration,
    );
    Some(Keepalive {
        interval: interval?,
        timeout: timeout?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_positive_and_bounded() {
        assert_eq!(session_size("1"), Ok(1));
        assert_eq!(session_size("1GiB"), Ok(MAX_SIZE));
        assert!(session_size("0MiB").unwrap_err().contains("greater than 0"));
        assert!(session_size("1025MiB").unwrap_err().contains("1B..=1GiB"));
        assert!(session_size("1.5MiB").unwrap_err().contains("whole number"));
    }

    #[test]
    fn lifetimes_are_positive_and_bounded() {
        assert_eq!(lifetime("365d"), Ok(MAX_LIFETIME));
        assert_eq!(lifetime("90s"), Ok(Duration::from_secs(90)));
        assert!(lifetime("0s").unwrap_err().contains("greater than 0"));
        assert!(lifetime("366d").unwrap_err().contains("at most 365d"));
    }
}
