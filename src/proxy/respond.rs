//! Every answer wsgate gives a client before a tunnel, as an `http::Response` that hyper writes
//! for HTTP/1.1 or HTTP/2 alike: refusals, relayed non-101 answers, and the answer to a verified
//! upgrade (`101` on h1, `200` on an h2 stream). All are rebuilt, never the backend's bytes
//! passed through. Also the gentle close of an h1 connection after its last answer.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::admit::Denial;
use crate::proxy::pass::{Relay, Stop, Upgraded};
use crate::proxy::verify::Verdict;
use crate::wire::{self, end_to_end, is_hop_by_hop};

/// The body of every answer wsgate writes itself: short and whole.
pub type Body = Full<Bytes>;

/// How long closing a connection (close_notify, FIN) may take before it is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering, how long and how much unread client input is drained before closing.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// Fields of a backend answer that wsgate writes itself, or that are framing.
const NOT_RELAYED: &[&str] = &[
    "content-length",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// A refusal, or `503` for a handshake cut short by a shutdown.
pub fn refused(stop: &Stop) -> Response<Body> {
    match stop {
        Stop::Deny(denial) => refusal(denial),
        _ => response(
            StatusCode::SERVICE_UNAVAILABLE,
            HeaderMap::new(),
            Bytes::new(),
        ),
    }
}

/// The answer to a refusal: its status, its fields (challenge, `Retry-After`), plain-text body.
pub fn refusal(denial: &Denial) -> Response<Body> {
    let refusal = denial.refusal;
    let mut fields = HeaderMap::new();
    let mut add = |name: &str, value: &[u8]| wire::append(&mut fields, name, value);
    for (name, value) in refusal.headers() {
        if denial.challenge.is_none() || !name.eq_ignore_ascii_case("www-authenticate") {
            add(name, value.as_bytes());
        }
    }
    if let Some(challenge) = &denial.challenge {
        add("www-authenticate", challenge);
    }
    if let Some(after) = denial.retry_after {
        // Whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3).
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        add("retry-after", secs.max(1).to_string().as_bytes());
    }
    add("content-type", b"text/plain; charset=utf-8");
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    response(
        status,
        fields,
        Bytes::from_static(refusal.body().as_bytes()),
    )
}

/// A backend's final non-101 answer: its status (and its own reason phrase, which hyper writes
/// on h1), its end-to-end fields and its body, read whole within bounds.
pub fn relayed(relay: Relay) -> Response<Body> {
    let mut answer = response(
        relay.status,
        relayed_fields(&relay.headers),
        relay.body.into(),
    );
    if let Some(reason) = relay.reason
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason)
    {
        answer.extensions_mut().insert(reason);
    }
    answer
}

/// The answer to a verified 101: the negotiated subprotocol and extensions and the backend's
/// end-to-end fields; on h1 a `101` with the upgrade fields and the Accept for the client's key,
/// on an h2 stream a `200` without them (RFC 8441 §5).
pub fn switched(up: &Upgraded, h1: bool) -> Response<Body> {
    let mut fields = relayed_fields(&up.headers);
    let Verdict::Upgrade {
        accept,
        protocol,
        extensions,
    } = &up.verdict
    else {
        return response(StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::new());
    };
    let mut add = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            fields.append(name, v);
        }
    };
    // A browser that offered the token's marker fails a handshake that selects none of its
    // offers: the marker is selected towards the client when the backend selected none.
    if let Some(p) = protocol.as_deref().or(up.admission.marker.as_deref()) {
        add(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    if let Some(e) = extensions {
        add(header::SEC_WEBSOCKET_EXTENSIONS, e);
    }
    if !h1 {
        return response(StatusCode::OK, fields, Bytes::new());
    }
    let mut answer = response(
        StatusCode::SWITCHING_PROTOCOLS,
        HeaderMap::new(),
        Bytes::new(),
    );
    let h = answer.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    h.extend(fields);
    answer
}

/// The end-to-end fields of a backend answer that go on to the client.
pub fn relayed_fields(answer: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(answer.len());
    for (name, value) in end_to_end(answer, &[]) {
        if NOT_RELAYED.contains(&name.as_str()) {
            continue;
        }
        // A copy, not a clone: hyper's value shares the backend connection's whole read
        // buffer, and an h2 connection's HPACK table keeps the fields it sent, which would
        // keep one such buffer per stream alive for the connection's life.
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            out.append(name.clone(), copy);
        }
    }
    out
}

/// An h1 answer after which the connection closes (refusals, relayed answers): nothing the
/// client pipelined behind its request may be read as a next request.
pub fn closing(mut answer: Response<Body>) -> Response<Body> {
    (answer.headers_mut()).insert(header::CONNECTION, HeaderValue::from_static("close"));
    answer
}

fn response(status: StatusCode, fields: HeaderMap, body: Bytes) -> Response<Body> {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = status;
    *answer.headers_mut() = fields;
    answer
}

/// An answer on an h2 stream: no connection-specific fields (RFC 9113 §8.2.2), such as the
/// `Upgrade` a 426 names on h1.
pub fn for_h2(mut answer: Response<Body>) -> Response<Body> {
    let fields = answer.headers_mut();
    if fields.keys().any(|n| is_hop_by_hop(n.as_str())) {
        let mut kept = HeaderMap::with_capacity(fields.len());
        for (name, value) in fields.iter() {
            if !is_hop_by_hop(name.as_str()) {
                kept.append(name.clone(), value.clone());
            }
        }
        *fields = kept;
    }
    answer
}

/// Close an h1 connection after its last answer: close_notify and FIN, then read and discard
/// what the client still sends (bounded in time and bytes): closing a socket with unread input
/// makes the kernel send RST, which can destroy the answer before the client has read it
/// (RFC 9112 §9.6).
pub async fn close_gently<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let closed = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
    if !matches!(closed, Ok(Ok(()))) {
        return;
    }
    // On the heap: on the stack it would sit in every connection task's state machine.
    let mut sink = vec![0u8; 4096];
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
