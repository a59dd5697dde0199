//! RFC 6455 §4.2.1: the client's opening handshake, checked as a numbered list.
//!
//! Owns: the `Host` rules (exactly one, well formed, equal to the TLS server name when one was
//! sent) and the upgrade checklist, producing an [`UpgradeRequest`] or a [`Refusal`]. Does not own
//! syntax (hyper) or framing (`wire::check_framing`), routing (`route`) or what is forwarded (`proxy::forward`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::Refusal;
use hyper::{Method, Version};

use crate::wire::{BodyLength, Fields, Head};
pub use crate::wire::{Host, UpgradeRequest};

/// Exactly one well-formed `Host`; with SNI present it must name the same server (RFC 9110
/// §7.4: otherwise 421 Misdirected Request).
pub fn host(head: &Head, sni: Option<&str>) -> Result<Host, Refusal> {
    let raw = head.single("host").map_err(|_| Refusal::BadHost)?;
    let raw = std::str::from_utf8(raw).map_err(|_| Refusal::BadHost)?;
    let name = parse_host(raw).ok_or(Refusal::BadHost)?;
    if let Some(sni) = sni
        && !sni.eq_ignore_ascii_case(&name)
    {
        return Err(Refusal::MisdirectedRequest);
    }
    Ok(Host {
        name,
        raw: raw.to_owned(),
    })
}

/// `reg-name / IPv4 / "[" IPv6 "]"` with an optional port, lower-cased, port dropped.
fn parse_host(raw: &str) -> Option<String> {
    let (name, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        // Canonical form, so `[0:0::1]` and `[::1]` route alike.
        let v6 = v6.parse::<std::net::Ipv6Addr>().ok()?.to_string();
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (v6, port)
    } else {
        let (name, port) = match raw.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (raw, None),
        };
        let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if name.is_empty() || name.len() > 253 || !name.bytes().all(ok) {
            return None;
        }
        (name.to_ascii_lowercase(), port)
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(name)
}

/// The §4.2.1 checklist, in order. `body` is what `wire::check_framing` found.
pub fn upgrade(head: &Head, body: BodyLength) -> Result<UpgradeRequest, Refusal> {
    // 3. An |Upgrade| header field containing the value "websocket" (anything else, h2c included,
    //    is not a WebSocket upgrade and this route serves nothing else).
    if !head.has_token("upgrade", "websocket") {
        return Err(Refusal::NotWebSocket);
    }
    // 1. An HTTP/1.1 or higher GET request.
    if head.method != Method::GET {
        return Err(Refusal::MethodNotAllowed);
    }
    if head.version < Version::HTTP_11 {
        return Err(Refusal::HttpVersion);
    }
    // 4. A |Connection| header field that includes the token "Upgrade" (a list, over all lines).
    if !head.has_token("connection", "upgrade") {
        return Err(Refusal::ConnectionNotUpgrade);
    }
    // 5. A |Sec-WebSocket-Key| header field: base64 of a 16-byte value.
    let key = head
        .single("sec-websocket-key")
        .map_err(|_| Refusal::BadKey)?;
    let key = std::str::from_utf8(key)
        .map_err(|_| Refusal::BadKey)?
        .trim();
    match STANDARD.decode(key) {
        Ok(bytes) if bytes.len() == 16 => {}
        _ => return Err(Refusal::BadKey),
    }
    // 6. A |Sec-WebSocket-Version| header field with value 13 (§4.4: else 426 naming 13).
    if head.single("sec-websocket-version").map(|v| v.trim_ascii()) != Ok(b"13") {
        return Err(Refusal::WsVersion);
    }
    // A GET upgrade carries no body; one would be read as the first frames by the backend.
    if body != BodyLength::Exact(0) {
        return Err(Refusal::BodyOnUpgrade);
    }
    // 8./9. Optional subprotocols and extensions, kept to verify the backend's choice.
    let protocols = head
        .tokens("sec-websocket-protocol")
        .map(str::to_owned)
        .collect();
    let extensions = head
        .tokens("sec-websocket-extensions")
        .filter_map(|e| e.split(';').next())
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    Ok(UpgradeRequest {
        key: key.to_owned(),
        protocols,
        extensions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{check_framing, parse_request};

    const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: Ws.Test:8443\r\nUpgrade: WebSocket\r\n\
        Connection: keep-alive\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

    fn req(raw: &str) -> Head {
        parse_request(raw.as_bytes(), 32).unwrap()
    }

    fn check(raw: &str) -> Result<UpgradeRequest, Refusal> {
        let h = req(raw);
        upgrade(&h, check_framing(&h)?)
    }

    #[test]
    fn accepts_a_browser_handshake() {
        let u = check(GOOD).unwrap();
        assert_eq!(u.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(u.protocols, ["chat", "superchat"]);
        assert_eq!(u.extensions, ["permessage-deflate"]);
        let h = host(&req(GOOD), Some("ws.test")).unwrap();
        assert_eq!(h.name, "ws.test");
        assert_eq!(h.raw, "Ws.Test:8443");
    }

    #[test]
    fn each_rule_has_its_refusal() {
        let cases: &[(&str, &str, Refusal)] = &[
            ("Upgrade: WebSocket", "Upgrade: h2c", Refusal::NotWebSocket),
            ("GET /chat", "POST /chat", Refusal::MethodNotAllowed),
            ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", Refusal::HttpVersion),
            (
                "Connection: Upgrade",
                "Connection: close",
                Refusal::ConnectionNotUpgrade,
            ),
            (
                "dGhlIHNhbXBsZSBub25jZQ==",
                "dGhlIHNhbXBsZQ==",
                Refusal::BadKey,
            ),
            ("dGhlIHNhbXBsZSBub25jZQ==", "not base64!", Refusal::BadKey),
            ("Version: 13", "Version: 8", Refusal::WsVersion),
            (
                "Version: 13\r\n",
                "Version: 13\r\nSec-WebSocket-Version: 13\r\n",
                Refusal::WsVersion,
            ),
            (
                "Version: 13\r\n",
                "Version: 13\r\nContent-Length: 3\r\n",
                Refusal::BodyOnUpgrade,
            ),
            (
                "Version: 13\r\n",
                "Version: 13\r\nTransfer-Encoding: chunked\r\n",
                Refusal::BodyOnUpgrade,
            ),
        ];
        for (from, to, want) in cases {
            let raw = GOOD.replacen(from, to, 1);
            assert_ne!(raw, GOOD, "{from}");
            assert_eq!(check(&raw), Err(*want), "{to}");
        }
        let two_keys = GOOD.replacen(
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version",
            1,
        );
        assert_eq!(check(&two_keys), Err(Refusal::BadKey));
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            host(&req(GOOD), Some("other.test")),
            Err(Refusal::MisdirectedRequest)
        );
        assert!(host(&req(GOOD), None).is_ok());
        for bad in [
            "Host: a b\r\n",
            "Host: x:y\r\n",
            "Host: \r\n",
            "Host: [zz]\r\n",
            "Host: a\r\nHost: a\r\n",
        ] {
            let raw = format!("GET / HTTP/1.1\r\n{bad}\r\n");
            assert_eq!(host(&req(&raw), None), Err(Refusal::BadHost), "{bad}");
        }
        let v6 = req("GET / HTTP/1.1\r\nHost: [0:0::1]:8443\r\n\r\n");
        assert_eq!(host(&v6, None).unwrap().name, "::1");
        let none = req("GET / HTTP/1.1\r\n\r\n");
        assert_eq!(host(&none, None), Err(Refusal::BadHost));
    }
}
