//! Proxied plain requests: a route's `http: refuse | proxy` (also under `defaults:`), and the
//! `limits:` that bound them (`max_request_body_bytes`, `max_response_body_bytes`,
//! `http_request_timeout`).

use std::time::Duration;

use wsgate::config::policy::HttpMode;

use super::{BASE, load, only_error, with_limits};

#[test]
fn http_defaults_to_refuse_and_a_route_may_proxy() {
    let config = load(BASE).expect("base config");
    assert_eq!(config.routes[0].policy.http, HttpMode::Refuse);
    let yaml = BASE.replace("pool: echo }", "pool: echo, http: proxy }");
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.routes[0].policy.http, HttpMode::Proxy);
    let yaml = BASE.replace("pool: echo }", "pool: echo, http: refuse }");
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.routes[0].policy.http, HttpMode::Refuse);
}

#[test]
fn http_under_defaults_applies_unless_a_route_says_otherwise() {
    let routes = BASE.replace(
        "pools:",
        "  - { path: /ws/, pool: echo, http: refuse }\npools:",
    );
    let yaml = format!("defaults:\n  http: proxy\n{routes}");
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}\n{yaml}"));
    let modes: Vec<(&str, HttpMode)> = (config.routes.iter())
        .map(|r| (r.path.as_str(), r.policy.http))
        .collect();
    assert_eq!(
        modes,
        [("/echo/", HttpMode::Proxy), ("/ws/", HttpMode::Refuse)]
    );
}

#[test]
fn http_takes_refuse_or_proxy_only() {
    assert_eq!(
        only_error(&BASE.replace("pool: echo }", "pool: echo, http: maybe }")),
        "t.yaml:7:39: routes[0].http: `maybe` is not `refuse` (answer 426) or `proxy` (forward to the route's pool)"
    );
    let yaml = format!("defaults:\n  http: forward\n{BASE}");
    assert_eq!(
        only_error(&yaml),
        "t.yaml:2:9: defaults.http: `forward` is not `refuse` (answer 426) or `proxy` (forward to the route's pool)"
    );
}

#[test]
fn plain_request_limits_default_and_convert() {
    let config = load(BASE).expect("base config");
    let limits = &config.limits;
    assert_eq!(
        (
            limits.max_request_body_bytes,
            limits.max_response_body_bytes,
            limits.http_request_timeout
        ),
        (1 << 20, 1 << 20, Duration::from_secs(60))
    );
    let yaml = with_limits(
        "  max_request_body_bytes: 0\n  max_response_body_bytes: 8MiB\n  http_request_timeout: 2m\n",
    );
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    let limits = &config.limits;
    assert_eq!(
        (
            limits.max_request_body_bytes,
            limits.max_response_body_bytes,
            limits.http_request_timeout
        ),
        (0, 8 << 20, Duration::from_secs(120))
    );
}

#[test]
fn plain_request_limits_are_bounded() {
    assert_eq!(
        only_error(&with_limits("  max_request_body_bytes: 1GiB\n")),
        "t.yaml:12:27: limits.max_request_body_bytes: `1GiB` is out of range; expected 0B..=64MiB"
    );
    assert_eq!(
        only_error(&with_limits("  max_response_body_bytes: lots\n")),
        "t.yaml:12:28: limits.max_response_body_bytes: `lots` is not a number with a unit; expected a whole number of bytes, optionally followed by B, KiB, MiB, GiB, KB, MB or GB (e.g. `16KiB`)"
    );
    assert_eq!(
        only_error(&with_limits("  http_request_timeout: 0s\n")),
        "t.yaml:12:25: limits.http_request_timeout: `0s` must be greater than 0"
    );
}
