//! The close matrix for frames that break a rule (#9): every RFC 6455 §5 breach and size limit,
//! from either peer, ends the session with 1002 `protocol error` (or 1009 `message too big`) to
//! the sender and 1001 `going away` to the other leg; the bad frame and whatever followed it never
//! reach the other leg, and `wsgate_frame_violations_total{kind}` names the rule. RSV1 passes
//! only on the first frame of a data message, and only when the backend's 101 negotiated
//! permessage-deflate (RFC 7692 §6).

mod support;

use support::frames::{close, frame};
use support::session::{Spec, sample, texts};

const AWAY: (u16, &str) = (1001, "going away");
const LIMITS: &str = "session: { max_message: 1KiB, max_frame: 512B }";

/// One breach: who sends `bytes` (followed by a valid text `after`), which rule it breaks, and
/// the data frames the other leg still gets before the Close.
struct Case {
    from_client: bool,
    bytes: Vec<u8>,
    kind: &'static str,
    forwarded: Vec<String>,
}

fn client(kind: &'static str, bytes: Vec<u8>) -> Case {
    Case {
        from_client: true,
        bytes,
        kind,
        forwarded: Vec::new(),
    }
}

fn backend(kind: &'static str, bytes: Vec<u8>) -> Case {
    Case {
        from_client: false,
        ..client(kind, bytes)
    }
}

/// Run `case` in a fresh session under [`LIMITS`] and check both legs and the series.
async fn breach(case: Case) {
    let rig = Spec::new(LIMITS).start().await;
    let masked = case.from_client;
    let mut bytes = case.bytes.clone();
    bytes.extend(frame(0x81, b"after", masked));
    let size = case.kind.ends_with("too_big");
    let to_sender = if size {
        (1009, "message too big")
    } else {
        (1002, "protocol error")
    };
    let [c, b] = if case.from_client {
        rig.client.send(bytes);
        rig.ends(Some(to_sender), Some(AWAY)).await
    } else {
        rig.server.send(bytes);
        rig.ends(Some(AWAY), Some(to_sender)).await
    };
    let (what, other) = if case.from_client {
        ("backend", b)
    } else {
        ("client", c)
    };
    assert_eq!(
        texts(&other),
        case.forwarded,
        "{} ({}): what the {what} got",
        case.kind,
        if case.from_client {
            "client"
        } else {
            "backend"
        }
    );
    let client_code = if case.from_client { to_sender.0 } else { 1001 };
    let text = rig.counted(&client_code.to_string(), "wsgate").await;
    let series = format!(
        r#"wsgate_frame_violations_total{{route="*/s",kind="{}"}}"#,
        case.kind
    );
    assert_eq!(sample(&text, &series), Some(1.0), "{}:\n{text}", case.kind);
}

#[tokio::test]
async fn client_frames_that_break_rfc6455_get_1002_and_the_backend_1001() {
    let cases = [
        client("masking", frame(0x81, b"unmasked", false)),
        client("rsv", frame(0xc1, b"rsv1", true)),
        client("rsv", frame(0xa1, b"rsv2", true)),
        client("opcode", frame(0x83, b"reserved data", true)),
        client("opcode", frame(0x8b, b"reserved control", true)),
        client("control", frame(0x89, &[b'p'; 126], true)),
        client("control", frame(0x09, b"fragmented ping", true)),
        client("fragmentation", frame(0x80, b"no start", true)),
        Case {
            forwarded: vec!["start".into()],
            ..client(
                "fragmentation",
                [frame(0x01, b"start", true), frame(0x81, b"new", true)].concat(),
            )
        },
    ];
    for case in cases {
        breach(case).await;
    }
}

#[tokio::test]
async fn client_closes_with_codes_that_may_not_be_sent_get_1002() {
    for code in [1005, 1006, 1015, 0, 999] {
        breach(client("close_frame", close(code, "", true))).await;
    }
}

#[tokio::test]
async fn backend_frames_that_break_rfc6455_get_1002_and_the_client_1001() {
    let cases = [
        backend("masking", frame(0x81, b"masked", true)),
        backend("rsv", frame(0xc2, b"rsv1", false)),
        backend("opcode", frame(0x8b, b"reserved control", false)),
        backend("control", frame(0x8a, &[b'p'; 126], false)),
        backend("fragmentation", frame(0x80, b"no start", false)),
        backend("close_frame", close(1006, "", false)),
    ];
    for case in cases {
        breach(case).await;
    }
}

#[tokio::test]
async fn frames_and_messages_over_the_limits_get_1009_from_either_side() {
    let fragments = |masked| {
        let part = [b'x'; 400];
        [
            frame(0x01, &part, masked),
            frame(0x00, &part, masked),
            frame(0x80, &part, masked),
        ]
        .concat()
    };
    let two = vec!["x".repeat(400); 2];
    let cases = [
        client("frame_too_big", frame(0x81, &[b'x'; 513], true)),
        backend("frame_too_big", frame(0x82, &[b'x'; 513], false)),
        Case {
            forwarded: two.clone(),
            ..client("message_too_big", fragments(true))
        },
        Case {
            forwarded: two,
            ..backend("message_too_big", fragments(false))
        },
    ];
    for case in cases {
        breach(case).await;
    }
}

#[tokio::test]
async fn rsv1_passes_on_first_frames_when_the_backend_negotiated_deflate() {
    let rig = Spec::new("")
        .header("Sec-WebSocket-Extensions", "permessage-deflate")
        .answer_line("Sec-WebSocket-Extensions: permessage-deflate")
        .start()
        .await;
    assert!(
        rig.head.contains("permessage-deflate"),
        "the client's offer reaches the backend: {}",
        rig.head
    );
    // Payloads are opaque to the proxy: any bytes stand for compressed data.
    let up = [frame(0xc1, b"deflated", true), frame(0x42, b"frag", true)].concat();
    rig.client.send([up, frame(0x80, b"ment", true)].concat());
    rig.server.send(frame(0xc2, b"deflated down", false));
    let b = rig
        .server
        .until("three frames at the backend", |f| f.len() == 3)
        .await;
    let firsts: Vec<u8> = b.iter().map(|f| f.first).collect();
    assert_eq!(firsts, [0xc1, 0x42, 0x80], "RSV1 frames pass unchanged");
    let c = rig
        .client
        .until("a frame at the client", |f| !f.is_empty())
        .await;
    assert_eq!(
        (c[0].first, &c[0].payload[..]),
        (0xc2, &b"deflated down"[..])
    );

    // RSV1 on a continuation frame is still a breach (RFC 7692 §6.1).
    rig.client
        .send([frame(0x41, b"a", true), frame(0xc0, b"b", true)].concat());
    let [_, b] = rig.ends(Some((1002, "protocol error")), Some(AWAY)).await;
    assert_eq!(texts(&b).last().map(String::as_str), Some("a"));
    let text = rig.counted("1002", "wsgate").await;
    let series = r#"wsgate_frame_violations_total{route="*/s",kind="rsv"}"#;
    assert_eq!(sample(&text, series), Some(1.0), "{text}");
}

#[tokio::test]
async fn rsv1_is_a_protocol_error_when_the_backend_did_not_negotiate_deflate() {
    let rig = Spec::new("")
        .header("Sec-WebSocket-Extensions", "permessage-deflate")
        .start()
        .await;
    rig.client.send(frame(0xc1, b"deflated", true));
    let [_, b] = rig.ends(Some((1002, "protocol error")), Some(AWAY)).await;
    assert!(texts(&b).is_empty(), "{b:?}");
    rig.counted("1002", "wsgate").await;
}

#[tokio::test]
async fn with_check_frames_off_rfc6455_breaches_pass_but_size_limits_hold() {
    let rig = Spec::new("session: { check_frames: false, max_frame: 512B }")
        .start()
        .await;
    rig.client.send(frame(0x81, b"unmasked", false));
    rig.client.send(frame(0xc1, b"rsv1", true));
    rig.server.send(frame(0x83, b"reserved", false));
    rig.server
        .until("both client frames", |f| f.len() == 2)
        .await;
    rig.client
        .until("the backend frame", |f| f.len() == 1)
        .await;
    rig.client.send(frame(0x82, &[b'x'; 513], true));
    let [c, b] = rig.ends(Some((1009, "message too big")), Some(AWAY)).await;
    assert_eq!(texts(&b), ["unmasked", "rsv1"]);
    assert_eq!(texts(&c), ["reserved"]);
    rig.counted("1009", "wsgate").await;
}
