//! `pools:` → [`PoolConfig`]: backend URLs (`ws://`, `wss://`) and weights, `balance`,
//! `proxy_protocol` and `retries`. `tls` is checked in [`super::backend_tls`], `health` and
//! `passive` in [`super::health`]. Picking a backend, checking health and speaking TLS or PROXY
//! to it are `crate::upstream`'s job; nothing here opens a socket.

use std::collections::HashMap;
use std::path::Path;

use serde_saphyr::Location;

use super::limits::count_in;
use super::syntax::{backend_url, check_name, is_query_name, is_token};
use super::{Errors, backend_tls, health};
use crate::config::raw::{RawBackend, RawBalance, RawChoice, RawPool, Spanned};
use crate::config::{BackendConfig, Balance, HashKey, PoolConfig, ProxyVersion};

/// Upper bound of a backend's `weight`: shares finer than 1/1000 mean nothing for a handful of
/// backends, and small integers keep weighted picking exact.
const MAX_WEIGHT: usize = 1000;

/// Upper bound of `retries`: past a few, the client's handshake deadline is spent anyway.
const MAX_RETRIES: usize = 10;

/// Returns the valid pools sorted by name, and the names of all declared pools (valid or not) so
/// that routes to a pool with a bad key don't also report "unknown pool".
pub(super) fn pools(
    raw: Option<Spanned<HashMap<Spanned<String>, RawPool>>>,
    base_dir: &Path,
    errs: &mut Errors,
) -> (Vec<PoolConfig>, Vec<String>) {
    let (loc, raw) = raw.map_or((Location::UNKNOWN, HashMap::new()), |s| {
        (s.referenced, s.value)
    });
    if raw.is_empty() {
        errs.at(&loc, "pools", "at least one pool is required");
    }
    let mut raw: Vec<_> = raw.into_iter().collect();
    raw.sort_by(|a, b| a.0.value.cmp(&b.0.value));
    let names = raw.iter().map(|(name, _)| name.value.clone()).collect();
    let mut out = Vec::new();
    for (name, pool) in raw {
        let at = format!("pools.{}", name.value);
        let before = errs.list.len();
        if let Err(msg) = check_name(&name.value) {
            errs.at(&name.referenced, &at, msg);
        }
        let pool = pool_config(name.value, pool, &at, base_dir, errs);
        if errs.list.len() == before {
            out.extend(pool);
        }
    }
    (out, names)
}

/// One pool at `at` (`pools.chat`). `None`, or errors added: the pool is not used.
fn pool_config(
    name: String,
    raw: RawPool,
    at: &str,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<PoolConfig> {
    let written = raw.backends.value.len();
    // Judged on the URLs as written, so that one bad `wss://` URL doesn't also fail `tls`.
    let any_wss = (raw.backends.value.iter())
        .any(|b| (b.url.value.trim().get(..6)).is_some_and(|s| s.eq_ignore_ascii_case("wss://")));
    let backends = backends(raw.backends, at, errs);
    let balance = match raw.balance {
        None => Some(Balance::RoundRobin),
        Some(b) => balance(b, &format!("{at}.balance"), errs),
    };
    let tls = match raw.tls {
        None => Some(None),
        Some(t) => backend_tls::tls(t, any_wss, &format!("{at}.tls"), base_dir, errs).map(Some),
    };
    let proxy_protocol = match raw.proxy_protocol {
        None => Some(None),
        Some(p) => errs
            .check(&p, format!("{at}.proxy_protocol"), proxy_version)
            .map(Some),
    };
    let health = match raw.health {
        None => Some(None),
        Some(h) => health::health(h, &format!("{at}.health"), errs).map(Some),
    };
    let passive = match raw.passive {
        None => Some(Default::default()),
        Some(p) => health::passive(p, &format!("{at}.passive"), errs),
    };
    let retries = match raw.retries {
        // As nginx's `proxy_next_upstream`: a connect failure moves on to another backend by
        // default, two at most (a third failure in a row is an outage, not a bad backend).
        None => Some(default_retries(written)),
        Some(r) => retries(&r, written, &format!("{at}.retries"), errs),
    };
    Some(PoolConfig {
        name,
        backends: backends?,
        balance: balance?,
        tls: tls?,
        proxy_protocol: proxy_protocol?,
        health: health?,
        passive: passive?,
        retries: retries?,
    })
}

/// `backends`: at least one, each URL once (health state is kept per backend).
fn backends(
    raw: Spanned<Vec<RawBackend>>,
    at: &str,
    errs: &mut Errors,
) -> Option<Vec<BackendConfig>> {
    if raw.value.is_empty() {
        let msg = "has no backends; add at least one `{ url: \"ws://HOST:PORT\" }`";
        errs.at(&raw.referenced, format!("{at}.backends"), msg);
    }
    let before = errs.list.len();
    let mut seen: HashMap<(bool, String), Location> = HashMap::new();
    let mut out = Vec::new();
    for (i, b) in raw.value.into_iter().enumerate() {
        let here = format!("{at}.backends[{i}]");
        let weight = match &b.weight {
            None => Some(1),
            Some(w) => errs.check(w, format!("{here}.weight"), |s| {
                // MAX_WEIGHT fits in u32.
                count_in(s, 1, MAX_WEIGHT).map(|n| n as u32)
            }),
        };
        let url = match backend_url(&b.url.value) {
            Ok(url) => url,
            Err(msg) => {
                errs.at(&b.url.referenced, format!("{here}.url"), msg);
                continue;
            }
        };
        if let Some(first) = seen.get(&(url.tls, url.authority.clone())) {
            let msg = format!(
                "`{}` is listed twice (first at {}); give a backend a larger share with `weight`",
                b.url.value,
                errs.place(first)
            );
            errs.at(&b.url.referenced, format!("{here}.url"), msg);
            continue;
        }
        seen.insert((url.tls, url.authority.clone()), b.url.referenced);
        if let Some(weight) = weight {
            out.push(BackendConfig {
                url: b.url.value,
                authority: url.authority,
                tls: url.tls,
                host: url.host,
                weight,
            });
        }
    }
    (errs.list.len() == before).then_some(out)
}

/// `balance`: a policy name or `{ hash: KEY }`.
fn balance(raw: Spanned<RawBalance>, at: &str, errs: &mut Errors) -> Option<Balance> {
    const EXPECTED: &str =
        "expected `round_robin`, `least_connections`, `random_two` or `{ hash: KEY }`";
    let entries = match raw.value {
        RawChoice::Word(w) => {
            return match w.as_str() {
                "round_robin" => Some(Balance::RoundRobin),
                "least_connections" => Some(Balance::LeastConnections),
                "random_two" => Some(Balance::RandomTwo),
                other => {
                    let msg = format!("unknown balance `{other}`; {EXPECTED}");
                    errs.at(&raw.referenced, at, msg);
                    None
                }
            };
        }
        RawChoice::Map(entries) => entries,
    };
    let Ok([(key, value)]) = <[_; 1]>::try_from(entries) else {
        let msg = format!("a balance mapping has exactly one key, `hash`; {EXPECTED}");
        errs.at(&raw.referenced, at, msg);
        return None;
    };
    if key.value != "hash" {
        let msg = format!("unknown balance `{}`; {EXPECTED}", key.value);
        errs.at(&key.referenced, format!("{at}.{}", key.value), msg);
        return None;
    }
    hash_key(value, &format!("{at}.hash"), errs).map(Balance::Hash)
}

/// `balance.hash`: what a request is hashed by.
fn hash_key(
    raw: Spanned<RawChoice<Spanned<String>>>,
    at: &str,
    errs: &mut Errors,
) -> Option<HashKey> {
    const EXPECTED: &str = "expected `path`, `client_ip`, `subprotocol`, `{ header: NAME }`, `{ cookie: NAME }` or `{ query: NAME }`";
    let entries = match raw.value {
        RawChoice::Word(w) => {
            return match w.as_str() {
                "path" => Some(HashKey::Path),
                "client_ip" => Some(HashKey::ClientIp),
                "subprotocol" => Some(HashKey::Subprotocol),
                other => {
                    let msg = format!("unknown hash key `{other}`; {EXPECTED}");
                    errs.at(&raw.referenced, at, msg);
                    None
                }
            };
        }
        RawChoice::Map(entries) => entries,
    };
    let Ok([(key, name)]) = <[_; 1]>::try_from(entries) else {
        let msg = format!("a hash key mapping has exactly one key; {EXPECTED}");
        errs.at(&raw.referenced, at, msg);
        return None;
    };
    let at = format!("{at}.{}", key.value);
    // Header and cookie names are RFC 9110 / RFC 6265 tokens; a query parameter name is compared
    // as written, so it must need no percent-encoding.
    let (key_of, valid): (fn(String) -> HashKey, _) = match key.value.as_str() {
        "header" => (HashKey::Header, is_token(&name.value)),
        "cookie" => (HashKey::Cookie, is_token(&name.value)),
        "query" => (HashKey::Query, is_query_name(&name.value)),
        other => {
            let msg = format!("unknown hash key `{other}`; {EXPECTED}");
            errs.at(&key.referenced, at, msg);
            return None;
        }
    };
    if !valid {
        let msg = format!("`{}` is not a valid {} name", name.value, key.value);
        errs.at(&name.referenced, at, msg);
        return None;
    }
    Some(key_of(name.value))
}

fn proxy_version(text: &str) -> Result<ProxyVersion, String> {
    match text.trim() {
        "v1" => Ok(ProxyVersion::V1),
        "v2" => Ok(ProxyVersion::V2),
        other => Err(format!(
            "`{other}` is not a PROXY protocol version; expected `v1` (text) or `v2` (binary)"
        )),
    }
}

/// `retries` when the pool does not say: `min(2, backends - 1)`.
pub(crate) fn default_retries(backends: usize) -> u32 {
    // At most 2: fits in u32.
    backends.saturating_sub(1).min(2) as u32
}

/// `retries`: 0..=[`MAX_RETRIES`], and each retry needs another backend to try.
fn retries(raw: &Spanned<String>, backends: usize, at: &str, errs: &mut Errors) -> Option<u32> {
    // MAX_RETRIES fits in u32.
    let n = errs.check(raw, at, |s| count_in(s, 0, MAX_RETRIES))?;
    // With no backends, `backends` already has an error.
    if backends > 0 && n >= backends {
        let msg = format!(
            "{n} retries need at least {} backends (each retry tries another one); this pool has {backends}",
            n + 1
        );
        errs.at(&raw.referenced, at, msg);
        return None;
    }
    Some(n as u32)
}
