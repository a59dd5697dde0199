//! The admission keys (issue 4): `defaults:`, a route's `origins`/`require_origin`/`auth`/`rate`/
//! `max_connections`, `limits.max_connections` and `per_ip`, `trusted_proxies`, `proxy_protocol`.
//! One test parses every key into typed values; the others each pin one class of mistake with
//! its `file:line:col`, field path and message.

use std::time::Duration;

use wsgate::config::{load_file, load_str};

use super::{BASE, load, only_error, with_limits};

/// [`BASE`] with pools first, so that route keys can be appended: they start on line 12, indented
/// by four spaces.
const POLICY_BASE: &str = super::ROUTE_LAST;

fn with_route(keys: &str) -> String {
    format!("{POLICY_BASE}{keys}")
}

/// A route whose `auth.jwt.keys` is `keys`, one entry per line; the first entry is on line 15 and
/// its first key starts at column 15.
fn with_jwt_keys(keys: &[&str]) -> String {
    let keys: String = keys.iter().map(|k| format!("          - {k}\n")).collect();
    with_route(&format!("    auth:\n      jwt:\n        keys:\n{keys}"))
}

const ALGS: &str =
    "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";

/// Every new key once, in a directory that holds the key files.
const FULL_POLICY: &str = r#"
trusted_proxies: ["10.0.0.0/8", "::1/128"]
listeners:
  - { name: public, bind: "127.0.0.1:0", proxy_protocol: true }
limits:
  max_connections: 5000
  per_ip: { handshakes: "20/s", burst: 40, max_connections: 200 }
defaults:
  origins: ["https://app.example.com"]
  require_origin: false
  rate: { handshakes: "100/m" }
  max_connections: 1000
routes:
  - host: chat.example.com
    path: /ws
    pool: chat
    origins: ["HTTPS://App.Example.com:443", "https://*.example.com", "http://localhost:3000", "null"]
    require_origin: true
    rate: { handshakes: "500/s", burst: 1000 }
    max_connections: 50000
    auth:
      jwt:
        keys:
          - { file: keys/issuer.pem, alg: ES256 }
          - { secret_env: WSGATE_HS_SECRET, alg: HS256 }
          - { jwks_file: keys/jwks.json }
          - { jwks_url: "https://id.example.com/.well-known/jwks.json", refresh: 5m }
        issuer: https://id.example.com
        audience: chat
        leeway: 10s
        require: { tier: gold, scope: chat }
      token_from: [header, { query: access_token }, { cookie: session }, subprotocol]
      forward_token: true
      claims_to_headers: { sub: X-User-Id, tenant: X-Tenant }
  - path: /feed
    pool: chat
    auth:
      request: { url: "http://127.0.0.1:9100/auth?v=1", timeout: 500ms, copy_headers: [X-User] }
      token_from: [{ subprotocol: access-token }]
  - path: /
    pool: chat
pools:
  chat:
    backends: [ { url: "ws://127.0.0.1:9501" } ]
"#;

#[test]
fn every_admission_key_is_parsed() {
    use wsgate::config::policy::{AuthMethod, JwtKey, Rate, TokenSource};

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("keys")).expect("keys dir");
    let key = rcgen::KeyPair::generate().expect("P-256 key");
    std::fs::write(dir.path().join("keys/issuer.pem"), key.public_key_pem()).expect("pem");
    let jwks = r#"{"keys": [{"kty": "oct", "kid": "a", "alg": "HS256", "k": "c2VjcmV0"}]}"#;
    std::fs::write(dir.path().join("keys/jwks.json"), jwks).expect("jwks");
    let path = dir.path().join("gate.yaml");
    std::fs::write(&path, FULL_POLICY).expect("write config");
    let config = load_file(&path).unwrap_or_else(|e| panic!("{e}"));

    let trusted: Vec<String> = (config.trusted_proxies.iter())
        .map(|c| c.to_string())
        .collect();
    assert_eq!(trusted, ["10.0.0.0/8", "::1/128"]);
    assert!(config.listeners[0].proxy_protocol);
    assert_eq!(config.limits.max_connections, 5000);
    let per_second = |count, burst| Rate {
        count,
        per: Duration::from_secs(1),
        burst,
    };
    assert_eq!(config.limits.per_ip.rate, Some(per_second(20, 40)));
    assert_eq!(config.limits.per_ip.max_connections, Some(200));

    let [chat, feed, rest] = config.routes.as_slice() else {
        panic!("three routes expected")
    };
    let origins = chat.policy.origins.as_ref().expect("origins");
    assert_eq!(
        origins.allowed,
        [
            "https://app.example.com",
            "https://*.example.com",
            "http://localhost:3000",
            "null"
        ]
    );
    assert!(origins.require);
    assert_eq!(chat.policy.rate, Some(per_second(500, 1000)));
    assert_eq!(chat.policy.max_connections, Some(50_000));
    let auth = chat.policy.auth.as_ref().expect("auth");
    let AuthMethod::Jwt(jwt) = &auth.method else {
        panic!("jwt expected")
    };
    assert!(matches!(&jwt.keys[..], [
        JwtKey::File { path: pem, alg: jsonwebtoken::Algorithm::ES256 },
        JwtKey::SecretEnv { var, alg: jsonwebtoken::Algorithm::HS256 },
        JwtKey::JwksFile { path: jwks },
        JwtKey::JwksUrl { url, refresh },
    ] if *pem == dir.path().join("keys/issuer.pem")
        && var == "WSGATE_HS_SECRET"
        && *jwks == dir.path().join("keys/jwks.json")
        && url == "https://id.example.com/.well-known/jwks.json"
        && *refresh == Duration::from_secs(300)));
    assert_eq!(jwt.issuer.as_deref(), Some("https://id.example.com"));
    assert_eq!(jwt.audience.as_deref(), Some("chat"));
    assert_eq!(jwt.leeway, Duration::from_secs(10));
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(jwt.require, pairs(&[("scope", "chat"), ("tier", "gold")]));
    assert_eq!(
        auth.token_from,
        [
            TokenSource::Header,
            TokenSource::Query("access_token".to_owned()),
            TokenSource::Cookie("session".to_owned()),
            TokenSource::Subprotocol {
                marker: "bearer".to_owned()
            },
        ]
    );
    assert!(auth.forward_token);
    assert_eq!(
        auth.claims_to_headers,
        pairs(&[("sub", "X-User-Id"), ("tenant", "X-Tenant")])
    );

    // `feed` sets only `auth`: the other keys come from `defaults:`.
    let auth = feed.policy.auth.as_ref().expect("auth");
    let AuthMethod::Request(request) = &auth.method else {
        panic!("auth request expected")
    };
    assert_eq!(
        (request.authority.as_str(), request.path.as_str()),
        ("127.0.0.1:9100", "/auth?v=1")
    );
    assert_eq!(request.timeout, Duration::from_millis(500));
    assert_eq!(request.copy_headers, ["X-User"]);
    assert_eq!(
        auth.token_from,
        [TokenSource::Subprotocol {
            marker: "access-token".to_owned()
        }]
    );
    assert!(!auth.forward_token);
    let origins = feed.policy.origins.as_ref().expect("default origins");
    assert_eq!(
        (origins.allowed.as_slice(), origins.require),
        (&["https://app.example.com".to_owned()][..], false)
    );
    let per_minute = Rate {
        count: 100,
        per: Duration::from_secs(60),
        burst: 100,
    };
    assert_eq!(feed.policy.rate, Some(per_minute));
    assert_eq!(feed.policy.max_connections, Some(1000));
    assert!(rest.policy.auth.is_none());
    assert_eq!(rest.policy.rate, Some(per_minute));
}

#[test]
fn defaults_merge_per_key() {
    let yaml = POLICY_BASE.replace(
        "routes:\n",
        "defaults:\n  origins: [\"https://app.example.com\"]\n  rate: { handshakes: \"10/s\" }\n  max_connections: 100\nroutes:\n",
    ) + "    rate: { handshakes: \"1/m\", burst: 5 }\n  - { path: /other/, pool: echo }\n";
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    let [own, other] = config.routes.as_slice() else {
        panic!("two routes expected")
    };
    // The route's `rate` replaces the default one; `origins` and `max_connections` are inherited.
    let rate = own.policy.rate.expect("rate");
    assert_eq!(
        (rate.count, rate.per, rate.burst),
        (1, Duration::from_secs(60), 5)
    );
    let origins = own.policy.origins.as_ref().expect("inherited origins");
    assert_eq!(
        (origins.allowed.as_slice(), origins.require),
        (&["https://app.example.com".to_owned()][..], true)
    );
    assert_eq!(own.policy.max_connections, Some(100));
    let rate = other.policy.rate.expect("default rate");
    assert_eq!(
        (rate.count, rate.per, rate.burst),
        (10, Duration::from_secs(1), 10)
    );
}

#[test]
fn defaults_errors_are_reported_once_under_defaults() {
    let yaml = POLICY_BASE.replace(
        "routes:\n",
        "defaults:\n  rate: { handshakes: \"10/x\" }\nroutes:\n",
    ) + "  - { path: /other/, pool: echo }\n";
    assert_eq!(
        only_error(&yaml),
        "t.yaml:10:23: defaults.rate.handshakes: unknown unit `x` in `10/x`; expected COUNT/UNIT with unit s, m or h (e.g. `20/s`)"
    );
}

#[test]
fn require_origin_without_origins() {
    assert_eq!(
        only_error(&with_route("    require_origin: false\n")),
        "t.yaml:12:21: routes[0].require_origin: has no effect without `origins` (set them on this route or under `defaults:`)"
    );
}

#[test]
fn bad_cidr() {
    let yaml = format!("trusted_proxies: [\"10.0.0.0/8\", \"10.0.0.1/8\", \"::1/129\"]\n{BASE}");
    let errors = load(&yaml).expect_err("rejected");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "t.yaml:1:33: trusted_proxies[1]: \"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)",
            "t.yaml:1:47: trusted_proxies[2]: \"::1/129\": prefix length must be 0..=128",
        ]
    );
}

#[test]
fn proxy_protocol_needs_trusted_proxies() {
    assert_eq!(
        only_error(&BASE.replace("    tls:\n", "    proxy_protocol: true\n    tls:\n")),
        "t.yaml:4:21: listeners[0].proxy_protocol: needs `trusted_proxies`: PROXY headers are accepted only from trusted peers, so with none every connection would be dropped"
    );
}

#[test]
fn bad_rate_string() {
    assert_eq!(
        only_error(&with_route("    rate: { handshakes: \"20/sec\" }\n")),
        "t.yaml:12:25: routes[0].rate.handshakes: unknown unit `sec` in `20/sec`; expected COUNT/UNIT with unit s, m or h (e.g. `20/s`)"
    );
    assert_eq!(
        only_error(&with_limits("  per_ip: { handshakes: \"0/s\" }\n")),
        "t.yaml:12:25: limits.per_ip.handshakes: `0/s` must allow at least 1 handshake; expected COUNT/UNIT with unit s, m or h (e.g. `20/s`)"
    );
    assert_eq!(
        only_error(&with_limits("  per_ip: { burst: 5 }\n")),
        "t.yaml:12:20: limits.per_ip.burst: needs `handshakes` (a burst is how many of those may arrive back to back)"
    );
    assert_eq!(
        only_error(&with_limits("  max_connections: 0\n")),
        "t.yaml:12:20: limits.max_connections: 0 is out of range; expected 1..=10000000"
    );
}

#[test]
fn unknown_algorithm() {
    assert_eq!(
        only_error(&with_jwt_keys(&[
            "{ secret_env: WSGATE_HS_SECRET, alg: none }"
        ])),
        format!(
            "t.yaml:15:50: routes[0].auth.jwt.keys[0].alg: `none` (unsigned tokens) is never accepted; expected one of {ALGS}"
        )
    );
    assert_eq!(
        only_error(&with_jwt_keys(&[
            "{ secret_env: WSGATE_HS_SECRET, alg: HS257 }"
        ])),
        format!(
            "t.yaml:15:50: routes[0].auth.jwt.keys[0].alg: unknown algorithm `HS257`; expected one of {ALGS}"
        )
    );
}

#[test]
fn algorithm_must_match_the_key_source() {
    assert_eq!(
        only_error(&with_jwt_keys(&["{ file: keys/issuer.pem, alg: HS256 }"])),
        "t.yaml:15:43: routes[0].auth.jwt.keys[0].alg: `HS256` is an HMAC algorithm: its shared secret comes from `secret_env`, not a PEM `file`"
    );
    assert_eq!(
        only_error(&with_jwt_keys(&[
            "{ secret_env: WSGATE_HS_SECRET, alg: RS256 }"
        ])),
        "t.yaml:15:50: routes[0].auth.jwt.keys[0].alg: `RS256` verifies with a public key: use `file` (PEM) or a JWKS; `secret_env` is for HS256, HS384 and HS512"
    );
    assert_eq!(
        only_error(&with_jwt_keys(&[
            "{ file: a.pem, jwks_url: \"https://id.test/jwks\" }"
        ])),
        "t.yaml:15:38: routes[0].auth.jwt.keys[0].jwks_url: set exactly one of `file`, `secret_env`, `jwks_file` and `jwks_url`, not both `file` and `jwks_url`"
    );
}

#[test]
fn unreadable_pem_path() {
    assert_eq!(
        only_error(&with_jwt_keys(&["{ file: keys/missing.pem, alg: RS256 }"])),
        "t.yaml:15:21: routes[0].auth.jwt.keys[0].file: cannot read `/etc/wsgate/keys/missing.pem`: No such file or directory (os error 2)"
    );
}

#[test]
fn private_key_instead_of_public_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = rcgen::KeyPair::generate().expect("P-256 key");
    std::fs::write(dir.path().join("issuer.pem"), key.serialize_pem()).expect("pem");
    let yaml = with_jwt_keys(&["{ file: issuer.pem, alg: ES256 }"]);
    let errors = load_str(&yaml, "t.yaml", dir.path())
        .expect_err("rejected")
        .0;
    assert_eq!(
        errors[0].to_string(),
        format!(
            "t.yaml:15:21: routes[0].auth.jwt.keys[0].file: `{}` holds a private key; give wsgate only the public key (`openssl pkey -in KEY -pubout`)",
            dir.path().join("issuer.pem").display()
        )
    );
}

#[test]
fn both_jwt_and_request() {
    let yaml = with_route(
        "    auth:\n      jwt: { keys: [ { secret_env: S, alg: HS256 } ] }\n      request: { url: \"http://127.0.0.1:9100/auth\" }\n",
    );
    assert_eq!(
        only_error(&yaml),
        "t.yaml:14:16: routes[0].auth.request: set exactly one of `jwt` and `request`, not both"
    );
    assert_eq!(
        only_error(&with_route("    auth: { forward_token: true }\n")),
        "t.yaml:12:11: routes[0].auth: needs `jwt` (verify tokens here) or `request` (ask an HTTP service)"
    );
}

#[test]
fn bad_origin_pattern() {
    let yaml =
        with_route("    origins: [\"https://evil*.com\", \"https://app.example.com/chat\"]\n");
    let errors = load(&yaml).expect_err("rejected");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "t.yaml:12:15: routes[0].origins[0]: in `https://evil*.com`: `*` is allowed only as the whole leftmost label, as in `https://*.example.com` (matching any subdomain), not in `evil*.com`",
            "t.yaml:12:36: routes[0].origins[1]: `https://app.example.com/chat` must not have a path, query or fragment (browsers send scheme://host[:port] only)",
        ]
    );
}

#[test]
fn claims_header_must_not_be_hop_by_hop() {
    let yaml = with_route(
        "    auth:\n      jwt: { keys: [ { secret_env: S, alg: HS256 } ] }\n      claims_to_headers: { sub: Connection }\n",
    );
    assert_eq!(
        only_error(&yaml),
        "t.yaml:14:33: routes[0].auth.claims_to_headers.sub: `Connection` is a hop-by-hop header (RFC 9110 §7.6.1); pick another name such as `X-User-Id`"
    );
}

#[test]
fn unknown_token_source() {
    let yaml = with_route(
        "    auth:\n      jwt: { keys: [ { secret_env: S, alg: HS256 } ] }\n      token_from: [header, bearer]\n",
    );
    assert_eq!(
        only_error(&yaml),
        "t.yaml:14:28: routes[0].auth.token_from[1]: unknown token source `bearer`; expected `header`, `subprotocol`, `{ query: NAME }`, `{ cookie: NAME }` or `{ subprotocol: MARKER }`"
    );
}
