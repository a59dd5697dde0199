//! The close matrix, for the reasons that are clocks or requests (#9): token expiry, lifetime,
//! drain, message rate; and the Closes a peer starts, relayed unchanged. Each row runs one
//! session between two raw peers and pins the exact Close each leg got (masked towards the
//! backend only), that nothing the other peer sent after wsgate's Close reached a leg, the
//! `wsgate_session_closes_total` series, and the registry and tunnel gauge back to empty.
//!
//! Frame rule breaches are in `session_frames.rs`, keepalive in `session_keepalive.rs`, the
//! admin API close in `session_operator.rs`.

mod support;

use jsonwebtoken::Algorithm;
use serde_json::json;
use support::frames::{client_text, close, server_text};
use support::peer::Manners;
use support::session::{Spec, jwt_route, sample, texts};
use support::tokens::{SigningKey, bearer, claims, now};
use support::*;

#[tokio::test]
async fn token_expiry_sends_1008_token_expired_to_both_legs() {
    let key = SigningKey::new(Algorithm::ES256);
    let (name, pem) = key.pem_file();
    // Whole seconds: `exp` passes between 1 and 2 s from now.
    let token = key.sign(&claims(json!({ "exp": now() + 2 })));
    let rig = Spec::new(&jwt_route(&key, "0s"))
        .file(name, pem)
        .header("Authorization", &bearer(&token))
        .start()
        .await;
    rig.client.send(client_text("before expiry"));
    rig.server
        .until("the message before expiry", |f| {
            texts(f) == ["before expiry"]
        })
        .await;
    let expired = (1008, "token expired");
    rig.ends(Some(expired), Some(expired)).await;
    assert!(now() + 1 >= token_exp(&token), "closed before exp");
    rig.counted("1008", "wsgate").await;
}

/// `exp` of a token this test signed.
fn token_exp(token: &str) -> u64 {
    use base64::Engine;
    let body = token.split('.').nth(1).expect("a JWS has a payload");
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .expect("base64url payload");
    let claims: serde_json::Value = serde_json::from_slice(&body).expect("JSON claims");
    claims["exp"].as_u64().expect("numeric exp")
}

#[tokio::test]
async fn lifetime_sends_1001_session_lifetime_to_both_legs() {
    let rig = Spec::new("session: { max_lifetime: 400ms }").start().await;
    rig.server.send(server_text("hello"));
    let c = rig
        .client
        .until("the backend's message", |f| texts(f) == ["hello"])
        .await;
    assert!(
        !c.iter().any(|f| f.opcode() == 8),
        "closed too early: {c:?}"
    );
    let lifetime = (1001, "session lifetime");
    let [c, _] = rig.ends(Some(lifetime), Some(lifetime)).await;
    assert_eq!(texts(&c), ["hello"]);
    rig.counted("1001", "wsgate").await;
}

#[tokio::test]
async fn drain_sends_1001_going_away_to_both_legs_and_serve_returns() {
    let mut rig = Spec::new("").start().await;
    rig.client.send(client_text("before drain"));
    rig.server
        .until("the message before drain", |f| texts(f) == ["before drain"])
        .await;
    rig.proxy.drain();
    let away = (1001, "going away");
    rig.ends(Some(away), Some(away)).await;
    rig.counted("1001", "wsgate").await;
    rig.proxy.stopped().await;
}

#[tokio::test]
async fn message_rate_sends_1008_rate_limit_to_the_client_and_1001_to_the_backend() {
    let rig = Spec::new(r#"session: { messages: { rate: "5/s", burst: 5 } }"#)
        .start()
        .await;
    let burst: Vec<u8> = (0..8).flat_map(|i| client_text(&format!("m{i}"))).collect();
    rig.client.send(burst);
    let [_, b] = rig
        .ends(Some((1008, "rate limit")), Some((1001, "going away")))
        .await;
    assert_eq!(
        texts(&b),
        ["m0", "m1", "m2", "m3", "m4"],
        "the burst passes"
    );
    let text = rig.counted("1008", "wsgate").await;
    let series = r#"wsgate_frame_violations_total{route="*/s",kind="rate"}"#;
    assert_eq!(sample(&text, series), Some(1.0), "{text}");
}

/// A peer that records and never answers on its own: the test plays the other half of the
/// close handshake.
fn silent(masked: bool) -> Manners {
    Manners {
        masked,
        ..Manners::default()
    }
}

#[tokio::test]
async fn a_client_close_reaches_the_backend_unchanged_and_counts_as_the_clients() {
    let rig = Spec::new("")
        .client(silent(true))
        .backend(silent(false))
        .start()
        .await;
    let sent = close(4001, "bye", true);
    // A data frame after the client's own Close (§5.5.1 forbids it) is not forwarded.
    rig.client
        .send([sent.clone(), frames::client_text("after close")].concat());
    rig.server.until_close("backend").await;
    // Relayed byte for byte: same mask key, same payload.
    let (got, _) = rig.server.frames();
    assert_eq!(frames::parse(&sent).0, got, "the client's Close, unchanged");
    rig.server.send(close(4001, "", false));
    rig.server.shutdown();
    let [c, b] = rig.ends(Some((4001, "")), Some((4001, "bye"))).await;
    assert_eq!((c.len(), b.len()), (1, 1), "{c:?} {b:?}");
    let text = rig.counted("4001", "client").await;
    assert_eq!(
        support::session::sum(&text, "wsgate_frame_violations_total"),
        0.0
    );
}

#[tokio::test]
async fn a_backend_close_reaches_the_client_unchanged_and_counts_as_the_backends() {
    let rig = Spec::new("")
        .client(Manners::polite(true))
        .backend(silent(false))
        .start()
        .await;
    rig.server.send(server_text("last words"));
    rig.server.send(close(1000, "done", false));
    rig.server.until_close("backend").await;
    rig.server.shutdown();
    let [c, b] = rig.ends(Some((1000, "done")), Some((1000, ""))).await;
    assert_eq!(texts(&c), ["last words"]);
    assert_eq!(b.len(), 1, "only the client's Close reply: {b:?}");
    rig.counted("1000", "backend").await;
}

#[tokio::test]
async fn the_message_rate_counts_client_messages_only_not_fragments_or_backend_messages() {
    let rig = Spec::new(r#"session: { messages: { rate: "5/s", burst: 5 } }"#)
        .start()
        .await;
    let down: Vec<u8> = (0..8).flat_map(|i| server_text(&format!("d{i}"))).collect();
    rig.server.send(down);
    let c = rig
        .client
        .until("eight backend messages", |f| texts(f).len() == 8)
        .await;
    assert!(!c.iter().any(|f| f.opcode() == 8), "{c:?}");
    // One message in eight fragments, then four more: five messages, the burst.
    let mut up = frames::frame(0x01, b"f0", true);
    for i in 1..7 {
        up.extend(frames::frame(0x00, format!("f{i}").as_bytes(), true));
    }
    up.extend(frames::frame(0x80, b"f7", true));
    up.extend((1..5).flat_map(|i| client_text(&format!("m{i}"))));
    rig.client.send(up);
    let b = rig
        .server
        .until("the fragments and four messages", |f| texts(f).len() == 12)
        .await;
    assert!(!b.iter().any(|f| f.opcode() == 8), "{b:?}");
    rig.client.send(client_text("one too many"));
    let [_, b] = rig
        .ends(Some((1008, "rate limit")), Some((1001, "going away")))
        .await;
    assert_eq!(texts(&b).len(), 12, "{b:?}");
    rig.counted("1008", "wsgate").await;
}

#[tokio::test]
async fn a_drain_during_a_client_close_sends_no_second_close_to_the_backend() {
    let mut rig = Spec::new("")
        .client(silent(true))
        .backend(silent(false))
        .start()
        .await;
    rig.client.send(close(1000, "leaving", true));
    rig.server.until_close("backend").await;
    rig.proxy.drain();
    // The backend already has the client's Close: wsgate adds none; the client gets 1001.
    let c = rig.client.until_close("client").await;
    rig.server.send(close(1000, "", false));
    rig.server.shutdown();
    let [_, b] = rig
        .ends(Some((1001, "going away")), Some((1000, "leaving")))
        .await;
    assert_eq!((c.len(), b.len()), (1, 1), "{c:?} {b:?}");
    rig.proxy.stopped().await;
}
