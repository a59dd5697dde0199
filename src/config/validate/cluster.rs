//! The fleet keys → [`ClusterConfig`], [`Scope`] and [`PerSubject`]: the `cluster:` block (Redis
//! URL, CA bundle, key prefix, instance name, call timeout, `on_error`), the `scope:` of a rate or
//! of `limits.per_ip`, and `per_subject:`. Nothing here connects: the URL is parsed with the
//! `redis` crate's own parser, and the `ca:` file is read and checked for a certificate, so that
//! `wsgate check` judges a fleet config offline (the host name is read for the default
//! `instance`). Whether a route's `per_subject` has the `auth` it needs is decided when policies
//! are merged ([`super::policy`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use redis::IntoConnectionInfo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_saphyr::Location;

use super::keys::read_capped;
use super::limits::count_in;
use super::{Errors, resolve};
use crate::config::cluster::{
    ClusterConfig, DEFAULT_PREFIX, DEFAULT_TIMEOUT, OnError, OnExceed, PerSubject, Scope, redact,
};
use crate::config::raw::{RawClusterKey, RawPerSubject, Spanned};
use crate::config::units::parse_duration;

/// Longest `prefix` and `instance`: both are part of every key wsgate writes.
const MAX_NAME_BYTES: usize = 64;
/// Most `per_subject.max_sessions`.
const MAX_SESSIONS: usize = 100_000;
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// `cluster:`. `None` when absent or when it had errors (reported).
pub(super) fn cluster(
    raw: RawClusterKey,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<ClusterConfig> {
    let (loc, raw) = raw.map(|r| (r.referenced, r.value))?;
    let raw = raw.unwrap_or_default();
    let before = errs.list.len();
    let redis = match &raw.redis {
        Some(url) => errs.check(url, "cluster.redis", redis_url),
        None => {
            let msg = "needs `redis`: the URL of the Redis/Valkey the fleet shares (`redis://HOST:PORT/DB` or `rediss://...` for TLS)";
            errs.at(&loc, "cluster", msg);
            None
        }
    };
    let ca = raw.ca.and_then(|ca| {
        let tls = (raw.redis.as_ref()).is_none_or(|r| r.value.trim().starts_with("rediss://"));
        if !tls {
            // Shown only once parsed: before that, where a password ends is not known.
            let url = redis.as_deref().map_or("the `redis` URL".into(), redact);
            let msg = format!(
                "only applies to `rediss://` (TLS), and {url} is plain TCP; use rediss:// or remove `ca`"
            );
            errs.at(&ca.referenced, "cluster.ca", msg);
            return None;
        }
        ca_file(&ca, base_dir, errs)
    });
    let prefix = (raw.prefix.as_ref()).and_then(|p| errs.check(p, "cluster.prefix", prefix));
    let instance = match &raw.instance {
        Some(i) => errs.check(i, "cluster.instance", instance),
        None => Some(default_instance()),
    };
    let timeout = (raw.timeout.as_ref()).and_then(|t| errs.check(t, "cluster.timeout", timeout));
    let on_error =
        (raw.on_error.as_ref()).and_then(|o| errs.check(o, "cluster.on_error", on_error));
    if errs.list.len() != before {
        return None;
    }
    Some(ClusterConfig {
        redis: redis?,
        ca,
        prefix: prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned()),
        instance: instance?,
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        on_error: on_error.unwrap_or_default(),
    })
}

/// `redis://` or `rediss://`, parsed by the `redis` crate without connecting. Messages show the
/// URL only with its password redacted, and only once it has parsed (before that, where the
/// password ends is not known).
fn redis_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    let expected = "expected `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]` or `rediss://...` (TLS)";
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        let scheme = match url.split_once("://") {
            Some((scheme, _)) => format!("scheme `{scheme}://` is not supported"),
            None => "is not a URL".to_owned(),
        };
        return Err(format!("{scheme}; {expected}"));
    }
    let Some(parsed) = redis::parse_redis_url(url) else {
        return Err(format!(
            "does not parse as a URL (check the host, the port and that a password's special characters are %-encoded); {expected}"
        ));
    };
    // The `redis` crate reads `#insecure` as "do not verify the server's certificate"; wsgate
    // verifies every TLS peer (a private CA goes in `ca:`).
    if parsed.fragment().is_some() {
        return Err(format!(
            "`#{}` is not accepted: certificates are always verified (use `ca:` for a private CA); {expected}",
            parsed.fragment().unwrap_or_default()
        ));
    }
    match url.into_connection_info() {
        // The text, not the parsed form: the `redis` crate parses it again when connecting.
        Ok(_) => Ok(url.to_owned()),
        Err(e) => {
            // The parser's own words name the part (database number, wildcard host) and never
            // echo the URL; checked anyway, as a password must never reach a log.
            let why = e.to_string().replacen(&format!(" - {:?}", e.kind()), "", 1);
            let leaks = (parsed.password())
                .filter(|pw| !pw.is_empty())
                .is_some_and(|pw| {
                    why.contains(pw) || why.contains(&*percent_decode_str(pw).decode_utf8_lossy())
                });
            let why = if leaks { "invalid".into() } else { why };
            Err(format!("not a valid Redis URL ({why}); {expected}"))
        }
    }
}

/// `cluster.ca`: a readable file holding at least one PEM certificate. `None`: reported.
fn ca_file(raw: &Spanned<String>, base_dir: &Path, errs: &mut Errors) -> Option<PathBuf> {
    let path = resolve(raw, "cluster.ca", base_dir, errs)?;
    let check = || {
        let bytes = read_capped(&path)?;
        let shown = path.display();
        let mut certs = CertificateDer::pem_slice_iter(&bytes);
        match certs.next() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(format!("`{shown}` holds a broken PEM certificate: {e}")),
            None => Err(format!(
                "`{shown}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
            )),
        }
    };
    check()
        .map_err(|msg| errs.at(&raw.referenced, "cluster.ca", msg))
        .ok()
        .map(|()| path)
}

/// `cluster.prefix`: 1..=64 bytes of visible ASCII, without the hash-tag braces.
fn prefix(text: &str) -> Result<String, String> {
    let shown = text.escape_debug();
    if text.is_empty() || text.len() > MAX_NAME_BYTES {
        return Err(format!("`{shown}` must be 1..={MAX_NAME_BYTES} bytes long"));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "`{shown}` holds {c:?}; use visible ASCII only (no spaces or control characters)"
        ));
    }
    if text.contains(['{', '}']) {
        return Err(format!(
            "`{shown}` holds a brace; `{{...}}` is a Redis Cluster hash tag and would pin every key to one slot"
        ));
    }
    Ok(text.to_owned())
}

/// `cluster.instance`: 1..=64 bytes of `A-Z a-z 0-9 . _ : -`.
fn instance(text: &str) -> Result<String, String> {
    let shown = text.escape_debug();
    if text.is_empty() || text.len() > MAX_NAME_BYTES {
        return Err(format!("`{shown}` must be 1..={MAX_NAME_BYTES} bytes long"));
    }
    if let Some(c) = text.chars().find(|&c| !is_instance_char(c)) {
        return Err(format!(
            "`{shown}` holds {c:?}; use letters, digits, `.`, `_`, `:` and `-` only"
        ));
    }
    Ok(text.to_owned())
}

fn is_instance_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// `hostname:pid`, the host name from the kernel (or `/etc/hostname`), else `wsgate`.
fn default_instance() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        // Kept to what `instance` accepts, with room for `:pid`.
        .find(|h| !h.is_empty() && h.len() <= 48 && h.chars().all(is_instance_char))
        .unwrap_or_else(|| "wsgate".to_owned());
    format!("{host}:{}", std::process::id())
}

/// `cluster.timeout`: 1ms..=10s.
fn timeout(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) {
        return Err(format!(
            "`{}` is out of range; expected 1ms..=10s",
            text.trim()
        ));
    }
    Ok(d)
}

fn on_error(text: &str) -> Result<OnError, String> {
    match text.trim() {
        "allow" => Ok(OnError::Allow),
        "deny" => Ok(OnError::Deny),
        other => Err(format!(
            "`{other}` is not `allow` (admit when Redis does not answer) or `deny` (refuse with 503)"
        )),
    }
}

/// A `scope:` key at `at` (`routes[0].rate.scope`); absent = local. `has_cluster`: the file has
/// a `cluster:` block, which `fleet` needs. `None`: reported.
pub(super) fn scope(
    raw: Option<&Spanned<String>>,
    at: &str,
    has_cluster: bool,
    errs: &mut Errors,
) -> Option<Scope> {
    let Some(raw) = raw else {
        return Some(Scope::Local);
    };
    match raw.value.trim() {
        "local" => Some(Scope::Local),
        "fleet" if has_cluster => Some(Scope::Fleet),
        "fleet" => {
            let msg = "`scope: fleet` needs a `cluster:` block (the Redis/Valkey the fleet shares)";
            errs.at(&raw.referenced, at, msg);
            None
        }
        other => {
            let msg = format!(
                "`{other}` is not `local` (this instance counts alone) or `fleet` (counted across the fleet)"
            );
            errs.at(&raw.referenced, at, msg);
            None
        }
    }
}

/// `per_subject` at `at` (`defaults`, `routes[2]`), with its place for the merge's "needs
/// `auth`" check. `None`: reported.
pub(super) fn per_subject(
    raw: Spanned<RawPerSubject>,
    at: &str,
    has_cluster: bool,
    errs: &mut Errors,
) -> Option<(PerSubject, Location)> {
    let (loc, raw) = (raw.referenced, raw.value);
    let at = format!("{at}.per_subject");
    let max_sessions = match &raw.max_sessions {
        Some(m) => errs.check(m, format!("{at}.max_sessions"), |s| {
            count_in(s, 1, MAX_SESSIONS).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        }),
        None => {
            let msg = "needs `max_sessions`: how many live sessions one token `sub` may hold on the route";
            errs.at(&loc, at.clone(), msg);
            None
        }
    };
    let on_exceed = match &raw.on_exceed {
        None => Some(OnExceed::Refuse),
        Some(o) => errs.check(o, format!("{at}.on_exceed"), |s| match s.trim() {
            "refuse" => Ok(OnExceed::Refuse),
            "close_oldest" => Ok(OnExceed::CloseOldest),
            other => Err(format!(
                "`{other}` is not `refuse` (answer 429) or `close_oldest` (close the subject's oldest session)"
            )),
        }),
    };
    let scope = scope(
        raw.scope.as_ref(),
        &format!("{at}.scope"),
        has_cluster,
        errs,
    );
    let per_subject = PerSubject {
        max_sessions: max_sessions?,
        on_exceed: on_exceed?,
        scope: scope?,
    };
    Some((per_subject, loc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls() {
        assert!(redis_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(redis_url("rediss://u:p@redis.example.com").is_ok());
        let err = |s| redis_url(s).unwrap_err();
        assert!(err("unix:///run/redis.sock").starts_with("scheme `unix://` is not supported"));
        assert!(err("redis+unix:///r.sock").contains("`redis://"));
        assert!(err("valkey://h").contains("`rediss://"));
        assert!(err("127.0.0.1:6379").starts_with("is not a URL"));
        assert!(err("redis://:hunter2@h/notadb").contains("Invalid database number"));
        assert!(!err("redis://:hunter2@h/notadb").contains("hunter2"));
        assert!(
            err("redis://").contains("(Missing hostname)"),
            "{}",
            err("redis://")
        );
        assert!(err("redis://h:99999").contains("does not parse as a URL"));
        assert!(err("redis://h/?protocol=9").contains("(Invalid protocol version: 9)"));
        assert!(err("rediss://h/0#insecure").contains("`#insecure` is not accepted"));
    }

    #[test]
    fn names() {
        assert_eq!(prefix("app:ws:"), Ok("app:ws:".into()));
        assert!(prefix("").unwrap_err().contains("1..=64"));
        assert!(prefix(&"x".repeat(65)).unwrap_err().contains("1..=64"));
        assert!(prefix("a b").unwrap_err().contains("visible ASCII"));
        assert!(prefix("é").unwrap_err().contains("visible ASCII"));
        assert!(prefix("{ws}:").unwrap_err().contains("hash tag"));
        assert_eq!(instance("gw-1.eu_west:7"), Ok("gw-1.eu_west:7".into()));
        for bad in ["a/b", "a{b", "a b", ""] {
            assert!(instance(bad).is_err(), "{bad}");
        }
        let default = default_instance();
        assert!(instance(&default).is_ok(), "{default}");
        assert!(default.ends_with(&format!(":{}", std::process::id())));
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout("1ms"), Ok(MIN_TIMEOUT));
        assert_eq!(timeout("10s"), Ok(MAX_TIMEOUT));
        assert!(timeout("0ms").unwrap_err().contains("1ms..=10s"));
        assert!(timeout("11s").unwrap_err().contains("1ms..=10s"));
        assert!(timeout("50").unwrap_err().contains("no unit"));
    }
}
