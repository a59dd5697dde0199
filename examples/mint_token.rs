//! Make a signing key and a token for benchmarks and manual testing:
//! `cargo run --example mint_token -- ES256|RS256|EdDSA DIR [SUB] [TTL_SECS]` writes
//! `DIR/<alg>.pem` (the public key, for `auth.jwt.keys[].file`) and prints a token for `SUB`
//! (audience `bench`, issuer `wsgate-bench`, scope `chat`) valid for TTL_SECS (default 3600).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (alg, dir) = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some(a), Some(d)) => (a.to_owned(), d.clone()),
        _ => {
            eprintln!("usage: mint_token ES256|RS256|EdDSA DIR [SUB] [TTL_SECS]");
            std::process::exit(64);
        }
    };
    let sub = args.get(3).cloned().unwrap_or_else(|| "bench-user".into());
    let ttl: u64 = args.get(4).and_then(|t| t.parse().ok()).unwrap_or(3600);
    let (algorithm, rcgen_alg) = match alg.as_str() {
        "ES256" => (Algorithm::ES256, &rcgen::PKCS_ECDSA_P256_SHA256),
        "RS256" => (Algorithm::RS256, &rcgen::PKCS_RSA_SHA256),
        "EdDSA" => (Algorithm::EdDSA, &rcgen::PKCS_ED25519),
        other => {
            eprintln!("unsupported algorithm {other}");
            std::process::exit(64);
        }
    };
    let pair = rcgen::KeyPair::generate_for(rcgen_alg).expect("generate key");
    let private = pair.serialize_pem();
    let signing = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()),
        _ => EncodingKey::from_ed_pem(private.as_bytes()),
    }
    .expect("signing key");
    std::fs::write(format!("{dir}/{alg}.pem"), pair.public_key_pem()).expect("write public key");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = serde_json::json!({
        "sub": sub, "iss": "wsgate-bench", "aud": "bench", "scope": "chat",
        "iat": now, "exp": now + ttl,
    });
    let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &signing).expect("sign");
    println!("{token}");
}
