//! The fleet keys (issue 11), part one: the `cluster:` block. One test pins the defaults; the
//! others each pin one rule of `cluster:` with its `file:line:col`, field path and message. A
//! Redis password never appears in an error, and nothing here connects. The test that parses
//! every fleet key, and the `scope:` and `per_subject:` rules, are in `fleet_policy.rs`.

use std::path::Path;
use std::time::Duration;

use wsgate::config::{OnError, OnExceed, PerSubject, Scope, load_str};

use super::{BASE, load, only_error};

/// A valid config whose only route comes last, so that route keys can be appended: they start
/// on line 12, indented by four spaces.
pub(super) const FLEET_BASE: &str = super::ROUTE_LAST;

pub(super) const JWT: &str = "{ jwt: { keys: [ { secret_env: WSGATE_HS_SECRET, alg: HS256 } ] } }";
pub(super) const REDIS: &str = "redis://127.0.0.1:6379/0";

pub(super) fn with_route(keys: &str) -> String {
    format!("{FLEET_BASE}{keys}")
}

/// Route `keys` (from line 12), then a `cluster:` block whose lines follow them.
pub(super) fn with_cluster(keys: &str, cluster: &str) -> String {
    format!("{FLEET_BASE}{keys}cluster:\n{cluster}")
}

/// A `cluster:` block holding only `redis: URL`, on the line after the route keys.
fn cluster_url(url: &str) -> String {
    with_cluster("", &format!("  redis: \"{url}\"\n"))
}

/// The errors of `yaml` loaded from `dir` (relative paths resolve there), one line each.
fn errors_in(dir: &Path, yaml: &str) -> Vec<String> {
    let errors = load_str(yaml, "t.yaml", dir).expect_err("rejected").0;
    errors.iter().map(ToString::to_string).collect()
}

pub(super) fn ca_pem() -> String {
    rcgen::generate_simple_self_signed(vec!["redis.internal".to_owned()])
        .expect("self-signed certificate")
        .cert
        .pem()
}

#[test]
fn absent_keys_take_their_defaults() {
    let config = load(&cluster_url(REDIS)).unwrap_or_else(|e| panic!("{e:#?}"));
    let cluster = config.cluster.as_ref().expect("cluster");
    assert_eq!(cluster.redis, REDIS);
    assert_eq!(cluster.ca, None);
    assert_eq!(cluster.prefix, "wsgate:");
    assert_eq!(cluster.timeout, Duration::from_millis(50));
    assert_eq!(cluster.on_error, OnError::Allow);
    // `hostname:pid`.
    let (host, pid) = cluster.instance.rsplit_once(':').expect("host:pid");
    assert!(!host.is_empty(), "{}", cluster.instance);
    assert_eq!(pid, std::process::id().to_string());
    // A TLS URL without `ca:` trusts the system roots.
    let tls = load(&cluster_url("rediss://redis.example.com")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(tls.cluster.expect("cluster").ca, None);

    // No `cluster:`: every instance counts alone, and every scope is local.
    let yaml = with_route(&format!(
        "    auth: {JWT}\n    rate: {{ handshakes: \"5/s\" }}\n    per_subject: {{ max_sessions: 2 }}\n"
    ));
    let config = load(&format!(
        "{yaml}limits:\n  per_ip: {{ max_connections: 9 }}\n"
    ))
    .unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(config.cluster.is_none());
    assert_eq!(config.limits.per_ip.scope, Scope::Local);
    let policy = &config.routes[0].policy;
    assert_eq!(policy.rate_scope, Scope::Local);
    let cap = PerSubject {
        max_sessions: 2,
        on_exceed: OnExceed::Refuse,
        scope: Scope::Local,
    };
    assert_eq!(policy.per_subject, Some(cap));
    let plain = load(BASE).expect("base config");
    assert!(plain.cluster.is_none() && plain.routes[0].policy.per_subject.is_none());
}

#[test]
fn redis_url_is_required() {
    let msg = "needs `redis`: the URL of the Redis/Valkey the fleet shares (`redis://HOST:PORT/DB` or `rediss://...` for TLS)";
    assert_eq!(
        only_error(&with_cluster("", "  prefix: \"x:\"\n")),
        format!("t.yaml:13:3: cluster: {msg}")
    );
    // A `cluster:` with nothing under it is not read as absent.
    assert_eq!(
        only_error(&format!("{FLEET_BASE}cluster:\n")),
        format!("t.yaml:12:8: cluster: {msg}")
    );
    assert_eq!(
        only_error(&format!("{FLEET_BASE}cluster: {{}}\n")),
        format!("t.yaml:12:10: cluster: {msg}")
    );
}

#[test]
fn only_redis_and_rediss_urls() {
    let expected = "expected `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]` or `rediss://...` (TLS)";
    for (url, why) in [
        (
            "unix:///run/redis.sock",
            "scheme `unix://` is not supported",
        ),
        (
            "redis+unix:///run/redis.sock",
            "scheme `redis+unix://` is not supported",
        ),
        ("valkey://127.0.0.1", "scheme `valkey://` is not supported"),
        ("http://127.0.0.1:6379", "scheme `http://` is not supported"),
        ("127.0.0.1:6379", "is not a URL"),
    ] {
        assert_eq!(
            only_error(&cluster_url(url)),
            format!("t.yaml:13:10: cluster.redis: {why}; {expected}"),
        );
    }
}

#[test]
fn redis_url_must_parse() {
    let expected = "expected `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]` or `rediss://...` (TLS)";
    assert_eq!(
        only_error(&cluster_url("redis://127.0.0.1:6379/zero")),
        format!(
            "t.yaml:13:10: cluster.redis: not a valid Redis URL (Invalid database number); {expected}"
        ),
    );
    assert_eq!(
        only_error(&cluster_url("redis://0.0.0.0:6379")),
        format!(
            "t.yaml:13:10: cluster.redis: not a valid Redis URL (Cannot connect to a wildcard address (0.0.0.0 or ::)); {expected}"
        ),
    );
    assert_eq!(
        only_error(&cluster_url("redis://127.0.0.1:99999")),
        format!(
            "t.yaml:13:10: cluster.redis: does not parse as a URL (check the host, the port and that a password's special characters are %-encoded); {expected}"
        ),
    );
}

#[test]
fn a_password_never_appears_in_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let no_cert = dir.path().join("not-a-cert.pem");
    std::fs::write(&no_cert, "hello").expect("file");
    for url in [
        "redis://gw:s3cret@127.0.0.1:6379/zero",
        "redis://:s3cret@0.0.0.0:6379",
        "redis://gw:s3cret@[::1:6379",
        "redis://gw:s3cret/x@h",
        "rediss://gw:s3cret@h#tls",
        "valkey://gw:s3cret@h",
        "redis://gw:s3cret@h/0",
        "rediss://gw:s3cret@h/0",
    ] {
        // Every rule that mentions the URL fails at once (`ca` with a plain URL, or a file
        // without a certificate).
        let yaml = with_cluster(
            "",
            &format!(
                "  redis: \"{url}\"\n  ca: not-a-cert.pem\n  prefix: \"{{x}}\"\n  on_error: maybe\n"
            ),
        );
        let errors = errors_in(dir.path(), &yaml);
        let text = errors.join("\n");
        assert!(errors.len() >= 3, "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
    // A parsed URL is shown redacted.
    let yaml = with_cluster("", "  redis: \"redis://gw:s3cret@h/0\"\n  ca: x.pem\n");
    assert_eq!(
        only_error(&yaml),
        "t.yaml:14:7: cluster.ca: only applies to `rediss://` (TLS), and redis://gw:***@h/0 is plain TCP; use rediss:// or remove `ca`"
    );
}

#[test]
fn ca_must_hold_a_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ca.pem"), ca_pem()).expect("ca");
    std::fs::write(
        dir.path().join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    )
    .expect("key");
    std::fs::write(
        dir.path().join("bad.pem"),
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("bad");
    let yaml = |ca: &str| {
        with_cluster(
            "",
            &format!("  redis: \"rediss://redis.internal\"\n  ca: {ca}\n"),
        )
    };
    let config = load_str(&yaml("ca.pem"), "t.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.cluster.expect("cluster").ca,
        Some(dir.path().join("ca.pem"))
    );
    let shown = |name: &str| dir.path().join(name).display().to_string();
    assert_eq!(
        errors_in(dir.path(), &yaml("key.pem")),
        [format!(
            "t.yaml:14:7: cluster.ca: `{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            shown("key.pem")
        )]
    );
    let [broken] = errors_in(dir.path(), &yaml("bad.pem"))
        .try_into()
        .expect("one error");
    assert!(
        broken.starts_with(&format!(
            "t.yaml:14:7: cluster.ca: `{}` holds a broken PEM certificate",
            shown("bad.pem")
        )),
        "{broken}"
    );
    assert_eq!(
        errors_in(dir.path(), &yaml("missing.pem")),
        [format!(
            "t.yaml:14:7: cluster.ca: cannot read `{}`: No such file or directory (os error 2)",
            shown("missing.pem")
        )]
    );
}

#[test]
fn prefix_is_short_visible_ascii_without_braces() {
    let prefix = |p: &str| {
        only_error(&with_cluster(
            "",
            &format!("  redis: \"{REDIS}\"\n  prefix: \"{p}\"\n"),
        ))
    };
    assert_eq!(
        prefix(""),
        "t.yaml:14:11: cluster.prefix: `` must be 1..=64 bytes long"
    );
    let long = "x".repeat(65);
    assert_eq!(
        prefix(&long),
        format!("t.yaml:14:11: cluster.prefix: `{long}` must be 1..=64 bytes long")
    );
    assert_eq!(
        prefix("my app:"),
        "t.yaml:14:11: cluster.prefix: `my app:` holds ' '; use visible ASCII only (no spaces or control characters)"
    );
    assert_eq!(
        prefix("{ws}:"),
        "t.yaml:14:11: cluster.prefix: `{ws}:` holds a brace; `{...}` is a Redis Cluster hash tag and would pin every key to one slot"
    );
    let config = load(&with_cluster(
        "",
        &format!("  redis: \"{REDIS}\"\n  prefix: \"x\"\n"),
    ))
    .expect("one byte");
    assert_eq!(config.cluster.expect("cluster").prefix, "x");
}

#[test]
fn instance_is_a_short_name() {
    let instance = |i: &str| {
        only_error(&with_cluster(
            "",
            &format!("  redis: \"{REDIS}\"\n  instance: \"{i}\"\n"),
        ))
    };
    for (bad, c) in [("gw/1", "'/'"), ("gw{1}", "'{'"), ("gw 1", "' '")] {
        assert_eq!(
            instance(bad),
            format!(
                "t.yaml:14:13: cluster.instance: `{bad}` holds {c}; use letters, digits, `.`, `_`, `:` and `-` only"
            )
        );
    }
    let long = "g".repeat(65);
    assert_eq!(
        instance(&long),
        format!("t.yaml:14:13: cluster.instance: `{long}` must be 1..=64 bytes long")
    );
    let config = load(&with_cluster(
        "",
        &format!("  redis: \"{REDIS}\"\n  instance: \"eu-1.gw_7:a\"\n"),
    ))
    .expect("valid name");
    assert_eq!(config.cluster.expect("cluster").instance, "eu-1.gw_7:a");
}

#[test]
fn timeout_is_1ms_to_10s() {
    let timeout = |t: &str| {
        only_error(&with_cluster(
            "",
            &format!("  redis: \"{REDIS}\"\n  timeout: {t}\n"),
        ))
    };
    assert_eq!(
        timeout("0ms"),
        "t.yaml:14:12: cluster.timeout: `0ms` is out of range; expected 1ms..=10s"
    );
    assert_eq!(
        timeout("11s"),
        "t.yaml:14:12: cluster.timeout: `11s` is out of range; expected 1ms..=10s"
    );
    assert_eq!(
        timeout("50"),
        "t.yaml:14:12: cluster.timeout: `50` has no unit; expected a whole number followed by ms, s, m, h or d (e.g. `10s`)"
    );
    let config = load(&with_cluster(
        "",
        &format!("  redis: \"{REDIS}\"\n  timeout: 10s\n"),
    ))
    .expect("10s");
    assert_eq!(
        config.cluster.expect("cluster").timeout,
        Duration::from_secs(10)
    );
}

#[test]
fn on_error_is_allow_or_deny() {
    assert_eq!(
        only_error(&with_cluster(
            "",
            &format!("  redis: \"{REDIS}\"\n  on_error: ignore\n")
        )),
        "t.yaml:14:13: cluster.on_error: `ignore` is not `allow` (admit when Redis does not answer) or `deny` (refuse with 503)"
    );
}

#[test]
fn unknown_cluster_key_lists_the_allowed_ones() {
    assert_eq!(
        only_error(&with_cluster(
            "",
            &format!("  redis: \"{REDIS}\"\n  host: x\n")
        )),
        "t.yaml:14:3: cluster.host: unknown field `host`, expected one of redis, ca, prefix, instance, timeout, on_error"
    );
}
