//! The binary's machine-readable outputs, as CI and editors call them: `wsgate check --format
//! json` (one JSON object on stdout, exit 0 / 64 as in text mode) and `wsgate schema`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn wsgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsgate"))
}

fn write_config(dir: &tempfile::TempDir, yaml: &str) -> PathBuf {
    let path = dir.path().join("wsgate.yaml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(yaml.as_bytes()))
        .expect("write config");
    path
}

fn check_json(config: &Path) -> (Output, Value) {
    let out = wsgate()
        .args(["check", "--format", "json", "--config"])
        .arg(config)
        .output()
        .expect("run wsgate check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let report = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert!(out.stderr.is_empty(), "nothing on stderr: {out:?}");
    (out, report)
}

const GOOD: &str = r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
routes:
  - { path: /, pool: echo }
pools:
  echo:
    backends: [ { url: "ws://127.0.0.1:9" } ]
"#;

#[test]
fn check_json_says_ok_for_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wsgate.yaml");
    let (out, report) = check_json(&example);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(report, json!({ "ok": true, "errors": [] }));
}

#[test]
fn check_json_lists_every_validation_error_with_its_place_and_exits_64() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad =
        GOOD.replace("pool: echo }", "pool: nope }") + "limits: { drain_timeout: 10 parsecs }\n";
    let path = write_config(&dir, &bad);
    let (out, report) = check_json(&path);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert_eq!(report["ok"], false);
    let errors = report["errors"].as_array().expect("errors is a list");
    assert!(errors.len() >= 2, "every error, not the first: {report:#}");
    let file = path.display().to_string();
    let pool = errors
        .iter()
        .find(|e| e["path"] == "routes[0].pool")
        .unwrap_or_else(|| panic!("the unknown pool: {report:#}"));
    assert_eq!(pool["file"], file.as_str());
    assert_eq!(pool["line"], 6, "{pool}");
    assert!(pool["column"].as_u64().is_some_and(|c| c > 1), "{pool}");
    assert!(pool["message"].as_str().is_some_and(|m| m.contains("nope")));
    let drain = errors
        .iter()
        .find(|e| e["path"] == "limits.drain_timeout")
        .unwrap_or_else(|| panic!("the bad duration: {report:#}"));
    assert_eq!(drain["line"], 10, "{drain}");
    for e in errors {
        let keys: Vec<&String> = e
            .as_object()
            .expect("an error is an object")
            .keys()
            .collect();
        assert_eq!(keys, ["column", "file", "line", "message", "path"], "{e}");
    }
}

#[test]
fn check_json_reports_a_parse_error_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, &GOOD.replace("routes:", "routez:"));
    let (out, report) = check_json(&path);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert_eq!(report["ok"], false);
    let error = &report["errors"][0];
    assert_eq!((&error["line"], &error["column"]), (&json!(5), &json!(1)));
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("routez"))
    );
}

#[test]
fn check_json_gives_null_place_for_an_unreadable_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.yaml");
    let (out, report) = check_json(&missing);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let error = &report["errors"][0];
    assert_eq!(error["file"], missing.display().to_string().as_str());
    assert_eq!(
        (&error["line"], &error["column"], &error["path"]),
        (&Value::Null, &Value::Null, &Value::Null),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot read"))
    );
}

#[test]
fn schema_prints_the_generated_json_schema() {
    let out = wsgate().arg("schema").output().expect("run wsgate schema");
    assert!(out.status.success(), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(printed, wsgate::config::schema::config_schema());
    assert_eq!(
        printed["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}
