//! A request head from bytes, strictly (`httparse`, the parser hyper's server uses), into the
//! [`Head`] the stages check. The gateway itself reads heads through hyper; this is the same
//! path for unit tests, benchmarks, fuzzing and test peers that read what wsgate sent them.

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Version};

use super::Head;

/// Why bytes are not a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The bytes end before the blank line that ends a head.
    Incomplete,
    /// More fields than the count bound.
    TooManyFields,
    /// Not valid HTTP/1.x syntax, or a target, name or value the `http` types refuse.
    Malformed,
}

/// Parse the request head at the start of `bytes` (anything after it is ignored).
pub fn parse_request(bytes: &[u8], max_fields: usize) -> Result<Head, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_fields];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(_) => return Err(HeadError::Malformed),
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed);
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| HeadError::Malformed)?;
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let (mut head, ()) = Request::builder()
        .method(method)
        .uri(target)
        .version(version)
        .body(())
        .map_err(|_| HeadError::Malformed)?
        .into_parts();
    head.headers.reserve(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::Malformed)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| HeadError::Malformed)?;
        head.headers.append(name, value);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Refusal;
    use crate::wire::{BodyLength, Fields, check_framing};

    #[test]
    fn reads_method_target_version_and_every_line() {
        let h = parse_request(
            b"GET /a?b HTTP/1.1\r\nHost: x\r\nC: 1\r\nc: 2\r\n\r\nEXTRA",
            16,
        );
        let h = h.unwrap();
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri.path_and_query().map(|p| p.as_str()), Some("/a?b"));
        assert_eq!(h.single("host"), Ok(&b"x"[..]));
        assert_eq!(h.values("c").collect::<Vec<_>>(), [&b"1"[..], b"2"]);
    }

    #[test]
    fn refuses_bad_syntax() {
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
                parse_request(bad, 16).err(),
                Some(HeadError::Malformed),
                "{bad:?}"
            );
        }
        let many: String = (0..20).map(|i| format!("X{i}: y\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_request(req.as_bytes(), 16).err(),
            Some(HeadError::TooManyFields)
        );
        assert_eq!(
            parse_request(b"GET / HT", 16).err(),
            Some(HeadError::Incomplete)
        );
    }

    #[test]
    fn framing_rules() {
        let f = |extra: &str| {
            let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
            parse_request(raw.as_bytes(), 16).unwrap()
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
