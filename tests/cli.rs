//! The `wsgate` binary as an operator uses it: `check` exit codes and messages, `version`, and
//! `run` stopping cleanly on SIGTERM (drain) and SIGINT.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn wsgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsgate"))
}

fn write_config(dir: &tempfile::TempDir, yaml: &str) -> std::path::PathBuf {
    let path = dir.path().join("wsgate.yaml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(yaml.as_bytes()))
        .expect("write config");
    path
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
fn check_accepts_the_example_config() {
    let out = wsgate()
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/wsgate.yaml"),
        ])
        .output()
        .expect("run wsgate check");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn check_reports_every_error_with_line_and_column_and_exits_64() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = GOOD.replace("pool: echo }", "pool: nope }");
    let path = write_config(&dir, &bad);
    let out = wsgate()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wsgate.yaml:6:"),
        "unknown pool has its line: {err}"
    );
    assert!(err.contains("routes[0].pool"), "{err}");
    assert!(err.contains("nope"), "{err}");

    let typo = GOOD.replace("routes:", "routez:");
    let out = wsgate()
        .args(["check", "--config"])
        .arg(write_config(&dir, &typo))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wsgate.yaml:5:1"), "{err}");
    assert!(err.contains("routez"), "{err}");
}

#[test]
fn check_reports_unreadable_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = GOOD.replace(
        "bind: \"127.0.0.1:0\"",
        "bind: \"127.0.0.1:0\"\n    tls: { certificates: [ { cert: missing.pem, key: missing.key } ] }",
    );
    let out = wsgate()
        .args(["check", "--config"])
        .arg(write_config(&dir, &bad))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
}

/// `check` judges a fleet config offline: a `cluster:` whose Redis is not there (a port nothing
/// listens on) is no error, and nothing tries to reach it.
#[test]
fn check_validates_a_fleet_config_without_connecting() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = GOOD.replace(
        "{ path: /, pool: echo }",
        "{ path: /, pool: echo, rate: { handshakes: \"10/s\", scope: fleet } }",
    );
    let yaml = format!(
        "{fleet}limits:\n  per_ip: {{ max_connections: 5, scope: fleet }}\ncluster:\n  redis: \"redis://gw:s3cret@127.0.0.1:{closed}/0\"\n  timeout: 10ms\n  on_error: deny\n"
    );
    let started = std::time::Instant::now();
    let out = wsgate()
        .args(["check", "--config"])
        .arg(write_config(&dir, &yaml))
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(
        started.elapsed() < WAIT,
        "check took {:?}",
        started.elapsed()
    );

    // The same file with a broken URL fails, and its password is not printed.
    let bad = yaml.replace("/0\"", "/zero\"");
    let out = wsgate()
        .args(["check", "--config"])
        .arg(write_config(&dir, &bad))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.redis") && !err.contains("s3cret"),
        "{err}"
    );
}

#[test]
fn version_prints_the_version() {
    let out = wsgate().arg("version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("wsgate "));
}

/// Start `wsgate run`, wait for its "listening" log line, return the child.
fn start(dir: &tempfile::TempDir) -> Child {
    let path = write_config(dir, GOOD);
    let mut child = wsgate()
        .args(["run", "--config"])
        .arg(&path)
        .env("WSGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsgate run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Ok(line) = rx.recv_timeout(WAIT) {
        if line.contains("listening") {
            return child;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("wsgate did not log that it is listening");
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(WAIT).expect("wsgate exits").expect("wait")
}

#[test]
fn run_drains_and_exits_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = start(&dir);
    signal(&child, "-TERM");
    let status = wait_exit(child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn run_exits_on_sigint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = start(&dir);
    signal(&child, "-INT");
    let status = wait_exit(child);
    assert!(status.success(), "{status:?}");
}
