//! The HTTP vocabulary every stage shares, below all of them: a request is an
//! [`http::request::Parts`](Head) whatever the protocol it came over (HTTP/1.1 from hyper's
//! server, an HTTP/2 stream turned into the upgrade it stands for), and fields are read through
//! [`Fields`] on a `HeaderMap` (every line of a repeated field via `get_all`).
//!
//! Owns: field lookups (one value, every value, token lists across lines), the hop-by-hop list
//! (one filter for requests, answers and subrequests), body framing rules (RFC 9112 §6), and the
//! plain data the stages hand each other ([`Target`], [`Host`], [`UpgradeRequest`]). Imports
//! nothing of the front, admission or the backend leg; they all import this.

pub mod key;
mod parse;
mod target;

use hyper::HeaderMap;

pub use parse::{HeadError, parse_request};
pub use target::{Target, normalise, percent_decode};

use crate::error::Refusal;

/// A request as the stages see it: method, target, version and fields. The body is not here.
pub type Head = hyper::http::request::Parts;

/// Hop-by-hop fields (RFC 9110 §7.6.1, plus `Proxy-Connection`, which proxies still see): about
/// one connection, never forwarded, never relayed.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// True for a lower-case field name in [`HOP_BY_HOP`].
pub fn is_hop_by_hop(lower: &str) -> bool {
    HOP_BY_HOP.contains(&lower)
}

/// The fields a message carries that are about its connection: the hop-by-hop ones and every
/// one its `Connection` field names (lower case), for filters that drop them.
pub fn connection_scoped(headers: &HeaderMap) -> Vec<String> {
    headers
        .tokens("connection")
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The `Host` of a request, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Lower-case name or IP literal (IPv6 without brackets), no port; what routes match.
    pub name: String,
    /// The field value as received, for `X-Forwarded-Host` and forwarding.
    pub raw: String,
}

/// What the RFC 6455 checklist extracted from a valid upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// `Sec-WebSocket-Key` as sent (base64 of 16 bytes).
    pub key: String,
    /// Subprotocols offered, in order.
    pub protocols: Vec<String>,
    /// Extension names offered (parameters stripped).
    pub extensions: Vec<String>,
}

/// Field lookups over every line of a field.
pub trait Fields {
    fn headers(&self) -> &HeaderMap;

    /// Every value of the named field, in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .get_all(name)
            .into_iter()
            .map(|v| v.as_bytes())
    }

    /// The value of a field that must appear exactly once; `Err(n)` with the count otherwise.
    fn single(&self, name: &str) -> Result<&[u8], usize> {
        let mut it = self.headers().get_all(name).into_iter();
        match (it.next(), it.next()) {
            (Some(v), None) => Ok(v.as_bytes()),
            (None, _) => Err(0),
            (Some(_), Some(_)) => Err(2 + it.count()),
        }
    }

    /// Comma-separated tokens across every line of the field, trimmed, empty ones skipped.
    fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name).flat_map(|v| {
            std::str::from_utf8(v)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
        })
    }

    /// True when the comma-separated list of the field holds `token` (case-insensitive).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

impl Fields for HeaderMap {
    fn headers(&self) -> &HeaderMap {
        self
    }
}

impl Fields for Head {
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// The request target as received: origin-form `path?query`, or the whole form a client sent
/// otherwise (absolute, authority, asterisk), which [`normalise`] refuses.
pub fn raw_target(head: &Head) -> std::borrow::Cow<'_, str> {
    match head.uri.path_and_query() {
        Some(p) if head.uri.scheme().is_none() && head.uri.authority().is_none() => {
            std::borrow::Cow::Borrowed(p.as_str())
        }
        _ => std::borrow::Cow::Owned(head.uri.to_string()),
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    Exact(u64),
    Chunked,
}

/// RFC 9112 §6.1–6.3: refuse heads whose body framing two parsers could read differently.
/// Returns the declared body length (`Exact(0)` when none).
pub fn check_framing<H: Fields>(head: &H) -> Result<BodyLength, Refusal> {
    let has_te = head.values("transfer-encoding").next().is_some();
    let mut lengths = head.values("content-length");
    let cl = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(v), None) => Some(parse_content_length(v).ok_or(Refusal::AmbiguousFraming)?),
        (Some(_), Some(_)) => return Err(Refusal::AmbiguousFraming),
    };
    if has_te {
        if cl.is_some() {
            return Err(Refusal::AmbiguousFraming);
        }
        let tokens: Vec<&str> = head.tokens("transfer-encoding").collect();
        return if tokens.len() == 1 && tokens[0].eq_ignore_ascii_case("chunked") {
            Ok(BodyLength::Chunked)
        } else {
            Err(Refusal::BadTransferEncoding)
        };
    }
    Ok(BodyLength::Exact(cl.unwrap_or(0)))
}

/// `1*DIGIT` only; no sign, no list (`5, 5` is ambiguous and refused).
fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A request head built from parts, for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn test_head(target: &str, fields: &[(&str, &str)]) -> Head {
    let mut raw = format!("GET {target} HTTP/1.1\r\n");
    for (name, value) in fields {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    parse_request(raw.as_bytes(), 64).expect("a well-formed test head")
}

/// The end-to-end fields of a message, every line of each: none of the hop-by-hop ones and none
/// that its `Connection` names, except those in `protected` (lower case), which a sender cannot
/// make a proxy drop that way. The one filter for requests, answers and subrequests.
pub fn end_to_end<'a>(
    headers: &'a HeaderMap,
    protected: &'a [&'a str],
) -> impl Iterator<
    Item = (
        &'a hyper::header::HeaderName,
        &'a hyper::header::HeaderValue,
    ),
> + 'a {
    let named = connection_scoped(headers);
    headers.iter().filter(move |(name, _)| {
        let lower = name.as_str();
        !(is_hop_by_hop(lower) || named.iter().any(|n| n == lower)) || protected.contains(&lower)
    })
}

/// The one header writer: append a field line from a name and raw value. `false` when the
/// `http` types refuse either (a value from a client or a backend; wsgate's own always pass).
pub fn append(headers: &mut HeaderMap, name: &str, value: &[u8]) -> bool {
    use hyper::header::{HeaderName, HeaderValue};
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value),
    ) {
        (Ok(n), Ok(v)) => {
            headers.append(n, v);
            true
        }
        _ => false,
    }
}
