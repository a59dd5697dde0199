//! Reading an HTTP/1.x message head off a stream, within a size bound, and parsing it strictly.
//!
//! Owns: finding the end of the head without re-parsing (slow-loris safe), the size and field-count
//! bounds (431), strict syntax via `httparse` (whitespace before colon, bare CR, NUL, obs-fold and
//! invalid names all refused), and message framing (CL+TE, duplicate CL, unknown TE: 400).
//! Does not own the time bound (the caller wraps the read in a timeout) or any RFC 6455 meaning.
//!
//! Why not hyper's server here: the RFC 6455 rules need the raw field lines (duplicates, token
//! lists spread over several lines, bytes pipelined behind the head), which hyper normalises
//! away, and a WebSocket-only front needs nothing else from an HTTP server. The parser is the
//! one hyper uses.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::Refusal;

/// Hop-by-hop fields (RFC 9110 §7.6.1, plus `Proxy-Connection`, which proxies still see): about
/// one connection, never forwarded, never relayed.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// True for a lower-case field name in [`HOP_BY_HOP`].
pub fn is_hop_by_hop(lower: &str) -> bool {
    HOP_BY_HOP.contains(&lower)
}

/// One header field line as received. Names keep their case; values are raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: Vec<u8>,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// Minor version of HTTP/1.x.
    pub minor: u8,
    pub fields: Vec<Field>,
    /// Bytes received after the head (pipelined). Never forwarded as HTTP.
    pub rest: Vec<u8>,
}

/// A parsed response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub minor: u8,
    pub status: u16,
    pub reason: String,
    pub fields: Vec<Field>,
    /// Bytes received after the head (body start, or frames right after a 101).
    pub rest: Vec<u8>,
}

/// Field lookups shared by request and response heads.
pub trait Fields {
    fn fields(&self) -> &[Field];

    /// Every value of the named field, in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields()
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_slice())
    }

    /// The value of a field that must appear exactly once; `Err(n)` with the count otherwise.
    fn single(&self, name: &str) -> Result<&[u8], usize> {
        let mut it = self
            .fields()
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_slice());
        match (it.next(), it.next()) {
            (Some(v), None) => Ok(v),
            (None, _) => Err(0),
            (Some(_), Some(_)) => Err(2 + it.count()),
        }
    }

    /// Comma-separated tokens across every line of the field, trimmed, empty ones skipped.
    fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name).flat_map(|v| {
            std::str::from_utf8(v)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
        })
    }

    /// True when the comma-separated list of the field holds `token` (case-insensitive).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

impl Fields for RequestHead {
    fn fields(&self) -> &[Field] {
        &self.fields
    }
}

impl Fields for ResponseHead {
    fn fields(&self) -> &[Field] {
        &self.fields
    }
}

/// Why a head could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The peer closed before any byte.
    ClosedEmpty,
    /// The peer closed (or reset) in the middle of the head.
    Closed,
    /// Larger than the byte bound.
    TooLarge,
    /// More fields than the count bound.
    TooManyFields,
    /// Not valid HTTP/1.x syntax.
    Malformed,
}

/// Read until the end of a head (`\r\n\r\n` or `\n\n`) or `max_bytes`. Returns the buffer and the
/// length of the head within it. I/O errors count as a close.
/// With `prefix` (e.g. `b"HTTP/"` for answers), bytes that cannot start such a head fail at once
/// instead of waiting for a terminator that may never come.
pub async fn read_raw<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_bytes: usize,
    prefix: Option<&[u8]>,
) -> Result<(Vec<u8>, usize), HeadError> {
    let mut buf = Vec::with_capacity(1024.min(max_bytes));
    let mut scanned = 0;
    loop {
        if buf.len() == buf.capacity() {
            // Grow in steps, but never read past the bound plus one byte (to tell "too large").
            let want = (buf.capacity() * 2).clamp(1024, max_bytes + 1);
            if want <= buf.len() {
                return Err(HeadError::TooLarge);
            }
            buf.reserve_exact(want - buf.len());
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) if buf.is_empty() => return Err(HeadError::ClosedEmpty),
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(_) => {}
        }
        if let Some(p) = prefix {
            let n = p.len().min(buf.len());
            if !buf[..n].eq_ignore_ascii_case(&p[..n]) {
                return Err(HeadError::Malformed);
            }
        }
        if let Some(end) = find_end(&buf, scanned) {
            if end > max_bytes {
                return Err(HeadError::TooLarge);
            }
            return Ok((buf, end));
        }
        if buf.len() > max_bytes {
            return Err(HeadError::TooLarge);
        }
        // The terminator is at most 4 bytes; rescan only the tail.
        scanned = buf.len().saturating_sub(3);
    }
}

/// Position just after the blank line ending the head, searching from `from`.
fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

/// Parse a request head of `head_len` bytes at the start of `buf`.
pub fn parse_request(
    buf: Vec<u8>,
    head_len: usize,
    max_fields: usize,
) -> Result<RequestHead, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_fields];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(&buf[..head_len]) {
        Ok(httparse::Status::Complete(n)) if n == head_len => {}
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        _ => return Err(HeadError::Malformed),
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed);
    };
    let fields = own_fields(req.headers)?;
    Ok(RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        minor,
        fields,
        rest: buf[head_len..].to_vec(),
    })
}

/// Parse a response head of `head_len` bytes at the start of `buf`.
pub fn parse_response(
    buf: Vec<u8>,
    head_len: usize,
    max_fields: usize,
) -> Result<ResponseHead, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_fields];
    let mut res = httparse::Response::new(&mut slots);
    match res.parse(&buf[..head_len]) {
        Ok(httparse::Status::Complete(n)) if n == head_len => {}
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        _ => return Err(HeadError::Malformed),
    }
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(HeadError::Malformed);
    };
    let reason = res.reason.unwrap_or("").to_owned();
    let fields = own_fields(res.headers)?;
    Ok(ResponseHead {
        minor,
        status,
        reason,
        fields,
        rest: buf[head_len..].to_vec(),
    })
}

fn own_fields(headers: &[httparse::Header<'_>]) -> Result<Vec<Field>, HeadError> {
    headers
        .iter()
        .map(|h| {
            if h.name.is_empty() {
                return Err(HeadError::Malformed);
            }
            Ok(Field {
                name: h.name.to_owned(),
                value: h.value.to_vec(),
            })
        })
        .collect()
}

/// RFC 9112 §6.1–6.3: refuse heads whose body framing two parsers could read differently.
/// Returns the declared body length (`Some(0)` when none).
pub fn check_framing<H: Fields>(head: &H) -> Result<BodyLength, Refusal> {
    let has_te = head.values("transfer-encoding").next().is_some();
    let mut lengths = head.values("content-length");
    let cl = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(v), None) => Some(parse_content_length(v).ok_or(Refusal::AmbiguousFraming)?),
        (Some(_), Some(_)) => return Err(Refusal::AmbiguousFraming),
    };
    if has_te {
        if cl.is_some() {
            return Err(Refusal::AmbiguousFraming);
        }
        let tokens: Vec<&str> = head.tokens("transfer-encoding").collect();
        return if tokens.len() == 1 && tokens[0].eq_ignore_ascii_case("chunked") {
            Ok(BodyLength::Chunked)
        } else {
            Err(Refusal::BadTransferEncoding)
        };
    }
    Ok(BodyLength::Exact(cl.unwrap_or(0)))
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    Exact(u64),
    Chunked,
}

/// `1*DIGIT` only; no sign, no list (`5, 5` is ambiguous and refused).
fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A request head built from parts, for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn test_head(target: &str, fields: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        target: target.into(),
        minor: 1,
        fields: fields
            .iter()
            .map(|(n, v)| Field {
                name: (*n).into(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
        rest: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(input: &[u8], max: usize) -> Result<RequestHead, HeadError> {
        let mut s = input;
        let (buf, len) = read_raw(&mut s, max, None).await?;
        parse_request(buf, len, 16)
    }

    #[tokio::test]
    async fn splits_head_from_pipelined_bytes() {
        let h = read(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nEXTRA", 1024)
            .await
            .unwrap();
        assert_eq!(h.target, "/a");
        assert_eq!(h.rest, b"EXTRA");
        assert_eq!(h.single("host"), Ok(&b"x"[..]));
    }

    #[tokio::test]
    async fn refuses_bad_syntax() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\n: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n",
            b"GARBAGE\r\n\r\n",
        ] {
            assert_eq!(
                read(bad, 1024).await.err(),
                Some(HeadError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn bounds_size_and_fields() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            read(big.as_bytes(), 1024).await.err(),
            Some(HeadError::TooLarge)
        );
        let many: String = (0..20).map(|i| format!("X{i}: y\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            read(req.as_bytes(), 4096).await.err(),
            Some(HeadError::TooManyFields)
        );
        assert_eq!(read(b"GET / HT", 1024).await.err(), Some(HeadError::Closed));
        assert_eq!(read(b"", 1024).await.err(), Some(HeadError::ClosedEmpty));
    }

    #[tokio::test]
    async fn framing_rules() {
        let f = |extra: &str| {
            let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
            let len = raw.len();
            parse_request(raw.into_bytes(), len, 16).unwrap()
        };
        assert_eq!(check_framing(&f("")), Ok(BodyLength::Exact(0)));
        assert_eq!(
            check_framing(&f("Content-Length: 5\r\n")),
            Ok(BodyLength::Exact(5))
        );
        let ambiguous = [
            "Content-Length: 1\r\nContent-Length: 1\r\n",
            "Content-Length: 1, 1\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n",
        ];
        for extra in ambiguous {
            assert_eq!(
                check_framing(&f(extra)),
                Err(Refusal::AmbiguousFraming),
                "{extra}"
            );
        }
        assert_eq!(
            check_framing(&f("Transfer-Encoding: gzip, chunked\r\n")),
            Err(Refusal::BadTransferEncoding)
        );
        assert_eq!(
            check_framing(&f("Transfer-Encoding: chunked\r\n")),
            Ok(BodyLength::Chunked)
        );
    }
}
