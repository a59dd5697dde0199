//! Reading the answer of an admission-stage service (JWKS, `auth.request`): the head within a
//! size bound, and its body within a bound (Content-Length, chunked, or until close).
//!
//! The backend leg no longer uses this (it is on hyper: `upstream::h1`); it lives here until this
//! client moves onto hyper too. Chunk sizes are checked arithmetic: a size near 2^64 is refused.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::Refusal;
use crate::proxy::head::{self, BodyLength, Fields, HeadError, ResponseHead};

/// Bound on the number of fields in an answer head.
const MAX_ANSWER_FIELDS: usize = 100;

/// Read and parse the answer head. Anything that does not start like `HTTP/` fails at once.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_bytes: usize,
) -> Result<ResponseHead, Refusal> {
    let (buf, len) = head::read_raw(stream, max_bytes, Some(b"HTTP/"))
        .await
        .map_err(map_err)?;
    head::parse_response(buf, len, MAX_ANSWER_FIELDS).map_err(map_err)
}

fn map_err(e: HeadError) -> Refusal {
    match e {
        HeadError::ClosedEmpty | HeadError::Closed => Refusal::BackendClosed,
        HeadError::TooLarge | HeadError::TooManyFields | HeadError::Malformed => {
            Refusal::BackendMalformed
        }
    }
}

/// Read the body of a non-101 answer, decoded, at most `max` bytes. `rest` is what was read
/// after the head already.
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    answer: &ResponseHead,
    max: usize,
) -> Result<Vec<u8>, Refusal> {
    // RFC 9112 §6.3: 1xx, 204 and 304 have no body.
    if answer.status < 200 || answer.status == 204 || answer.status == 304 {
        return Ok(Vec::new());
    }
    let framing = head::check_framing(answer).map_err(|_| Refusal::BackendMalformed)?;
    let mut buf = answer.rest.clone();
    if !declares_length(answer) {
        return read_to_close(stream, buf, max).await;
    }
    match framing {
        BodyLength::Exact(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or(Refusal::BackendMalformed)?;
            fill(stream, &mut buf, n).await?;
            buf.truncate(n);
            Ok(buf)
        }
        BodyLength::Chunked => dechunk(stream, buf, max).await,
    }
}

fn declares_length(answer: &ResponseHead) -> bool {
    answer.values("content-length").next().is_some()
        || answer.values("transfer-encoding").next().is_some()
}

/// RFC 9112 §6.3 rule 8: no length given, the body ends when the connection closes.
async fn read_to_close<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut buf: Vec<u8>,
    max: usize,
) -> Result<Vec<u8>, Refusal> {
    let mut chunk = [0u8; 4096];
    loop {
        if buf.len() > max {
            return Err(Refusal::BackendMalformed);
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(Refusal::BackendClosed),
        }
    }
}

/// Read until `buf` holds `n` bytes.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    n: usize,
) -> Result<(), Refusal> {
    while buf.len() < n {
        let want = n - buf.len();
        let mut chunk = vec![0; want.min(16 * 1024)];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(Refusal::BackendClosed),
            Ok(got) => buf.extend_from_slice(&chunk[..got]),
        }
    }
    Ok(())
}

/// Decode `Transfer-Encoding: chunked` (RFC 9112 §7.1), trailers discarded.
async fn dechunk<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut raw: Vec<u8>,
    max: usize,
) -> Result<Vec<u8>, Refusal> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line = next_line(stream, &mut raw, pos, max).await?;
        let size_text =
            std::str::from_utf8(&raw[pos..line - 2]).map_err(|_| Refusal::BackendMalformed)?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| Refusal::BackendMalformed)?;
        pos = line;
        if size == 0 {
            // Trailer section: lines until an empty one.
            loop {
                let end = next_line(stream, &mut raw, pos, max).await?;
                let empty = end - pos == 2;
                pos = end;
                if empty {
                    return Ok(body);
                }
            }
        }
        // Checked: a chunk size near 2^64 must not wrap past the bound (it used to panic).
        if body.len().checked_add(size).is_none_or(|n| n > max) {
            return Err(Refusal::BackendMalformed);
        }
        fill(stream, &mut raw, pos + size + 2).await?;
        if &raw[pos + size..pos + size + 2] != b"\r\n" {
            return Err(Refusal::BackendMalformed);
        }
        body.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

/// Index just past the next CRLF at or after `pos`, reading more as needed (bounded).
async fn next_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    raw: &mut Vec<u8>,
    pos: usize,
    max: usize,
) -> Result<usize, Refusal> {
    loop {
        if let Some(i) = raw[pos..].windows(2).position(|w| w == b"\r\n") {
            return Ok(pos + i + 2);
        }
        if raw.len() - pos > 4096 || raw.len() > max * 2 + 65536 {
            return Err(Refusal::BackendMalformed);
        }
        let len = raw.len();
        fill(stream, raw, len + 1).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(raw: &[u8], max: usize) -> Result<(u16, Vec<u8>), Refusal> {
        let mut s = raw;
        let head = read_head(&mut s, 4096).await?;
        let body = read_body(&mut s, &head, max).await?;
        Ok((head.status, body))
    }

    #[tokio::test]
    async fn reads_bodies_by_framing() {
        let r = answer(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope",
            64,
        )
        .await;
        assert_eq!(r, Ok((403, b"nope".to_vec())));
        let r = answer(b"HTTP/1.1 404 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n", 64).await;
        assert_eq!(r, Ok((404, b"abcde".to_vec())));
        let r = answer(
            b"HTTP/1.1 500 X\r\nConnection: close\r\n\r\nuntil close",
            64,
        )
        .await;
        assert_eq!(r, Ok((500, b"until close".to_vec())));
        let r = answer(b"HTTP/1.1 204 No Content\r\n\r\n", 64).await;
        assert_eq!(r, Ok((204, vec![])));
    }

    #[tokio::test]
    async fn refuses_bad_answers() {
        assert_eq!(
            answer(b"SSH-2.0-OpenSSH\r\n\r\n", 64).await,
            Err(Refusal::BackendMalformed)
        );
        assert_eq!(
            answer(b"HTTP/1.1 200 OK\r\nCont", 64).await,
            Err(Refusal::BackendClosed)
        );
        assert_eq!(answer(b"", 64).await, Err(Refusal::BackendClosed));
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        assert_eq!(answer(big, 64).await, Err(Refusal::BackendMalformed));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(answer(short, 64).await, Err(Refusal::BackendClosed));
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(answer(bad_chunk, 64).await, Err(Refusal::BackendMalformed));
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            10\r\n0123456789abcdef\r\nfffffffffffffff0\r\nxx";
        assert_eq!(answer(huge, 64).await, Err(Refusal::BackendMalformed));
    }
}
