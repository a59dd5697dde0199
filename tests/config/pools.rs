//! The pool keys (issue 5): backend `weight` and `wss://` URLs, `balance`, `tls`,
//! `proxy_protocol`, `health`, `passive` and `retries`. One test parses every key into typed
//! values; the others each pin one class of mistake with its `file:line:col`, field path and
//! message.

use std::path::Path;
use std::time::Duration;

use wsgate::config::{
    Balance, HashKey, HealthKind, Passive, PoolConfig, ProxyVersion, load_file, load_str,
};

use super::{load, only_error};

/// A valid config whose only pool comes last, so that pool keys can be appended: they start on
/// line 13, indented by four spaces. Backend URLs are on lines 11 and 12, column 16.
const POOL_BASE: &str = "\
listeners:
  - name: public
    bind: \"127.0.0.1:8443\"
    tls:
      self_signed: [localhost]
routes:
  - { path: /echo/, pool: echo }
pools:
  echo:
    backends:
      - { url: \"ws://127.0.0.1:9501\" }
      - { url: \"wss://echo.internal:9502\" }
";

fn with_pool(keys: &str) -> String {
    format!("{POOL_BASE}{keys}")
}

/// [`POOL_BASE`] with plain `ws://` backends only.
fn ws_only(keys: &str) -> String {
    with_pool(keys).replace("wss://echo.internal", "ws://echo.internal")
}

/// The pool `echo` of a config that must load.
fn echo_pool(yaml: &str) -> PoolConfig {
    let config = load(yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    config.pools.into_iter().next().expect("one pool")
}

/// Every pool key once; the PEM files are written next to it by the test.
const FULL_POOLS: &str = r#"
listeners:
  - { name: public, bind: "127.0.0.1:0" }
routes:
  - { path: /chat, pool: chat }
  - { path: /feed, pool: feed }
pools:
  chat:
    balance: least_connections
    backends:
      - { url: "ws://10.0.0.5:8080", weight: 1 }
      - { url: "wss://Chat-2.Internal:8443", weight: 2 }
      - { url: "wss://[fd00::7]", weight: 1000 }
    tls: { ca: certs/internal-ca.pem, server_name: Chat.Internal, client_cert: certs/gw.pem, client_key: certs/gw.key }
    proxy_protocol: v2
    health:
      interval: 5s
      timeout: 2s
      rise: 2
      fall: 3
      check: { websocket: /health }
    passive: { failures: 3, cooldown: 10s }
    retries: 2
  feed:
    balance: { hash: { query: room } }
    backends: [ { url: "ws://127.0.0.1:9501" } ]
    proxy_protocol: v1
    health: { interval: 500ms, timeout: 200ms, rise: 1, fall: 100, check: tcp }
    passive: { failures: 0, cooldown: 1m }
"#;

/// Validation only looks for the PEM armour; the certificates are parsed by the runtime.
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

#[test]
fn every_pool_key_is_parsed() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("certs")).expect("certs dir");
    for (name, pem) in [
        ("internal-ca.pem", CERT_PEM),
        ("gw.pem", CERT_PEM),
        ("gw.key", KEY_PEM),
    ] {
        std::fs::write(dir.path().join("certs").join(name), pem).expect("pem");
    }
    let path = dir.path().join("gate.yaml");
    std::fs::write(&path, FULL_POOLS).expect("write config");
    let config = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let [chat, feed] = config.pools.as_slice() else {
        panic!("two pools expected: {:?}", config.pools)
    };

    assert_eq!(chat.name, "chat");
    assert_eq!(chat.balance, Balance::LeastConnections);
    let backends: Vec<_> = (chat.backends.iter())
        .map(|b| {
            (
                b.url.as_str(),
                b.authority.as_str(),
                b.host.as_str(),
                b.tls,
                b.weight,
            )
        })
        .collect();
    assert_eq!(
        backends,
        [
            ("ws://10.0.0.5:8080", "10.0.0.5:8080", "10.0.0.5", false, 1),
            (
                "wss://Chat-2.Internal:8443",
                "chat-2.internal:8443",
                "chat-2.internal",
                true,
                2
            ),
            ("wss://[fd00::7]", "[fd00::7]:443", "fd00::7", true, 1000),
        ]
    );
    let tls = chat.tls.as_ref().expect("tls");
    let certs = dir.path().join("certs");
    assert_eq!(
        tls.ca.as_deref(),
        Some(certs.join("internal-ca.pem").as_path())
    );
    assert_eq!(tls.server_name.as_deref(), Some("chat.internal"));
    assert_eq!(
        tls.client_cert.as_deref(),
        Some(certs.join("gw.pem").as_path())
    );
    assert_eq!(
        tls.client_key.as_deref(),
        Some(certs.join("gw.key").as_path())
    );
    assert_eq!(chat.proxy_protocol, Some(ProxyVersion::V2));
    let health = chat.health.as_ref().expect("health");
    assert_eq!(health.interval, Duration::from_secs(5));
    assert_eq!(health.timeout, Duration::from_secs(2));
    assert_eq!((health.rise, health.fall), (2, 3));
    assert_eq!(health.kind, HealthKind::WebSocket("/health".to_owned()));
    assert_eq!(chat.passive, Passive::default());
    assert_eq!(chat.retries, 2);

    assert_eq!(
        feed.balance,
        Balance::Hash(HashKey::Query("room".to_owned()))
    );
    assert!(feed.tls.is_none());
    assert_eq!(feed.proxy_protocol, Some(ProxyVersion::V1));
    let health = feed.health.as_ref().expect("health");
    assert_eq!(health.interval, Duration::from_millis(500));
    assert_eq!(health.timeout, Duration::from_millis(200));
    assert_eq!((health.rise, health.fall), (1, 100));
    assert_eq!(health.kind, HealthKind::Tcp);
    let passive = Passive {
        failures: 0,
        cooldown: Duration::from_secs(60),
    };
    assert_eq!(feed.passive, passive);
    assert_eq!(feed.retries, 0);
}

#[test]
fn absent_keys_take_their_defaults() {
    let pool = echo_pool(POOL_BASE);
    assert_eq!(pool.balance, Balance::RoundRobin);
    assert!(pool.tls.is_none() && pool.proxy_protocol.is_none() && pool.health.is_none());
    assert_eq!(pool.passive, Passive::default());
    // `retries` defaults to min(2, backends - 1), as nginx fails over: 1 with these two.
    assert_eq!(pool.retries, 1);
    let last = "      - { url: \"wss://echo.internal:9502\" }\n";
    let four = POOL_BASE.replace(
        last,
        &format!("{last}      - {{ url: \"ws://c:1\" }}\n      - {{ url: \"ws://d:1\" }}\n"),
    );
    assert_eq!(echo_pool(&four).retries, 2);
    assert!(pool.backends.iter().all(|b| b.weight == 1));
    assert!(!pool.backends[0].tls && pool.backends[1].tls);
    assert_eq!(pool.backends[1].authority, "echo.internal:9502");
    let pool = echo_pool(&with_pool(
        "    health: { check: { websocket: \"/ready?deep=1\" } }\n    passive: { cooldown: 2s }\n",
    ));
    let health = pool.health.expect("health");
    assert_eq!(
        (health.interval, health.timeout),
        (Duration::from_secs(5), Duration::from_secs(2))
    );
    assert_eq!((health.rise, health.fall), (2, 3));
    assert_eq!(
        health.kind,
        HealthKind::WebSocket("/ready?deep=1".to_owned())
    );
    assert_eq!(
        (pool.passive.failures, pool.passive.cooldown),
        (3, Duration::from_secs(2))
    );
    let wss = echo_pool(&POOL_BASE.replace("echo.internal:9502", "echo.internal"));
    assert_eq!(wss.backends[1].authority, "echo.internal:443");
}

#[test]
fn every_balance_and_hash_key_is_parsed() {
    let header = |name: &str| HashKey::Header(name.to_owned());
    let cases = [
        ("round_robin", Balance::RoundRobin),
        ("random_two", Balance::RandomTwo),
        ("{ hash: path }", Balance::Hash(HashKey::Path)),
        ("{ hash: client_ip }", Balance::Hash(HashKey::ClientIp)),
        ("{ hash: subprotocol }", Balance::Hash(HashKey::Subprotocol)),
        (
            "{ hash: { header: X-Room } }",
            Balance::Hash(header("X-Room")),
        ),
        (
            "{ hash: { cookie: room } }",
            Balance::Hash(HashKey::Cookie("room".to_owned())),
        ),
        (
            "\n      hash:\n        query: room",
            Balance::Hash(HashKey::Query("room".to_owned())),
        ),
    ];
    for (text, expected) in cases {
        let pool = echo_pool(&with_pool(&format!("    balance: {text}\n")));
        assert_eq!(pool.balance, expected, "{text}");
    }
}

#[test]
fn bad_balance_name() {
    assert_eq!(
        only_error(&with_pool("    balance: leastconn\n")),
        "t.yaml:13:14: pools.echo.balance: unknown balance `leastconn`; expected `round_robin`, `least_connections`, `random_two` or `{ hash: KEY }`"
    );
    assert_eq!(
        only_error(&with_pool("    balance: { sticky: path }\n")),
        "t.yaml:13:16: pools.echo.balance.sticky: unknown balance `sticky`; expected `round_robin`, `least_connections`, `random_two` or `{ hash: KEY }`"
    );
}

#[test]
fn bad_hash_key() {
    let expected = "expected `path`, `client_ip`, `subprotocol`, `{ header: NAME }`, `{ cookie: NAME }` or `{ query: NAME }`";
    assert_eq!(
        only_error(&with_pool("    balance: { hash: ip }\n")),
        format!("t.yaml:13:22: pools.echo.balance.hash: unknown hash key `ip`; {expected}")
    );
    assert_eq!(
        only_error(&with_pool("    balance: { hash: { param: room } }\n")),
        format!(
            "t.yaml:13:24: pools.echo.balance.hash.param: unknown hash key `param`; {expected}"
        )
    );
    assert_eq!(
        only_error(&with_pool(
            "    balance: { hash: { header: \"X Room\" } }\n"
        )),
        "t.yaml:13:32: pools.echo.balance.hash.header: `X Room` is not a valid header name"
    );
}

#[test]
fn weight_out_of_range() {
    let yaml = with_pool("").replace(
        "\"ws://127.0.0.1:9501\" }",
        "\"ws://127.0.0.1:9501\", weight: 0 }",
    );
    assert_eq!(
        only_error(&yaml),
        "t.yaml:11:47: pools.echo.backends[0].weight: 0 is out of range; expected 1..=1000"
    );
    let yaml = yaml.replace("weight: 0", "weight: 1001");
    assert_eq!(
        only_error(&yaml),
        "t.yaml:11:47: pools.echo.backends[0].weight: 1001 is out of range; expected 1..=1000"
    );
}

#[test]
fn duplicate_backend() {
    let yaml = POOL_BASE.replace("wss://echo.internal:9502", "WS://127.0.0.1:9501/");
    assert_eq!(
        only_error(&yaml),
        "t.yaml:12:16: pools.echo.backends[1].url: `WS://127.0.0.1:9501/` is listed twice (first at t.yaml:11:16); give a backend a larger share with `weight`"
    );
}

#[test]
fn tls_without_a_wss_backend() {
    assert_eq!(
        only_error(&ws_only("    tls: { server_name: echo.internal }\n")),
        "t.yaml:13:10: pools.echo.tls: applies to `wss://` backends only, and this pool has none; remove it or use wss:// URLs"
    );
}

#[test]
fn client_cert_without_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("gw.pem"), CERT_PEM).expect("pem");
    std::fs::write(dir.path().join("gw.key"), KEY_PEM).expect("pem");
    let load_in_dir = |yaml: &str| {
        let errors = load_str(yaml, "t.yaml", dir.path())
            .expect_err("rejected")
            .0;
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors[0].to_string()
    };
    assert_eq!(
        load_in_dir(&with_pool("    tls: { client_cert: gw.pem }\n")),
        "t.yaml:13:25: pools.echo.tls.client_cert: needs `client_key` too: a client certificate is presented with its private key"
    );
    assert_eq!(
        load_in_dir(&with_pool("    tls: { client_key: gw.key }\n")),
        "t.yaml:13:24: pools.echo.tls.client_key: needs `client_cert` too: a private key is used with its certificate"
    );
    // Swapped files are caught by their PEM armour.
    let yaml = with_pool("    tls: { client_cert: gw.key, client_key: gw.pem }\n");
    let errors = load_str(&yaml, "t.yaml", dir.path())
        .expect_err("rejected")
        .0;
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let shown = |name: &str| dir.path().join(name).display().to_string();
    assert_eq!(
        lines,
        [
            format!(
                "t.yaml:13:25: pools.echo.tls.client_cert: `{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                shown("gw.key")
            ),
            format!(
                "t.yaml:13:45: pools.echo.tls.client_key: `{}` holds no PEM private key (`-----BEGIN PRIVATE KEY-----`)",
                shown("gw.pem")
            ),
        ]
    );
}

#[test]
fn unreadable_ca_path() {
    assert_eq!(
        only_error(&with_pool("    tls: { ca: certs/missing-ca.pem }\n")),
        "t.yaml:13:16: pools.echo.tls.ca: cannot read `/etc/wsgate/certs/missing-ca.pem`: No such file or directory (os error 2)"
    );
}

#[test]
fn bad_server_name() {
    assert_eq!(
        only_error(&with_pool("    tls: { server_name: \"chat internal\" }\n")),
        "t.yaml:13:25: pools.echo.tls.server_name: `chat internal` is not a valid DNS name"
    );
}

#[test]
fn bad_proxy_protocol_version() {
    assert_eq!(
        only_error(&with_pool("    proxy_protocol: true\n")),
        "t.yaml:13:21: pools.echo.proxy_protocol: `true` is not a PROXY protocol version; expected `v1` (text) or `v2` (binary)"
    );
}

#[test]
fn health_timeout_not_shorter_than_interval() {
    assert_eq!(
        only_error(&with_pool("    health: { interval: 2s, timeout: 2s }\n")),
        "t.yaml:13:38: pools.echo.health.timeout: `2s` must be shorter than `interval` (2s)"
    );
    // Only the interval written: the default timeout (2s) is what it clashes with.
    assert_eq!(
        only_error(&with_pool("    health: { interval: 1s }\n")),
        "t.yaml:13:25: pools.echo.health.interval: `1s` must be longer than `timeout` (2s by default); set a shorter `timeout`"
    );
    assert_eq!(
        only_error(&with_pool(
            "    health: { interval: 50ms, timeout: 10ms }\n"
        )),
        "t.yaml:13:25: pools.echo.health.interval: `50ms` is too short; at least 100ms"
    );
    assert_eq!(
        only_error(&with_pool("    health: { rise: 0 }\n")),
        "t.yaml:13:21: pools.echo.health.rise: 0 is out of range; expected 1..=100"
    );
}

#[test]
fn bad_health_check_path() {
    assert_eq!(
        only_error(&with_pool("    health: { check: { websocket: health } }\n")),
        "t.yaml:13:35: pools.echo.health.check.websocket: `health` must start with `/`"
    );
    assert_eq!(
        only_error(&with_pool("    health: { check: http }\n")),
        "t.yaml:13:22: pools.echo.health.check: unknown check `http`; expected `tcp` or `{ websocket: PATH }`"
    );
}

#[test]
fn passive_cooldown_must_be_positive() {
    assert_eq!(
        only_error(&with_pool("    passive: { failures: 5, cooldown: 0s }\n")),
        "t.yaml:13:39: pools.echo.passive.cooldown: `0s` must be greater than 0"
    );
}

#[test]
fn retries_out_of_range() {
    assert_eq!(
        only_error(&with_pool("    retries: 11\n")),
        "t.yaml:13:14: pools.echo.retries: 11 is out of range; expected 0..=10"
    );
    assert_eq!(
        only_error(&with_pool("    retries: 2\n")),
        "t.yaml:13:14: pools.echo.retries: 2 retries need at least 3 backends (each retry tries another one); this pool has 2"
    );
    assert_eq!(echo_pool(&with_pool("    retries: 1\n")).retries, 1);
}

#[test]
fn unknown_pool_key_lists_the_allowed_ones() {
    assert_eq!(
        only_error(&with_pool("    retry: 1\n")),
        "t.yaml:13:5: pools.echo.retry: unknown field `retry`, expected one of backends, balance, tls, proxy_protocol, health, passive, retries"
    );
}

#[test]
fn the_example_documents_every_pool_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wsgate.yaml");
    let example = std::fs::read_to_string(path).expect("example config");
    for key in [
        "weight:",
        "balance:",
        "hash:",
        "tls:",
        "server_name:",
        "client_cert:",
        "proxy_protocol: v2",
        "health:",
        "interval:",
        "rise:",
        "check:",
        "passive:",
        "retries:",
    ] {
        assert!(
            example.contains(key),
            "config/wsgate.yaml does not mention `{key}`"
        );
    }
}
