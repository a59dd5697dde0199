//! Everything wsgate writes to the client before the tunnel: refusals, relayed non-101 answers
//! and the 101 itself. All three are rebuilt heads, never the backend's bytes passed through.

use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::admit::Denial;
use crate::proxy::head::is_hop_by_hop;
use crate::proxy::verify::{self, Verdict};

/// How long writing an answer to a client may take before the connection is just dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering, how long and how much unread client input is drained before closing.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// Fields of a backend answer that are about the backend connection, not the message
/// (RFC 9110 §7.6.1), plus the framing and the fields wsgate writes itself.
const NOT_RELAYED: &[&str] = &[
    "content-length",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// The answer to a refusal, whatever the protocol: status, fields in order, plain-text body.
/// `refuse` writes it as HTTP/1.1; an h2 stream answers it as a response (`proxy::h2`).
pub fn refusal(denial: &Denial) -> (u16, Vec<(&'static str, Vec<u8>)>, &'static str) {
    let refusal = denial.refusal;
    let mut fields: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for (name, value) in refusal.headers() {
        if denial.challenge.is_some() && name.eq_ignore_ascii_case("www-authenticate") {
            continue;
        }
        fields.push((name, value.as_bytes().to_vec()));
    }
    if let Some(challenge) = &denial.challenge {
        fields.push(("WWW-Authenticate", challenge.clone()));
    }
    if let Some(after) = denial.retry_after {
        // Whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3).
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        fields.push(("Retry-After", secs.max(1).to_string().into_bytes()));
    }
    fields.push(("Content-Type", b"text/plain; charset=utf-8".to_vec()));
    (refusal.status(), fields, refusal.body())
}

/// Write the answer for a refusal and close the connection (best effort, bounded in time).
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, denial: &Denial) {
    let (status, fields, body) = refusal(denial);
    let mut out = Vec::with_capacity(256);
    status_line(&mut out, status, reason_phrase(status));
    for (name, value) in &fields {
        field(&mut out, name, value);
    }
    finish(&mut out, body.as_bytes());
    send_and_close(stream, &out).await;
}

/// Relay a final non-101 answer: its status (with the backend's reason phrase when it sent one
/// of its own), its end-to-end fields, the decoded body with a Content-Length, and
/// `Connection: close`.
pub async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    status: StatusCode,
    reason: Option<&[u8]>,
    headers: &HeaderMap,
    body: &[u8],
) {
    let mut out = Vec::with_capacity(512 + body.len());
    let own = reason.and_then(|r| std::str::from_utf8(r).ok());
    let reason = own
        .or(status.canonical_reason())
        .unwrap_or_else(|| reason_phrase(status.as_u16()));
    status_line(&mut out, status.as_u16(), reason);
    relay_fields(&mut out, headers);
    finish(&mut out, body);
    send_and_close(stream, &out).await;
}

/// The 101 sent to the client after the backend's answer passed `verify`.
/// `marker`: the subprotocol a browser offered to carry its token; selected towards the client
/// when the backend selected none (a browser fails a handshake that selects none of its offers).
pub fn switching_protocols(answer: &HeaderMap, verdict: &Verdict, marker: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    status_line(&mut out, 101, "Switching Protocols");
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    if let Verdict::Upgrade {
        accept,
        protocol,
        extensions,
    } = verdict
    {
        field(&mut out, "Sec-WebSocket-Accept", accept.as_bytes());
        if let Some(p) = protocol.as_deref().or(marker) {
            field(&mut out, "Sec-WebSocket-Protocol", p.as_bytes());
        }
        if let Some(e) = extensions {
            field(&mut out, "Sec-WebSocket-Extensions", e.as_bytes());
        }
    }
    relay_fields(&mut out, answer);
    out.extend_from_slice(b"\r\n");
    out
}

/// The answer's end-to-end fields, every line of each, names as hyper holds them (lower case).
fn relay_fields(out: &mut Vec<u8>, answer: &HeaderMap) {
    for (name, value) in relayed(answer) {
        field(out, name.as_str(), value.as_bytes());
    }
}

/// The fields of a backend answer that go on to the client: none of the hop-by-hop ones, none
/// that its `Connection` names, no framing and none of the fields wsgate writes itself.
pub fn relayed(answer: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    let named: Vec<String> = verify::tokens(answer, "connection")
        .map(str::to_ascii_lowercase)
        .collect();
    answer.iter().filter(move |(name, _)| {
        let lower = name.as_str();
        !(is_hop_by_hop(lower) || NOT_RELAYED.contains(&lower) || named.iter().any(|n| n == lower))
    })
}

fn status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn finish(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

async fn send_and_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(bytes).await?;
        stream.shutdown().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        linger(stream).await;
    }
}

/// Read and discard what the client still sends (bounded in time and bytes) before closing:
/// closing a socket with unread input makes the kernel send RST, which can destroy the answer
/// before the client has read it (RFC 9112 §9.6).
async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// RFC 9110 §15 reason phrases for the statuses wsgate writes itself.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
