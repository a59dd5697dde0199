//! A pooled HTTP/1.1 client for wsgate's own requests: fetching a JWKS document and asking an
//! `auth.request` service.
//!
//! Owns: one hyper-util client per process ([`HttpClient::shared`], cheap to clone) whose
//! keep-alive connections are reused across calls (idle ones close after [`IDLE_TIMEOUT`]), so
//! an auth question per handshake does not pay a TCP and TLS handshake each time; `https://`
//! through hyper-rustls on the aws-lc-rs provider trusting the system roots
//! (rustls-native-certs: `SSL_CERT_FILE` / `SSL_CERT_DIR`, else the platform store); and the
//! bounds of every call: one timeout over connect, TLS, request and the whole answer, the answer
//! head within [`MAX_BUF_BYTES`], the body capped with `http_body_util::Limited`. Answer framing
//! (lengths, chunked) is hyper's. Does not own what is asked or what an answer means
//! (`admit::jwks`, `admit::auth_request`), retries or redirects (none of its callers want them).
//!
//! Pooled connections live on the Tokio runtime that opened them; one that died with its
//! runtime is found closed and skipped.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, USER_AGENT};
use hyper::{HeaderMap, Request, Uri};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::{ClientConfig, RootCertStore};

/// How long an unused pooled connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per `scheme://host:port`.
const MAX_IDLE_PER_HOST: usize = 16;
/// hyper's read buffer, which bounds an answer head (hyper's minimum is 8 KiB).
pub const MAX_BUF_BYTES: usize = 64 * 1024;

/// A request without a body: every request this client sends.
pub type EmptyRequest = Request<Empty<Bytes>>;

/// An answer: status, header fields (in order within a name), the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request got no (whole) answer. `kind` is a bounded label for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// `bad_url`, `timeout`, `connect`, `tls`, `closed`, `too_large`, `malformed`.
    pub kind: &'static str,
    pub detail: String,
}

impl HttpError {
    fn new(kind: &'static str, detail: impl Into<String>) -> HttpError {
        HttpError {
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// An absolute `http://` or `https://` URL with a host; no user info.
pub fn parse_url(url: &str) -> Result<Uri, HttpError> {
    let bad = |why: &str| HttpError::new("bad_url", format!("{url:?}: {why}"));
    let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        _ => return Err(bad("only http:// and https:// URLs")),
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("no host"));
    };
    let text = authority.as_str();
    // After an IPv6 literal's `]`, or anywhere in a name: a `:` says a port follows.
    let port_given = text[text.rfind(']').map_or(0, |i| i + 1)..].contains(':');
    if text.contains('@') {
        Err(bad("no user info"))
    } else if authority.host().is_empty() {
        Err(bad("no host"))
    } else if port_given && authority.port_u16().is_none_or(|p| p == 0) {
        Err(bad("bad port"))
    } else {
        Ok(uri)
    }
}

/// The pooled client. Clones share the pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpClient {
    /// The process's client, trusting the system roots; built on first use.
    pub fn shared() -> &'static HttpClient {
        static SHARED: OnceLock<HttpClient> = OnceLock::new();
        SHARED.get_or_init(|| HttpClient::new(system_tls()))
    }

    /// A client verifying servers with `tls` (the system roots for [`Self::shared`]; tests
    /// trust their own CA this way).
    pub fn new(tls: ClientConfig) -> HttpClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false); // the https connector around it checks the scheme
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .http1_max_buf_size(MAX_BUF_BYTES)
            .build(https);
        HttpClient { inner }
    }

    /// `GET url` accepting JSON, within `timeout`, body at most `max_body` bytes.
    pub async fn get(
        &self,
        url: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response, HttpError> {
        let request = Request::get(parse_url(url)?)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, "wsgate")
            .body(Empty::new())
            .map_err(|e| HttpError::new("bad_url", e.to_string()))?;
        self.send(request, timeout, max_body).await
    }

    /// Send `request` (absolute URI; `Host` is set from it unless given) and read the whole
    /// answer, all within `timeout`; a body over `max_body` bytes is an error. The connection
    /// goes back to the pool only when the answer was read to its end.
    pub async fn send(
        &self,
        request: EmptyRequest,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response, HttpError> {
        let authority = request
            .uri()
            .authority()
            .map_or_else(String::new, |a| a.to_string());
        let work = async {
            let answer = self.inner.request(request).await.map_err(request_error)?;
            let (head, body) = answer.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| body_error(&*e, max_body))?
                .to_bytes();
            Ok(Response {
                status: head.status.as_u16(),
                headers: head.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(done) => done.map_err(|e: HttpError| HttpError {
                detail: format!("{authority}: {}", e.detail),
                ..e
            }),
            Err(_) => Err(HttpError::new(
                "timeout",
                format!("{authority}: no whole answer in {timeout:?}"),
            )),
        }
    }
}

/// TLS 1.2 and 1.3 on aws-lc-rs, trusting the system roots (none found: every `https://`
/// request fails, and this is logged once).
fn system_tls() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3");
    match builder.clone().with_native_roots() {
        Ok(b) => b.with_no_client_auth(),
        Err(error) => {
            tracing::warn!(%error, "no system CA roots; https:// requests will fail (set SSL_CERT_FILE)");
            builder
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth()
        }
    }
}

/// A failed request (before the answer head was whole).
fn request_error(e: hyper_util::client::legacy::Error) -> HttpError {
    let detail = chain(&e);
    if is_tls(&e) {
        HttpError::new("tls", detail)
    } else if e.is_connect() {
        HttpError::new("connect", detail)
    } else if chain_has(&e, |h: &hyper::Error| h.is_incomplete_message()) {
        HttpError::new("closed", detail)
    } else {
        HttpError::new("malformed", detail)
    }
}

/// A failed body read.
fn body_error(e: &(dyn StdError + 'static), max: usize) -> HttpError {
    if e.is::<LengthLimitError>() {
        HttpError::new("too_large", format!("body over {max} bytes"))
    } else if chain_has(e, |h: &hyper::Error| h.is_incomplete_message()) {
        HttpError::new("closed", chain(e))
    } else {
        HttpError::new("malformed", chain(e))
    }
}

/// Whether a rustls error is in the chain (an `io::Error` hides its inner error from
/// `source()`, so look inside those too).
fn is_tls(e: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        let wrapped = (e.downcast_ref::<std::io::Error>())
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn StdError + 'static));
        next = wrapped.or_else(|| e.source());
    }
    false
}

fn chain_has<T: StdError + 'static>(
    e: &(dyn StdError + 'static),
    test: impl Fn(&T) -> bool,
) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<T>().is_some_and(&test) {
            return true;
        }
        next = e.source();
    }
    false
}

/// The error and its causes, `: `-separated.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
