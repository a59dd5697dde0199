//! The probes of the active health checks: a TCP connect (plus the TLS handshake for `wss://`),
//! or an RFC 6455 opening handshake whose `Sec-WebSocket-Accept` is verified, then a masked
//! Close 1000 and a bounded wait for the backend's Close or end of stream. Every probe runs
//! within the check's `timeout`; the error string says what failed (logged at debug, and with
//! the state change). The handshake runs on hyper's HTTP/1 client (`upstream::h1`), as the
//! data path's does. Does not own the schedule or the state (`super`).

use http_body_util::Empty;
use hyper::{Request, StatusCode, header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Target;
use crate::config::{HealthCheck, HealthKind};
use crate::upstream::{h1, tls};
use crate::wire::Fields;
use crate::wire::key::{accept_for, new_key};

/// Bound on the check's answer head.
const MAX_ANSWER_HEAD: usize = 16 * 1024;
/// Bound on what the backend may send after the 101 before its Close (a greeting is fine).
const MAX_BEFORE_CLOSE: usize = 64 * 1024;

/// One check of `target` within `check.timeout`; the error says what failed.
pub(super) async fn probe(target: &Target, check: &HealthCheck) -> Result<(), String> {
    let deadline = Instant::now() + check.timeout;
    let work = async {
        let mut tcp = TcpStream::connect(target.authority.as_str())
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if let Some(version) = target.proxy {
            // The check's own addresses: the backend sees a well-formed header from wsgate.
            let (local, peer) = (tcp.local_addr(), tcp.peer_addr());
            let (local, peer) = local
                .and_then(|l| peer.map(|p| (l, p)))
                .map_err(|e| format!("addresses: {e}"))?;
            let header = crate::upstream::proxy_out::header(version, local, peer);
            tcp.write_all(&header)
                .await
                .map_err(|e| format!("PROXY header: {e}"))?;
        }
        match &target.tls {
            None => after_connect(tcp, target, &check.kind, deadline).await,
            Some(connector) => {
                let stream = tls::handshake(connector, tcp, &target.host, check.timeout).await?;
                after_connect(stream, target, &check.kind, deadline).await
            }
        }
    };
    match tokio::time::timeout(check.timeout, work).await {
        Err(_) => Err(format!("timeout after {:?}", check.timeout)),
        Ok(outcome) => outcome,
    }
}

async fn after_connect<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    mut stream: S,
    target: &Target,
    kind: &HealthKind,
    deadline: Instant,
) -> Result<(), String> {
    match kind {
        HealthKind::Tcp => {
            // A polite close (TLS close_notify); the connect or handshake was the check.
            let _ = stream.shutdown().await;
            Ok(())
        }
        HealthKind::WebSocket(path) => {
            websocket(stream, path, &host_header(target), deadline).await
        }
    }
}

/// RFC 6455 §4.1 opening handshake to `path`, the answer checked like a client would, then a
/// masked Close 1000 (§5.5.1) and a wait for the backend's Close or end of stream.
async fn websocket<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    stream: S,
    path: &str,
    host: &str,
    deadline: Instant,
) -> Result<(), String> {
    let key = new_key().ok_or("no randomness for the check")?;
    let request = Request::get(path)
        .header(header::HOST, host)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_KEY, key.as_str())
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::USER_AGENT, "wsgate-health")
        .body(Empty::new())
        .map_err(|e| format!("request: {e}"))?;
    let (answer, link) = h1::send(stream, request, MAX_ANSWER_HEAD, deadline)
        .await
        .map_err(|e| format!("answer: {}: {e}", h1::refusal_for(&e).reason()))?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(format!(
            "status {} instead of 101",
            answer.status().as_u16()
        ));
    }
    let headers = answer.headers();
    if !headers.has_token("upgrade", "websocket") {
        return Err("101 without Upgrade: websocket".to_owned());
    }
    if !headers.has_token("connection", "upgrade") {
        return Err("101 without Connection: upgrade".to_owned());
    }
    if headers.single("sec-websocket-accept").ok() != Some(accept_for(&key).as_bytes()) {
        return Err("wrong or missing Sec-WebSocket-Accept".to_owned());
    }
    let (mut stream, behind) = h1::upgrade::<S>(answer, link)
        .await
        .map_err(|r| format!("upgrade: {}", r.reason()))?;
    let frame = close_frame(random::<4>()?);
    (stream.write_all(&frame).await).map_err(|e| format!("write close: {e}"))?;
    wait_close(&mut stream, behind).await
}

/// A client Close frame with status 1000, masked with `mask` (RFC 6455 §5.2, §5.3, §7.4.1).
fn close_frame(mask: [u8; 4]) -> [u8; 8] {
    let [hi, lo] = 1000u16.to_be_bytes();
    [
        0x88, // FIN + opcode 0x8 (Close)
        0x82, // MASK + payload length 2
        mask[0],
        mask[1],
        mask[2],
        mask[3],
        hi ^ mask[0],
        lo ^ mask[1],
    ]
}

/// Read frames (`buf` holds what came with the head) until a Close frame or end of stream;
/// other frames are skipped, up to [`MAX_BEFORE_CLOSE`] bytes in all.
async fn wait_close<S: AsyncRead + Unpin>(stream: &mut S, mut buf: Vec<u8>) -> Result<(), String> {
    let mut at = 0;
    loop {
        if let Some((opcode, head, payload)) = buf.get(at..).and_then(frame_header) {
            if opcode == 0x8 {
                return Ok(());
            }
            let whole = (head as u64).saturating_add(payload);
            if whole > MAX_BEFORE_CLOSE as u64 {
                return Err("oversized frame instead of Close".to_owned());
            }
            // `whole` fits in usize: it is at most MAX_BEFORE_CLOSE.
            if buf.len() - at >= whole as usize {
                at += whole as usize;
                continue;
            }
        }
        if buf.len() > MAX_BEFORE_CLOSE {
            return Err("too much data instead of Close".to_owned());
        }
        buf.reserve(4096);
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("read after Close: {e}")),
        }
    }
}

/// The header of the frame at the start of `b`: opcode, header length and payload length;
/// `None` while incomplete.
fn frame_header(b: &[u8]) -> Option<(u8, usize, u64)> {
    let (b0, b1) = (*b.first()?, *b.get(1)?);
    let (payload, mut head) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])), 4),
        127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    if b1 & 0x80 != 0 {
        head += 4;
    }
    (b.len() >= head).then_some((b0 & 0x0f, head, payload))
}

/// `Host` for the check: the verification name with the port we connect to.
fn host_header(target: &Target) -> String {
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    match target.authority.rsplit_once(':') {
        Some((_, port)) => format!("{host}:{port}"),
        None => host,
    }
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness for the check".to_owned())?;
    Ok(bytes)
}

/// Uniform in [0, 1); 0 when the system has no randomness (then checks just do not jitter).
pub(super) fn random_fraction() -> f64 {
    let bytes = random::<4>().unwrap_or_default();
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::health::tests::target;

    #[test]
    fn close_frame_is_masked_1000() {
        let frame = close_frame([1, 2, 3, 4]);
        assert_eq!(frame[..2], [0x88, 0x82]);
        assert_eq!([frame[6] ^ 1, frame[7] ^ 2], [0x03, 0xE8]);
        assert_eq!(frame_header(&frame), Some((0x8, 6, 2)));
        assert_eq!(
            frame_header(&[0x81, 126, 0x01]),
            None,
            "incomplete extended length"
        );
        assert_eq!(frame_header(&[0x82, 126, 0x01, 0x00]), Some((0x2, 4, 256)));
    }

    #[test]
    fn host_header_keeps_the_port() {
        let mut t = target("127.0.0.1:8443".parse().expect("addr"), None);
        assert_eq!(host_header(&t), "localhost:8443");
        t.host = "::1".to_owned();
        t.authority = "[::1]:9000".to_owned();
        assert_eq!(host_header(&t), "[::1]:9000");
    }
}
