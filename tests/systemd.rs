//! wsgate under systemd, without systemd as PID 1: a fake `NOTIFY_SOCKET` receives READY,
//! RELOADING (+ MONOTONIC_USEC), WATCHDOG and STOPPING from the real binary, and
//! `systemd-socket-activate` hands it a listening socket by name (`bind: "systemd:public"`).
//!
//! The unit files themselves are checked by `.ci/systemd-checks` (`systemd-analyze verify` and
//! `security`), which also installs `systemd-socket-activate` on a fresh CI machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn write_config(dir: &Path, bind: &str) -> PathBuf {
    let yaml = format!(
        r#"
listeners:
  - name: public
    bind: "{bind}"
routes:
  - {{ path: /, pool: echo }}
pools:
  echo:
    backends: [ {{ url: "ws://127.0.0.1:9" }} ]
"#
    );
    let path = dir.join("wsgate.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// Forward the child's stderr lines to the test output, so a failure shows what wsgate said.
fn echo_stderr(child: &mut Child) {
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("wsgate: {line}");
        }
    });
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(mut child: Child) -> ExitStatus {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(WAIT).expect("wsgate exits").expect("wait")
}

/// Kills the child if a test fails half-way, so no wsgate outlives the test run.
struct Reaper(Option<Child>);

impl Reaper {
    fn child(&self) -> &Child {
        self.0.as_ref().expect("child still owned")
    }
    fn take(mut self) -> Child {
        self.0.take().expect("child still owned")
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The service manager's end of `NOTIFY_SOCKET`.
struct FakeNotify {
    socket: UnixDatagram,
    path: PathBuf,
    /// Every datagram received so far, for failure messages.
    seen: Vec<String>,
}

impl FakeNotify {
    fn bind(dir: &Path) -> FakeNotify {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        FakeNotify {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Wait for a datagram with the line `line`, skipping others (watchdog pings); returns it.
    fn expect(&mut self, line: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 4096];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("set timeout");
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(msg.clone());
            if msg.lines().any(|l| l == line) {
                return msg;
            }
        }
        panic!("no {line} within {WAIT:?}; received {:?}", self.seen);
    }
}

#[test]
fn notifies_ready_reloading_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "127.0.0.1:0");
    let mut notify = FakeNotify::bind(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify.path)
        // 400 ms watchdog: pings every 200 ms. No WATCHDOG_PID: the variable is for this process.
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env_remove("LISTEN_FDS")
        .env("WSGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsgate run");
    echo_stderr(&mut child);
    let child = Reaper(Some(child));

    notify.expect("READY=1");
    notify.expect("WATCHDOG=1");

    signal(child.child(), "-HUP");
    let reloading = notify.expect("RELOADING=1");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 comes with MONOTONIC_USEC: {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{reloading:?}");
    notify.expect("READY=1");

    signal(child.child(), "-TERM");
    notify.expect("STOPPING=1");
    let status = wait_exit(child.take());
    assert!(
        status.success(),
        "{status:?}; notifications {:?}",
        notify.seen
    );
}

/// A free port on 127.0.0.1 for the activator to bind (it cannot be told to use port 0 and
/// report it). The window between dropping this and the activator binding is tiny.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn socket_activate() -> Option<PathBuf> {
    [
        "/usr/bin/systemd-socket-activate",
        "/bin/systemd-socket-activate",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn serves_on_a_socket_inherited_from_systemd() {
    let Some(activate) = socket_activate() else {
        eprintln!(
            "note: systemd-socket-activate is not installed; skipping (.ci/systemd-checks installs it)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "systemd:public");
    let port = free_port();
    let mut child = Command::new(activate)
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--fdname=public")
        .arg(env!("CARGO_BIN_EXE_wsgate"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .env("WSGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn systemd-socket-activate");
    echo_stderr(&mut child);
    // The activator execs wsgate in its own process (same pid) on the first connection.
    let child = Reaper(Some(child));

    let deadline = Instant::now() + WAIT;
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the activator: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("activator never listened on {port}: {e}"),
        }
    };
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    // Close our side too, or wsgate's lingering close on a refusal waits for it.
    drop(stream);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 426 "),
        "a plain GET on the inherited socket is answered by wsgate: {answer:?}"
    );

    signal(child.child(), "-TERM");
    let status = wait_exit(child.take());
    assert!(status.success(), "{status:?}");
}
