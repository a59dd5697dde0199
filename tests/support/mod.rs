//! Test harness shared by the `proxy_*` integration tests.
//!
//! It reads like a sentence: `TestProxy::builder().route(None, "/echo/", backend.addr()).start()`
//! writes a real YAML config, loads it through `wsgate::config::load_str`, and serves it on
//! `127.0.0.1:0` with certificates made by rcgen at test time. Backends are an [`EchoBackend`]
//! (tokio-tungstenite, records every request head) and a [`ScriptedBackend`] (raw TCP, answers
//! with fixed or computed bytes, records what it received); the pool tests use [`pools`]'
//! backends, which share one log of who took each handshake. The client side speaks WebSocket
//! (`TestProxy::ws`) or hand-written heads ([`Head`], [`exchange`]).
//!
//! Every network wait goes through [`within`] or [`eventually`], bounded by [`TIMEOUT`]: a hung
//! proxy fails one test instead of hanging the run. Nothing sleeps to synchronise and no port is
//! fixed.

// Each test binary uses a different subset of this harness; what one binary leaves unused is
// not dead code.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod admit;
pub mod certs;
pub mod client;
pub mod clock;
pub mod echo;
pub mod expect;
pub mod fleet;
pub mod frames;
pub mod h2;
pub mod h2raw;
pub mod head;
pub mod hpack;
pub mod pebble;
pub mod peer;
pub mod plain;
pub mod pools;
pub mod proxy;
pub mod redis;
pub mod scripted;
pub mod session;
pub mod tokens;

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

pub use certs::{TestCa, TestCert};
pub use client::{
    Answer, ClientStream, Ws, exchange, messages_until_closed, next_message, read_head,
    read_until_closed,
};
pub use echo::{EchoBackend, SeenRequest};
pub use expect::{Backend, assert_closing, assert_refused, assert_upgraded};
pub use head::{ACCEPT, Head, KEY};
pub use proxy::TestProxy;
pub use scripted::{FullBacklog, Script, ScriptedBackend, Seen, Then, accept_for, upgrade_answer};

/// A proxy with one route, `/echo/`, to a fresh echo backend.
pub async fn echo_proxy() -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let proxy = TestProxy::builder()
        .route(None, "/echo/", backend.addr())
        .start()
        .await;
    (proxy, backend)
}

/// Upper bound on any single network wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Await `fut`, failing the test if it takes longer than [`TIMEOUT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// Poll `cond` until it holds, failing the test after [`TIMEOUT`]. For state the proxy updates
/// asynchronously (gauges, counters) after the client already saw the effect.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Read an HTTP head (through the blank line). Returns the head and whatever followed it in the
/// same reads. `Ok(None)` when the peer closed before a whole head; no timeout here (callers wrap).
pub async fn read_head_bytes<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Log to the test output when `RUST_LOG` is set; harmless when called many times.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
