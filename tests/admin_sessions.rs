//! The admin session API against a real proxy with live tunnels: `GET /sessions` lists them with
//! their identity and filters by subject and route, `POST /sessions/close` asks exactly the
//! sessions its selectors pick (and nothing on a bad body), the bearer token guards both while
//! `/metrics` and `/healthz` stay open, and `wsgate sessions list|close` prints what the API says.
//!
//! A close request is checked on the session handle (`requested()`); that the client then gets a
//! Close frame belongs to the tunnel's close tests.

mod support;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::admin::{Admin, wsgate_sessions};
use support::tokens::{SigningKey, claims, connect_with, jwt_policy};
use support::*;
use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use wsgate::admin;
use wsgate::session::Reason;

const TOKEN: &str = "operator-s3cret";
const CHAT: &str = "*/chat";
const ECHO: &str = "*/echo/";

/// Requests the tests make with the token.
trait WithToken {
    async fn list(&self, query: &str) -> Vec<Value>;
    async fn close(&self, body: &str) -> (u16, Value);
}

impl WithToken for Admin {
    /// `GET /sessions` with the token: the listed sessions.
    async fn list(&self, query: &str) -> Vec<Value> {
        let answer = self
            .send("GET", &format!("/sessions{query}"), Some(TOKEN), "")
            .await;
        assert_eq!(answer.status, 200, "{answer:#?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        match serde_json::from_slice(&answer.body) {
            Ok(Value::Array(all)) => all,
            other => panic!("not a JSON array: {other:?}"),
        }
    }

    /// `POST /sessions/close` with the token and `body`: the status and JSON answer.
    async fn close(&self, body: &str) -> (u16, Value) {
        let answer = self
            .send("POST", "/sessions/close", Some(TOKEN), body)
            .await;
        let json = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {answer:#?}"));
        (answer.status, json)
    }
}

/// A proxy with a JWT route `/chat` and an open route `/echo/` to one echo backend, with
/// tunnels for alice and bob on `/chat` and an anonymous one on `/echo/`.
async fn proxy_with_three_tunnels() -> (TestProxy, EchoBackend, Vec<Ws>) {
    let backend = EchoBackend::start().await;
    let key = SigningKey::new(Algorithm::ES256);
    let (name, pem) = key.pem_file();
    let proxy = TestProxy::builder()
        .route(None, "/chat", backend.addr())
        .policy(&jwt_policy(&key.pem_entry(), "", ""))
        .route(None, "/echo/", backend.addr())
        .file(name, pem.as_bytes())
        .start()
        .await;
    let mut tunnels = Vec::new();
    for who in ["alice", "bob"] {
        let token = key.sign(&claims(json!({ "sub": who })));
        tunnels.push(connect_with(&proxy, &token).await);
    }
    let mut anon = proxy.ws_connect("/echo/").await;
    support::tokens::assert_echoes(&mut anon).await;
    tunnels.push(anon);
    (proxy, backend, tunnels)
}

fn field<'v>(session: &'v Value, name: &str) -> &'v Value {
    session
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {session}"))
}

fn subjects(sessions: &[Value]) -> Vec<&str> {
    sessions
        .iter()
        .map(|s| field(s, "subject").as_str().unwrap_or("-"))
        .collect()
}

fn nothing_requested(proxy: &TestProxy) -> bool {
    let all = proxy.stats().sessions.snapshot();
    all.iter().all(|h| h.requested().is_none())
}

#[tokio::test]
async fn sessions_are_listed_with_their_identity_and_filtered() {
    let (proxy, backend, _tunnels) = proxy_with_three_tunnels().await;
    let admin = Admin::start(&proxy, Some(TOKEN)).await;
    let all = admin.list("").await;
    assert_eq!(subjects(&all), ["alice", "bob", "-"]);
    let backend_url = format!("ws://{}", backend.addr());
    for (s, route) in all.iter().zip([CHAT, CHAT, ECHO]) {
        assert_eq!(field(s, "route"), route, "{s}");
        assert_eq!(field(s, "client"), "127.0.0.1", "{s}");
        assert_eq!(field(s, "backend"), backend_url.as_str(), "{s}");
        assert_eq!(field(s, "protocol"), "h1", "{s}");
        let started = field(s, "started").as_str().expect("started is text");
        assert!(started.len() == 20 && started.ends_with('Z'), "{s}");
        assert!(field(s, "id").is_u64(), "{s}");
        for counter in ["bytes_to_backend", "bytes_to_client"] {
            assert!(field(s, counter).is_u64(), "{s}");
        }
        for counter in ["messages_to_backend", "messages_to_client"] {
            assert!(field(s, counter).is_u64(), "{s}");
        }
    }
    assert!(field(&all[0], "expires_at").is_string(), "{}", all[0]);
    assert!(field(&all[2], "expires_at").is_null(), "{}", all[2]);

    assert_eq!(subjects(&admin.list("?subject=bob").await), ["bob"]);
    assert_eq!(
        subjects(&admin.list("?route=*%2Fchat").await),
        ["alice", "bob"]
    );
    assert_eq!(subjects(&admin.list("?route=*/echo/").await), ["-"]);
    assert!(admin.list("?subject=alice&route=*/echo/").await.is_empty());
    let typo = admin
        .send("GET", "/sessions?subjet=bob", Some(TOKEN), "")
        .await;
    assert_eq!(typo.status, 400);
    assert!(typo.body_text().contains("subjet"), "{typo:#?}");
}

#[tokio::test]
async fn close_asks_exactly_the_selected_sessions() {
    let (proxy, _backend, _tunnels) = proxy_with_three_tunnels().await;
    let admin = Admin::start(&proxy, Some(TOKEN)).await;
    let handles = proxy.stats().sessions.snapshot();
    assert_eq!(handles.len(), 3);

    for (body, names) in [
        ("{", "invalid close request"),
        ("{}", "no selector"),
        (r#"{"code": 1008}"#, "no selector"),
        (r#"{"subject": "alice", "sub": "bob"}"#, "sub"),
        (r#"{"subject": "alice", "code": 1006}"#, "code"),
        (r#"{"subject": "alice", "client": "nowhere"}"#, "client"),
    ] {
        let (status, answer) = admin.close(body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{body}: {answer}");
    }
    let long = json!({ "subject": "alice", "reason": "x".repeat(124) }).to_string();
    assert_eq!(admin.close(&long).await.0, 400);
    assert!(nothing_requested(&proxy), "a bad request closed something");

    // Selectors are ANDed: alice is not on /echo/, the anonymous session is not from 127.0.0.2.
    let (status, answer) = admin
        .close(r#"{"subject": "alice", "route": "*/echo/"}"#)
        .await;
    assert_eq!((status, answer), (200, json!({ "closed": 0 })));
    let anon_id = handles[2].id;
    let body = json!({ "id": anon_id, "client": "127.0.0.2" }).to_string();
    assert_eq!(admin.close(&body).await.1, json!({ "closed": 0 }));
    assert!(nothing_requested(&proxy));

    let (status, answer) = admin.close(r#"{"subject": "alice"}"#).await;
    assert_eq!((status, answer), (200, json!({ "closed": 1 })));
    let operator = |code: u16, text: &str| Reason::Operator {
        code,
        text: text.into(),
    };
    assert_eq!(
        handles[0].requested(),
        Some(operator(1008, "closed by operator"))
    );
    // alice was already asked: only bob counts.
    let body = r#"{"route": "*/chat", "code": 4000, "reason": "maintenance"}"#;
    assert_eq!(admin.close(body).await.1, json!({ "closed": 1 }));
    assert_eq!(handles[1].requested(), Some(operator(4000, "maintenance")));
    assert_eq!(handles[2].requested(), None);
}

#[tokio::test]
async fn the_token_guards_sessions_but_not_metrics_or_health() {
    let (proxy, _backend, _tunnels) = proxy_with_three_tunnels().await;
    let admin = Admin::start(&proxy, Some(TOKEN)).await;
    for bearer in [None, Some("wrong"), Some("operator-s3cre"), Some("")] {
        let list = admin.send("GET", "/sessions", bearer, "").await;
        assert_eq!(list.status, 401, "{bearer:?}: {list:#?}");
        assert_eq!(list.header("www-authenticate"), Some("Bearer"));
        let body = r#"{"route": "*/chat"}"#;
        let close = admin.send("POST", "/sessions/close", bearer, body).await;
        assert_eq!(close.status, 401, "{bearer:?}: {close:#?}");
    }
    assert!(nothing_requested(&proxy));
    assert_eq!(admin.send("GET", "/metrics", None, "").await.status, 200);
    assert_eq!(admin.send("GET", "/healthz", None, "").await.status, 200);
    assert_eq!(admin.list("").await.len(), 3);

    let wrong = admin.send("GET", "/sessions/close", Some(TOKEN), "").await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("POST")));
    let wrong = admin.send("POST", "/sessions", Some(TOKEN), "").await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("GET")));

    // Without a configured token the session routes are open.
    let open = Admin::start(&proxy, None).await;
    assert_eq!(open.send("GET", "/sessions", None, "").await.status, 200);
}

#[tokio::test]
async fn the_cli_lists_and_closes_through_the_admin_endpoint() {
    let (proxy, _backend, _tunnels) = proxy_with_three_tunnels().await;
    let admin = Admin::start(&proxy, Some(TOKEN)).await;
    let url = admin.url();

    let out = wsgate_sessions(&["list", "--admin", &url], Some(TOKEN)).await;
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("ID "), "{table}");
    for (line, who) in lines[1..].iter().zip(["alice", "bob", "-"]) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[1..3], [who, "127.0.0.1"], "{table}");
    }
    assert!(
        lines[1].contains(CHAT) && lines[3].contains(ECHO),
        "{table}"
    );

    let args = ["list", "--admin", &url, "--subject", "bob"];
    let out = wsgate_sessions(&args, Some(TOKEN)).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("bob") && !table.contains("alice"), "{table}");

    let out = wsgate_sessions(&["list", "--admin", &url], None).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );

    let args = ["close", "--admin", &url, "--route", ECHO, "--code", "4001"];
    let out = wsgate_sessions(&args, Some(TOKEN)).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "closed 1 session\n");
    let handles = proxy.stats().sessions.snapshot();
    let anon = handles
        .iter()
        .find(|h| &*h.info.route == ECHO)
        .expect("listed");
    assert!(matches!(
        anon.requested(),
        Some(Reason::Operator { code: 4001, .. })
    ));

    let out = wsgate_sessions(&["close", "--admin", &url], Some(TOKEN)).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("400") && err.contains("no selector"), "{err}");
}

#[tokio::test]
async fn oversized_bodies_and_slow_heads_are_cut_off() {
    let (proxy, _backend, _tunnels) = proxy_with_three_tunnels().await;
    let admin = Admin::start(&proxy, Some(TOKEN)).await;
    // Refused on the declared length alone, before any body byte is read.
    let tcp = within("admin connect", TcpStream::connect(admin.addr)).await;
    let mut conn = MaybeTlsStream::Plain(tcp.expect("connect to admin"));
    let head = format!(
        "POST /sessions/close HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\n\r\n",
        admin::sessions::MAX_BODY_BYTES + 1
    );
    let answer = exchange(&mut conn, head.as_bytes()).await;
    assert_eq!(answer.status, 413, "{answer:#?}");
    assert!(nothing_requested(&proxy));

    // A head that never ends is closed unanswered after the head timeout.
    let tcp = within("admin connect", TcpStream::connect(admin.addr)).await;
    let mut conn = tcp.expect("connect to admin");
    let began = tokio::time::Instant::now();
    let partial = b"GET /sessions HTTP/1.1\r\nHost: admin\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut conn, partial)
        .await
        .expect("write");
    let rest = read_until_closed(&mut conn).await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(began.elapsed() >= admin::HEAD_TIMEOUT.mul_f32(0.9));
}
