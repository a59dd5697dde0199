//! The fields of a proxied plain request and of its relayed answer.
//!
//! Towards the backend (always HTTP/1.1): the normalised target; `Host` and `X-Forwarded-Host`
//! from the route's host; `X-Forwarded-For` and `X-Forwarded-Proto` from what wsgate knows. Out:
//! hop-by-hop fields (RFC 9110 §7.6.1) and every field `Connection` names, the client's own
//! forwarding fields (`X-Forwarded-*`, `Forwarded`), `Expect` (the body is already read),
//! framing (the body goes with its exact `Content-Length`), and the identity fields the route
//! sets itself. Several `Cookie` fields (an h2 client may split them, RFC 9113 §8.2.3) become one.
//!
//! Towards the client: the backend's status and fields, less hop-by-hop ones and those its
//! `Connection` names; hyper's server frames the body and decides the client's keep-alive.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, Uri, Version, http};

use super::Plain;
use crate::error::Refusal;
use crate::wire::end_to_end;

/// Fields of the client's request never copied: wsgate sets them itself, or they are about
/// a body it re-frames.
const DROPPED: &[&str] = &[
    "host",
    "content-length",
    "expect",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

/// Methods whose request says `Content-Length: 0` when empty: some servers answer 411 without.
const LENGTH_ALWAYS: &[Method] = &[Method::POST, Method::PUT, Method::PATCH];

/// The HTTP/1.1 request for the backend. Fails only on a target or value the `http` types
/// refuse, or on CONNECT (RFC 9110 §9.3.6: it asks for a tunnel, and its target is no path).
pub(super) fn request(
    parts: http::request::Parts,
    body: Bytes,
    to: &Plain<'_>,
) -> Result<Request<Full<Bytes>>, Refusal> {
    if parts.method == Method::CONNECT || !to.target.starts_with('/') {
        return Err(Refusal::BadTarget);
    }
    let uri = Uri::try_from(to.target).map_err(|_| Refusal::BadTarget)?;
    let mut h = HeaderMap::with_capacity(parts.headers.len() + 6);
    // `Host` first, as a client would send it.
    h.insert(header::HOST, value(to.host)?);
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, v) in end_to_end(&parts.headers, &[]) {
        let lower = name.as_str();
        if DROPPED.contains(&lower) || to.remove.iter().any(|r| r == lower) {
            continue;
        }
        if name == header::COOKIE {
            cookies.push(v.as_bytes());
            continue;
        }
        h.append(name.clone(), v.clone());
    }
    if !cookies.is_empty() {
        let joined = HeaderValue::from_bytes(&cookies.join(&b"; "[..]))
            .map_err(|_| Refusal::MalformedHead)?;
        h.insert(header::COOKIE, joined);
    }
    let framed = parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    if !body.is_empty() || framed || LENGTH_ALWAYS.contains(&parts.method) {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    h.insert(XFF, value(to.forwarded_for)?);
    h.insert(XFP, value(to.proto)?);
    h.insert(XFH, value(to.host)?);
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = h;
    Ok(request)
}

/// The answer for the client: the backend's status, reason phrase and end-to-end fields, with
/// `body` (already read whole).
pub(super) fn answer(parts: http::response::Parts, body: Bytes) -> Response<Full<Bytes>> {
    let mut h = HeaderMap::with_capacity(parts.headers.len());
    for (name, v) in end_to_end(&parts.headers, &[]) {
        h.append(name.clone(), v.clone());
    }
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = parts.status;
    *response.headers_mut() = h;
    if let Some(reason) = parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        response.extensions_mut().insert(reason.clone());
    }
    response
}

const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
const XFH: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A value wsgate writes from what the caller passed; one the `http` types refuse came from the
/// client (400).
fn value(text: &str) -> Result<HeaderValue, Refusal> {
    HeaderValue::from_str(text).map_err(|_| Refusal::MalformedHead)
}
