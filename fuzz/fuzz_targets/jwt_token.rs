//! The bearer credential from request to identity: `admit::token::find` over the four places a
//! token may travel (Authorization, query, cookie, subprotocol marker), the strip helpers that
//! remove it before forwarding, then `admit::jwt::JwtVerifier::verify` with a verifier built
//! from a fixed HS256 test key (issuer, audience and a `require` rule set), and
//! `claim_as_header_value` on what verified.
//!
//! Two input modes, by the first byte:
//! - even: the rest is a request head (`wire::parse_request`); the token found is verified;
//! - odd: the rest is `header JSON 0xff claims JSON`, signed here with the test key, so the
//!   header and claim parsing behind the signature check is reached; the rest is also tried
//!   as a token as it stands.
//!
//! Never a panic; a token found is never empty and was sent in the request.
#![no_main]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use libfuzzer_sys::fuzz_target;
use wsgate::admit::jwks::Key;
use wsgate::admit::jwt::{JwtVerifier, claim_as_header_value};
use wsgate::admit::token;
use wsgate::config::policy::{JwtConfig, TokenSource};
use wsgate::wire::{self, Fields};
use wsgate_fuzz::runtime;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const MARKER: &str = "bearer.wsgate";

fn verifier() -> JwtVerifier {
    let key = |kid: Option<&str>| Key {
        kid: kid.map(str::to_owned),
        origin: None,
        alg: Algorithm::HS256,
        key: DecodingKey::from_secret(SECRET),
    };
    let cfg = JwtConfig {
        keys: vec![],
        issuer: Some("https://id.test".into()),
        audience: Some("chat".into()),
        leeway: Duration::from_secs(5),
        require: vec![("scope".into(), "chat:write".into())],
    };
    JwtVerifier::new(vec![key(None), key(Some("k1"))], vec![], &cfg)
}

fn verify(token: &str) {
    let v = verifier();
    if let Ok(identity) = runtime().block_on(v.verify(token)) {
        for name in ["sub", "scope", "aud", "exp", "email"] {
            if let Some(value) = claim_as_header_value(&identity.claims, name) {
                assert!(
                    !value.contains(['\r', '\n', '\0']),
                    "a control character in a header"
                );
            }
        }
    }
}

fn from_request(bytes: &[u8]) {
    let Ok(head) = wire::parse_request(bytes, 100) else {
        return;
    };
    let Ok(target) = wire::normalise(&wire::raw_target(&head)) else {
        return;
    };
    let sources = [
        TokenSource::Header,
        TokenSource::Query("access_token".into()),
        TokenSource::Cookie("session".into()),
        TokenSource::Subprotocol {
            marker: MARKER.into(),
        },
    ];
    let stripped = token::strip_query(&target.query, "access_token");
    assert!(stripped.is_empty() || stripped.starts_with('?'));
    for line in head.values("cookie") {
        let _ = token::strip_cookie(line, "session");
    }
    let offered: Vec<String> = head
        .tokens("sec-websocket-protocol")
        .map(str::to_owned)
        .collect();
    if let Ok(Some(found)) = token::find(&head, &target, &sources) {
        assert!(!found.token.is_empty(), "an empty token was found");
        let kept = token::strip_subprotocols(&offered, MARKER, &found.token);
        assert!(kept.len() <= offered.len());
        verify(&found.token);
    }
}

fn signed(bytes: &[u8]) {
    let (header, claims) = match bytes.iter().position(|&b| b == 0xff) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &b""[..]),
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET);
    if let Ok(sig) = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256) {
        verify(&format!("{message}.{sig}"));
    }
    verify(&String::from_utf8_lossy(bytes));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        from_request(rest);
    } else {
        signed(rest);
    }
});
