//! Keepalive (#9): wsgate Pings a silent leg (`wsgate-keepalive`, masked towards the backend
//! only); a leg that does not answer within the timeout is dead: it gets nothing, the other leg
//! gets 1001 `going away`, and `wsgate_keepalive_dead_total{leg}` counts it. A peer that answers
//! (tokio-tungstenite does by itself) keeps the session open through long silence, and the Pongs
//! that answer wsgate's Pings are absorbed: they never reach the other leg.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use support::frames::{Frame, server_text};
use support::peer::{Manners, RawBackend};
use support::session::{ROUTE, Spec, closes, sample, sum};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const INTERVAL: Duration = Duration::from_millis(200);
const KEEPALIVE: &str = "session: { keepalive: { interval: 200ms, timeout: 200ms } }";
const PAYLOAD: &[u8] = b"wsgate-keepalive";
const AWAY: (u16, &str) = (1001, "going away");

/// Reads and records, answers nothing: alive to TCP, dead to WebSocket.
fn deaf(masked: bool) -> Manners {
    Manners {
        masked,
        ..Manners::default()
    }
}

fn is_our_ping(f: &Frame, masked: bool) -> bool {
    f.opcode() == 0x9 && f.payload == PAYLOAD && f.masked == masked
}

fn is_our_pong(f: &Frame) -> bool {
    f.opcode() == 0xa && f.payload == PAYLOAD
}

fn keepalive_series(name: &str, leg: &str) -> String {
    format!(r#"wsgate_keepalive_{name}_total{{leg="{leg}"}}"#)
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_dead_and_the_backend_gets_1001() {
    let rig = Spec::new(KEEPALIVE)
        .client(deaf(true))
        .backend(Manners::polite(false))
        .start()
        .await;
    let [c, b] = rig.ends(None, Some(AWAY)).await;
    assert!(!c.is_empty(), "the client was pinged");
    assert!(c.iter().all(|f| is_our_ping(f, false)), "client leg: {c:?}");
    // The backend answered its Pings; those Pongs stay in wsgate.
    assert!(
        b.iter().all(|f| is_our_ping(f, true) || f.opcode() == 8),
        "{b:?}"
    );
    let text = rig.counted("none", "wsgate").await;
    assert_eq!(
        sample(&text, &keepalive_series("dead", "client")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &keepalive_series("dead", "backend")),
        Some(0.0),
        "{text}"
    );
    let pings = sample(&text, &keepalive_series("pings", "client"));
    assert_eq!(pings, Some(c.len() as f64), "{text}");
}

#[tokio::test]
async fn a_backend_that_never_answers_pings_is_dead_and_the_client_gets_1001() {
    let rig = Spec::new(KEEPALIVE)
        .client(Manners::polite(true))
        .backend(deaf(false))
        .start()
        .await;
    let [c, b] = rig.ends(Some(AWAY), None).await;
    assert!(!b.is_empty(), "the backend was pinged");
    assert!(b.iter().all(|f| is_our_ping(f, true)), "backend leg: {b:?}");
    assert!(
        c.iter().all(|f| is_our_ping(f, false) || f.opcode() == 8),
        "{c:?}"
    );
    let text = rig.counted("1001", "wsgate").await;
    assert_eq!(
        sample(&text, &keepalive_series("dead", "backend")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &keepalive_series("dead", "client")),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_open_through_silence_and_its_pongs_stay_in_wsgate() {
    let backend = RawBackend::start(&[], Manners::polite(false)).await;
    let proxy = TestProxy::builder()
        .route(None, "/s", backend.addr())
        .policy(KEEPALIVE)
        .start()
        .await;
    let mut ws = proxy.ws_connect("/s").await;
    let (_, server) = backend.next().await;

    // Three intervals without a message either way; reading lets tungstenite answer the Pings
    // (it hands them up too). The timer is what is waited for here.
    let mut quiet = Vec::new();
    let silence = tokio::time::sleep(3 * INTERVAL);
    tokio::pin!(silence);
    loop {
        tokio::select! {
            () = &mut silence => break,
            msg = futures_util::StreamExt::next(&mut ws) => quiet.push(msg),
        }
    }
    let ping = Message::Ping(PAYLOAD.to_vec().into());
    assert!(quiet.len() >= 2, "pinged through the silence: {quiet:?}");
    assert!(
        quiet.iter().all(|m| matches!(m, Some(Ok(p)) if *p == ping)),
        "only wsgate's Pings during the silence: {quiet:?}"
    );

    within("send", ws.send(Message::text("still here")))
        .await
        .expect("the tunnel is still open");
    server
        .until("the message at the backend", |f| {
            f.iter().any(|f| f.payload == b"still here")
        })
        .await;
    server.send(server_text("still here"));
    assert_eq!(next_message(&mut ws).await, Message::text("still here"));

    let (b, _) = server.frames();
    assert!(
        b.iter().any(|f| is_our_ping(f, true)),
        "the backend was pinged too: {b:?}"
    );
    assert!(
        !b.iter().any(is_our_pong),
        "a keepalive Pong reached the backend: {b:?}"
    );
    assert!(!b.iter().any(|f| f.opcode() == 8), "{b:?}");

    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    within("close", ws.close(Some(bye)))
        .await
        .expect("send close");
    let seen = messages_until_closed(&mut ws).await;
    assert!(
        seen.iter()
            .all(|m| matches!(m, Message::Close(_)) || *m == ping),
        "no keepalive Pong of the backend reached the client: {seen:?}"
    );
    drop(ws);
    let stats = proxy.stats();
    eventually("the session to be counted", || {
        sample(&stats.metrics().encode(), &closes("1000", "client")) == Some(1.0)
    })
    .await;
    let text = stats.metrics().encode();
    let pings = sample(&text, &keepalive_series("pings", "client")).unwrap_or(0.0);
    assert!(pings >= 2.0, "pinged through the silence:\n{text}");
    assert_eq!(sum(&text, "wsgate_keepalive_dead_total"), 0.0, "{text}");
    assert_eq!(
        sum(&text, "wsgate_session_closes_total"),
        1.0,
        "{ROUTE}:\n{text}"
    );
}
