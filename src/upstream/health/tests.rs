//! Health state without sleeps (injected `now`), and the probes against tiny local backends:
//! a TCP listener, and WebSocket servers that answer right, wrong, or not at all.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::config::HealthKind;
use crate::wire::key::accept_for;
use crate::wire::{self, Fields};

const URL: &str = "ws://test-backend";

fn passive(failures: u32) -> Passive {
    Passive {
        failures,
        cooldown: Duration::from_secs(10),
    }
}

#[test]
fn rises_after_two_passes_and_falls_after_three_failures() {
    let h = BackendHealth::new();
    assert!(h.is_up(), "starts up");
    assert_eq!(h.record_check(false, 2, 3, URL), None);
    assert_eq!(h.record_check(false, 2, 3, URL), None);
    assert_eq!(
        h.record_check(true, 2, 3, URL),
        None,
        "a pass resets the streak"
    );
    assert_eq!(h.record_check(false, 2, 3, URL), None);
    assert_eq!(h.record_check(false, 2, 3, URL), None);
    assert_eq!(h.record_check(false, 2, 3, URL), Some(false));
    assert!(!h.is_up() && !h.is_usable());
    assert_eq!(h.record_check(false, 2, 3, URL), None, "logged once");
    assert_eq!(h.record_check(true, 2, 3, URL), None);
    assert_eq!(
        h.record_check(false, 2, 3, URL),
        None,
        "a failure resets the streak"
    );
    assert_eq!(h.record_check(true, 2, 3, URL), None);
    assert_eq!(h.record_check(true, 2, 3, URL), Some(true));
    assert!(h.is_up() && h.is_usable());
}

#[test]
fn consecutive_failures_eject_until_the_cooldown_ends() {
    let h = BackendHealth::new();
    let t0 = Instant::now();
    assert!(!h.report_failure_at(&passive(3), URL, t0));
    assert!(!h.report_failure_at(&passive(3), URL, t0));
    assert!(
        h.report_failure_at(&passive(3), URL, t0),
        "third in a row ejects"
    );
    assert!(h.is_up(), "ejection is not the active verdict");
    assert!(!h.is_usable_at(t0 + Duration::from_secs(9)));
    assert!(
        !h.report_failure_at(&passive(1), URL, t0 + Duration::from_secs(1)),
        "a late failure during the cooldown does not eject (or log) again"
    );
    assert!(
        h.is_usable_at(t0 + Duration::from_secs(10)),
        "cooldown over"
    );
    h.report_success_at(t0 + Duration::from_secs(10));
    assert!(!h.is_ejected_at(t0 + Duration::from_secs(10)));
}

#[test]
fn a_success_resets_the_failure_count() {
    let h = BackendHealth::new();
    let t0 = Instant::now();
    h.report_failure_at(&passive(2), URL, t0);
    h.report_success_at(t0);
    assert!(!h.report_failure_at(&passive(2), URL, t0));
    assert!(h.is_usable_at(t0));
    assert!(h.report_failure_at(&passive(2), URL, t0));
}

#[test]
fn zero_failures_never_ejects() {
    let h = BackendHealth::new();
    let t0 = Instant::now();
    for _ in 0..100 {
        assert!(!h.report_failure_at(&passive(0), URL, t0));
    }
    assert!(h.is_usable_at(t0));
}

/// How the tiny backend answers the upgrade.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Answer {
    Correct,
    WrongAccept,
    NotFound,
    /// A correct 101, then nothing: no Close, no end of stream.
    Silent,
}

/// Serve one connection: read the upgrade, answer, then echo the client's Close.
pub(super) async fn serve_ws<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: Answer) {
    let mut buf = Vec::with_capacity(1024);
    let req = loop {
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match wire::parse_request(&buf, 32) {
            Ok(req) => break req,
            Err(wire::HeadError::Incomplete) if buf.len() < 8192 => {}
            Err(_) => return,
        }
    };
    let key = req.single("sec-websocket-key").unwrap_or_default();
    let key = String::from_utf8_lossy(key).into_owned();
    let accept = match answer {
        Answer::WrongAccept => accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
        _ => accept_for(&key),
    };
    let reply = if answer == Answer::NotFound {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()
    } else {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
    };
    // A greeting before the Close: the checker must skip it.
    let greeting: &[u8] = if answer == Answer::Correct {
        b"\x81\x02hi"
    } else {
        b""
    };
    if s.write_all(reply.as_bytes()).await.is_err() || s.write_all(greeting).await.is_err() {
        return;
    }
    let mut close = [0u8; 8];
    if answer == Answer::Silent || s.read_exact(&mut close).await.is_err() {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let _ = s.write_all(&[0x88, 0x02, 0x03, 0xE8]).await;
    let _ = s.shutdown().await;
}

/// A plain backend answering every connection as `answer` says (switchable).
async fn ws_backend(answer: Arc<Mutex<Answer>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let now = *answer.lock().expect("not poisoned");
            tokio::spawn(serve_ws(tcp, now));
        }
    });
    addr
}

pub(super) fn target(addr: SocketAddr, tls: Option<TlsConnector>) -> Target {
    Target {
        url: format!("ws://{addr}"),
        authority: addr.to_string(),
        host: "localhost".to_owned(),
        tls,
        proxy: None,
        health: Arc::new(BackendHealth::new()),
    }
}

fn check(kind: HealthKind) -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(500),
        rise: 1,
        fall: 1,
        kind,
    }
}

pub(super) fn ws_check() -> HealthCheck {
    check(HealthKind::WebSocket("/health".to_owned()))
}

async fn probe_ws(answer: Answer) -> Result<(), String> {
    let addr = ws_backend(Arc::new(std::sync::Mutex::new(answer))).await;
    probe(&target(addr, None), &ws_check()).await
}

#[tokio::test]
async fn tcp_check_passes_while_listening_and_fails_when_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    assert_eq!(
        probe(&target(addr, None), &check(HealthKind::Tcp)).await,
        Ok(())
    );
    drop(listener);
    let err = probe(&target(addr, None), &check(HealthKind::Tcp)).await;
    assert!(err.is_err_and(|e| e.starts_with("connect")));
}

#[tokio::test]
async fn websocket_check_needs_101_the_right_accept_and_a_close() {
    assert_eq!(probe_ws(Answer::Correct).await, Ok(()));
    let wrong = probe_ws(Answer::WrongAccept).await.unwrap_err();
    assert!(wrong.contains("Sec-WebSocket-Accept"), "{wrong}");
    let not_found = probe_ws(Answer::NotFound).await.unwrap_err();
    assert_eq!(not_found, "status 404 instead of 101");
    let silent = probe_ws(Answer::Silent).await.unwrap_err();
    assert!(silent.starts_with("timeout"), "{silent}");
}

/// Wait (bounded) until `health.is_up()` is `want`.
async fn until_up_is(health: &BackendHealth, want: bool) {
    let wait = async {
        while health.is_up() != want {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("state change within 5s");
}

#[tokio::test]
async fn checker_marks_a_failing_backend_down_and_a_recovered_one_up() {
    let answer = Arc::new(std::sync::Mutex::new(Answer::Correct));
    let addr = ws_backend(Arc::clone(&answer)).await;
    let t = target(addr, None);
    let health = Arc::clone(&t.health);
    let stop = CancellationToken::new();
    let handle = spawn_checks("chat", vec![t], ws_check(), stop.clone());
    *answer.lock().expect("not poisoned") = Answer::NotFound;
    until_up_is(&health, false).await;
    *answer.lock().expect("not poisoned") = Answer::Correct;
    until_up_is(&health, true).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("checkers stop when cancelled")
        .expect("checker task did not panic");
}
