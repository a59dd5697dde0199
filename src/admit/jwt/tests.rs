//! Unit tests of `admit::jwt` (and helpers other tests share).

use super::*;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A signing key made at test time and its public half.
pub(crate) struct TestKey {
    pub signing: EncodingKey,
    pub public_pem: String,
    /// Raw public key (EC point, Ed25519 bytes), for JWKs.
    pub public_raw: Vec<u8>,
}

pub(crate) fn test_key(alg: Algorithm) -> TestKey {
    let rcgen_alg = match alg {
        Algorithm::RS256 => &rcgen::PKCS_RSA_SHA256,
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::EdDSA => &rcgen::PKCS_ED25519,
        other => panic!("no test key for {other:?}"),
    };
    let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
    let private = pair.serialize_pem();
    let signing = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()),
        _ => EncodingKey::from_ed_pem(private.as_bytes()),
    }
    .unwrap();
    TestKey {
        signing,
        public_pem: pair.public_key_pem(),
        public_raw: pair.public_key_raw().to_vec(),
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn sign(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(crate) fn config(keys: Vec<JwtKey>) -> JwtConfig {
    JwtConfig {
        keys,
        issuer: Some("https://id.test".into()),
        audience: Some("chat".into()),
        leeway: Duration::from_secs(5),
        require: vec![],
    }
}

/// Claims that pass `config()`, with `extra` merged over them.
pub(crate) fn claims(extra: Value) -> Value {
    let mut c =
        json!({ "sub": "alice", "iss": "https://id.test", "aud": "chat", "exp": now() + 60 });
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    c
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn hs_verifier(require: Vec<(String, String)>) -> JwtVerifier {
    let key = Key {
        kid: None,
        origin: None,
        alg: Algorithm::HS256,
        key: DecodingKey::from_secret(SECRET),
    };
    JwtVerifier::new(
        vec![key],
        vec![],
        &JwtConfig {
            require,
            ..config(vec![])
        },
    )
}

fn hs(extra: Value) -> String {
    sign(
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
        None,
        &claims(extra),
    )
}

#[tokio::test]
async fn public_keys_from_pem_files_verify_their_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let k = test_key(alg);
        let path = dir.path().join(format!("{alg:?}.pem"));
        std::fs::write(&path, &k.public_pem).unwrap();
        let v = JwtVerifier::build(&config(vec![JwtKey::File { path, alg }]), None).unwrap();
        let id = v
            .verify(&sign(&k.signing, alg, None, &claims(json!({}))))
            .await
            .unwrap();
        assert_eq!(id.subject.as_deref(), Some("alice"), "{alg:?}");
        assert!(id.expires_at.is_some_and(|e| e > now()));
        // Another key of the same algorithm: bad signature.
        let other = test_key(alg);
        let forged = sign(&other.signing, alg, None, &claims(json!({})));
        assert_eq!(
            v.verify(&forged).await,
            Err(AuthFailure::Invalid("bad_signature"))
        );
    }
}

#[tokio::test]
async fn registered_claims_are_checked() {
    let v = hs_verifier(vec![]);
    assert!(v.verify(&hs(json!({}))).await.is_ok());
    let t = now();
    let cases = [
        (json!({ "exp": t - 60 }), "expired"),
        (json!({ "nbf": t + 60 }), "not_yet_valid"),
        (json!({ "iss": "https://evil.test" }), "wrong_issuer"),
        (json!({ "aud": "other" }), "wrong_audience"),
        (json!({ "exp": null }), "missing_claim"),
        (json!({ "iss": null }), "missing_claim"),
    ];
    for (extra, want) in cases {
        let got = v.verify(&hs(extra.clone())).await;
        assert_eq!(got, Err(AuthFailure::Invalid(want)), "{extra}");
    }
    // Within the leeway.
    assert!(
        v.verify(&hs(json!({ "exp": t - 2, "nbf": t + 2 })))
            .await
            .is_ok()
    );
    assert!(v.verify(&hs(json!({ "aud": ["x", "chat"] }))).await.is_ok());
}

#[tokio::test]
async fn algorithm_is_pinned_per_key() {
    let rsa = test_key(Algorithm::RS256);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rsa.pem");
    std::fs::write(&path, &rsa.public_pem).unwrap();
    let v = JwtVerifier::build(
        &config(vec![JwtKey::File {
            path,
            alg: Algorithm::RS256,
        }]),
        None,
    )
    .unwrap();
    // The classic confusion: HS256 "signed" with the RSA public key as the secret.
    let secret = EncodingKey::from_secret(rsa.public_pem.as_bytes());
    let confused = sign(&secret, Algorithm::HS256, None, &claims(json!({})));
    assert_eq!(
        v.verify(&confused).await,
        Err(AuthFailure::Invalid("alg_not_allowed"))
    );
    // alg none, with and without a signature part.
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let body = b64(claims(json!({})));
    for token in [
        format!("{}.{body}.", b64(json!({ "alg": "none", "typ": "JWT" }))),
        format!("{}.{body}.c2ln", b64(json!({ "alg": "none" }))),
    ] {
        assert_eq!(
            v.verify(&token).await,
            Err(AuthFailure::Invalid("alg_not_allowed"))
        );
    }
    for junk in ["", "a.b", "a.b.c", "...."] {
        assert_eq!(
            v.verify(junk).await,
            Err(AuthFailure::Invalid("malformed")),
            "{junk}"
        );
    }
}

#[tokio::test]
async fn kid_selects_the_key() {
    let ec = test_key(Algorithm::ES256);
    let key = |kid: &str| Key {
        kid: Some(kid.into()),
        origin: None,
        alg: Algorithm::ES256,
        key: DecodingKey::from_ec_pem(ec.public_pem.as_bytes()).unwrap(),
    };
    let hs = Key {
        kid: Some("h".into()),
        origin: None,
        alg: Algorithm::HS256,
        key: DecodingKey::from_secret(SECRET),
    };
    let v = JwtVerifier::new(vec![key("a"), hs], vec![], &config(vec![]));
    let token = |kid: &str| sign(&ec.signing, Algorithm::ES256, Some(kid), &claims(json!({})));
    assert!(v.verify(&token("a")).await.is_ok());
    assert_eq!(
        v.verify(&token("b")).await,
        Err(AuthFailure::Invalid("unknown_kid"))
    );
    // The kid exists but is pinned to another algorithm.
    assert_eq!(
        v.verify(&token("h")).await,
        Err(AuthFailure::Invalid("alg_not_allowed"))
    );
}

#[tokio::test]
async fn require_equal_or_contained() {
    let req = |c: &str, w: &str| vec![(c.to_owned(), w.to_owned())];
    let v = hs_verifier(req("scope", "chat"));
    for ok in [
        json!({ "scope": "chat" }),
        json!({ "scope": "read chat write" }),
        json!({ "scope": ["x", "chat"] }),
    ] {
        assert!(v.verify(&hs(ok.clone())).await.is_ok(), "{ok}");
    }
    for no in [
        json!({}),
        json!({ "scope": "chatty" }),
        json!({ "scope": ["chat x"] }),
        json!({ "scope": { "chat": 1 } }),
    ] {
        let got = v.verify(&hs(no.clone())).await;
        assert_eq!(
            got,
            Err(AuthFailure::Insufficient("require_not_met")),
            "{no}"
        );
    }
    let v = hs_verifier(req("admin", "true"));
    assert!(v.verify(&hs(json!({ "admin": true }))).await.is_ok());
    assert!(v.verify(&hs(json!({ "admin": false }))).await.is_err());
}

#[test]
fn claims_as_header_values() {
    let c = json!({ "s": "alice", "n": 42, "b": true, "a": ["x", 1], "z": null, "crlf": "a\r\nX-Admin: 1", "nul": "a\u{0}" });
    let c = c.as_object().unwrap();
    let h = |n| claim_as_header_value(c, n);
    assert_eq!(
        (h("s"), h("n"), h("b")),
        (Some("alice".into()), Some("42".into()), Some("true".into()))
    );
    assert_eq!(h("a"), Some(r#"["x",1]"#.into()));
    assert_eq!(
        (h("z"), h("missing"), h("crlf"), h("nul")),
        (None, None, None, None)
    );
}

#[test]
fn build_reports_every_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    let keys = vec![
        JwtKey::File {
            path: dir.path().join("missing.pem"),
            alg: Algorithm::RS256,
        },
        JwtKey::File {
            path: garbage.clone(),
            alg: Algorithm::ES256,
        },
        JwtKey::File {
            path: garbage,
            alg: Algorithm::HS256,
        },
        JwtKey::SecretEnv {
            var: "WSGATE_TEST_SURELY_UNSET_1F3A".into(),
            alg: Algorithm::HS256,
        },
        JwtKey::SecretEnv {
            var: "PATH".into(),
            alg: Algorithm::RS256,
        },
        JwtKey::JwksFile {
            path: dir.path().join("none.json"),
        },
        JwtKey::JwksUrl {
            url: "ftp://id.test/jwks".into(),
            refresh: Duration::from_secs(60),
        },
    ];
    let errors = JwtVerifier::build(&config(keys), None).unwrap_err();
    assert_eq!(errors.len(), 7, "{errors:#?}");
    assert!(errors[3].contains("unset or empty"), "{}", errors[3]);
    assert!(JwtVerifier::build(&config(vec![]), None).is_err());
    // A JWKS URL is not fetched at build: an unreachable one builds.
    let url = JwtKey::JwksUrl {
        url: "http://127.0.0.1:9/jwks".into(),
        refresh: Duration::from_secs(60),
    };
    assert!(JwtVerifier::build(&config(vec![url]), None).is_ok());
    // The secret comes from the environment (PATH is set wherever tests run).
    let path = JwtKey::SecretEnv {
        var: "PATH".into(),
        alg: Algorithm::HS256,
    };
    assert!(JwtVerifier::build(&config(vec![path]), None).is_ok());
}
