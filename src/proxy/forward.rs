//! The upgrade request wsgate sends to a backend: rebuilt from validated parts, never the client's
//! bytes passed through.
//!
//! Removed: hop-by-hop fields (RFC 9110 §7.6.1: `Connection` and every field it names, Keep-Alive,
//! Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authorization), framing fields,
//! and every forwarding field the client sent (`X-Forwarded-*`, `Forwarded`, `X-Client-Cert-*`).
//! Set: `Upgrade: websocket`, `Connection: upgrade`, the validated key and version,
//! `X-Forwarded-For/Proto/Host` from what wsgate itself knows, and `X-Client-Cert-Subject/SAN`
//! from a client certificate it verified.

use std::net::IpAddr;

use http_body_util::Empty;
use hyper::{HeaderMap, Method, Request, Uri, Version};

use crate::admit::{Admission, token};
use crate::config::policy::TokenSource;
use crate::error::Refusal;
use crate::runtime::client_auth::{CLIENT_CERT_SAN, CLIENT_CERT_SUBJECT, ClientCert};
use crate::upstream::h1::Outgoing;
use crate::wire::Target;
use crate::wire::{self, Head, end_to_end};
use crate::wire::{Host, UpgradeRequest};

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
    // Set by wsgate alone, from a certificate it verified: never the client's say-so.
    CLIENT_CERT_SUBJECT,
    CLIENT_CERT_SAN,
];

/// Fields a client cannot make wsgate drop by naming them in `Connection`.
const PROTECTED: &[&str] = &["host", "sec-websocket-extensions"];

/// Everything the rebuilt request is made of.
pub struct Forward<'a> {
    pub head: &'a Head,
    pub target: &'a Target,
    pub host: &'a Host,
    /// With `protocols` already the list to offer the backend (credential entries removed).
    pub upgrade: &'a UpgradeRequest,
    pub admission: &'a Admission,
    pub client_ip: IpAddr,
    /// `https` or `http`: how the client reached wsgate.
    pub proto: &'static str,
    /// The client's verified certificate: its names go to `X-Client-Cert-Subject` / `-SAN`.
    pub client_cert: Option<&'a ClientCert>,
}

/// Build the request to send to the backend. Header names go out title-cased (hyper's
/// `title_case_headers`), `Host` first; the only failure is a target or value the `http` types
/// refuse, which the client sent (400).
pub fn build(f: &Forward<'_>) -> Result<Outgoing, Refusal> {
    let adm = f.admission;
    let strip = adm.strip.as_ref().map(|found| &found.source);
    let query = match strip {
        Some(TokenSource::Query(name)) => token::strip_query(&f.target.query, name),
        _ => f.target.query.clone(),
    };
    let uri = Uri::try_from(format!("{}{query}", f.target.path)).map_err(|_| Refusal::BadTarget)?;
    let mut h = HeaderMap::with_capacity(f.head.headers.len() + 8);
    add(&mut h, "host", f.host.raw.as_bytes())?;
    for (name, value) in end_to_end(&f.head.headers, PROTECTED) {
        let lower = name.as_str();
        if DROPPED.contains(&lower)
            || adm.remove_headers.iter().any(|r| r == lower)
            || (lower == "authorization" && strip == Some(&TokenSource::Header))
        {
            continue;
        }
        if let (Some(TokenSource::Cookie(cookie)), "cookie") = (strip, lower) {
            if let Some(kept) = token::strip_cookie(value.as_bytes(), cookie) {
                add(&mut h, lower, &kept)?;
            }
            continue;
        }
        h.append(name.clone(), value.clone());
    }
    add(&mut h, "upgrade", b"websocket")?;
    add(&mut h, "connection", b"upgrade")?;
    add(&mut h, "sec-websocket-key", f.upgrade.key.as_bytes())?;
    add(&mut h, "sec-websocket-version", b"13")?;
    if !f.upgrade.protocols.is_empty() {
        let offered = f.upgrade.protocols.join(", ");
        add(&mut h, "sec-websocket-protocol", offered.as_bytes())?;
    }
    for (name, value) in &adm.set_headers {
        add(&mut h, name, value)?;
    }
    add(
        &mut h,
        "x-forwarded-for",
        f.client_ip.to_string().as_bytes(),
    )?;
    add(&mut h, "x-forwarded-proto", f.proto.as_bytes())?;
    if let Some(cert) = f.client_cert {
        for (name, value) in [
            (CLIENT_CERT_SUBJECT, &cert.subject),
            (CLIENT_CERT_SAN, &cert.san),
        ] {
            if let Some(value) = value {
                add(&mut h, name, value.as_bytes())?;
            }
        }
    }
    add(&mut h, "x-forwarded-host", f.host.raw.as_bytes())?;
    let mut request = Request::new(Empty::new());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = h;
    Ok(request)
}

/// Append one field line (`wire::append`). Names and values were checked by hyper's parser (or
/// come from config); one the `http` types still refuse is the client's fault.
fn add(h: &mut HeaderMap, name: &str, value: &[u8]) -> Result<(), Refusal> {
    wire::append(h, name, value)
        .then_some(())
        .ok_or(Refusal::MalformedHead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::validate;
    use crate::wire::{self, check_framing, parse_request};

    #[test]
    fn rebuilds_without_hop_by_hop_or_client_forwarding_fields() {
        let raw = "GET /a/../chat?room=1 HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n\
            Connection: Upgrade, X-Secret, Sec-WebSocket-Protocol\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Protocol: chat\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\
            X-Forwarded-Host: evil\r\nCookie: a=b\r\n\r\n";
        let head = parse_request(raw.as_bytes(), 32).unwrap();
        let upgrade = validate::upgrade(&head, check_framing(&head).unwrap()).unwrap();
        let host = validate::host(&head, None).unwrap();
        let target = wire::normalise(&wire::raw_target(&head)).unwrap();
        let out = build(&Forward {
            head: &head,
            target: &target,
            host: &host,
            upgrade: &upgrade,
            admission: &Admission::default(),
            client_ip: "127.0.0.7".parse().unwrap(),
            proto: "https",
            client_cert: None,
        })
        .unwrap();
        assert_eq!(
            (out.method(), out.uri().to_string()),
            (&Method::GET, "/chat?room=1".into())
        );
        let h = out.headers();
        let first = h.keys().next().map(hyper::header::HeaderName::as_str);
        assert_eq!(first, Some("host"));
        let all = |name: &str| -> Vec<&str> {
            h.get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        for gone in ["x-secret", "keep-alive", "te", "forwarded"] {
            assert!(all(gone).is_empty(), "{gone} in {h:?}");
        }
        for (name, want) in [
            ("host", "ws.test"),
            ("cookie", "a=b"),
            ("sec-websocket-protocol", "chat"),
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("x-forwarded-for", "127.0.0.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "ws.test"),
        ] {
            assert_eq!(all(name), [want], "{name} in {h:?}");
        }
    }
}
