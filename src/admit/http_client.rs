//! A minimal, bounded HTTP/1.1 client for the admission stage's own requests: fetching a JWKS
//! document and asking an `auth.request` service.
//!
//! Owns: `http://` / `https://` URL parsing, one connection per request (`Connection: close`),
//! TLS via tokio-rustls with the system trust store (or one installed with [`set_tls_config`]),
//! and the bounds: one timeout over connect + TLS + request + answer, a head size cap and a body
//! cap. Answer framing is `answer`'s. Does not own retries, redirects or pooling (none
//! of its callers want them).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::Refusal;

mod answer;

/// Bound on an answer head.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where the system trust store usually lives (what `openssl-probe` looks for), after
/// `SSL_CERT_FILE`.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// An answer: status, header fields in order (names as received), decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// Why a request got no answer. `kind` is a bounded label for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// `bad_url`, `timeout`, `connect`, `tls`, `write`, `closed`, `malformed`.
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

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Host as written (brackets removed from an IPv6 literal).
    pub host: String,
    pub port: u16,
    /// Origin-form path and query, `/` when none.
    pub path: String,
}

impl Url {
    /// Parse an absolute `http(s)://host[:port][/path]` URL. No user info, no fragment.
    pub fn parse(url: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: only http:// and https:// URLs"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') || path.contains('#') || path.bytes().any(|b| b <= b' ') {
            return Err(format!("{url:?}: no user info, fragment or spaces"));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(format!("{url:?}: unclosed '['"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port"))?,
        };
        if host.is_empty() || port == 0 {
            return Err(format!("{url:?}: no host or port"));
        }
        Ok(Url {
            https,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// `host:port` to connect to (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Trust store for `https://`, built on first use from the system bundle unless one was set.
static TLS: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();

/// Install the TLS client configuration used for `https://` (e.g. a private CA). Only the first
/// call (or first use) wins; returns false when one was already in place.
pub fn set_tls_config(config: Arc<ClientConfig>) -> bool {
    TLS.set(Ok(config)).is_ok()
}

fn tls_config() -> Result<Arc<ClientConfig>, HttpError> {
    TLS.get_or_init(|| client_config(system_roots()))
        .clone()
        .map_err(|e| HttpError::new("tls", e))
}

/// A client config trusting `roots`, on the aws-lc-rs provider, TLS 1.2 and 1.3.
pub fn client_config(roots: rustls::RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's CA bundle: `SSL_CERT_FILE`, else the first bundle found at a usual place.
/// Empty (every `https://` fetch fails, logged) when none is found.
pub(crate) fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let env = std::env::var("SSL_CERT_FILE").ok();
    let paths = env
        .iter()
        .map(String::as_str)
        .chain(CA_BUNDLES.iter().copied());
    for path in paths {
        let Ok(certs) = CertificateDer::pem_file_iter(path) else {
            continue;
        };
        let (added, _) = roots.add_parsable_certificates(certs.filter_map(Result::ok));
        if added > 0 {
            tracing::debug!(path, added, "loaded CA bundle for https fetches");
            return roots;
        }
    }
    tracing::warn!("no system CA bundle found; https:// fetches will fail (set SSL_CERT_FILE)");
    roots
}

/// `GET url` within `timeout`, body at most `max_body` bytes.
pub async fn get(url: &str, timeout: Duration, max_body: usize) -> Result<Response, HttpError> {
    let parsed = Url::parse(url).map_err(|e| HttpError::new("bad_url", e))?;
    let authority = parsed.authority();
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\n\
         User-Agent: wsgate\r\nConnection: close\r\n\r\n",
        parsed.path
    );
    let tls = tls_for(&parsed)?;
    request(&authority, tls, head.into_bytes(), timeout, Some(max_body)).await
}

/// What [`request`] needs for `url`'s scheme: `None` for `http://`, the shared TLS client
/// config and the server name for `https://`.
pub fn tls_for(url: &Url) -> Result<Option<(Arc<ClientConfig>, String)>, HttpError> {
    if url.https {
        Ok(Some((tls_config()?, url.host.clone())))
    } else {
        Ok(None)
    }
}

/// Send `raw_head` (a whole request head, no body, which should say `Connection: close`) to
/// `authority` (`host:port`), over TLS when `tls` gives a config and the server name, and read
/// the answer, all within `timeout`. `max_body: None` skips the body.
pub async fn request(
    authority: &str,
    tls: Option<(Arc<ClientConfig>, String)>,
    raw_head: Vec<u8>,
    timeout: Duration,
    max_body: Option<usize>,
) -> Result<Response, HttpError> {
    let work = async {
        let tcp = TcpStream::connect(authority)
            .await
            .map_err(|e| HttpError::new("connect", format!("{authority}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => exchange(tcp, &raw_head, max_body).await,
            Some((config, host)) => {
                let name = ServerName::try_from(host)
                    .map_err(|e| HttpError::new("bad_url", e.to_string()))?;
                let stream = TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| HttpError::new("tls", format!("{authority}: {e}")))?;
                exchange(stream, &raw_head, max_body).await
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| HttpError::new("timeout", format!("{authority}: no answer in {timeout:?}")))?
}

/// Write the head, read the answer head and (optionally) the body.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    raw_head: &[u8],
    max_body: Option<usize>,
) -> Result<Response, HttpError> {
    stream
        .write_all(raw_head)
        .await
        .map_err(|e| HttpError::new("write", e.to_string()))?;
    stream
        .flush()
        .await
        .map_err(|e| HttpError::new("write", e.to_string()))?;
    let head = answer::read_head(&mut stream, MAX_HEAD_BYTES)
        .await
        .map_err(answer_error)?;
    let body = match max_body {
        Some(max) => answer::read_body(&mut stream, &head, max)
            .await
            .map_err(answer_error)?,
        None => Vec::new(),
    };
    Ok(Response {
        status: head.status,
        headers: head.fields.into_iter().map(|f| (f.name, f.value)).collect(),
        body,
    })
}

fn answer_error(r: Refusal) -> HttpError {
    match r {
        Refusal::BackendClosed => HttpError::new("closed", "closed before a whole answer"),
        _ => HttpError::new("malformed", "answer not parseable or over its size bound"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
