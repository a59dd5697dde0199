//! A fleet of wsgate instances for the issue #11 tests: one [`RedisServer`], one echo backend,
//! one JWT signing key, and as many [`TestProxy`] instances as a test asks for, each with its
//! own `cluster.instance` name and all sharing a per-test `cluster.prefix`.
//!
//! The client side answers in outcomes, not panics: [`handshake`] says whether a token was
//! admitted or refused (status, `Retry-After`), [`refused`] also checks the refusal was
//! counted under its reason label, [`next_close`] waits a bounded time for the Close frame an
//! instance sends, and [`admitted_within`] / [`refused_within`] poll where the feature's own
//! clock (heartbeats, dead-instance expiry, re-registration) is what the test waits out.
//!
//! Listeners are plain `ws://`: TLS is not what these tests are about and costs CPU.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use jsonwebtoken::Algorithm;
use serde_json::json;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::{self, Message};

use super::admit::close_ws;
use super::client::{Ws, WsRequest, ws_config};
use super::echo::EchoBackend;
use super::proxy::{TestProxy, TestProxyBuilder};
use super::redis::RedisServer;
use super::tokens::{SigningKey, assert_echoes, bearer, claims, jwt_policy};
use super::{eventually, within};

/// The route every fleet instance serves under JWT auth.
pub const CHAT: &str = "/chat";
/// The bearer token of the admin endpoints in these tests.
pub const ADMIN_TOKEN: &str = "fleet-operator";
/// `cluster.timeout` in these tests: one Redis call, past it the call counts as failed.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Pace of the polling loops below (not synchronisation: the deadline is the assertion).
const POLL: Duration = Duration::from_millis(100);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A `cluster.prefix` no other test (or test binary) uses.
pub fn unique_prefix(test: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("t-{test}-{}-{n}:", std::process::id())
}

/// The top-level `cluster:` block.
pub fn cluster_block(redis: &str, prefix: &str, instance: &str, on_error: &str) -> String {
    format!(
        "cluster: {{ redis: \"{redis}\", prefix: \"{prefix}\", instance: {instance}, \
         timeout: {}ms, on_error: {on_error} }}",
        REDIS_TIMEOUT.as_millis()
    )
}

/// Redis, a backend and a key shared by the instances of one test.
pub struct Fleet {
    pub redis: RedisServer,
    pub backend: EchoBackend,
    pub key: SigningKey,
    pub prefix: String,
    on_error: &'static str,
}

impl Fleet {
    /// A fresh Redis and backend; instances default to `on_error: allow`.
    pub async fn start(test: &str) -> Fleet {
        Fleet {
            redis: RedisServer::start().await,
            backend: EchoBackend::start().await,
            key: SigningKey::new(Algorithm::ES256),
            prefix: unique_prefix(test),
            on_error: "allow",
        }
    }

    /// `cluster.on_error` of the instances started after this (`allow` or `deny`).
    pub fn on_error(mut self, on_error: &'static str) -> Fleet {
        self.on_error = on_error;
        self
    }

    /// This fleet's `cluster:` block for `instance`.
    pub fn cluster(&self, instance: &str) -> String {
        cluster_block(&self.redis.url(), &self.prefix, instance, self.on_error)
    }

    /// A plain-listener builder with the `cluster:` block and the key file; no routes yet.
    pub fn builder(&self, instance: &str) -> TestProxyBuilder {
        let (name, pem) = self.key.pem_file();
        TestProxy::builder()
            .plain()
            .top(&self.cluster(instance))
            .file(name, pem.as_bytes())
    }

    /// The `/chat` route policy: JWT auth, then `extra` (`per_subject: {...}`) when not empty.
    pub fn chat_policy(&self, extra: &str) -> String {
        let auth = jwt_policy(&self.key.pem_entry(), "", "");
        if extra.is_empty() {
            auth
        } else {
            format!("{auth}, {extra}")
        }
    }

    /// Instance `name` serving `/chat` to the backend under [`Self::chat_policy`].
    pub async fn chat(&self, name: &str, extra: &str) -> TestProxy {
        self.builder(name)
            .route(None, CHAT, self.backend.addr())
            .policy(&self.chat_policy(extra))
            .start()
            .await
    }

    /// Instances `gw-1` .. `gw-n`, each like [`Self::chat`].
    pub async fn chats(&self, n: usize, extra: &str) -> Vec<TestProxy> {
        let mut all = Vec::with_capacity(n);
        for i in 1..=n {
            all.push(self.chat(&format!("gw-{i}"), extra).await);
        }
        all
    }

    /// A token for subject `sub`, valid for a minute.
    pub fn token(&self, sub: &str) -> String {
        self.key.sign(&claims(json!({ "sub": sub })))
    }
}

/// `per_subject` on the fleet with `max` sessions and `on_exceed`.
pub fn per_subject(max: u32, on_exceed: &str) -> String {
    format!("per_subject: {{ max_sessions: {max}, on_exceed: {on_exceed}, scope: fleet }}")
}

/// What a handshake came to.
pub enum Outcome {
    Admitted(Box<Ws>),
    Refused(Refused),
}

/// A refusal as the client saw it.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Outcome {
    /// The tunnel; panics on a refusal.
    pub fn ws(self, what: &str) -> Ws {
        match self {
            Outcome::Admitted(ws) => *ws,
            Outcome::Refused(r) => panic!("{what}: expected admission, got {r:?}"),
        }
    }

    /// The refusal; panics on an admission.
    pub fn refusal(self, what: &str) -> Refused {
        match self {
            Outcome::Refused(r) => r,
            Outcome::Admitted(_) => panic!("{what}: expected a refusal, was admitted"),
        }
    }
}

/// A WebSocket handshake to `path` on the plain listener at `addr`, with `Bearer token` when
/// given. Errors other than an HTTP refusal fail the test.
pub async fn handshake_at(addr: SocketAddr, path: &str, token: Option<&str>) -> Outcome {
    let mut headers = Vec::new();
    if let Some(t) = token {
        headers.push(("Authorization".to_string(), bearer(t)));
    }
    let request = WsRequest {
        addr,
        tls: None,
        sni: "localhost".into(),
        host: None,
        path: path.into(),
        headers,
        config: ws_config(),
    };
    match request.connect().await {
        Ok((ws, _)) => Outcome::Admitted(Box::new(ws)),
        Err(tungstenite::Error::Http(resp)) => Outcome::Refused(Refused {
            status: resp.status().as_u16(),
            retry_after: resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into(),
        }),
        Err(e) => panic!("handshake to {addr}{path}: {e}"),
    }
}

/// [`handshake_at`] on `proxy`.
pub async fn handshake(proxy: &TestProxy, path: &str, token: Option<&str>) -> Outcome {
    handshake_at(proxy.addr(), path, token).await
}

/// `/chat` with `token`: admitted and echoing, or the test fails.
pub async fn admitted(proxy: &TestProxy, token: &str, what: &str) -> Ws {
    let mut ws = handshake(proxy, CHAT, Some(token)).await.ws(what);
    assert_echoes(&mut ws).await;
    ws
}

/// A handshake refused with `status`, counted once under `reason` on `proxy`; for 429 the
/// answer carries `Retry-After` in whole seconds.
pub async fn refused(
    proxy: &TestProxy,
    path: &str,
    token: Option<&str>,
    status: u16,
    reason: &str,
) -> Refused {
    let stats = proxy.stats();
    let before = stats.refusals(reason);
    let refusal = handshake(proxy, path, token).await.refusal(reason);
    assert_eq!(
        refusal.status, status,
        "expected {status} {reason}: {refusal:?}"
    );
    if status == 429 {
        let secs = refusal
            .retry_after
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        assert!(secs.is_some_and(|s| s >= 1), "Retry-After: {refusal:?}");
    }
    eventually(&format!("refusal {reason} counted"), || {
        stats.refusals(reason) == before + 1
    })
    .await;
    refusal
}

/// The Close frame `ws` receives within `limit` (code, reason); messages before it are skipped.
/// Fails when the tunnel ends without one or nothing comes in time.
pub async fn next_close(ws: &mut Ws, limit: Duration, what: &str) -> (u16, String) {
    let wait = async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(Some(frame))) => {
                    return Some((u16::from(frame.code), frame.reason.to_string()));
                }
                Ok(Message::Close(None)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    };
    match timeout(limit, wait).await {
        Ok(Some(close)) => close,
        Ok(None) => panic!("{what}: the tunnel ended without a Close frame"),
        Err(_) => panic!("{what}: no Close frame within {limit:?}"),
    }
}

/// Poll `/chat` with `token` until admitted (refusals are retried), failing after `limit`.
pub async fn admitted_within(addr: SocketAddr, token: &str, limit: Duration, what: &str) -> Ws {
    let deadline = Instant::now() + limit;
    loop {
        match handshake_at(addr, CHAT, Some(token)).await {
            Outcome::Admitted(ws) => {
                let mut ws = *ws;
                assert_echoes(&mut ws).await;
                return ws;
            }
            Outcome::Refused(r) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: still refused after {limit:?}: {r:?}"
                );
            }
        }
        sleep(POLL).await;
    }
}

/// Poll `/chat` with `token` until refused with `status` (an admission is closed again at once
/// and other refusals are retried), failing after `limit`.
pub async fn refused_within(
    addr: SocketAddr,
    token: &str,
    status: u16,
    limit: Duration,
    what: &str,
) -> Refused {
    let deadline = Instant::now() + limit;
    loop {
        let last = match handshake_at(addr, CHAT, Some(token)).await {
            Outcome::Refused(r) if r.status == status => return r,
            Outcome::Refused(r) => format!("{r:?}"),
            Outcome::Admitted(ws) => {
                close_ws(*ws).await;
                "admitted".to_string()
            }
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not {status} after {limit:?}; last: {last}"
        );
        sleep(POLL).await;
    }
}

/// Send one message through `ws` and get it back within the test timeout.
pub async fn still_echoes(ws: &mut Ws, what: &str) {
    within(what, assert_echoes(ws)).await;
}
