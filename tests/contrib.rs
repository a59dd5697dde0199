//! The operator's kit queries only series wsgate exports: every metric name in the Grafana
//! dashboard (`contrib/grafana/wsgate.json`) and in the Prometheus alert rules
//! (`contrib/prometheus/alerts.yaml`) is in the names catalog (`wsgate::metrics::names::ALL`,
//! with the suffixes the exposition adds) or is one of the `process_*` series. `promtool check
//! rules` checks the rules' syntax in `.ci/run`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use wsgate::metrics::{names, process};

/// Every name a query may use: counters as `_total`, histograms as `_bucket`/`_count`/`_sum`,
/// everything as registered, and the process series as scraped.
fn exported() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for n in names::ALL {
        for suffix in ["", "_total", "_bucket", "_count", "_sum"] {
            all.insert(format!("{}{suffix}", n.name));
        }
    }
    all.extend(process::SCRAPED.iter().map(|s| (*s).to_owned()));
    all
}

/// The metric-like identifiers of a PromQL expression: words starting `wsgate_` or `process_`,
/// outside quoted strings (label values may hold anything).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("wsgate_") || word.starts_with("process_") {
            names.push(word.clone());
        }
        word.clear();
    }
    names
}

/// Every string under an `expr` key, anywhere in `value`.
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Assert every query names only exported series; returns the names used.
fn check(file: &str, queries: &[String]) -> BTreeSet<String> {
    let exported = exported();
    let mut used = BTreeSet::new();
    for q in queries {
        let found = metric_names(q);
        assert!(
            !found.is_empty(),
            "{file}: a query on no wsgate series: {q}"
        );
        for name in found {
            assert!(
                exported.contains(&name),
                "{file}: `{name}` is not exported: {q}"
            );
            used.insert(name);
        }
    }
    used
}

#[test]
fn the_dashboard_queries_only_exported_series_and_covers_the_catalog() {
    let file = "contrib/grafana/wsgate.json";
    let dashboard: Value = serde_json::from_str(&read(file)).expect("dashboard is JSON");
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() > 20, "{file}: only {} queries", queries.len());
    let used = check(file, &queries);
    // Every family of the catalog has a panel (under one of its sample names).
    for n in names::ALL {
        let shown = used.iter().any(|u| {
            u.strip_prefix(n.name)
                .is_some_and(|rest| ["", "_total", "_bucket", "_count", "_sum"].contains(&rest))
        });
        assert!(shown, "{file}: no panel shows {}", n.name);
    }
}

#[test]
fn the_alert_rules_query_only_exported_series() {
    let file = "contrib/prometheus/alerts.yaml";
    let rules: Value = serde_saphyr::from_str(&read(file)).expect("rules are YAML");
    let mut queries = Vec::new();
    exprs(&rules, &mut queries);
    assert!(queries.len() >= 5, "{file}: only {} rules", queries.len());
    check(file, &queries);
}

#[test]
fn metric_names_skip_label_values_and_functions() {
    let q = r#"sum by (route) (rate(wsgate_handshakes_total{outcome="wsgate_x"}[5m])) / process_max_fds"#;
    assert_eq!(
        metric_names(q),
        ["wsgate_handshakes_total", "process_max_fds"]
    );
}
