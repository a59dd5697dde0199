//! RFC 6455 §4.1: the backend's answer to the opening handshake, checked as a numbered list.
//!
//! Owns: deciding between "tunnel" (a correct 101), "relay" (any final non-101 answer, passed on as
//! an ordinary response) and "refuse" (a 101 that breaks a rule, or an interim 1xx). Reads the
//! answer as hyper parsed it (`HeaderMap`: repeated field lines through `get_all`, token lists
//! across lines). Does not own reading the answer (`upstream::h1`) or writing anything to the
//! client (`respond`).

use hyper::{Response, StatusCode, Version};

use crate::error::Refusal;
use crate::wire::key::accept_for;
use crate::wire::{Fields, UpgradeRequest};

/// What to do with the backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A correct 101: tunnel. Carries the negotiated values to pass on to the client.
    Upgrade {
        accept: String,
        protocol: Option<String>,
        extensions: Option<String>,
    },
    /// A final non-101 answer: relay it and close both connections.
    Relay,
}

/// Whether the 101 negotiated permessage-deflate (RFC 7692): RSV1 is then legal on the first
/// frame of a data message.
pub fn deflate(verdict: &Verdict) -> bool {
    let Verdict::Upgrade {
        extensions: Some(ext),
        ..
    } = verdict
    else {
        return false;
    };
    ext.split(',').any(|e| {
        let name = e.split(';').next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("permessage-deflate")
    })
}

/// Which §4.1 rule a 101 broke (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadUpgrade {
    InterimStatus,
    HttpVersion,
    UpgradeNotWebSocket,
    ConnectionNotUpgrade,
    AcceptMissing,
    AcceptWrong,
    ExtensionNotOffered,
    ProtocolNotOffered,
}

impl BadUpgrade {
    pub fn label(self) -> &'static str {
        match self {
            BadUpgrade::InterimStatus => "interim_status",
            BadUpgrade::HttpVersion => "http_version",
            BadUpgrade::UpgradeNotWebSocket => "upgrade_not_websocket",
            BadUpgrade::ConnectionNotUpgrade => "connection_not_upgrade",
            BadUpgrade::AcceptMissing => "accept_missing",
            BadUpgrade::AcceptWrong => "accept_wrong",
            BadUpgrade::ExtensionNotOffered => "extension_not_offered",
            BadUpgrade::ProtocolNotOffered => "protocol_not_offered",
        }
    }
}

impl From<BadUpgrade> for Refusal {
    fn from(_: BadUpgrade) -> Refusal {
        Refusal::BackendBadUpgrade
    }
}

/// Judge the answer against what the client offered.
pub fn check<B>(answer: &Response<B>, req: &UpgradeRequest) -> Result<Verdict, BadUpgrade> {
    let headers = answer.headers();
    // 1. A status other than 101 is handled per HTTP: final answers are relayed; an interim 1xx
    //    in answer to an upgrade is nothing a client could use.
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        return if answer.status().is_informational() {
            Err(BadUpgrade::InterimStatus)
        } else {
            Ok(Verdict::Relay)
        };
    }
    if answer.version() < Version::HTTP_11 {
        return Err(BadUpgrade::HttpVersion);
    }
    // 2. |Upgrade| must be "websocket" (case-insensitive), nothing else.
    let upgrade: Vec<&str> = headers.tokens("upgrade").collect();
    if upgrade.len() != 1 || !upgrade[0].eq_ignore_ascii_case("websocket") {
        return Err(BadUpgrade::UpgradeNotWebSocket);
    }
    // 3. |Connection| must list "Upgrade" (a token list, across all lines).
    if !headers.has_token("connection", "upgrade") {
        return Err(BadUpgrade::ConnectionNotUpgrade);
    }
    // 4. Exactly one |Sec-WebSocket-Accept|, equal to the one for the key that was sent.
    let accept = (headers.single("sec-websocket-accept").ok()).ok_or(BadUpgrade::AcceptMissing)?;
    let expected = accept_for(&req.key);
    if accept.trim_ascii() != expected.as_bytes() {
        return Err(BadUpgrade::AcceptWrong);
    }
    // 5. Every extension in use must have been offered.
    let extensions: Vec<&str> = headers.tokens("sec-websocket-extensions").collect();
    for ext in &extensions {
        let name = ext.split(';').next().unwrap_or("").trim();
        if !req.extensions.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            return Err(BadUpgrade::ExtensionNotOffered);
        }
    }
    // 6. At most one subprotocol, and one the client offered.
    let protocols: Vec<&str> = headers.tokens("sec-websocket-protocol").collect();
    let protocol = match protocols.as_slice() {
        [] => None,
        [p] if req.protocols.iter().any(|o| o == p) => Some((*p).to_owned()),
        _ => return Err(BadUpgrade::ProtocolNotOffered),
    };
    Ok(Verdict::Upgrade {
        accept: expected,
        protocol,
        extensions: (!extensions.is_empty()).then(|| extensions.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const GOOD: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    fn req() -> UpgradeRequest {
        UpgradeRequest {
            key: KEY.into(),
            protocols: vec!["chat".into()],
            extensions: vec!["permessage-deflate".into()],
        }
    }

    /// The answer as hyper hands it over: status, version and every field line, in order.
    fn check_raw(raw: &str) -> Result<Verdict, BadUpgrade> {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut slots);
        assert!(parsed.parse(raw.as_bytes()).unwrap().is_complete(), "{raw}");
        let mut answer = Response::new(());
        *answer.status_mut() = StatusCode::from_u16(parsed.code.unwrap()).unwrap();
        *answer.version_mut() = match parsed.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        for h in parsed.headers.iter() {
            answer.headers_mut().append(
                HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        check(&answer, &req())
    }

    #[test]
    fn computes_the_rfc_example_accept() {
        assert_eq!(accept_for(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn accepts_a_correct_101_and_relays_others() {
        assert!(matches!(
            check_raw(GOOD),
            Ok(Verdict::Upgrade {
                protocol: None,
                extensions: None,
                ..
            })
        ));
        let with = GOOD.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n");
        let Ok(Verdict::Upgrade {
            protocol,
            extensions,
            ..
        }) = check_raw(&with)
        else {
            panic!()
        };
        assert_eq!(protocol.as_deref(), Some("chat"));
        assert_eq!(
            extensions.as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(
            check_raw("HTTP/1.1 403 Forbidden\r\n\r\n"),
            Ok(Verdict::Relay)
        );
        // `Connection` is a token list, and may come on several lines.
        let split = GOOD.replace(
            "Connection: Upgrade",
            "Connection: keep-alive\r\nconnection: foo, upgrade",
        );
        assert!(matches!(check_raw(&split), Ok(Verdict::Upgrade { .. })));
    }

    #[test]
    fn each_rule_has_its_error() {
        let cases: &[(&str, &str, BadUpgrade)] = &[
            ("101 Switching", "100 Switching", BadUpgrade::InterimStatus),
            ("HTTP/1.1", "HTTP/1.0", BadUpgrade::HttpVersion),
            (
                "Upgrade: websocket\r\n",
                "",
                BadUpgrade::UpgradeNotWebSocket,
            ),
            (
                "Upgrade: websocket",
                "Upgrade: h2c",
                BadUpgrade::UpgradeNotWebSocket,
            ),
            (
                "Connection: Upgrade",
                "Connection: keep-alive",
                BadUpgrade::ConnectionNotUpgrade,
            ),
            (
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                "",
                BadUpgrade::AcceptMissing,
            ),
            (
                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                BadUpgrade::AcceptWrong,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: x-evil\r\n\r\n",
                BadUpgrade::ExtensionNotOffered,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Protocol: other\r\n\r\n",
                BadUpgrade::ProtocolNotOffered,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Protocol: chat, chat\r\n\r\n",
                BadUpgrade::ProtocolNotOffered,
            ),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                BadUpgrade::AcceptMissing,
            ),
            (
                "Upgrade: websocket\r\n",
                "Upgrade: websocket\r\nUpgrade: websocket\r\n",
                BadUpgrade::UpgradeNotWebSocket,
            ),
        ];
        for (from, to, want) in cases {
            let raw = GOOD.replacen(from, to, 1);
            assert_eq!(check_raw(&raw), Err(*want), "{to}");
        }
    }
}
