//! Key revocation: a JWKS refresh that drops the key a session's token was verified with
//! closes that session with 1008 `key revoked` on both legs; sessions of keys still in the set
//! stay open.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::tokens::*;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Longer than the shortest JWKS refresh interval (10 s) the config allows.
const REFRESH_WAIT: Duration = Duration::from_secs(25);

/// The Close the client got; reading on until the end lets tungstenite send its reply.
async fn close_code(ws: &mut Ws) -> Option<(u16, String)> {
    let wait = async {
        let mut close = None;
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Close(Some(f)) = msg {
                close = Some((u16::from(f.code), f.reason.to_string()));
            }
        }
        close
    };
    tokio::time::timeout(REFRESH_WAIT, wait)
        .await
        .expect("a Close within the refresh interval")
}

#[tokio::test]
async fn a_refresh_that_drops_a_key_closes_its_sessions_with_1008() {
    let old = SigningKey::new(Algorithm::ES256).with_kid("2024");
    let new = SigningKey::new(Algorithm::ES256).with_kid("2025");
    let idp = HttpStub::start(json_answer(&jwks(&[&old, &new]))).await;
    let keys = format!(
        "{{ jwks_url: \"{}\", refresh: 10s }}",
        idp.url("/jwks.json")
    );
    let (proxy, _backend) = guarded(&jwt_policy(&keys, "", ""), &[]).await;
    let mut revoked = connect_with(&proxy, &old.sign(&claims(json!({"sub": "old"})))).await;
    let mut kept = connect_with(&proxy, &new.sign(&claims(json!({"sub": "new"})))).await;
    // The identity provider retires the old key; the next timed refresh sees it gone.
    idp.set(json_answer(&jwks(&[&new])));
    assert_eq!(
        close_code(&mut revoked).await,
        Some((1008, "key revoked".into()))
    );
    assert_echoes(&mut kept).await;
    let stats = proxy.stats();
    eventually("only the session of the kept key is left", || {
        stats.sessions.len() == 1
    })
    .await;
    let sessions = stats.sessions.snapshot();
    assert_eq!(sessions[0].info.subject.as_deref(), Some("new"));
    let metrics = proxy.stats().metrics().encode();
    assert!(
        metrics.contains(
            r#"wsgate_session_closes_total{route="*/chat",code="1008",closed_by="wsgate"} 1"#
        ),
        "{metrics}"
    );
}
