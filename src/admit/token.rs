//! Finding the bearer credential in a request, and removing it from what the backend receives.
//!
//! Owns: the four places a token may travel (`Authorization: Bearer`, a query parameter, a cookie,
//! a `Sec-WebSocket-Protocol` entry after a marker, for browsers that cannot set headers), the
//! order they are tried in, and the "two credentials are ambiguous" rule (400). Also the helpers
//! that strip a credential from the query, a `Cookie` line or the offered subprotocols before
//! forwarding. Does not own verification (`jwt`, `auth_request`) or the decision to strip
//! (`forward_token`, applied where the backend request is built).

use crate::config::policy::TokenSource;
use crate::wire::Target;
use crate::wire::{Fields, Head};

/// A credential and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub token: String,
    pub source: TokenSource,
}

/// A configured source carries two credentials (two `Authorization` lines, the query parameter
/// or cookie twice, the subprotocol marker twice): the request is ambiguous, 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate(pub TokenSource);

/// The credential of the first configured source that holds one.
///
/// Every configured source is checked for duplicates, also those after the winner, so that a
/// request carrying two credentials is refused whatever the order. A source whose value is empty
/// (`Bearer ` with nothing after it, `?access_token=`, `session=`, a marker as the last entry)
/// counts as absent, but still counts towards a duplicate. `Authorization` with another scheme
/// (`Basic`) is not a bearer credential and is left alone.
pub fn find(
    head: &Head,
    target: &Target,
    sources: &[TokenSource],
) -> Result<Option<Found>, Duplicate> {
    let mut found = None;
    for source in sources {
        let value = match source {
            TokenSource::Header => from_header(head),
            TokenSource::Query(name) => from_query(&target.query, name),
            TokenSource::Cookie(name) => from_cookies(head, name),
            TokenSource::Subprotocol { marker } => from_subprotocol(head, marker),
        }
        .map_err(|()| Duplicate(source.clone()))?;
        if found.is_none()
            && let Some(token) = value.filter(|t| !t.is_empty())
        {
            found = Some(Found {
                token,
                source: source.clone(),
            });
        }
    }
    Ok(found)
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`, scheme case-insensitive.
fn from_header(head: &Head) -> Result<Option<String>, ()> {
    match head.single("authorization") {
        Ok(value) => {
            let value = String::from_utf8_lossy(value);
            let value = value.trim();
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            Ok(scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned()))
        }
        Err(0) => Ok(None),
        Err(_) => Err(()),
    }
}

/// RFC 6750 §2.3: `?<name>=<token>`, percent-decoded (names are compared decoded too, so
/// `access%5Ftoken` is the same parameter).
fn from_query(query: &str, name: &str) -> Result<Option<String>, ()> {
    let mut found = None;
    for pair in query.strip_prefix('?').unwrap_or(query).split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key) == name {
            if found.is_some() {
                return Err(());
            }
            found = Some(percent_decode(value));
        }
    }
    Ok(found)
}

/// RFC 6265 §5.4: `name=value` pairs separated by `;`, across every `Cookie` line. Names are
/// case-sensitive; a quoted value loses its quotes.
fn from_cookies(head: &Head, name: &str) -> Result<Option<String>, ()> {
    let mut found = None;
    for line in head.values("cookie") {
        for (key, value) in cookie_pairs(line) {
            if key == name.as_bytes() {
                if found.is_some() {
                    return Err(());
                }
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                found = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    Ok(found)
}

/// `Sec-WebSocket-Protocol: <marker>, <token>[, others]`: the entry right after the marker.
fn from_subprotocol(head: &Head, marker: &str) -> Result<Option<String>, ()> {
    let offered: Vec<&str> = head.tokens("sec-websocket-protocol").collect();
    let mut found = None;
    for (i, entry) in offered.iter().enumerate() {
        if *entry == marker {
            if found.is_some() {
                return Err(());
            }
            found = Some(
                offered
                    .get(i + 1)
                    .map_or_else(String::new, |t| (*t).to_owned()),
            );
        }
    }
    Ok(found)
}

/// Split one `Cookie` value into trimmed `(name, value)` pairs.
///
/// By hand rather than with the `cookie` crate: its `split_parse` skips pairs it cannot parse
/// and yields decoded strings, but the token rules need every pair as sent (a second cookie of
/// the same name, even a malformed one, makes the request ambiguous) and [`strip_cookie`]
/// rebuilds the line from the original bytes minus one pair.
fn cookie_pairs(line: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    line.split(|&b| b == b';').filter_map(|pair| {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            return None;
        }
        let eq = pair.iter().position(|&b| b == b'=');
        Some(match eq {
            Some(i) => (pair[..i].trim_ascii(), pair[i + 1..].trim_ascii()),
            None => (pair, &b""[..]),
        })
    })
}

/// The query without every `name` parameter (and without empty `&&` segments). Keeps the
/// leading `?` only if something remains.
pub fn strip_query(query: &str, name: &str) -> String {
    let kept: Vec<&str> = query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| percent_decode(pair.split_once('=').map_or(*pair, |(k, _)| k)) != name)
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// One `Cookie` line without the `name` cookie; `None` when no cookie remains (drop the line).
pub fn strip_cookie(value: &[u8], name: &str) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            cookie_pairs(pair)
                .next()
                .is_none_or(|(k, _)| k != name.as_bytes())
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b"; "[..]))
}

/// The offered subprotocols without the marker and the token right after it.
pub fn strip_subprotocols(offered: &[String], marker: &str, token: &str) -> Vec<String> {
    let mut kept = Vec::with_capacity(offered.len());
    let mut after_marker = false;
    for entry in offered {
        let skip = entry == marker || (after_marker && entry == token);
        after_marker = entry == marker;
        if !skip {
            kept.push(entry.clone());
        }
    }
    kept
}

/// RFC 3986 §2.1 percent-decoding; a broken escape stays as written. `+` is not a space here
/// (tokens never hold either).
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    String::from_utf8_lossy(&crate::wire::percent_decode(text)).into_owned()
}

#[cfg(test)]
mod tests;
