//! An admin endpoint (`/metrics`, `/sessions`, `POST /sessions/close`) for a [`TestProxy`]'s
//! sessions on `127.0.0.1:0`, plain HTTP/1.1 requests to it, and the `wsgate sessions` CLI.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_util::sync::CancellationToken;

use super::{Answer, TestProxy, exchange, within};

/// The admin endpoint; stopped when dropped.
pub struct Admin {
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Admin {
    /// Serve `proxy`'s metrics and sessions, requiring `token` for `/sessions*` when given.
    pub async fn start(proxy: &TestProxy, token: Option<&str>) -> Admin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = listener.local_addr().expect("admin address");
        let stop = CancellationToken::new();
        let stats = proxy.stats();
        tokio::spawn(wsgate::admin::serve(
            listener,
            stats.metrics(),
            Arc::new(AtomicBool::new(true)),
            Arc::clone(&stats.fleet),
            token.map(str::to_owned),
            stop.clone(),
        ));
        Admin { addr, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One request with an optional bearer and body; the whole answer, read until closed.
    pub async fn send(&self, method: &str, path: &str, bearer: Option<&str>, body: &str) -> Answer {
        let tcp = within("admin connect", TcpStream::connect(self.addr)).await;
        let mut conn = MaybeTlsStream::Plain(tcp.expect("connect to admin"));
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: {}\r\n{auth}\r\n{body}",
            body.len()
        );
        exchange(&mut conn, head.as_bytes()).await
    }
}

/// `wsgate sessions ARGS` with `WSGATE_ADMIN_TOKEN=token` (if any), run off the test's runtime.
pub async fn wsgate_sessions(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsgate"));
    cmd.arg("sessions")
        .args(args)
        .env_remove("WSGATE_ADMIN_TOKEN");
    if let Some(t) = token {
        cmd.env("WSGATE_ADMIN_TOKEN", t);
    }
    within(
        "wsgate sessions",
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("join")
    .expect("run wsgate sessions")
}
