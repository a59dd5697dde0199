use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http_body_util::BodyExt;

use super::*;
use crate::session::{Entry, Info};

fn open(reg: &Arc<Registry>, subject: Option<&str>, route: &str, client: [u8; 4]) -> Entry {
    reg.register(Info {
        subject: subject.map(Into::into),
        client: IpAddr::from(client),
        route: route.into(),
        backend: "ws://127.0.0.1:9000".into(),
        started: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        expires_at: Some(1_700_000_060),
        key_id: None,
        protocol: crate::session::Protocol::H1,
    })
}

async fn listed(query: Option<&str>, reg: &Registry) -> (StatusCode, String) {
    let answer = list(query, reg);
    let status = answer.status();
    let body = answer.into_body().collect().await.expect("full body");
    (
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    )
}

fn rejected(body: &str) -> String {
    match check(body.as_bytes()) {
        Ok(_) => panic!("{body} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn faulty_close_requests_name_the_problem() {
    assert!(rejected("{").contains("invalid close request"));
    assert!(rejected(r#"{"subject": "a", "bogus": 1}"#).contains("bogus"));
    assert!(rejected(r#"{"code": 1008}"#).contains("no selector"));
    assert!(rejected("{}").contains("no selector"));
    assert!(rejected(r#"{"id": 1, "code": 1006}"#).contains("code: 1006"));
    assert!(rejected(r#"{"id": 1, "code": 70000}"#).contains("invalid close request"));
    assert!(rejected(r#"{"id": "1"}"#).contains("invalid close request"));
    assert!(rejected(r#"{"client": "localhost"}"#).contains("client"));
    assert!(rejected(r#"{"id": 1, "scope": "world"}"#).contains("scope: `world`"));
    let long = format!(r#"{{"id": 1, "reason": "{}"}}"#, "é".repeat(62));
    assert!(rejected(&long).contains("reason: 124 bytes"));
}

#[test]
fn close_defaults_to_the_operator_code_and_text() {
    let (sel, fleet) = check(br#"{"route": "*/chat"}"#).expect("valid");
    assert!(!fleet);
    assert_eq!(
        sel.reason,
        Reason::Operator {
            code: OPERATOR_CODE,
            text: OPERATOR_TEXT.into()
        }
    );
    let (sel, fleet) =
        check(br#"{"id": 3, "code": 4001, "reason": "bye", "scope": "fleet"}"#).expect("valid");
    assert!(fleet);
    assert_eq!(
        sel.reason,
        Reason::Operator {
            code: 4001,
            text: "bye".into()
        }
    );
}

#[test]
fn every_selector_must_match() {
    let reg = Arc::new(Registry::default());
    let a = open(&reg, Some("alice"), "*/chat", [10, 0, 0, 1]);
    let b = open(&reg, Some("alice"), "*/feed", [10, 0, 0, 2]);
    let c = open(&reg, None, "*/chat", [10, 0, 0, 1]);
    let close_with = |body: &str, reg: &Registry| {
        let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
        close_published(&value, reg)
    };
    let n = close_with(r#"{"subject": "alice", "route": "*/feed"}"#, &reg).expect("valid");
    assert_eq!(n, 1);
    assert!(b.handle.requested().is_some());
    assert!(a.handle.requested().is_none());
    let n = close_with(r#"{"client": "10.0.0.1", "route": "*/chat"}"#, &reg).expect("valid");
    assert_eq!(n, 2);
    assert!(a.handle.requested().is_some() && c.handle.requested().is_some());
    // Already asked: not counted again.
    assert_eq!(close_with(r#"{"id": 1}"#, &reg).expect("valid"), 0);
}

#[tokio::test]
async fn list_shows_every_field_and_filters_by_decoded_query() {
    let reg = Arc::new(Registry::default());
    let _a = open(&reg, Some("alice smith"), "*/chat", [10, 0, 0, 1]);
    let _b = open(&reg, None, "*/feed", [10, 0, 0, 2]);
    let (status, body) = listed(None, &reg).await;
    assert_eq!(status, StatusCode::OK);
    let all: Vec<SessionView> = serde_json::from_str(&body).expect("JSON array");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].started, "2023-11-14T22:13:20Z");
    assert_eq!(all[0].expires_at.as_deref(), Some("2023-11-14T22:14:20Z"));
    assert_eq!(all[0].client, "10.0.0.1");
    assert_eq!(all[1].subject, None);
    assert!(body.contains(r#""subject":null"#), "{body}");

    let (_, body) = listed(Some("subject=alice%20smith"), &reg).await;
    let some: Vec<SessionView> = serde_json::from_str(&body).expect("JSON array");
    assert_eq!(some.len(), 1);
    let (_, body) = listed(Some("route=*%2Ffeed"), &reg).await;
    let some: Vec<SessionView> = serde_json::from_str(&body).expect("JSON array");
    assert_eq!(some.iter().map(|s| s.id).collect::<Vec<_>>(), vec![2]);
    let (status, body) = listed(Some("subjet=alice"), &reg).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("subjet"), "{body}");
}
