//! Config loading through the public API: the shipped example parses, every class of mistake is
//! reported with its `file:line:col`, field path and a message naming the problem, and no input
//! (hostile or mangled) makes the loader panic.

use std::path::Path;
use std::time::Duration;

use wsgate::config::{CertSource, ConfigError, TlsVersion, load_file, load_str};

#[path = "config/acme.rs"]
mod acme;
#[path = "config/client_auth.rs"]
mod client_auth;
#[path = "config/cluster.rs"]
mod cluster;
#[path = "config/fleet_policy.rs"]
mod fleet_policy;
#[path = "config/plain.rs"]
mod plain;
#[path = "config/policy.rs"]
mod policy;
#[path = "config/pools.rs"]
mod pools;
#[path = "config/session.rs"]
mod session;

/// A small valid config; the cases below each break one thing in it.
///
/// Line numbers: 1 listeners, 2 name, 3 bind, 4 tls, 5 self_signed, 6 routes, 7 route,
/// 8 pools, 9 echo, 10 backends.
const BASE: &str = "\
listeners:
  - name: public
    bind: \"127.0.0.1:8443\"
    tls:
      self_signed: [localhost]
routes:
  - { path: /echo/, pool: echo }
pools:
  echo:
    backends: [ { url: \"ws://127.0.0.1:9501\" } ]
";

/// A valid config whose only route comes last, so that route keys can be appended: they start
/// on line 12, indented by four spaces.
const ROUTE_LAST: &str = "\
listeners:
  - name: public
    bind: \"127.0.0.1:8443\"
    tls:
      self_signed: [localhost]
pools:
  echo:
    backends: [ { url: \"ws://127.0.0.1:9501\" } ]
routes:
  - path: /echo/
    pool: echo
";

fn load(yaml: &str) -> Result<wsgate::config::Config, Vec<ConfigError>> {
    load_str(yaml, "t.yaml", Path::new("/etc/wsgate")).map_err(|e| e.0)
}

/// The single error `yaml` produces, as displayed.
fn only_error(yaml: &str) -> String {
    let errors = load(yaml).expect_err("config should be rejected");
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors[0].to_string()
}

fn with_limits(limits: &str) -> String {
    format!("{BASE}limits:\n{limits}")
}

#[test]
fn example_file_parses_with_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wsgate.yaml");
    let config = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    let [listener] = config.listeners.as_slice() else {
        panic!("one listener expected: {:?}", config.listeners)
    };
    assert_eq!(listener.name, "public");
    assert_eq!(listener.bind.to_string(), "127.0.0.1:8443");
    let tls = listener.tls.as_ref().expect("tls listener");
    assert_eq!(tls.min_version, TlsVersion::V1_2);
    assert!(
        matches!(&tls.certificates, CertSource::SelfSigned(names) if names == &["localhost", "127.0.0.1"])
    );
    let [route] = config.routes.as_slice() else {
        panic!("one route expected")
    };
    assert_eq!((route.host.as_deref(), route.path.as_str()), (None, "/"));
    assert_eq!(route.pool, "echo");
    assert_eq!(config.pools.len(), 1);
    assert_eq!(config.pools[0].name, "echo");
    assert_eq!(config.pools[0].backends[0].authority, "127.0.0.1:9501");
    // The demo pool keys are documented but commented out: every one at its default.
    let pool = &config.pools[0];
    assert_eq!(pool.balance, wsgate::config::Balance::RoundRobin);
    assert!(pool.tls.is_none() && pool.proxy_protocol.is_none() && pool.health.is_none());
    assert_eq!(pool.passive, wsgate::config::Passive::default());
    assert_eq!((pool.retries, pool.backends[0].weight), (0, 1));
    let defaults = wsgate::config::Limits::default();
    assert_eq!(format!("{:?}", config.limits), format!("{defaults:?}"));
    // The demo admits everyone: the admission keys are documented but commented out.
    assert!(!listener.proxy_protocol);
    assert!(config.trusted_proxies.is_empty());
    assert!(route.policy.origins.is_none() && route.policy.auth.is_none());
    assert!(route.policy.rate.is_none() && route.policy.max_connections.is_none());
    // The session keys and `admin` are documented but commented out too.
    assert_eq!(
        route.policy.session,
        wsgate::config::policy::SessionPolicy::default()
    );
    assert!(config.admin.is_none() && config.admin_token_env.is_none());
    // The demo serves its page through the route, so a browser sees a socket work.
    assert_eq!(route.policy.http, wsgate::config::policy::HttpMode::Proxy);
}

#[test]
fn limits_and_routes_are_converted() {
    let yaml = with_limits("  drain_timeout: 500ms\n  max_request_header_bytes: 4096\n  max_relayed_body_bytes: 1MB\n  max_request_headers: 7\n")
        .replace("{ path: /echo/,", "{ host: WS.Test, path: /echo/,");
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.limits.drain_timeout, Duration::from_millis(500));
    assert_eq!(config.limits.max_request_header_bytes, 4096);
    assert_eq!(config.limits.max_relayed_body_bytes, 1_000_000);
    assert_eq!(config.limits.max_request_headers, 7);
    assert_eq!(config.routes[0].host.as_deref(), Some("ws.test"));
}

#[test]
fn ipv6_hosts_and_backends() {
    let yaml = BASE
        .replace("{ path: /echo/,", "{ host: \"[::1]\", path: /echo/,")
        .replace("ws://127.0.0.1:9501", "ws://[0:0::1]:9501")
        .replace("127.0.0.1:8443", "[::1]:0");
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.routes[0].host.as_deref(), Some("::1"));
    assert_eq!(config.pools[0].backends[0].authority, "[::1]:9501");
    assert_eq!(config.listeners[0].bind.to_string(), "[::1]:0");
}

#[test]
fn relative_cert_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = BASE.replace(
        "self_signed: [localhost]",
        "certificates:\n        - { cert: certs/a.pem, key: /abs/a.key }",
    );
    let path = dir.path().join("gate.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let config = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let tls = config.listeners[0].tls.as_ref().expect("tls");
    let CertSource::Files(files) = &tls.certificates else {
        panic!("files expected")
    };
    assert_eq!(files[0].cert, dir.path().join("certs/a.pem"));
    assert_eq!(files[0].key, Path::new("/abs/a.key"));
    assert_eq!(files[0].origin, format!("{}:6:11", path.display()));
}

#[test]
fn unreadable_file_is_an_error() {
    let errors = load_file(Path::new("/nonexistent/wsgate.yaml")).expect_err("missing file");
    let text = errors.to_string();
    assert!(
        text.starts_with("/nonexistent/wsgate.yaml: cannot read config file:"),
        "{text}"
    );
}

#[test]
fn unknown_key_names_the_key_and_the_allowed_ones() {
    assert_eq!(
        only_error(&BASE.replace("    tls:", "    tsl:")),
        "t.yaml:4:5: listeners[0].tsl: unknown field `tsl`, expected one of name, bind, tls, proxy_protocol, http2"
    );
}

#[test]
fn http2_is_a_boolean_defaulting_to_true() {
    let config = load(BASE).expect("base config");
    assert!(config.listeners[0].http2, "h2 offered unless turned off");
    let off = load(&BASE.replace("    tls:", "    http2: false\n    tls:")).expect("http2: false");
    assert!(!off.listeners[0].http2);
    let text = only_error(&BASE.replace("    tls:", "    http2: maybe\n    tls:"));
    assert!(
        text.starts_with("t.yaml:4:12: listeners[0].http2: "),
        "{text}"
    );
}

#[test]
fn bad_type_names_the_expected_type() {
    assert_eq!(
        only_error(&BASE.replace("\"127.0.0.1:8443\"", "[127.0.0.1, 8443]")),
        "t.yaml:3:11: listeners[0].bind: expected a single value, not a list or mapping"
    );
}

#[test]
fn bad_duration() {
    assert_eq!(
        only_error(&with_limits("  drain_timeout: 30\n")),
        "t.yaml:12:18: limits.drain_timeout: `30` has no unit; expected a whole number followed by ms, s, m, h or d (e.g. `10s`)"
    );
    assert_eq!(
        only_error(&with_limits("  tunnel_idle_timeout: 0s\n")),
        "t.yaml:12:24: limits.tunnel_idle_timeout: `0s` must be greater than 0"
    );
}

#[test]
fn bad_size() {
    assert_eq!(
        only_error(&with_limits("  max_request_header_bytes: 2MiB\n")),
        "t.yaml:12:29: limits.max_request_header_bytes: `2MiB` is out of range; expected 1KiB..=1MiB"
    );
    assert_eq!(
        only_error(&with_limits("  max_relayed_body_bytes: 16kb\n")),
        "t.yaml:12:27: limits.max_relayed_body_bytes: unknown unit `kb` in `16kb`; expected B, KiB, MiB, GiB, KB, MB or GB (units are case-sensitive)"
    );
}

#[test]
fn unknown_pool_lists_the_defined_ones() {
    assert_eq!(
        only_error(&BASE.replace("pool: echo", "pool: ecko")),
        "t.yaml:7:27: routes[0].pool: unknown pool `ecko`; defined pools: echo"
    );
}

#[test]
fn duplicate_route_names_both_locations() {
    let yaml = BASE.replace("routes:\n", "routes:\n  - { path: /echo/, pool: echo }\n");
    assert_eq!(
        only_error(&yaml),
        "t.yaml:8:13: routes[1].path: duplicate route: host `*` path `/echo/` is already routed by routes[0] at t.yaml:7:13"
    );
}

#[test]
fn bad_backend_url() {
    assert_eq!(
        only_error(&BASE.replace("ws://127.0.0.1:9501", "http://127.0.0.1:9501")),
        "t.yaml:10:24: pools.echo.backends[0].url: unsupported scheme `http://` in `http://127.0.0.1:9501`; expected ws://HOST[:PORT] or wss://HOST[:PORT]"
    );
    assert_eq!(
        only_error(&BASE.replace("ws://127.0.0.1:9501", "ws://127.0.0.1:9501/chat")),
        "t.yaml:10:24: pools.echo.backends[0].url: `ws://127.0.0.1:9501/chat` must not have a path (the client's path is forwarded); expected ws://HOST[:PORT] or wss://HOST[:PORT]"
    );
}

#[test]
fn bad_bind_address() {
    assert_eq!(
        only_error(&BASE.replace("127.0.0.1:8443", "localhost:8443")),
        "t.yaml:3:11: listeners[0].bind: `localhost:8443` is not an IP:PORT address (e.g. `127.0.0.1:8443` or `[::]:443`; host names are not resolved) nor `systemd:NAME`"
    );
}

#[test]
fn tls_without_a_certificate() {
    assert_eq!(
        only_error(&BASE.replace("self_signed: [localhost]", "min_version: \"1.3\"")),
        "t.yaml:5:7: listeners[0].tls: needs `certificates` (PEM files), `acme` or `self_signed` (names for a generated certificate)"
    );
    assert_eq!(
        only_error(&BASE.replace("self_signed: [localhost]", "certificates: []")),
        "t.yaml:5:21: listeners[0].tls.certificates: is empty; list at least one `{ cert: FILE, key: FILE }` pair"
    );
    assert_eq!(
        only_error(&BASE.replace(
            "self_signed: [localhost]",
            "certificates:\n        - cert: a.pem\n"
        )),
        "t.yaml:6:11: listeners[0].tls.certificates[0].key: missing field `key`"
    );
}

#[test]
fn yaml_syntax_error_has_a_location() {
    assert_eq!(
        only_error("listeners: [\n"),
        "t.yaml:1:12: listeners: unclosed bracket '['"
    );
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    let yaml = with_limits("  drain_timeout: soon\n  max_request_headers: 0\n")
        .replace("127.0.0.1:8443", "localhost:8443")
        .replace("pool: echo", "pool: nope")
        .replace("ws://127", "ftp://127");
    let errors = load(&yaml).expect_err("rejected");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "t.yaml:3:11: listeners[0].bind: `localhost:8443` is not an IP:PORT address (e.g. `127.0.0.1:8443` or `[::]:443`; host names are not resolved) nor `systemd:NAME`",
            "t.yaml:7:27: routes[0].pool: unknown pool `nope`; defined pools: echo",
            "t.yaml:10:24: pools.echo.backends[0].url: unsupported scheme `ftp://` in `ftp://127.0.0.1:9501`; expected ws://HOST[:PORT] or wss://HOST[:PORT]",
            "t.yaml:12:18: limits.drain_timeout: `soon` is not a number with a unit; expected a whole number followed by ms, s, m, h or d (e.g. `10s`)",
            "t.yaml:13:24: limits.max_request_headers: 0 is out of range; expected 1..=10000",
        ]
    );
    let shown = load_str(&yaml, "t.yaml", Path::new("/"))
        .expect_err("rejected")
        .to_string();
    assert_eq!(shown.lines().count(), 5, "one line per error:\n{shown}");
}

#[test]
fn empty_file_lists_the_missing_sections() {
    let errors = load("").expect_err("rejected");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "t.yaml: listeners: at least one listener is required",
            "t.yaml: pools: at least one pool is required",
            "t.yaml: routes: at least one route is required",
        ]
    );
}

#[test]
fn hostile_yaml_fails_cleanly() {
    // Billion laughs where the aliases are actually consumed: far more aliases than the budget.
    let route = "routes:\n  - &r { path: /echo/, pool: echo }\n";
    let bomb = format!("{route}{}", "  - *r\n".repeat(5_000));
    let err = only_error(&BASE.replace("routes:\n  - { path: /echo/, pool: echo }\n", &bomb));
    assert!(err.contains("too large"), "{err}");
    // Classic nested laughs: only known keys are accepted and their leaves are strings, so the
    // parse stops before anything is expanded.
    let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = vec![format!("*a{}", i - 1); 10].join(", ");
        laughs.push_str(&format!("a{i}: &a{i} [{prev}]\n"));
    }
    laughs.push_str("listeners: *a9\n");
    assert!(load(&laughs).is_err());
    // Deep nesting, flow and block.
    let deep = format!("listeners: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(load(&deep).is_err());
    let deep_block: String = (0..1_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    assert!(load(&deep_block).is_err());
    // Oversized input is refused before parsing.
    let huge = format!("# {}\n{BASE}", "x".repeat(2 << 20));
    assert!(only_error(&huge).contains("larger than"));
}

#[test]
fn mangled_example_never_panics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wsgate.yaml");
    let example = std::fs::read(&path).expect("example config");
    let mut variants: Vec<Vec<u8>> = Vec::new();
    for i in 1..24 {
        variants.push(example[..example.len() * i / 24].to_vec());
    }
    // A fixed linear congruential sequence: deterministic, no extra dependency.
    let mut seed: u64 = 0x5eed;
    let mut next = |bound: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).expect("31-bit value fits") % bound
    };
    let specials = b":[]{}-&*\"'\t #!|>%@,?\n\x00\xff";
    for _ in 0..40 {
        let mut bytes = example.clone();
        for _ in 0..1 + next(3) {
            let at = next(bytes.len());
            bytes[at] = specials[next(specials.len())];
        }
        variants.push(bytes);
    }
    for bytes in variants {
        let text = String::from_utf8_lossy(&bytes);
        let result = load_str(&text, "fuzz.yaml", Path::new("."));
        if let Err(errors) = result {
            assert!(!errors.0.is_empty());
            let _ = errors.to_string();
        }
    }
}

#[test]
fn auth_request_takes_https_urls() {
    use wsgate::config::policy::AuthMethod;
    let yaml = BASE.replace(
        "pool: echo }",
        "pool: echo, auth: { request: { url: \"HTTPS://Auth.Example.com/check?v=1\" } } }",
    );
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    let auth = config.routes[0].policy.auth.as_ref().expect("auth");
    let AuthMethod::Request(request) = &auth.method else {
        panic!("auth request expected")
    };
    assert_eq!(
        (request.authority.as_str(), request.path.as_str()),
        ("auth.example.com:443", "/check?v=1")
    );
    let yaml = BASE.replace(
        "pool: echo }",
        "pool: echo, auth: { request: { url: \"ftp://auth.example.com/\" } } }",
    );
    assert!(only_error(&yaml).contains("unsupported scheme"));
}
