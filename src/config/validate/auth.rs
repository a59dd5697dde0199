//! `auth:` → [`AuthConfig`]: exactly one method (`jwt`, checked in [`super::jwt`], or
//! `request`), where the token comes from, which claims become backend headers, and which headers
//! of an auth service's answer are copied. Extracting and checking tokens is `crate::admit`'s job.

use std::path::Path;
use std::time::Duration;

use serde_saphyr::Location;

use super::Errors;
use super::jwt::jwt_config;
use super::syntax::{http_url, is_query_name, is_token, settable_header};
use crate::config::policy::{AuthConfig, AuthMethod, AuthRequestConfig, TokenSource};
use crate::config::raw::{
    RawAuth, RawAuthRequest, RawTokenSource, Spanned, SpannedList, SpannedMap,
};
use crate::config::units::parse_positive_duration;

/// Subprotocol marker of a bare `subprotocol` source: `Sec-WebSocket-Protocol: bearer, TOKEN`.
const DEFAULT_MARKER: &str = "bearer";

/// `auth` at `at` (`routes[2].auth`). `None`: errors reported.
pub(super) fn auth(
    raw: Spanned<RawAuth>,
    at: &str,
    base: &Path,
    errs: &mut Errors,
) -> Option<AuthConfig> {
    let (loc, raw) = (raw.referenced, raw.value);
    let before = errs.list.len();
    let by_request = raw.jwt.is_none() && raw.request.is_some();
    let method = match (raw.jwt, raw.request) {
        (Some(_), Some(request)) => {
            let msg = "set exactly one of `jwt` and `request`, not both";
            errs.at(&request.referenced, format!("{at}.request"), msg);
            None
        }
        (None, None) => {
            let msg = "needs `jwt` (verify tokens here) or `request` (ask an HTTP service)";
            errs.at(&loc, at, msg);
            None
        }
        (Some(jwt), None) => {
            jwt_config(jwt.value, &format!("{at}.jwt"), base, errs).map(AuthMethod::Jwt)
        }
        (None, Some(request)) => {
            auth_request(request.value, &format!("{at}.request"), errs).map(AuthMethod::Request)
        }
    };
    let token_from = match raw.token_from {
        None => vec![TokenSource::Header],
        Some(list) => token_sources(list, &format!("{at}.token_from"), errs),
    };
    let claims_to_headers = match raw.claims_to_headers {
        None => Vec::new(),
        Some(map) if by_request => {
            let msg = "only applies to `jwt`; an auth `request` sets headers through `request.copy_headers`";
            errs.at(&map.referenced, format!("{at}.claims_to_headers"), msg);
            Vec::new()
        }
        Some(map) => claims_to_headers(map, &format!("{at}.claims_to_headers"), errs),
    };
    let method = method.filter(|_| errs.list.len() == before)?;
    Some(AuthConfig {
        method,
        token_from,
        forward_token: raw.forward_token.is_some_and(|f| f.value),
        claims_to_headers,
    })
}

/// `token_from`: a non-empty list without repeats and with at most one `subprotocol`.
fn token_sources(
    raw: Spanned<Vec<Spanned<RawTokenSource>>>,
    at: &str,
    errs: &mut Errors,
) -> Vec<TokenSource> {
    if raw.value.is_empty() {
        let msg =
            "is empty; remove the key for the default `[header]`, or list where tokens come from";
        errs.at(&raw.referenced, at, msg);
    }
    let mut out: Vec<TokenSource> = Vec::new();
    for (i, source) in raw.value.into_iter().enumerate() {
        let here = format!("{at}[{i}]");
        let Some(parsed) = token_source(source.value, &source.referenced, &here, errs) else {
            continue;
        };
        let is_subprotocol = |s: &TokenSource| matches!(s, TokenSource::Subprotocol { .. });
        if out.contains(&parsed) {
            errs.at(&source.referenced, here, "is listed twice");
        } else if is_subprotocol(&parsed) && out.iter().any(is_subprotocol) {
            errs.at(
                &source.referenced,
                here,
                "only one `subprotocol` source is allowed",
            );
        } else {
            out.push(parsed);
        }
    }
    out
}

fn token_source(
    raw: RawTokenSource,
    loc: &Location,
    at: &str,
    errs: &mut Errors,
) -> Option<TokenSource> {
    const EXPECTED: &str = "expected `header`, `subprotocol`, `{ query: NAME }`, `{ cookie: NAME }` or `{ subprotocol: MARKER }`";
    let entries = match raw {
        RawTokenSource::Word(w) if w == "header" => return Some(TokenSource::Header),
        RawTokenSource::Word(w) if w == "subprotocol" => {
            let marker = DEFAULT_MARKER.to_owned();
            return Some(TokenSource::Subprotocol { marker });
        }
        RawTokenSource::Word(w) => {
            errs.at(loc, at, format!("unknown token source `{w}`; {EXPECTED}"));
            return None;
        }
        RawTokenSource::Map(entries) => entries,
    };
    let [(key, name)] = entries.as_slice() else {
        errs.at(
            loc,
            at,
            format!("a token source mapping has exactly one key; {EXPECTED}"),
        );
        return None;
    };
    let at = format!("{at}.{}", key.value);
    let source: fn(String) -> TokenSource = match key.value.as_str() {
        "query" => TokenSource::Query,
        "cookie" => TokenSource::Cookie,
        "subprotocol" => |marker| TokenSource::Subprotocol { marker },
        other => {
            errs.at(
                &key.referenced,
                at,
                format!("unknown token source `{other}`; {EXPECTED}"),
            );
            return None;
        }
    };
    let valid = match key.value.as_str() {
        "query" => is_query_name(&name.value),
        _ => is_token(&name.value),
    };
    if !valid {
        let msg = format!("`{}` is not a valid {} name", name.value, key.value);
        errs.at(&name.referenced, at, msg);
        return None;
    }
    Some(source(name.value.clone()))
}

/// `claims_to_headers`: claim → header, sorted by claim; each header settable and used once.
fn claims_to_headers(raw: SpannedMap, at: &str, errs: &mut Errors) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (claim, header) in sorted(raw) {
        let here = format!("{at}.{}", claim.value);
        if claim.value.trim().is_empty() {
            errs.at(&claim.referenced, here, "empty claim name");
            continue;
        }
        if let Err(msg) = settable_header(&header.value) {
            errs.at(&header.referenced, here, msg);
        } else if let Some((first, _)) =
            (out.iter()).find(|(_, h)| h.eq_ignore_ascii_case(&header.value))
        {
            let msg = format!(
                "header `{}` is already set from claim `{first}`",
                header.value
            );
            errs.at(&header.referenced, here, msg);
        } else {
            out.push((claim.value, header.value));
        }
    }
    out
}

/// A mapping's entries in key order (YAML mappings have none; this keeps output stable).
pub(super) fn sorted(raw: SpannedMap) -> Vec<(Spanned<String>, Spanned<String>)> {
    let mut entries: Vec<_> = raw.value.into_iter().collect();
    entries.sort_by(|a, b| a.0.value.cmp(&b.0.value));
    entries
}

/// `auth.request`: where to ask, how long to wait, which answer headers to copy.
fn auth_request(raw: RawAuthRequest, at: &str, errs: &mut Errors) -> Option<AuthRequestConfig> {
    let target = errs.check(&raw.url, format!("{at}.url"), http_url);
    let timeout = match &raw.timeout {
        None => Some(Duration::from_secs(2)),
        Some(t) => errs.check(t, format!("{at}.timeout"), parse_positive_duration),
    };
    let copy_headers = match raw.copy_headers {
        None => Some(Vec::new()),
        Some(list) => header_list(list, &format!("{at}.copy_headers"), errs),
    };
    let target = target?;
    Some(AuthRequestConfig {
        url: raw.url.value,
        authority: target.authority,
        path: target.path,
        timeout: timeout?,
        copy_headers: copy_headers?,
    })
}

/// Settable header names, each once (compared case-insensitively).
fn header_list(raw: SpannedList, at: &str, errs: &mut Errors) -> Option<Vec<String>> {
    let before = errs.list.len();
    let mut out: Vec<String> = Vec::new();
    for (i, name) in raw.value.into_iter().enumerate() {
        let here = format!("{at}[{i}]");
        if let Err(msg) = settable_header(&name.value) {
            errs.at(&name.referenced, here, msg);
        } else if out.iter().any(|h| h.eq_ignore_ascii_case(&name.value)) {
            errs.at(
                &name.referenced,
                here,
                format!("`{}` is listed twice", name.value),
            );
        } else {
            out.push(name.value);
        }
    }
    (errs.list.len() == before).then_some(out)
}
