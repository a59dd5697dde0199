//! The admin API's request inputs: the `POST /sessions/close` body as
//! `admin::sessions::check` reads it (JSON, selectors, client address, Close code and reason,
//! scope), the same request as another instance receives it (`close_published`, against a
//! registry holding one session: what one instance accepted, the others accept), and the `GET /sessions` query string (`sessions::list`).
//! Never a panic; every answer is JSON.
//!
//! Input: first byte even: the rest is a close body; odd: the rest is a query string.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use wsgate::admin::sessions;
use wsgate::session::{Info, Registry};

fn registry() -> Arc<Registry> {
    Arc::new(Registry::default())
}

fn info() -> Info {
    Info {
        subject: Some("alice".into()),
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: "chat".into(),
        backend: "ws://127.0.0.1:9000".into(),
        started: SystemTime::UNIX_EPOCH,
        expires_at: Some(4_102_444_800),
        key_id: None,
        protocol: wsgate::session::Protocol::H1,
    }
}

fn body(bytes: &[u8]) {
    let checked = sessions::check(bytes);
    let reg = registry();
    let _entry = reg.register(info());
    // What another instance receives: the checked request as JSON, without `scope` (as
    // `sessions::close` publishes it). A request this instance accepted is accepted there too.
    if checked.is_ok() {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            fields.remove("scope");
        }
        let published = sessions::close_published(&value, &reg);
        assert!(
            published.is_ok(),
            "a checked request refused by the fleet: {published:?}"
        );
        assert!(published.is_ok_and(|n| n <= 1));
    }
}

fn query(bytes: &[u8]) {
    let Ok(q) = std::str::from_utf8(bytes) else {
        return;
    };
    let reg = registry();
    let _entry = reg.register(info());
    let answer = sessions::list(Some(q), &reg);
    let ct = answer.headers().get("content-type");
    assert_eq!(ct.map(|v| v.as_bytes()), Some(&b"application/json"[..]));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        body(rest);
    } else {
        query(rest);
    }
});
