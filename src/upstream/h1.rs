//! The HTTP/1.1 exchange on a connected backend stream, on hyper's client connection: send one
//! request (no body), wait for the answer head within a size bound, then either read a non-101
//! body within a size bound or take the stream back after a 101 with the bytes that came behind it.
//!
//! Owns: the hyper connection settings (head size, field count, header case), the connection task
//! (spawned, bounded by the exchange's deadline, aborted when the [`Link`] is dropped), surfacing
//! an interim 1xx answer (hyper skips them; RFC 6455 has no use for one), and turning hyper's
//! errors into refusals. Does not own connecting, TLS, PROXY headers or failover (`connect`,
//! `super`), judging the answer (`proxy::verify`) or writing anything to the client (`respond`).

use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::{HeaderMap, Request, Response, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::Refusal;

/// The request sent to a backend: a head, no body.
pub type Outgoing = Request<Empty<Bytes>>;

/// A backend's answer head. The body is `None` for an interim (1xx) answer, which hyper reports
/// on the side; the extensions hold hyper's pending upgrade for a 101.
pub type Answer = Response<Option<Incoming>>;

/// Bound on the number of fields in an answer head.
const MAX_ANSWER_FIELDS: usize = 100;
/// hyper refuses a read buffer bound below this (its initial buffer size).
const HYPER_MIN_BUF: usize = 8 * 1024;

/// The task driving one hyper connection. Dropping it aborts the task, which closes the stream
/// (unless a 101 already handed the stream over).
#[derive(Debug)]
pub struct Link(JoinHandle<()>);

impl Drop for Link {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Send `request` on `stream` and wait for the answer head (a final answer, or the first interim
/// 1xx). The head may take at most `max_head` bytes (never less than hyper's 8 KiB minimum); the
/// connection task cannot outlive `deadline`. The caller bounds the wait itself.
pub async fn send<S>(
    stream: S,
    mut request: Outgoing,
    max_head: usize,
    deadline: Instant,
) -> Result<(Answer, Link), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = http1::Builder::new()
        .title_case_headers(true)
        .max_headers(MAX_ANSWER_FIELDS)
        .max_buf_size(max_head.max(HYPER_MIN_BUF))
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await?;
    let driver = async move {
        let driven = tokio::time::timeout_at(deadline, conn.with_upgrades()).await;
        if let Ok(Err(e)) = driven {
            tracing::debug!(error = %e, "backend connection ended");
        }
    };
    // In the connection's span, so its log lines name the peer and the backend.
    let link = Link(tokio::spawn(driver.instrument(tracing::Span::current())));
    // hyper skips 1xx heads other than 101; this is how one is seen at all.
    let (interim_tx, mut interim_rx) = watch::channel(None);
    hyper::ext::on_informational(&mut request, move |res| {
        interim_tx.send_if_modified(|slot| {
            let first = slot.is_none();
            if first {
                *slot = Some((res.status(), res.version(), res.headers().clone()));
            }
            first
        });
    });
    tokio::select! {
        answer = sender.send_request(request) => Ok((answer?.map(Some), link)),
        Ok(interim) = interim_rx.wait_for(Option::is_some) => {
            let mut head = Response::new(None);
            if let Some((status, version, headers)) = interim.clone() {
                *head.status_mut() = status;
                *head.version_mut() = version;
                *head.headers_mut() = headers;
            }
            Ok((head, link))
        }
    }
}

/// Whether a failed exchange got anything that looked like an answer: a parse error (garbage, a
/// head over its bounds) is the backend's answer and final; anything else (closed, reset, write
/// failure) happened before an answer, and another backend may be tried.
pub fn refusal_for(e: &hyper::Error) -> Refusal {
    if e.is_parse() || e.is_parse_too_large() || e.is_parse_status() {
        Refusal::BackendMalformed
    } else {
        Refusal::BackendClosed
    }
}

/// Read the decoded body of a final non-101 answer (`headers` are its fields), at most `max`
/// bytes. A body over the bound, framing two parsers could read differently, or a connection
/// lost mid-body: nothing to relay.
pub async fn read_body(
    body: Option<Incoming>,
    headers: &HeaderMap,
    max: usize,
) -> Result<Vec<u8>, Refusal> {
    let Some(body) = body else {
        return Ok(Vec::new());
    };
    // RFC 9112 §6.3: a message with both is refused rather than guessed at.
    if headers.contains_key(header::TRANSFER_ENCODING)
        && headers.contains_key(header::CONTENT_LENGTH)
    {
        return Err(Refusal::BackendMalformed);
    }
    // A declared length over the bound fails now, not after reading `max` bytes of it.
    if usize::try_from(body.size_hint().lower()).map_or(true, |n| n > max) {
        return Err(Refusal::BackendMalformed);
    }
    let collected = Limited::new(body, max).collect().await.map_err(|e| {
        if e.downcast_ref::<LengthLimitError>().is_some() {
            Refusal::BackendMalformed
        } else if let Some(e) = e.downcast_ref::<hyper::Error>() {
            refusal_for(e)
        } else {
            Refusal::BackendClosed
        }
    })?;
    Ok(collected.to_bytes().to_vec())
}

/// After a verified 101: the stream back from hyper, and a copy of the bytes the backend sent
/// right behind its answer (they go to the client first). Everything else hyper held (its read
/// buffer, the answer) is dropped here, so none of it stays with the tunnel.
pub async fn upgrade<S>(answer: Answer, link: Link) -> Result<(S, Vec<u8>), Refusal>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let upgraded = hyper::upgrade::on(answer)
        .await
        .map_err(|e| refusal_for(&e))?;
    drop(link);
    let parts = upgraded
        .downcast::<TokioIo<S>>()
        .map_err(|_| Refusal::BackendClosed)?;
    let behind = parts.read_buf.to_vec();
    Ok((parts.io.into_inner(), behind))
}
