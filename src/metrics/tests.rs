//! The exposition names what happened, with bounded labels, and gauges come back to zero.

use std::sync::Arc;
use std::time::Duration;

use super::{Metrics, NO_ROUTE, names};

/// The value of the one sample line that starts with `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

#[test]
fn every_catalog_entry_is_registered_once_with_its_help() {
    // A family shows in the exposition once it has a series: touch every one.
    let m = Arc::new(Metrics::new());
    m.accepted("l");
    m.refused_at_accept("global_full");
    m.tls_failure("handshake");
    m.handshake("r", "upgraded");
    m.handshake("r", "route_full");
    m.backend_state("p", "ws://b:1", true);
    let open = m.tunnel_opened(&"r".into(), "p", "ws://b:1");
    open.closed(Duration::ZERO, 0, 0, "shutdown");
    open.session_ended(&super::SessionEnd {
        code: Some(1001),
        closed_by: "wsgate",
        violation: Some("rsv"),
        pings: [1, 1],
        dead: Some("client"),
    });
    m.reload("ok");
    m.config_generation(1);
    m.fleet().call("admit", Duration::from_micros(300));
    m.fleet().error("timeout");
    m.fleet().decision("subject", "allowed");
    m.acme().expiry_days("chat.example.com", Some(42.5));
    m.acme().order("ok");
    let text = m.encode();
    for n in names::ALL {
        assert!(
            text.contains(&format!("# HELP {} {}", n.name, n.help)),
            "{} missing:\n{text}",
            n.name
        );
    }
    let mut all: Vec<_> = names::ALL.iter().map(|n| n.name).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), names::ALL.len(), "a name is listed twice");
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn counters_show_each_event_under_its_labels() {
    let m = Metrics::new();
    m.accepted("public");
    m.accepted("public");
    m.refused_at_accept("global_full");
    m.tls_failure("timeout");
    m.handshake("ws.test/chat/", "upgraded");
    m.handshake(NO_ROUTE, "head_timeout");
    m.handshake("ws.test/chat/", "rate_limited");
    m.reload("ok");
    m.reload("failed");
    m.config_generation(3);
    let t = m.encode();
    let expect = [
        (
            r#"wsgate_connections_accepted_total{listener="public"}"#,
            2.0,
        ),
        (
            r#"wsgate_connections_refused_total{reason="global_full"}"#,
            1.0,
        ),
        (
            r#"wsgate_tls_handshake_failures_total{reason="timeout"}"#,
            1.0,
        ),
        (
            r#"wsgate_handshakes_total{route="ws.test/chat/",outcome="upgraded"}"#,
            1.0,
        ),
        (
            r#"wsgate_handshakes_total{route="none",outcome="head_timeout"}"#,
            1.0,
        ),
        (
            r#"wsgate_limit_refusals_total{route="ws.test/chat/",reason="rate_limited"}"#,
            1.0,
        ),
        (
            r#"wsgate_limit_refusals_total{route="none",reason="global_full"}"#,
            1.0,
        ),
        (r#"wsgate_config_reloads_total{result="ok"}"#, 1.0),
        (r#"wsgate_config_reloads_total{result="failed"}"#, 1.0),
        ("wsgate_config_generation", 3.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&t, series), Some(value), "{series} in:\n{t}");
    }
    let not_a_limit = r#"wsgate_limit_refusals_total{route="none",reason="head_timeout"}"#;
    assert_eq!(
        sample(&t, not_a_limit),
        None,
        "only limits are limit refusals"
    );
}

#[test]
fn tunnel_gauges_return_to_zero_and_the_close_is_recorded() {
    let m = Arc::new(Metrics::new());
    m.backend_state("chat", "ws://10.0.0.1:9000", true);
    let a = m.tunnel_opened(&"r".into(), "chat", "ws://10.0.0.1:9000");
    let b = m.tunnel_opened(&"r".into(), "chat", "ws://10.0.0.1:9000");
    let t = m.encode();
    assert_eq!(sample(&t, r#"wsgate_tunnels_open{route="r"}"#), Some(2.0));
    let backend = r#"wsgate_backend_tunnels_open{pool="chat",backend="ws://10.0.0.1:9000"}"#;
    assert_eq!(sample(&t, backend), Some(2.0));
    a.closed(Duration::from_millis(250), 10, 20, "client");
    drop(a);
    // Dropped without a close record (a task torn down): the gauges still come down.
    drop(b);
    let t = m.encode();
    assert_eq!(sample(&t, r#"wsgate_tunnels_open{route="r"}"#), Some(0.0));
    assert_eq!(sample(&t, backend), Some(0.0));
    let bytes = |dir: &str| {
        sample(
            &t,
            &format!(r#"wsgate_tunnel_bytes_total{{route="r",direction="{dir}"}}"#),
        )
    };
    assert_eq!(bytes("to_backend"), Some(10.0));
    assert_eq!(bytes("to_client"), Some(20.0));
    let closed = r#"wsgate_tunnels_closed_total{route="r",closed_by="client"}"#;
    assert_eq!(sample(&t, closed), Some(1.0));
    let count = r#"wsgate_tunnel_duration_seconds_count{route="r"}"#;
    assert_eq!(sample(&t, count), Some(1.0));
    let bucket = r#"wsgate_tunnel_duration_seconds_bucket{le="0.5",route="r"}"#;
    assert_eq!(sample(&t, bucket), Some(1.0), "{t}");
}

#[test]
fn backend_state_follows_changes_and_forgotten_backends_disappear() {
    let m = Metrics::new();
    let up = r#"wsgate_backend_up{pool="p",backend="ws://b:1"}"#;
    m.backend_state("p", "ws://b:1", true);
    assert_eq!(sample(&m.encode(), up), Some(1.0));
    m.backend_state("p", "ws://b:1", false);
    assert_eq!(sample(&m.encode(), up), Some(0.0));
    m.backend_open("p", "ws://b:1", 4);
    let open = r#"wsgate_backend_tunnels_open{pool="p",backend="ws://b:1"}"#;
    assert_eq!(sample(&m.encode(), open), Some(4.0));
    m.forget_backend("p", "ws://b:1");
    assert!(!m.encode().contains("ws://b:1"));
}

#[test]
fn readers_sum_the_series_over_routes_and_create_none() {
    let m = Arc::new(Metrics::new());
    m.handshake("a", "route_full");
    m.handshake("b", "route_full");
    m.handshake(NO_ROUTE, "head_timeout");
    m.handshake("a", "relayed");
    m.handshake("a", "upgraded");
    m.handshake("b", "upgraded");
    m.handshake("a", "client_gone");
    m.refused_at_accept("global_full");
    m.tls_failure("timeout");
    m.tls_failure("handshake");
    m.accepted("public");
    // The process series are read at scrape time and move on their own.
    let wsgate_series = || {
        let text = m.encode();
        text.lines()
            .filter(|l| !l.contains("process_"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let before = wsgate_series();
    assert_eq!(m.refusals("route_full"), 2);
    assert_eq!(m.refusals("backend_non_101"), 1, "a relayed answer");
    assert_eq!(m.refusals("global_full"), 1, "refused at accept");
    assert_eq!(m.refusals("relayed"), 0, "not a reason");
    assert_eq!(m.refusals("no_route"), 0);
    let counts: Vec<_> = m.refusal_counts().into_iter().collect();
    let expect = [
        ("backend_non_101", 1),
        ("global_full", 1),
        ("head_timeout", 1),
        ("route_full", 2),
    ];
    assert_eq!(counts, expect);
    assert_eq!(m.tunnels_total(), 2);
    assert_eq!(m.tls_failures(), 2);
    assert_eq!(m.connections_accepted(), 1);
    assert!(wsgate_series() == before, "reading created a series");
}

#[test]
fn open_gauges_read_back_and_return_to_zero() {
    let m = Arc::new(Metrics::new());
    let conn = m.connection_opened();
    let a = m.tunnel_opened(&"a".into(), "p", "ws://b:1");
    let b = m.tunnel_opened(&"b".into(), "p", "ws://b:1");
    assert_eq!((m.open_connections(), m.open_tunnels()), (1, 2));
    assert_eq!(sample(&m.encode(), "wsgate_connections_open"), Some(1.0));
    drop((a, b, conn));
    assert_eq!((m.open_connections(), m.open_tunnels()), (0, 0));
    assert_eq!(sample(&m.encode(), "wsgate_connections_open"), Some(0.0));
}
