//! A backend's answer to the rebuilt upgrade request, as wsgate reads it: `upstream::h1::send`
//! (hyper's HTTP/1 client with wsgate's bounds) over an in-memory stream whose other end sends
//! the fuzz bytes and closes, then `proxy::verify::check` (RFC 6455 §4.1), then what the
//! verdict leads to: `upstream::h1::read_body` for a relayed answer (chunked bodies, huge chunk
//! sizes, lengths over the bound) or `upstream::h1::upgrade` for a 101 (the stream back from
//! hyper and the bytes behind the answer). Every outcome is an answer or an error, never a
//! panic or a hang; after a 101 not a byte of what followed the head is lost or repeated.
//!
//! Input: `[config] [answer bytes]`. Config bits: 0 offer subprotocols `chat, superchat`,
//! 1 offer `permessage-deflate`, 2 a relay bound of 16 bytes instead of 64 KiB.
#![no_main]

use http_body_util::Empty;
use hyper::Request;
use hyper::body::Bytes;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use wsgate::proxy::verify::{self, Verdict};
use wsgate::upstream::h1;
use wsgate::wire::UpgradeRequest;
use wsgate_fuzz::{HANG, runtime};

/// The key the request carries; its accept is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=` (RFC 6455 §1.3).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `limits.max_request_header_bytes` default: the bound on the answer head.
const MAX_HEAD: usize = 16 * 1024;

fn offered(config: u8) -> UpgradeRequest {
    UpgradeRequest {
        key: KEY.to_owned(),
        protocols: if config & 1 != 0 {
            vec!["chat".into(), "superchat".into()]
        } else {
            vec![]
        },
        extensions: if config & 2 != 0 {
            vec!["permessage-deflate".into()]
        } else {
            vec![]
        },
    }
}

fn request(up: &UpgradeRequest) -> h1::Outgoing {
    let mut b = Request::builder()
        .uri("/chat")
        .header("host", "backend.test")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", &up.key)
        .header("sec-websocket-version", "13");
    if !up.protocols.is_empty() {
        b = b.header("sec-websocket-protocol", up.protocols.join(", "));
    }
    b.body(Empty::<Bytes>::new())
        .expect("a valid fixed request")
}

/// The backend: read the request head (a backend answers a request; hyper refuses an answer
/// that comes before it), send `answer`, close its sending side, then read whatever wsgate
/// sends until the other end is gone.
async fn backend(mut io: DuplexStream, answer: Vec<u8>) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let _ = io.write_all(&answer).await;
    let _ = io.shutdown().await;
    let _ = io.read_to_end(&mut seen).await;
}

async fn exchange(config: u8, answer: &[u8]) {
    let up = offered(config);
    let max_body = if config & 4 != 0 { 16 } else { 64 * 1024 };
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let peer = tokio::spawn(backend(theirs, answer.to_vec()));
    let deadline = Instant::now() + HANG;
    match h1::send(ours, request(&up), MAX_HEAD, deadline).await {
        Err(e) => {
            let _ = h1::refusal_for(&e);
        }
        Ok((answer_head, link)) => match verify::check(&answer_head, &up) {
            Err(bad) => {
                let _ = bad.label();
            }
            Ok(Verdict::Relay) => {
                let (parts, body) = answer_head.into_parts();
                if let Ok(body) = h1::read_body(body, &parts.headers, max_body).await {
                    assert!(body.len() <= max_body, "relayed more than the bound");
                }
                drop(link);
            }
            Ok(verdict) => {
                let _ = verify::deflate(&verdict);
                if let Ok((mut stream, behind)) =
                    h1::upgrade::<DuplexStream>(answer_head, link).await
                {
                    let mut rest = behind;
                    let _ = stream.read_to_end(&mut rest).await;
                    assert!(
                        answer.ends_with(&rest),
                        "bytes behind the 101 lost or repeated"
                    );
                }
            }
        },
    }
    let _ = peer.await;
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, answer)) = data.split_first() else {
        return;
    };
    let done =
        runtime().block_on(async { tokio::time::timeout(HANG, exchange(config, answer)).await });
    assert!(done.is_ok(), "the exchange hung");
});
