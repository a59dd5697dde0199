//! Sessions seen by a fleet (issue #11): `on_exceed: close_oldest` replaces the subject's oldest
//! session wherever it lives (Close 1008 `replaced`); `POST /sessions/close` with
//! `scope: fleet` (and `wsgate sessions close --fleet`) reaches every instance; an instance
//! killed with SIGKILL stops counting once its heartbeat is stale; `GET /fleet` lists the live
//! instances with their session counts.
//!
//! Every wait is bounded; the polls wait out the feature's own clock (heartbeats every 2 s, an
//! instance dead after 8 s without one).

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::admin::Admin;
use support::fleet::{
    ADMIN_TOKEN, CHAT, Fleet, admitted, admitted_within, handshake_at, next_close, per_subject,
    refused, still_echoes,
};
use support::*;
use tokio::time::{Instant, sleep};

/// A Close the contract says arrives "within 1 s" (fleet close) or "within 2 s" (replaced).
const FLEET_CLOSE_WITHIN: Duration = Duration::from_secs(1);
const REPLACED_WITHIN: Duration = Duration::from_secs(2);
/// Dead after 8 s without a heartbeat, heartbeats every 2 s: admitted within 12 s of a crash.
const CRASH_FREED_WITHIN: Duration = Duration::from_secs(12);

#[tokio::test]
async fn close_oldest_replaces_the_oldest_session_on_any_instance() {
    let fleet = Fleet::start("close-oldest").await;
    let gw = fleet.chats(3, &per_subject(2, "close_oldest")).await;
    let alice = fleet.token("alice");
    let mut s1 = admitted(&gw[0], &alice, "s1 on gw-1").await;
    let mut s2 = admitted(&gw[1], &alice, "s2 on gw-2").await;
    let mut s3 = admitted(&gw[2], &alice, "s3 on gw-3 replaces s1").await;
    let close = next_close(&mut s1, REPLACED_WITHIN, "s1 replaced").await;
    assert_eq!(close, (1008, "replaced".to_string()));
    still_echoes(&mut s2, "s2 stays").await;
    still_echoes(&mut s3, "s3 was admitted").await;
    let refusals: u64 = gw
        .iter()
        .map(|p| p.stats().refusals("subject_sessions_full"))
        .sum();
    assert_eq!(refusals, 0, "close_oldest never refuses");
}

/// `POST /sessions/close` with the admin token: status and JSON answer.
async fn close(admin: &Admin, body: &str) -> (u16, Value) {
    let answer = admin
        .send("POST", "/sessions/close", Some(ADMIN_TOKEN), body)
        .await;
    let json = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {answer:#?}"));
    (answer.status, json)
}

#[tokio::test]
async fn a_fleet_close_reaches_the_subjects_sessions_on_every_instance() {
    let fleet = Fleet::start("fleet-close").await;
    let gw = fleet.chats(2, "").await;
    let (alice, bob) = (fleet.token("alice"), fleet.token("bob"));
    let mut alice_a = admitted(&gw[0], &alice, "alice on gw-1").await;
    let mut alice_b = admitted(&gw[1], &alice, "alice on gw-2").await;
    let mut bob_b = admitted(&gw[1], &bob, "bob on gw-2").await;
    let admin = Admin::start(&gw[0], Some(ADMIN_TOKEN)).await;

    let body = r#"{"subject":"alice","scope":"fleet","code":4001,"reason":"bye"}"#;
    let answer = close(&admin, body).await;
    assert_eq!(answer, (200, json!({ "closed": 1, "published": true })));
    let bye = (4001, "bye".to_string());
    let remote = next_close(&mut alice_b, FLEET_CLOSE_WITHIN, "alice on gw-2").await;
    assert_eq!(remote, bye);
    let here = next_close(&mut alice_a, TIMEOUT, "alice on gw-1").await;
    assert_eq!(here, bye);
    still_echoes(&mut bob_b, "bob is not alice").await;
}

#[tokio::test]
async fn the_cli_closes_a_subject_across_the_fleet() {
    let fleet = Fleet::start("cli-close").await;
    let gw = fleet.chats(2, "").await;
    let (alice, bob) = (fleet.token("alice"), fleet.token("bob"));
    let mut alice_a = admitted(&gw[0], &alice, "alice on gw-1").await;
    let mut alice_b = admitted(&gw[1], &alice, "alice on gw-2").await;
    let mut bob_a = admitted(&gw[0], &bob, "bob on gw-1").await;
    let admin = Admin::start(&gw[0], Some(ADMIN_TOKEN)).await;

    let url = admin.url();
    let args = ["close", "--admin", &url, "--fleet", "--subject", "alice"];
    let out =
        wsgate_sessions_fleet(&[&args[..], &["--code", "4002", "--reason", "cli"]].concat()).await;
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("closed 1 session"), "{said}");
    let by_cli = (4002, "cli".to_string());
    let remote = next_close(&mut alice_b, FLEET_CLOSE_WITHIN, "alice on gw-2").await;
    assert_eq!(remote, by_cli);
    assert_eq!(
        next_close(&mut alice_a, TIMEOUT, "alice on gw-1").await,
        by_cli
    );
    still_echoes(&mut bob_a, "bob is not alice").await;
}

/// `wsgate run` as a real process with its own config file; SIGKILLed and reaped when dropped.
struct Process {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Start instance `name` serving `/chat` under the fleet's policy plus `extra`; wait for
    /// its "listening" log line and read the bound address from it.
    async fn start(fleet: &Fleet, name: &str, extra: &str) -> Process {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key_file, pem) = fleet.key.pem_file();
        std::fs::write(dir.path().join(key_file), pem).expect("write key");
        let yaml = format!(
            "{}\nlisteners:\n  - name: public\n    bind: \"127.0.0.1:0\"\n\
             routes:\n  - {{ path: {CHAT}, pool: echo, {} }}\n\
             pools:\n  echo: {{ backends: [ {{ url: \"ws://{}\" }} ] }}\n",
            fleet.cluster(name),
            fleet.chat_policy(extra),
            fleet.backend.addr()
        );
        let path = dir.path().join("wsgate.yaml");
        std::fs::write(&path, yaml).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .args(["run", "--config"])
            .arg(&path)
            .env("WSGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wsgate run");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Keeps draining stderr (a full pipe would stall wsgate) and shows it in test output.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[wsgate] {line}");
                if let Some(addr) = listening_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = within("wsgate to log that it listens", rx)
            .await
            .expect("wsgate exited before listening");
        Process {
            child,
            addr,
            _dir: dir,
        }
    }

    /// SIGKILL: no drain, no goodbye to Redis.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL wsgate");
        self.child.wait().expect("reap wsgate");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `addr=127.0.0.1:PORT` of the data listener's "listening" line (not the admin endpoint's).
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") || line.contains("admin") {
        return None;
    }
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .and_then(|a| a.trim_matches('"').parse().ok())
}

#[tokio::test]
async fn a_killed_instance_stops_counting_once_its_heartbeat_is_stale() {
    let fleet = Fleet::start("crash").await;
    let policy = per_subject(2, "refuse");
    let mut process = Process::start(&fleet, "gw-proc", &policy).await;
    let local = fleet.chat("gw-local", &policy).await;
    let alice = fleet.token("alice");
    let mut held = Vec::new();
    for _ in 0..2 {
        let outcome = handshake_at(process.addr, CHAT, Some(&alice)).await;
        let mut ws = outcome.ws("alice through the process");
        still_echoes(&mut ws, "alice through the process").await;
        held.push(ws);
    }
    refused(&local, CHAT, Some(&alice), 429, "subject_sessions_full").await;

    process.kill();
    let what = "alice after the process holding her sessions died";
    let _ws = admitted_within(local.addr(), &alice, CRASH_FREED_WITHIN, what).await;
}

/// `GET /fleet` with the admin token: the listed instances.
async fn fleet_list(admin: &Admin) -> Vec<Value> {
    let answer = admin.send("GET", "/fleet", Some(ADMIN_TOKEN), "").await;
    assert_eq!(answer.status, 200, "{answer:#?}");
    match serde_json::from_slice(&answer.body) {
        Ok(Value::Array(all)) => all,
        other => panic!("GET /fleet is not a JSON array: {other:?}"),
    }
}

/// The shape of an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let zone = text.ends_with('Z') || text.ends_with('z') || {
        let tail = &b[b.len().saturating_sub(6)..];
        tail.len() == 6 && matches!(tail[0], b'+' | b'-') && tail[3] == b':'
    };
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && zone
}

#[tokio::test]
async fn the_fleet_endpoint_lists_live_instances_with_their_sessions() {
    let fleet = Fleet::start("fleet-list").await;
    let gw = fleet.chats(2, "").await;
    let _alice = admitted(&gw[0], &fleet.token("alice"), "alice on gw-1").await;
    let _bob = admitted(&gw[1], &fleet.token("bob"), "bob on gw-2").await;
    let _carol = admitted(&gw[1], &fleet.token("carol"), "carol on gw-2").await;
    let admin = Admin::start(&gw[0], Some(ADMIN_TOKEN)).await;
    assert_eq!(admin.send("GET", "/fleet", None, "").await.status, 401);

    let want = [("gw-1", 1), ("gw-2", 2)];
    let deadline = Instant::now() + TIMEOUT;
    let listed = loop {
        let listed = fleet_list(&admin).await;
        let mut seen: Vec<(&str, u64)> = listed
            .iter()
            .map(|i| {
                (
                    i["instance"].as_str().unwrap_or("?"),
                    i["sessions"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        seen.sort();
        if seen == want {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "GET /fleet never listed {want:?}: {listed:#?}"
        );
        // Heartbeats carry the counts: wait out the feature's 2 s clock.
        sleep(Duration::from_millis(200)).await;
    };
    for instance in &listed {
        let at = instance["last_heartbeat"].as_str().unwrap_or_default();
        assert!(is_rfc3339(at), "last_heartbeat {at:?} in {instance}");
    }
}

async fn wsgate_sessions_fleet(args: &[&str]) -> Output {
    support::admin::wsgate_sessions(args, Some(ADMIN_TOKEN)).await
}
