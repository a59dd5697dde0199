//! The fleet keys (issue 11), part two: one test parses every fleet key (`cluster:`, `scope:`
//! on a rate and on `limits.per_ip`, `per_subject:` under `defaults:` and on a route) into typed
//! values; the others each pin one `scope:` or `per_subject:` rule with its `file:line:col`,
//! field path and message. The `cluster:` rules are in `cluster.rs`.

use std::time::Duration;

use wsgate::config::files::watched_files;
use wsgate::config::policy::Rate;
use wsgate::config::{OnError, OnExceed, PerSubject, Scope, load_file};

use super::cluster::{FLEET_BASE, JWT, REDIS, ca_pem, with_cluster, with_route};
use super::{load, only_error, with_limits};

const REQUEST: &str = "{ request: { url: \"http://127.0.0.1:9100/auth\" } }";

/// `defaults:` (two-space indented lines, starting on line 10) before the routes, then `keys` on
/// the route (starting on line 13 + the number of default lines).
fn with_defaults(defaults: &str, keys: &str) -> String {
    let base = FLEET_BASE.replace("routes:\n", &format!("defaults:\n{defaults}routes:\n"));
    format!("{base}{keys}")
}

const FULL_FLEET: &str = r#"
listeners:
  - { name: public, bind: "127.0.0.1:0" }
limits:
  per_ip: { handshakes: "20/s", burst: 40, max_connections: 200, scope: fleet }
cluster:
  redis: "rediss://gw:s3cret@redis.internal:6380/2"
  ca: certs/redis-ca.pem
  prefix: "chat:"
  instance: gw-1
  timeout: 250ms
  on_error: deny
defaults:
  auth: { jwt: { keys: [ { secret_env: WSGATE_HS_SECRET, alg: HS256 } ] } }
  rate: { handshakes: "100/s", burst: 200, scope: fleet }
  per_subject: { max_sessions: 3, on_exceed: close_oldest, scope: fleet }
routes:
  - path: /ws
    pool: chat
  - path: /local
    pool: chat
    rate: { handshakes: "10/s", scope: local }
    per_subject: { max_sessions: 100000 }
pools:
  chat:
    backends: [ { url: "ws://127.0.0.1:9501" } ]
"#;

#[test]
fn every_fleet_key_is_parsed() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("certs")).expect("certs dir");
    let ca = dir.path().join("certs/redis-ca.pem");
    std::fs::write(&ca, ca_pem()).expect("ca");
    let path = dir.path().join("gate.yaml");
    std::fs::write(&path, FULL_FLEET).expect("write config");
    let config = load_file(&path).unwrap_or_else(|e| panic!("{e}"));

    let cluster = config.cluster.as_ref().expect("cluster");
    assert_eq!(cluster.redis, "rediss://gw:s3cret@redis.internal:6380/2");
    assert_eq!(cluster.ca.as_deref(), Some(ca.as_path()));
    assert_eq!(
        (cluster.prefix.as_str(), cluster.instance.as_str()),
        ("chat:", "gw-1")
    );
    assert_eq!(cluster.timeout, Duration::from_millis(250));
    assert_eq!(cluster.on_error, OnError::Deny);
    // The CA bundle is watched like every other file a config names.
    assert!(watched_files(&config).contains(&ca));
    // The password stays out of debug output.
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("s3cret") && debug.contains("gw:***@"),
        "{debug}"
    );

    let per_ip = &config.limits.per_ip;
    let per_second = |count, burst| Rate {
        count,
        per: Duration::from_secs(1),
        burst,
    };
    assert_eq!(per_ip.rate, Some(per_second(20, 40)));
    assert_eq!(
        (per_ip.max_connections, per_ip.scope),
        (Some(200), Scope::Fleet)
    );

    let [ws, local] = config.routes.as_slice() else {
        panic!("two routes expected")
    };
    // `/ws` takes everything from `defaults:`.
    assert_eq!(ws.policy.rate, Some(per_second(100, 200)));
    assert_eq!(ws.policy.rate_scope, Scope::Fleet);
    let fleet_cap = PerSubject {
        max_sessions: 3,
        on_exceed: OnExceed::CloseOldest,
        scope: Scope::Fleet,
    };
    assert_eq!(ws.policy.per_subject, Some(fleet_cap));
    // `/local`'s `rate` and `per_subject` replace the default ones whole: their `scope` and
    // `on_exceed` are not inherited.
    assert_eq!(local.policy.rate, Some(per_second(10, 10)));
    assert_eq!(local.policy.rate_scope, Scope::Local);
    let local_cap = PerSubject {
        max_sessions: 100_000,
        on_exceed: OnExceed::Refuse,
        scope: Scope::Local,
    };
    assert_eq!(local.policy.per_subject, Some(local_cap));
}

#[test]
fn fleet_scope_needs_a_cluster_block_at_its_line() {
    let msg = "`scope: fleet` needs a `cluster:` block (the Redis/Valkey the fleet shares)";
    assert_eq!(
        only_error(&with_route(
            "    rate: { handshakes: \"100/s\", scope: fleet }\n"
        )),
        format!("t.yaml:12:41: routes[0].rate.scope: {msg}")
    );
    assert_eq!(
        only_error(&with_defaults(
            "  rate:\n    handshakes: \"100/s\"\n    scope: fleet\n",
            ""
        )),
        format!("t.yaml:12:12: defaults.rate.scope: {msg}")
    );
    assert_eq!(
        only_error(&with_limits(
            "  per_ip:\n    max_connections: 10\n    scope: fleet\n"
        )),
        format!("t.yaml:14:12: limits.per_ip.scope: {msg}")
    );
    let per_subject =
        format!("    auth: {JWT}\n    per_subject: {{ max_sessions: 3, scope: fleet }}\n");
    assert_eq!(
        only_error(&with_route(&per_subject)),
        format!("t.yaml:13:44: routes[0].per_subject.scope: {msg}")
    );
    // With the block, the same keys are fine; `local` never needs it.
    assert!(
        load(&with_cluster(
            &per_subject,
            &format!("  redis: \"{REDIS}\"\n")
        ))
        .is_ok()
    );
    assert!(
        load(&with_route(
            "    rate: { handshakes: \"1/s\", scope: local }\n"
        ))
        .is_ok()
    );
}

#[test]
fn scope_is_local_or_fleet() {
    assert_eq!(
        only_error(&with_limits(
            "  per_ip: { max_connections: 10, scope: global }\n"
        )),
        "t.yaml:12:41: limits.per_ip.scope: `global` is not `local` (this instance counts alone) or `fleet` (counted across the fleet)"
    );
}

#[test]
fn per_subject_max_sessions_is_1_to_100000() {
    let cap = |m: &str| {
        only_error(&with_route(&format!(
            "    auth: {JWT}\n    per_subject: {{ max_sessions: {m} }}\n"
        )))
    };
    assert_eq!(
        cap("0"),
        "t.yaml:13:34: routes[0].per_subject.max_sessions: 0 is out of range; expected 1..=100000"
    );
    assert_eq!(
        cap("100001"),
        "t.yaml:13:34: routes[0].per_subject.max_sessions: 100001 is out of range; expected 1..=100000"
    );
    assert_eq!(
        cap("three"),
        "t.yaml:13:34: routes[0].per_subject.max_sessions: `three` is not a whole number; expected 1..=100000"
    );
    assert_eq!(
        only_error(&with_route(&format!(
            "    auth: {JWT}\n    per_subject: {{ on_exceed: refuse }}\n"
        ))),
        "t.yaml:13:18: routes[0].per_subject: needs `max_sessions`: how many live sessions one token `sub` may hold on the route"
    );
}

#[test]
fn per_subject_on_exceed_is_refuse_or_close_oldest() {
    assert_eq!(
        only_error(&with_route(&format!(
            "    auth: {JWT}\n    per_subject: {{ max_sessions: 1, on_exceed: kick }}\n"
        ))),
        "t.yaml:13:48: routes[0].per_subject.on_exceed: `kick` is not `refuse` (answer 429) or `close_oldest` (close the subject's oldest session)"
    );
}

#[test]
fn per_subject_needs_a_token_subject() {
    let needs_auth = "`per_subject` counts sessions per token `sub`: the route needs `auth:` (on the route or under `defaults:`)";
    assert_eq!(
        only_error(&with_route("    per_subject: { max_sessions: 3 }\n")),
        format!("t.yaml:12:18: routes[0].per_subject: {needs_auth}")
    );
    // Under `defaults:` it applies to each route: the error names the route and points at the key.
    assert_eq!(
        only_error(&with_defaults("  per_subject: { max_sessions: 3 }\n", "")),
        format!(
            "t.yaml:10:16: routes[0].per_subject: {needs_auth} (this `per_subject` comes from `defaults:`)"
        )
    );
    // `auth.request` answers carry no subject.
    assert_eq!(
        only_error(&with_route(&format!(
            "    auth: {REQUEST}\n    per_subject: {{ max_sessions: 3 }}\n"
        ))),
        "t.yaml:13:18: routes[0].per_subject: `per_subject` counts sessions per token `sub`: the route needs `auth.jwt`; an `auth.request` answer carries no subject"
    );
    // `auth` from `defaults:` counts, and `per_subject` from `defaults:` reaches the route.
    let yaml = with_defaults(
        &format!("  auth: {JWT}\n  per_subject: {{ max_sessions: 3 }}\n"),
        "",
    );
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        config.routes[0].policy.per_subject.map(|p| p.max_sessions),
        Some(3)
    );
    let yaml = with_defaults(
        &format!("  auth: {JWT}\n"),
        "    per_subject: { max_sessions: 4 }\n",
    );
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        config.routes[0].policy.per_subject.map(|p| p.max_sessions),
        Some(4)
    );
}
