//! Operator close end to end (#9): `POST /sessions/close` on the admin endpoint ends exactly the
//! sessions its selectors pick, with the code and reason given (default 1008 `closed by
//! operator`) to the client and to the backend; the other sessions keep working.
//! (`admin_sessions.rs` pins the API itself: selectors, validation, the bearer token.)

mod support;

use futures_util::SinkExt;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::admin::Admin;
use support::peer::{Manners, Peer, RawBackend};
use support::session::{assert_farewell, sample, texts};
use support::tokens::{SigningKey, bearer, claims};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// `POST /sessions/close` as the tests use it.
trait Close {
    async fn close(&self, body: &Value) -> Value;
}

impl Close for Admin {
    /// `POST /sessions/close` with `body`; the JSON answer of a 200.
    async fn close(&self, body: &Value) -> Value {
        let answer = self
            .send("POST", "/sessions/close", None, &body.to_string())
            .await;
        assert_eq!(answer.status, 200, "{answer:#?}");
        serde_json::from_slice(&answer.body).expect("JSON answer")
    }
}

/// A proxy with a JWT route `/chat` and an open route `/open`, both to one raw backend.
struct Fleet {
    proxy: TestProxy,
    backend: RawBackend,
    key: SigningKey,
}

impl Fleet {
    async fn start() -> Fleet {
        let key = SigningKey::new(Algorithm::ES256);
        let (name, pem) = key.pem_file();
        let backend = RawBackend::start(&[], Manners::polite(false)).await;
        let proxy = TestProxy::builder()
            .route(None, "/chat", backend.addr())
            .policy(&support::session::jwt_route(&key, "5s"))
            .route(None, "/open", backend.addr())
            .file(name, pem.as_bytes())
            .start()
            .await;
        Fleet {
            proxy,
            backend,
            key,
        }
    }

    /// A tungstenite client on `path` (as `subject` when given) and its backend leg.
    async fn open(&self, path: &str, subject: Option<&str>) -> (Ws, Peer) {
        let mut req = self.proxy.ws(path);
        if let Some(sub) = subject {
            let token = self.key.sign(&claims(json!({ "sub": sub })));
            req = req.header("Authorization", &bearer(&token));
        }
        let (ws, _) = req.connect().await.expect("admitted");
        let (_, server) = self.backend.next().await;
        (ws, server)
    }
}

/// The client got exactly `code` and `reason` as its last message, the backend the same (masked).
async fn assert_closed_with(ws: &mut Ws, server: &Peer, code: u16, reason: &'static str) {
    let seen = messages_until_closed(ws).await;
    match seen.as_slice() {
        [Message::Close(Some(f))] => {
            assert_eq!((u16::from(f.code), f.reason.as_str()), (code, reason));
        }
        other => panic!("expected only a Close {code} {reason}, got {other:?}"),
    }
    let b = server.closed("backend").await;
    assert_farewell("backend", &b, Some((code, reason)), true);
}

/// `ws` still carries a message to its backend leg.
async fn assert_alive(ws: &mut Ws, server: &Peer, text: &str) {
    within("send", ws.send(Message::text(text)))
        .await
        .expect("the session is still open");
    server
        .until("the message at the backend", |f| {
            texts(f).iter().any(|t| t == text)
        })
        .await;
}

fn operator_closes(text: &str, route: &str, code: &str) -> Option<f64> {
    let series = format!(
        r#"wsgate_session_closes_total{{route="{route}",code="{code}",closed_by="wsgate"}}"#
    );
    sample(text, &series)
}

#[tokio::test]
async fn closing_a_subject_sends_its_code_and_reason_to_both_legs_of_its_sessions_only() {
    let fleet = Fleet::start().await;
    let admin = Admin::start(&fleet.proxy, None).await;
    let (mut alice, alice_backend) = fleet.open("/chat", Some("alice")).await;
    let (mut bob, bob_backend) = fleet.open("/chat", Some("bob")).await;

    let body = json!({ "subject": "alice", "code": 4000, "reason": "maintenance" });
    assert_eq!(admin.close(&body).await, json!({ "closed": 1 }));
    assert_closed_with(&mut alice, &alice_backend, 4000, "maintenance").await;
    assert_alive(&mut bob, &bob_backend, "bob is still here").await;

    let stats = fleet.proxy.stats();
    eventually("alice's session to be counted and unlisted", || {
        let text = stats.metrics().encode();
        operator_closes(&text, "*/chat", "4000") == Some(1.0) && stats.sessions.len() == 1
    })
    .await;
}

#[tokio::test]
async fn closing_a_route_sends_the_default_1008_to_every_session_on_it() {
    let fleet = Fleet::start().await;
    let admin = Admin::start(&fleet.proxy, None).await;
    let (mut first, first_backend) = fleet.open("/open", None).await;
    let (mut second, second_backend) = fleet.open("/open", None).await;
    let (mut alice, alice_backend) = fleet.open("/chat", Some("alice")).await;

    let body = json!({ "route": "*/open" });
    assert_eq!(admin.close(&body).await, json!({ "closed": 2 }));
    let default = "closed by operator";
    assert_closed_with(&mut first, &first_backend, 1008, default).await;
    assert_closed_with(&mut second, &second_backend, 1008, default).await;
    assert_alive(&mut alice, &alice_backend, "alice is still here").await;

    let stats = fleet.proxy.stats();
    eventually("both sessions to be counted and unlisted", || {
        let text = stats.metrics().encode();
        operator_closes(&text, "*/open", "1008") == Some(2.0) && stats.sessions.len() == 1
    })
    .await;
}
