//! The HTTP side of the `wsgate sessions` client: one bounded HTTP/1.1 request to the admin
//! endpoint (hyper's client connection over a plain `TcpStream`), with the bearer token.
//!
//! Owns parsing the `--admin` URL (`http://host:port[/prefix]`, or `unix:/PATH` for an endpoint
//! on a Unix socket; plain HTTP only, as the admin endpoint serves), the one timeout over connect + request + answer ([`TIMEOUT`]) and the
//! answer body cap ([`MAX_ANSWER_BYTES`]). Does not own what is asked or how answers are shown
//! (`super::cli`).

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// Connect, send and read the whole answer within this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer body read (a listing of many sessions).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Where the admin endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUrl {
    /// `host:port`, as `TcpStream::connect` and `Host` take it (`localhost` for a Unix socket).
    pub authority: String,
    /// The Unix socket to connect to instead of `authority`.
    pub unix: Option<std::path::PathBuf>,
    /// Path prefix without a trailing slash (usually empty).
    pub prefix: String,
}

impl AdminUrl {
    /// Parse `http://host[:port][/prefix]` (the port defaults to 80; `http://` may be left out),
    /// or `unix:/PATH` (an absolute path to the admin socket).
    pub fn parse(url: &str) -> Result<AdminUrl, String> {
        if let Some(path) = url.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(path);
            if !path.is_absolute() {
                return Err(format!("{url}: expected unix:/ABSOLUTE/PATH"));
            }
            return Ok(AdminUrl {
                authority: "localhost".to_owned(),
                unix: Some(path),
                prefix: String::new(),
            });
        }
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!("{url}: only http:// is supported, not {scheme}://"));
            }
            None => url,
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(['@', '?', '#', ' ']) {
            return Err(format!("{url}: expected http://host:port"));
        }
        // A port after the last `:` unless that `:` is inside an IPv6 literal.
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.contains(']'));
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(AdminUrl {
            authority,
            unix: None,
            prefix: prefix.trim_end_matches('/').to_owned(),
        })
    }
}

/// An answer: status and whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// `method path_and_query` on the admin endpoint with an optional JSON body and bearer token,
/// bounded by [`TIMEOUT`]. Errors are one line for the operator.
pub async fn request(
    url: &AdminUrl,
    method: Method,
    path_and_query: &str,
    token: Option<&str>,
    json: Option<Vec<u8>>,
) -> Result<Reply, String> {
    let exchange = exchange(url, method, path_and_query, token, json);
    match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{}: no answer within {}s",
            url.authority,
            TIMEOUT.as_secs()
        )),
    }
}

async fn exchange(
    url: &AdminUrl,
    method: Method,
    path_and_query: &str,
    token: Option<&str>,
    json: Option<Vec<u8>>,
) -> Result<Reply, String> {
    match &url.unix {
        Some(path) => {
            let at = format!("unix:{}", path.display());
            let io = UnixStream::connect(path)
                .await
                .map_err(|e| format!("{at}: {e}"))?;
            send(io, &at, url, method, path_and_query, token, json).await
        }
        None => {
            let at = &url.authority;
            let io = TcpStream::connect(at)
                .await
                .map_err(|e| format!("{at}: {e}"))?;
            send(io, at, url, method, path_and_query, token, json).await
        }
    }
}

/// The exchange over a connected stream; `at` names the endpoint in errors.
async fn send<IO>(
    io: IO,
    at: &str,
    url: &AdminUrl,
    method: Method,
    path_and_query: &str,
    token: Option<&str>,
    json: Option<Vec<u8>>,
) -> Result<Reply, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("{at}: {e}"))?;
    let driver = tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}{path_and_query}", url.prefix))
        .header(header::HOST, url.authority.as_str());
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "WSGATE_ADMIN_TOKEN holds characters a header cannot carry".to_owned())?;
        builder = builder.header(header::AUTHORIZATION, value);
    }
    let body = match json {
        Some(bytes) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(bytes)
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{at}: {e}"))?;
    let status = answer.status().as_u16();
    let body = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| format!("{at}: reading the answer: {e}"))?
        .to_bytes();
    driver.abort();
    Ok(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls() {
        let u = AdminUrl::parse("http://127.0.0.1:9090").expect("valid");
        assert_eq!(
            (u.authority.as_str(), u.prefix.as_str()),
            ("127.0.0.1:9090", "")
        );
        let u = AdminUrl::parse("127.0.0.1:9090/").expect("valid");
        assert_eq!(
            (u.authority.as_str(), u.prefix.as_str()),
            ("127.0.0.1:9090", "")
        );
        let u = AdminUrl::parse("http://admin.internal/wsgate/").expect("valid");
        assert_eq!(u.authority, "admin.internal:80");
        assert_eq!(u.prefix, "/wsgate");
        let u = AdminUrl::parse("http://[::1]:9090").expect("valid");
        assert_eq!(u.authority, "[::1]:9090");
        assert_eq!(
            AdminUrl::parse("http://[::1]").expect("valid").authority,
            "[::1]:80"
        );
        assert!(AdminUrl::parse("https://127.0.0.1:9090").is_err());
        assert!(AdminUrl::parse("http://").is_err());
        assert!(AdminUrl::parse("http://u@h:1").is_err());
        let u = AdminUrl::parse("unix:/run/wsgate/admin.sock").expect("valid");
        assert_eq!(
            u.unix.as_deref(),
            Some(std::path::Path::new("/run/wsgate/admin.sock"))
        );
        assert_eq!((u.authority.as_str(), u.prefix.as_str()), ("localhost", ""));
        assert!(AdminUrl::parse("unix:admin.sock").is_err());
    }
}
