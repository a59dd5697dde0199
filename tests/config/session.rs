//! The session keys (issue 9): `session:` under `defaults:` and on a route, merged key by key;
//! `close_at_token_expiry` resolved against the route's auth; `limits.drain_spread` against
//! `drain_timeout`; `admin.token_env`. One test parses every key into typed values; the others
//! each pin one rule or class of mistake with its `file:line:col`, field path and message.

use std::time::Duration;

use wsgate::config::policy::{Keepalive, Rate, SessionPolicy};

use super::{BASE, load, only_error, with_limits};

/// A valid config whose only route comes last, so that route keys can be appended: they start
/// on line 12, indented by four spaces.
const SESSION_BASE: &str = super::ROUTE_LAST;

const JWT: &str = "{ jwt: { keys: [ { secret_env: WSGATE_HS_SECRET, alg: HS256 } ] } }";
const REQUEST: &str = "{ request: { url: \"http://127.0.0.1:9100/auth\" } }";

fn with_route(keys: &str) -> String {
    format!("{SESSION_BASE}{keys}")
}

/// `defaults:` (two-space indented lines, starting on line 10) before the routes, then `keys` on
/// the route (starting on line 13 + the number of default lines).
fn with_defaults(defaults: &str, keys: &str) -> String {
    let base = SESSION_BASE.replace("routes:\n", &format!("defaults:\n{defaults}routes:\n"));
    format!("{base}{keys}")
}

/// The session policy of each route of `yaml`, which must be valid.
fn sessions(yaml: &str) -> Vec<SessionPolicy> {
    let config = load(yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    config
        .routes
        .iter()
        .map(|r| r.policy.session.clone())
        .collect()
}

fn session(yaml: &str) -> SessionPolicy {
    let [one] = sessions(yaml).try_into().expect("one route");
    one
}

#[test]
fn absent_session_is_the_default_policy() {
    let s = session(SESSION_BASE);
    assert_eq!(s, SessionPolicy::default());
    assert!(!s.close_at_token_expiry && s.check_frames);
    assert!(s.max_lifetime.is_none() && s.max_message.is_none() && s.max_frame.is_none());
    assert!(s.messages.is_none() && s.keepalive.is_none());
    assert_eq!(session(&with_route("    session: {}\n")), s);
}

#[test]
fn every_session_key_is_parsed() {
    let yaml = with_route(&format!(
        "    auth: {JWT}
    session:
      close_at_token_expiry: false
      max_lifetime: 12h
      max_message: 1MiB
      max_frame: 256KiB
      messages: {{ rate: \"50/s\", burst: 100 }}
      keepalive: {{ interval: 30s, timeout: 10s }}
      check_frames: false
"
    ));
    assert_eq!(
        session(&yaml),
        SessionPolicy {
            close_at_token_expiry: false,
            max_lifetime: Some(Duration::from_secs(12 * 3600)),
            max_message: Some(1 << 20),
            max_frame: Some(256 << 10),
            messages: Some(Rate {
                count: 50,
                per: Duration::from_secs(1),
                burst: 100,
            }),
            keepalive: Some(Keepalive {
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(10),
            }),
            check_frames: false,
        }
    );
    // Burst defaults to the count; decimal sizes are bytes as written.
    let yaml = with_route("    session: { messages: { rate: \"5/m\" }, max_message: 1MB }\n");
    let s = session(&yaml);
    assert_eq!(
        s.messages,
        Some(Rate {
            count: 5,
            per: Duration::from_secs(60),
            burst: 5
        })
    );
    assert_eq!(s.max_message, Some(1_000_000));
}

#[test]
fn route_session_keys_merge_with_defaults_one_by_one() {
    let yaml = with_defaults(
        "  session:\n    max_lifetime: 1h\n    max_message: 1MiB\n    check_frames: false\n    keepalive: { interval: 30s, timeout: 10s }\n",
        "    session: { max_lifetime: 10m, keepalive: { interval: 5s, timeout: 1s } }\n  - { path: /other/, pool: echo }\n",
    );
    let [own, other] = sessions(&yaml).try_into().expect("two routes");
    // The route's keys win; the keys it does not set still come from `defaults:`.
    assert_eq!(own.max_lifetime, Some(Duration::from_secs(600)));
    assert_eq!(
        own.keepalive,
        Some(Keepalive {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        })
    );
    assert_eq!(own.max_message, Some(1 << 20));
    assert!(!own.check_frames);
    // A route without `session` takes the whole default block.
    assert_eq!(other.max_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(other.max_message, Some(1 << 20));
    assert_eq!(
        other.keepalive.map(|k| k.interval),
        Some(Duration::from_secs(30))
    );
    assert!(!other.check_frames);
}

#[test]
fn close_at_token_expiry_follows_the_effective_auth() {
    // Default: true with auth.jwt (own or from `defaults:`), false with auth.request or none.
    assert!(session(&with_route(&format!("    auth: {JWT}\n"))).close_at_token_expiry);
    let inherited = with_defaults(&format!("  auth: {JWT}\n"), "");
    assert!(session(&inherited).close_at_token_expiry);
    assert!(!session(&with_route(&format!("    auth: {REQUEST}\n"))).close_at_token_expiry);
    // An explicit value wins; `false` turns it off on a JWT route.
    let off = format!("    auth: {JWT}\n    session: {{ close_at_token_expiry: false }}\n");
    assert!(!session(&with_route(&off)).close_at_token_expiry);
    let on = format!("    auth: {JWT}\n    session: {{ close_at_token_expiry: true }}\n");
    assert!(session(&with_route(&on)).close_at_token_expiry);
    // A `defaults:` value applies where it can: `false` everywhere, `true` on JWT routes only.
    let yaml = with_defaults(
        &format!("  auth: {JWT}\n  session: {{ close_at_token_expiry: false }}\n"),
        &format!("  - {{ path: /feed/, pool: echo, auth: {REQUEST} }}\n"),
    );
    let [jwt, request] = sessions(&yaml).try_into().expect("two routes");
    assert!(!jwt.close_at_token_expiry && !request.close_at_token_expiry);
    let yaml = with_defaults(
        "  session: { close_at_token_expiry: true }\n",
        &format!("  - {{ path: /feed/, pool: echo, auth: {JWT} }}\n"),
    );
    let [none, jwt] = sessions(&yaml).try_into().expect("two routes");
    assert!(!none.close_at_token_expiry && jwt.close_at_token_expiry);
}

#[test]
fn close_at_token_expiry_without_jwt_is_an_error() {
    assert_eq!(
        only_error(&with_route(&format!(
            "    auth: {REQUEST}\n    session:\n      close_at_token_expiry: true\n"
        ))),
        "t.yaml:14:30: routes[0].session.close_at_token_expiry: needs `auth.jwt` on this route or under `defaults:`: only a verified JWT has an `exp` to close at"
    );
    assert_eq!(
        only_error(&with_route(
            "    session: { close_at_token_expiry: true }\n"
        )),
        "t.yaml:12:39: routes[0].session.close_at_token_expiry: needs `auth.jwt` on this route or under `defaults:`: only a verified JWT has an `exp` to close at"
    );
}

#[test]
fn bad_session_values() {
    let cases = [
        (
            "max_lifetime: 12",
            "t.yaml:13:21: routes[0].session.max_lifetime: `12` has no unit; expected a whole number followed by ms, s, m, h or d (e.g. `10s`)",
        ),
        (
            "max_lifetime: 0s",
            "t.yaml:13:21: routes[0].session.max_lifetime: `0s` must be greater than 0",
        ),
        (
            "max_lifetime: 400d",
            "t.yaml:13:21: routes[0].session.max_lifetime: `400d` is too long; at most 365d (leave the key out for no limit)",
        ),
        (
            "max_message: 0KiB",
            "t.yaml:13:20: routes[0].session.max_message: `0KiB` must be greater than 0 (leave the key out for no limit)",
        ),
        (
            "max_frame: 2GiB",
            "t.yaml:13:18: routes[0].session.max_frame: `2GiB` is out of range; expected 1B..=1GiB",
        ),
        (
            "max_frame: 16kb",
            "t.yaml:13:18: routes[0].session.max_frame: unknown unit `kb` in `16kb`; expected B, KiB, MiB, GiB, KB, MB or GB (units are case-sensitive)",
        ),
        (
            "messages: { rate: \"50/sec\" }",
            "t.yaml:13:25: routes[0].session.messages.rate: unknown unit `sec` in `50/sec`; expected COUNT/UNIT with unit s, m or h (e.g. `20/s`)",
        ),
        (
            "messages: { rate: \"0/s\" }",
            "t.yaml:13:25: routes[0].session.messages.rate: `0/s` must allow at least 1 message; expected COUNT/UNIT with unit s, m or h (e.g. `20/s`)",
        ),
        (
            "messages: { rate: \"5/s\", burst: 0 }",
            "t.yaml:13:39: routes[0].session.messages.burst: 0 is out of range; expected 1..=10000000",
        ),
        (
            "keepalive: { interval: 0s, timeout: 10s }",
            "t.yaml:13:30: routes[0].session.keepalive.interval: `0s` must be greater than 0",
        ),
        (
            "keepalive: { interval: 30s, timeout: soon }",
            "t.yaml:13:44: routes[0].session.keepalive.timeout: `soon` is not a number with a unit; expected a whole number followed by ms, s, m, h or d (e.g. `10s`)",
        ),
        (
            "check_frames: maybe",
            "t.yaml:13:21: routes[0].session.check_frames: expected a value of type boolean",
        ),
    ];
    for (key, error) in cases {
        let yaml = with_route(&format!("    session:\n      {key}\n"));
        assert_eq!(only_error(&yaml), error, "{key}");
    }
}

#[test]
fn max_frame_must_not_exceed_max_message() {
    assert_eq!(
        only_error(&with_route(
            "    session: { max_message: 64KiB, max_frame: 1MiB }\n"
        )),
        "t.yaml:12:47: routes[0].session.max_frame: `1MiB` is larger than `max_message` (64KiB); a frame is one piece of a message"
    );
    // Across blocks the error goes to the route's own key.
    assert_eq!(
        only_error(&with_defaults(
            "  session: { max_message: 64KiB }\n",
            "    session: { max_frame: 1MiB }\n"
        )),
        "t.yaml:14:27: routes[0].session.max_frame: `1MiB` is larger than `max_message` (64KiB, from `defaults:`); a frame is one piece of a message"
    );
    assert_eq!(
        only_error(&with_defaults(
            "  session: { max_frame: 1MiB }\n",
            "    session: { max_message: 64KiB }\n"
        )),
        "t.yaml:14:29: routes[0].session.max_message: `64KiB` is smaller than `max_frame` (1MiB, from `defaults:`); a frame is one piece of a message"
    );
    // Equal is fine.
    let s = session(&with_route(
        "    session: { max_message: 64KiB, max_frame: 65536 }\n",
    ));
    assert_eq!((s.max_message, s.max_frame), (Some(65536), Some(65536)));
}

#[test]
fn keepalive_needs_both_keys() {
    assert_eq!(
        only_error(&with_route(
            "    session:\n      keepalive: { interval: 30s }\n"
        )),
        "t.yaml:13:20: routes[0].session.keepalive.timeout: missing field `timeout`"
    );
}

#[test]
fn unknown_session_key_lists_the_allowed_ones() {
    assert_eq!(
        only_error(&with_route("    session:\n      max_lifetme: 1h\n")),
        "t.yaml:13:7: routes[0].session.max_lifetme: unknown field `max_lifetme`, expected one of close_at_token_expiry, max_lifetime, max_message, max_frame, messages, keepalive, check_frames"
    );
}

#[test]
fn default_session_errors_are_reported_once_under_defaults() {
    let yaml = with_defaults(
        "  session: { max_lifetime: forever }\n",
        "  - { path: /other/, pool: echo }\n",
    );
    assert_eq!(
        only_error(&yaml),
        "t.yaml:10:28: defaults.session.max_lifetime: `forever` is not a number with a unit; expected a whole number followed by ms, s, m, h or d (e.g. `10s`)"
    );
}

#[test]
fn drain_spread_must_be_shorter_than_drain_timeout() {
    let config = load(&with_limits("  drain_spread: 10s\n")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.limits.drain_spread, Duration::from_secs(10));
    assert_eq!(
        only_error(&with_limits("  drain_timeout: 10s\n  drain_spread: 10s\n")),
        "t.yaml:13:17: limits.drain_spread: must be shorter than `drain_timeout` (10s): the last Close frames would go out after the drain deadline"
    );
    assert_eq!(
        only_error(&with_limits("  drain_spread: 1m\n")),
        "t.yaml:12:17: limits.drain_spread: must be shorter than `drain_timeout` (30s): the last Close frames would go out after the drain deadline"
    );
    // A bad drain_timeout is reported alone, not compared.
    assert_eq!(
        only_error(&with_limits("  drain_timeout: 0s\n  drain_spread: 10s\n")),
        "t.yaml:12:18: limits.drain_timeout: `0s` must be greater than 0"
    );
}

#[test]
fn admin_token_env_names_an_environment_variable() {
    let yaml =
        format!("{BASE}admin: {{ bind: \"127.0.0.1:9090\", token_env: WSGATE_ADMIN_TOKEN }}\n");
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        config.admin_token_env.as_deref(),
        Some("WSGATE_ADMIN_TOKEN")
    );
    assert!(load(BASE).expect("valid").admin_token_env.is_none());
    for bad in ["1TOKEN", "WSGATE-TOKEN", "\"\""] {
        let yaml = format!("{BASE}admin: {{ bind: \"127.0.0.1:9090\", token_env: {bad} }}\n");
        let shown = bad.trim_matches('"');
        assert_eq!(
            only_error(&yaml),
            format!(
                "t.yaml:11:45: admin.token_env: `{shown}` is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)"
            )
        );
    }
}

#[test]
fn admin_bind_is_an_address_or_an_absolute_unix_path() {
    let yaml = format!("{BASE}admin: {{ bind: \"unix:/run/wsgate/admin.sock\" }}\n");
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    let unix = wsgate::config::AdminBind::Unix("/run/wsgate/admin.sock".into());
    assert_eq!(config.admin, Some(unix));
    let yaml = format!("{BASE}admin: {{ bind: \"unix:admin.sock\" }}\n");
    assert_eq!(
        only_error(&yaml),
        "t.yaml:11:16: admin.bind: `unix:admin.sock`: a Unix socket needs an absolute path (e.g. `unix:/run/wsgate/admin.sock`)"
    );
}
