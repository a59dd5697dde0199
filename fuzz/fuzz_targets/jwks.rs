//! JWKS documents as an identity provider's URL or a `jwks_file` delivers them:
//! `admit::jwks::parse_set` (JSON, each JWK, its pinned algorithm, the key material), then every
//! key it yields is put to work in a `JwtVerifier` on a token for its algorithm and `kid`, so
//! hostile key material (odd RSA moduli, off-curve points, empty secrets) reaches the signature
//! check. Never a panic.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use libfuzzer_sys::fuzz_target;
use wsgate::admit::jwks::{Key, parse_set};
use wsgate::admit::jwt::JwtVerifier;
use wsgate::config::policy::JwtConfig;
use wsgate_fuzz::runtime;

/// The secret an `oct` key in the seeds holds (base64url `MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY`).
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const CLAIMS: &str = r#"{"sub":"alice","exp":4102444800}"#;

/// A token for `key`: signed with [`SECRET`] for HMAC keys, a signature of the right shape
/// otherwise (it cannot verify; the key material is still parsed and used).
fn token(key: &Key) -> String {
    let mut header = serde_json::json!({ "alg": format!("{:?}", key.alg), "typ": "JWT" });
    if let Some(kid) = &key.kid {
        header["kid"] = serde_json::Value::String(kid.clone());
    }
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(CLAIMS);
    let message = format!("{head}.{body}");
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        key.alg,
    )
    .unwrap_or_else(|_| URL_SAFE_NO_PAD.encode([0x41u8; 256]));
    format!("{message}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let Ok((keys, skipped)) = parse_set(data) else {
        return;
    };
    let _ = skipped;
    if keys.is_empty() || keys.len() > 8 {
        return;
    }
    let cfg = JwtConfig {
        keys: vec![],
        issuer: None,
        audience: None,
        leeway: std::time::Duration::from_secs(5),
        require: vec![],
    };
    let tokens: Vec<String> = keys.iter().map(token).collect();
    let verifier = JwtVerifier::new(keys, vec![], &cfg);
    runtime().block_on(async {
        for t in &tokens {
            let _ = verifier.verify(t).await;
        }
    });
});
