//! A private `redis-server` for the fleet tests: started on a free loopback port with a
//! throwaway config (no persistence, nothing written outside its temp dir), ready once it
//! answers `PING` as itself, and stopped by its PID. `restart()` brings it back empty on the
//! same port — what a Redis restart without persistence looks like to wsgate — and `freeze()` /
//! `thaw()` (SIGSTOP / SIGCONT) make it a server that accepts but never answers.
//!
//! [`RedisServer::cmd`] is a tiny RESP2 client for assertions (`KEYS`, `DBSIZE`), every call
//! bounded. tokio's `process` feature is not enabled in this crate, so the child is a
//! `std::process::Child`, killed and reaped on drop.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// How long a started `redis-server` has to answer `PING`.
pub const READY_WITHIN: Duration = Duration::from_secs(5);
/// Bound on one raw command (connect, write, read the reply).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(2);
/// Fresh ports tried when another process takes the one we picked before redis binds it.
const PORT_ATTEMPTS: usize = 5;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n` (None for `$-1`).
    Bulk(Option<String>),
    /// `*n` (empty for `*-1`).
    Array(Vec<Reply>),
}

/// A running `redis-server` child; killed when dropped.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Extra `redis-server` arguments (TLS), kept for `restart`.
    extra: Vec<String>,
    tls_port: Option<u16>,
}

impl RedisServer {
    /// Start on a free loopback port (a new one for each of up to [`PORT_ATTEMPTS`] tries).
    pub async fn start() -> RedisServer {
        Self::start_with(
            tempfile::tempdir().expect("redis temp dir"),
            Vec::new(),
            None,
        )
        .await
    }

    /// Start with a TLS port too, serving `cert` (its chain signed by a CA the client is given);
    /// clients need no certificate. The plain port stays for readiness and [`Self::cmd`].
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> RedisServer {
        let dir = tempfile::tempdir().expect("redis temp dir");
        let (cert, key) = (dir.path().join("redis.pem"), dir.path().join("redis.key"));
        std::fs::write(&cert, cert_pem).expect("write redis cert");
        std::fs::write(&key, key_pem).expect("write redis key");
        let tls_port = free_port();
        let extra = vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        Self::start_with(dir, extra, Some(tls_port)).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        extra: Vec<String>,
        tls_port: Option<u16>,
    ) -> RedisServer {
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match spawn_ready(port, dir.path(), &extra).await {
                Ok(child) => {
                    return RedisServer {
                        port,
                        child: Some(child),
                        dir,
                        extra,
                        tls_port,
                    };
                }
                Err(e) => failures.push(format!("port {port}: {e}")),
            }
        }
        panic!("redis-server did not start (is it installed? .ci/run installs it): {failures:#?}");
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `rediss://localhost:TLS_PORT/0` (servers started with [`Self::start_tls`]).
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started with start_tls");
        format!("rediss://localhost:{port}/0")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The child's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kill the server and reap it: the port refuses connections afterwards.
    pub async fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            reap(child).await;
        }
    }

    /// Start again on the same port, empty (no persistence), and wait until it answers.
    pub async fn restart(&mut self) {
        self.stop().await;
        let dir = self.dir.path().to_path_buf();
        let mut last = None;
        // The port was ours a moment ago; a few tries cover a slow kernel releasing it.
        for _ in 0..PORT_ATTEMPTS {
            match spawn_ready(self.port, &dir, &self.extra).await {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => last = Some(e),
            }
            sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "redis-server did not restart on port {}: {last:?}",
            self.port
        );
    }

    /// SIGSTOP: connections stay open, nothing is answered (a hung Redis).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Self::freeze`].
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("redis-server is running");
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// One command on a fresh connection, bounded by [`CMD_TIMEOUT`].
    pub async fn cmd(&self, args: &[&str]) -> io::Result<Reply> {
        command(self.port, args).await
    }

    /// `KEYS pattern`, sorted; panics when Redis does not answer.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        match self.cmd(&["KEYS", pattern]).await {
            Ok(Reply::Array(items)) => {
                let mut keys: Vec<String> = items
                    .into_iter()
                    .filter_map(|r| match r {
                        Reply::Bulk(Some(k)) => Some(k),
                        _ => None,
                    })
                    .collect();
                keys.sort();
                keys
            }
            other => panic!("KEYS {pattern}: {other:?}"),
        }
    }

    /// `DBSIZE`; panics when Redis does not answer.
    pub async fn dbsize(&self) -> i64 {
        match self.cmd(&["DBSIZE"]).await {
            Ok(Reply::Int(n)) => n,
            other => panic!("DBSIZE: {other:?}"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a frozen (SIGSTOPped) server.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port that was free a moment ago (redis cannot be told `--port 0` and report it).
fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Spawn `redis-server` on `port` and wait until *it* (not some other process on the port)
/// answers: `PING` gives `+PONG` and `INFO server` names the child's PID.
async fn spawn_ready(port: u16, dir: &Path, extra: &[String]) -> io::Result<Child> {
    let log = dir.join(format!("redis-{port}.log"));
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--protected-mode", "no", "--loglevel", "warning"])
        .args(extra)
        .arg("--logfile")
        .arg(&log)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Some(status) = child.try_wait()? {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(io::Error::other(format!("exited {status}: {said}")));
        }
        if is_ours(port, child.id()).await {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            reap(child).await;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no PONG within {READY_WITHIN:?}"),
            ));
        }
        // Process start readiness: poll at a short pace under the deadline above.
        sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the server on `port` answers PING and is process `pid`.
async fn is_ours(port: u16, pid: u32) -> bool {
    if command(port, &["PING"]).await.ok() != Some(Reply::Simple("PONG".into())) {
        return false;
    }
    match command(port, &["INFO", "server"]).await {
        Ok(Reply::Bulk(Some(info))) => info
            .lines()
            .any(|l| l.trim() == format!("process_id:{pid}")),
        _ => false,
    }
}

/// SIGKILL `child` and wait for it to exit (bounded), without blocking the runtime.
async fn reap(mut child: Child) {
    let _ = child.kill();
    let deadline = Instant::now() + READY_WITHIN;
    while let Ok(None) = child.try_wait() {
        assert!(
            Instant::now() < deadline,
            "redis-server {} did not die",
            child.id()
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// One RESP2 command to 127.0.0.1:`port` on a fresh connection.
pub async fn command(port: u16, args: &[&str]) -> io::Result<Reply> {
    let exchange = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        tcp.write_all(out.as_bytes()).await?;
        let mut reader = BufReader::new(tcp);
        read_reply(&mut reader).await
    };
    match timeout(CMD_TIMEOUT, exchange).await {
        Ok(reply) => reply,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("redis on {port} did not answer {args:?} within {CMD_TIMEOUT:?}"),
        )),
    }
}

/// Read one reply (recursing into arrays).
async fn read_reply(reader: &mut BufReader<TcpStream>) -> io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches("\r\n");
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad RESP: {line:?}"));
    let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
    let number = || rest.parse::<i64>().map_err(|_| bad());
    Ok(match kind {
        "+" => Reply::Simple(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Int(number()?),
        "$" => match usize::try_from(number()?) {
            Err(_) => Reply::Bulk(None),
            Ok(len) => {
                let mut buf = vec![0; len + 2];
                reader.read_exact(&mut buf).await?;
                buf.truncate(len);
                Reply::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
        },
        "*" => {
            let n = usize::try_from(number()?).unwrap_or(0);
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(Box::pin(read_reply(reader)).await?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad()),
    })
}
