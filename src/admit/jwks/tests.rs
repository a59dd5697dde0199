//! Unit tests of `admit::jwks`.

use super::*;
use serde_json::json;

#[test]
fn pins_algorithms_and_skips_what_it_cannot_pin() {
    let doc = json!({ "keys": [
        { "kty": "RSA", "kid": "r", "n": "sXch", "e": "AQAB" },
        { "kty": "RSA", "kid": "p", "alg": "PS384", "n": "sXch", "e": "AQAB" },
        { "kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB" },
        { "kty": "EC", "kid": "e", "crv": "P-256", "x": "AA", "y": "AA" },
        { "kty": "EC", "kid": "bad", "crv": "P-256", "alg": "ES384", "x": "AA", "y": "AA" },
        { "kty": "OKP", "kid": "d", "crv": "Ed25519", "x": "AA" },
        { "kty": "oct", "kid": "h", "k": "c2VjcmV0" },
        { "kty": "oct", "kid": "h2", "alg": "HS384", "k": "c2VjcmV0" },
        { "kty": "RSA", "kid": "x", "alg": "RSA-OAEP", "n": "sXch", "e": "AQAB" },
        { "kty": "weird" },
    ]});
    let (keys, skipped) = parse_set(doc.to_string().as_bytes()).unwrap();
    let got: Vec<(Option<&str>, Algorithm)> =
        keys.iter().map(|k| (k.kid.as_deref(), k.alg)).collect();
    assert_eq!(
        got,
        vec![
            (Some("r"), Algorithm::RS256),
            (Some("p"), Algorithm::PS384),
            (Some("e"), Algorithm::ES256),
            (Some("d"), Algorithm::EdDSA),
            (Some("h2"), Algorithm::HS384),
        ]
    );
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(parse_set(b"{}").is_err());
    assert!(parse_set(b"nope").is_err());
}

use crate::admit::jwt::tests::{claims, config, sign, test_key};
use crate::admit::jwt::{AuthFailure, JwtVerifier};
use crate::outbound::client::tests::serve;
use base64::Engine;
use serde_json::Value;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::AtomicUsize;

/// A JWKS endpoint whose document the test can change, counting fetches.
struct Idp {
    doc: Arc<StdMutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
    url: String,
}

async fn idp() -> Idp {
    let doc = Arc::new(StdMutex::new((200, r#"{"keys":[]}"#.to_owned())));
    let hits = Arc::new(AtomicUsize::new(0));
    let (d, h) = (doc.clone(), hits.clone());
    let addr = serve(move |_| {
        h.fetch_add(1, Ordering::SeqCst);
        let (status, body) = d.lock().unwrap().clone();
        Some(
            format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
    .await;
    Idp {
        doc,
        hits,
        url: format!("http://{addr}/jwks"),
    }
}

fn ed_jwk(kid: &str, raw: &[u8]) -> Value {
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x })
}

fn verifier(url: &str, min_refetch: Duration) -> JwtVerifier {
    let remote =
        RemoteJwks::new(url.to_owned(), Duration::from_secs(3600)).with_min_refetch(min_refetch);
    JwtVerifier::new(vec![], vec![Arc::new(remote)], &config(vec![]))
}

#[tokio::test]
async fn unknown_kid_fetches_the_rotated_set_and_failures_keep_the_last_good_one() {
    let idp = idp().await;
    let (k1, k2) = (test_key(Algorithm::EdDSA), test_key(Algorithm::EdDSA));
    let t1 = sign(
        &k1.signing,
        Algorithm::EdDSA,
        Some("k1"),
        &claims(json!({})),
    );
    let t2 = sign(
        &k2.signing,
        Algorithm::EdDSA,
        Some("k2"),
        &claims(json!({})),
    );
    *idp.doc.lock().unwrap() = (
        200,
        json!({ "keys": [ed_jwk("k1", &k1.public_raw)] }).to_string(),
    );
    let v = verifier(&idp.url, Duration::ZERO);
    assert!(v.verify(&t1).await.is_ok());
    assert_eq!(
        v.verify(&t2).await,
        Err(AuthFailure::Invalid("unknown_kid"))
    );
    // The provider rotates: k2 appears, k1 is gone.
    *idp.doc.lock().unwrap() = (
        200,
        json!({ "keys": [ed_jwk("k2", &k2.public_raw)] }).to_string(),
    );
    assert!(v.verify(&t2).await.is_ok());
    assert_eq!(
        v.verify(&t1).await,
        Err(AuthFailure::Invalid("unknown_kid"))
    );
    // The provider fails: the last good set stays.
    *idp.doc.lock().unwrap() = (500, "oops".into());
    let before = idp.hits.load(Ordering::SeqCst);
    assert_eq!(
        v.verify(&t1).await,
        Err(AuthFailure::Invalid("unknown_kid"))
    );
    assert!(idp.hits.load(Ordering::SeqCst) > before);
    assert!(v.verify(&t2).await.is_ok());
}

#[tokio::test]
async fn a_kid_spray_fetches_once_per_interval() {
    let idp = idp().await;
    let k = test_key(Algorithm::EdDSA);
    *idp.doc.lock().unwrap() = (
        200,
        json!({ "keys": [ed_jwk("k", &k.public_raw)] }).to_string(),
    );
    let v = Arc::new(verifier(&idp.url, MIN_REFETCH));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let v = v.clone();
        let t = sign(
            &k.signing,
            Algorithm::EdDSA,
            Some(&format!("spray{i}")),
            &claims(json!({})),
        );
        tasks.push(tokio::spawn(async move { v.verify(&t).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err(AuthFailure::Invalid("unknown_kid")));
    }
    let good = sign(&k.signing, Algorithm::EdDSA, Some("k"), &claims(json!({})));
    assert!(v.verify(&good).await.is_ok());
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_provider_fails_tokens_not_startup() {
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let v = verifier(&format!("http://{free}/jwks"), Duration::ZERO);
    let k = test_key(Algorithm::EdDSA);
    let t = sign(&k.signing, Algorithm::EdDSA, Some("k"), &claims(json!({})));
    assert_eq!(v.verify(&t).await, Err(AuthFailure::Invalid("unknown_kid")));
}

/// Lines at info and above written on this thread while the guard is held (the fetches run on
/// the test's own thread: `verify` awaits them inline).
fn capture_logs() -> (tracing::subscriber::DefaultGuard, Arc<StdMutex<Vec<u8>>>) {
    #[derive(Clone)]
    struct Sink(Arc<StdMutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Arc::new(StdMutex::new(Vec::new()));
    let sink = Sink(lines.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), lines)
}

fn count(lines: &StdMutex<Vec<u8>>, what: &str) -> usize {
    String::from_utf8_lossy(&lines.lock().unwrap())
        .matches(what)
        .count()
}

/// Issue #13 (faults under load): a JWKS URL that is down, then serves garbage, was logged at
/// warn on every retry. An outage is one warn line when it starts and one info line when a
/// fetch works again; a later outage is a new line.
#[tokio::test]
async fn an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
    let (_guard, logs) = capture_logs();
    let idp = idp().await;
    let (k1, k2, k3) = (
        test_key(Algorithm::EdDSA),
        test_key(Algorithm::EdDSA),
        test_key(Algorithm::EdDSA),
    );
    let token = |k: &crate::admit::jwt::tests::TestKey, kid: &str| {
        sign(&k.signing, Algorithm::EdDSA, Some(kid), &claims(json!({})))
    };
    let (t1, t2, t3) = (token(&k1, "k1"), token(&k2, "k2"), token(&k3, "k3"));
    let set = |keys: Vec<Value>| json!({ "keys": keys }).to_string();
    *idp.doc.lock().unwrap() = (200, set(vec![ed_jwk("k1", &k1.public_raw)]));
    let v = verifier(&idp.url, Duration::ZERO);
    assert!(v.verify(&t1).await.is_ok());
    let unknown = Err(AuthFailure::Invalid("unknown_kid"));
    // Down (503), then garbage: every unknown kid fetches again, and fails.
    *idp.doc.lock().unwrap() = (503, "unavailable".into());
    for _ in 0..3 {
        assert_eq!(v.verify(&t2).await, unknown);
    }
    *idp.doc.lock().unwrap() = (200, "<html>{{{".into());
    for _ in 0..3 {
        assert_eq!(v.verify(&t2).await, unknown);
    }
    assert!(
        idp.hits.load(Ordering::SeqCst) >= 7,
        "each unknown kid fetched"
    );
    assert!(v.verify(&t1).await.is_ok(), "the last good set is kept");
    assert_eq!(count(&logs, "JWKS refresh failed"), 1);
    // Good again, with a new key.
    let both = vec![ed_jwk("k1", &k1.public_raw), ed_jwk("k2", &k2.public_raw)];
    *idp.doc.lock().unwrap() = (200, set(both));
    assert!(v.verify(&t2).await.is_ok());
    assert_eq!(count(&logs, "JWKS refresh works again"), 1);
    assert_eq!(
        v.verify(&t3).await,
        unknown,
        "a fetch that works logs nothing"
    );
    assert_eq!(count(&logs, "JWKS refresh"), 2);
    // A new outage is a new line.
    *idp.doc.lock().unwrap() = (500, "oops".into());
    assert_eq!(v.verify(&t3).await, unknown);
    assert_eq!(count(&logs, "JWKS refresh failed"), 2);
}
