//! The upgrade request wsgate sends to a backend: rebuilt from validated parts, never the client's
//! bytes passed through.
//!
//! Removed: hop-by-hop fields (RFC 9110 §7.6.1: `Connection` and every field it names, Keep-Alive,
//! Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authorization), framing fields,
//! and every forwarding field the client sent (`X-Forwarded-*`, `Forwarded`). Set: `Upgrade:
//! websocket`, `Connection: upgrade`, the validated key and version, and `X-Forwarded-For/Proto/Host`
//! from what wsgate itself knows.

use std::net::IpAddr;

use crate::admit::{Admission, token};
use crate::config::policy::TokenSource;
use crate::proxy::head::{Fields, RequestHead, is_hop_by_hop};
use crate::proxy::route::Target;
use crate::proxy::validate::{Host, UpgradeRequest};

/// Fields never copied from the client.
const DROPPED: &[&str] = &[
    "host",
    "content-length",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

/// Fields a client cannot make wsgate drop by naming them in `Connection`.
const PROTECTED: &[&str] = &["host", "sec-websocket-extensions"];

/// Everything the rebuilt request is made of.
pub struct Forward<'a> {
    pub head: &'a RequestHead,
    pub target: &'a Target,
    pub host: &'a Host,
    /// With `protocols` already the list to offer the backend (credential entries removed).
    pub upgrade: &'a UpgradeRequest,
    pub admission: &'a Admission,
    pub client_ip: IpAddr,
    /// `https` or `http`: how the client reached wsgate.
    pub proto: &'static str,
}

/// Serialise the request head to send to the backend.
pub fn build(f: &Forward<'_>) -> Vec<u8> {
    let named: Vec<String> = f
        .head
        .tokens("connection")
        .map(str::to_ascii_lowercase)
        .filter(|t| !PROTECTED.contains(&t.as_str()))
        .collect();
    let adm = f.admission;
    let strip = adm.strip.as_ref().map(|found| &found.source);
    let query = match strip {
        Some(TokenSource::Query(name)) => token::strip_query(&f.target.query, name),
        _ => f.target.query.clone(),
    };
    let mut out = Vec::with_capacity(512 + f.head.fields.len() * 48);
    push(&mut out, &["GET ", &f.target.path, &query, " HTTP/1.1\r\n"]);
    push(&mut out, &["Host: ", &f.host.raw, "\r\n"]);
    for field in &f.head.fields {
        let lower = field.name.to_ascii_lowercase();
        if (is_hop_by_hop(&lower) || DROPPED.contains(&lower.as_str()))
            || named.contains(&lower)
            || adm.remove_headers.contains(&lower)
            || (lower == "authorization" && strip == Some(&TokenSource::Header))
        {
            continue;
        }
        if let (Some(TokenSource::Cookie(name)), "cookie") = (strip, lower.as_str()) {
            if let Some(kept) = token::strip_cookie(&field.value, name) {
                line(&mut out, &field.name, &kept);
            }
            continue;
        }
        line(&mut out, &field.name, &field.value);
    }
    push(&mut out, &["Upgrade: websocket\r\nConnection: upgrade\r\n"]);
    push(&mut out, &["Sec-WebSocket-Key: ", &f.upgrade.key, "\r\n"]);
    push(&mut out, &["Sec-WebSocket-Version: 13\r\n"]);
    if !f.upgrade.protocols.is_empty() {
        let offered = f.upgrade.protocols.join(", ");
        push(&mut out, &["Sec-WebSocket-Protocol: ", &offered, "\r\n"]);
    }
    for (name, value) in &adm.set_headers {
        line(&mut out, name, value);
    }
    let client = f.client_ip.to_string();
    push(&mut out, &["X-Forwarded-For: ", &client, "\r\n"]);
    push(&mut out, &["X-Forwarded-Proto: ", f.proto, "\r\n"]);
    push(&mut out, &["X-Forwarded-Host: ", &f.host.raw, "\r\n\r\n"]);
    out
}

fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::head::{check_framing, parse_request};
    use crate::proxy::{route, validate};

    #[test]
    fn rebuilds_without_hop_by_hop_or_client_forwarding_fields() {
        let raw = "GET /a/../chat?room=1 HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n\
            Connection: Upgrade, X-Secret, Sec-WebSocket-Protocol\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Protocol: chat\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\
            X-Forwarded-Host: evil\r\nCookie: a=b\r\n\r\n";
        let head = parse_request(raw.as_bytes().to_vec(), raw.len(), 32).unwrap();
        let upgrade = validate::upgrade(&head, check_framing(&head).unwrap()).unwrap();
        let host = validate::host(&head, None).unwrap();
        let target = route::normalise(&head.target).unwrap();
        let out = build(&Forward {
            head: &head,
            target: &target,
            host: &host,
            upgrade: &upgrade,
            admission: &Admission::default(),
            client_ip: "127.0.0.7".parse().unwrap(),
            proto: "https",
        });
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("GET /chat?room=1 HTTP/1.1\r\nHost: ws.test\r\n"),
            "{text}"
        );
        for gone in [
            "X-Secret",
            "Keep-Alive",
            "TE:",
            "6.6.6.6",
            "evil",
            "Forwarded:",
        ] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        for kept in [
            "Cookie: a=b\r\n",
            "Sec-WebSocket-Protocol: chat\r\n",
            "Upgrade: websocket\r\nConnection: upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "X-Forwarded-For: 127.0.0.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ws.test\r\n\r\n",
        ] {
            assert!(text.contains(kept), "{kept} missing in {text}");
        }
    }
}
