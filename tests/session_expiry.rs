//! Token expiry with a real WebSocket client (#9): a session on a JWT route ends when `exp` plus
//! the leeway passes, with 1008 `token expired` to both legs, whether it is idle or streaming
//! messages at that moment. tokio-tungstenite plays the client (it answers the Close), a raw
//! peer the backend (so the backend leg's frames can be read back).

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::peer::{Manners, Peer, RawBackend};
use support::session::{assert_farewell, closes, jwt_route, sample, texts};
use support::tokens::{SigningKey, bearer, claims, now};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const EXPIRED: (u16, &str) = (1008, "token expired");

/// A proxy whose `/s` route takes tokens of `key` with 1 s leeway, and a client on it with a
/// token that ran out (exp + leeway) between 1 and 2 s from now.
async fn expiring_session() -> (TestProxy, RawBackend, Ws, Peer, u64) {
    let key = SigningKey::new(Algorithm::ES256);
    let (name, pem) = key.pem_file();
    let backend = RawBackend::start(&[], Manners::polite(false)).await;
    let proxy = TestProxy::builder()
        .route(None, "/s", backend.addr())
        .policy(&jwt_route(&key, "1s"))
        .file(name, pem.as_bytes())
        .start()
        .await;
    let exp = now() + 1;
    let token = key.sign(&claims(json!({ "exp": exp })));
    let attempt = proxy.ws("/s").header("Authorization", &bearer(&token));
    let (ws, _) = attempt.connect().await.expect("admitted before exp");
    let (_, server) = backend.next().await;
    (proxy, backend, ws, server, exp)
}

/// The Close the client got is the last message: 1008 `token expired`.
fn assert_expired(seen: &[Message]) {
    match seen.last() {
        Some(Message::Close(Some(f))) => {
            assert_eq!(f.code, CloseCode::Policy, "{seen:?}");
            assert_eq!(f.reason, EXPIRED.1, "{seen:?}");
        }
        other => panic!("expected a Close 1008 last, got {other:?} in {seen:?}"),
    }
}

/// The session was counted as wsgate's 1008 and left the registry.
async fn assert_counted(proxy: &TestProxy) {
    let stats = proxy.stats();
    eventually("the session to be counted and unlisted", || {
        sample(&stats.metrics().encode(), &closes("1008", "wsgate")) == Some(1.0)
            && stats.sessions.is_empty()
            && stats.open_tunnels() == 0
    })
    .await;
}

#[tokio::test]
async fn an_idle_session_ends_with_1008_when_the_token_expires() {
    let (proxy, _backend, mut ws, server, exp) = expiring_session().await;
    let seen = messages_until_closed(&mut ws).await;
    // The session ends at exp + 1 s leeway, not at exp.
    assert!(now() > exp, "closed within the leeway");
    assert_expired(&seen);
    assert_eq!(seen.len(), 1, "{seen:?}");
    drop(ws);
    let b = server.closed("backend").await;
    assert_farewell("backend", &b, Some(EXPIRED), true);
    assert_counted(&proxy).await;
}

#[tokio::test]
async fn a_streaming_session_ends_with_1008_when_the_token_expires() {
    let (proxy, _backend, mut ws, server, _) = expiring_session().await;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut sent = Vec::new();
    let mut seen = Vec::new();
    within("the session to end", async {
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let text = format!("m{}", sent.len());
                    // After the Close arrived tungstenite refuses to send: the loop ends below.
                    if ws.send(Message::text(text.clone())).await.is_ok() {
                        sent.push(text);
                    }
                }
                msg = ws.next() => match msg {
                    Some(Ok(m)) => seen.push(m),
                    _ => break,
                },
            }
        }
    })
    .await;
    assert_expired(&seen);
    drop(ws);
    let b = server.closed("backend").await;
    assert_farewell("backend", &b, Some(EXPIRED), true);
    let got = texts(&b);
    assert!(got.len() >= 5, "messages flowed until the end: {got:?}");
    assert_eq!(
        got,
        sent[..got.len()].to_vec(),
        "in order, none lost before the Close"
    );
    assert_counted(&proxy).await;
}
