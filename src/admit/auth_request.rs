//! `auth.request`: ask an HTTP service whether a client may open the tunnel, like nginx
//! `auth_request`.
//!
//! Owns: the question (the client's method, its headers minus hop-by-hop and forwarding fields,
//! no body, sent to the configured `http://` or `https://` URL, with `X-Original-URI`,
//! `X-Original-Method`, `X-Forwarded-For` and `X-Forwarded-Host` set by wsgate) and reading the
//! answer: 2xx admits and yields the `copy_headers` of the answer, 401/403 are relayed (with
//! `WWW-Authenticate`), anything else, a connect or TLS failure, an answer that cannot be read
//! whole within [`MAX_ANSWER_BODY`] or the timeout is "unavailable" (503). The connection is
//! the shared pooled client's (`outbound::client`), kept alive between questions. Does not own
//! setting those headers on the backend request (`proxy::forward`) or the refusal's answer.

use std::net::IpAddr;

use http_body_util::Empty;
use hyper::{Request, Uri};

use crate::config::policy::AuthRequestConfig;
use crate::outbound::client::{EmptyRequest, HttpClient};
use crate::wire::{self, Fields, Head, end_to_end, raw_target};

/// Fields of the client's request never sent to the auth service: hop-by-hop (RFC 9110 §7.6.1),
/// framing (no body is sent), and what wsgate sets itself.
const DROPPED: &[&str] = &[
    "host",
    "content-length",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-original-uri",
    "x-original-method",
];

/// Largest answer body read. Only the status and fields matter, but the body is read to its end
/// so that the connection can serve the next question.
pub const MAX_ANSWER_BODY: usize = 64 * 1024;

/// Why the service did not admit the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequestFailure {
    /// It answered 401 or 403: relay that status (and its challenge, for 401).
    Denied {
        status: u16,
        www_authenticate: Option<Vec<u8>>,
    },
    /// It failed, timed out or answered anything else: 503. The cause is logged here.
    Unavailable,
}

/// Ask the service about this request. `Ok` holds the `copy_headers` found in a 2xx answer,
/// named as configured, in the answer's order.
pub async fn ask(
    cfg: &AuthRequestConfig,
    head: &Head,
    client_ip: IpAddr,
) -> Result<Vec<(String, Vec<u8>)>, AuthRequestFailure> {
    let question = question(cfg, head, client_ip).map_err(|e| unavailable(cfg, "bad_url", &e))?;
    let answer = HttpClient::shared()
        .send(question, cfg.timeout, MAX_ANSWER_BODY)
        .await
        .map_err(|e| unavailable(cfg, e.kind, &e.detail))?;
    match answer.status {
        200..=299 => Ok(cfg
            .copy_headers
            .iter()
            .flat_map(|want| {
                answer
                    .headers
                    .get_all(want.as_str())
                    .iter()
                    .map(move |value| (want.clone(), value.as_bytes().to_vec()))
            })
            .collect()),
        status @ (401 | 403) => Err(AuthRequestFailure::Denied {
            status,
            www_authenticate: (answer.headers.get(hyper::header::WWW_AUTHENTICATE))
                .map(|v| v.as_bytes().to_vec()),
        }),
        status => Err(unavailable(cfg, "status", &status.to_string())),
    }
}

fn unavailable(cfg: &AuthRequestConfig, kind: &'static str, detail: &str) -> AuthRequestFailure {
    tracing::warn!(url = %cfg.url, reason = kind, detail, "auth service unavailable");
    AuthRequestFailure::Unavailable
}

/// `scheme://authority/path` of the service, the scheme as `url` says (the config check allowed
/// only `http` and `https`).
fn service_uri(cfg: &AuthRequestConfig) -> Result<Uri, String> {
    let https = cfg
        .url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}{}", cfg.authority, cfg.path)
        .parse()
        .map_err(|e| format!("{e}"))
}

/// The request sent to the service. `Host` is the service's (set by the client from the URI).
fn question(
    cfg: &AuthRequestConfig,
    head: &Head,
    client_ip: IpAddr,
) -> Result<EmptyRequest, String> {
    let mut request = Request::builder()
        .method(head.method.clone())
        .uri(service_uri(cfg)?)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let fields = request.headers_mut();
    for (name, value) in end_to_end(&head.headers, &[]) {
        if !DROPPED.contains(&name.as_str()) {
            fields.append(name.clone(), value.clone());
        }
    }
    let mut add = |name: &str, value: &[u8]| wire::append(fields, name, value);
    add("x-original-uri", raw_target(head).as_bytes());
    add("x-original-method", head.method.as_str().as_bytes());
    add("x-forwarded-for", client_ip.to_string().as_bytes());
    if let Ok(host) = head.single("host") {
        add("x-forwarded-host", host);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::client::tests::serve;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn client_head() -> Head {
        let fields = [
            ("Host", "chat.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Authorization", "Bearer t"),
            ("Cookie", "session=s"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Original-URI", "/spoofed"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        crate::wire::test_head("/ws?room=1", &fields)
    }

    async fn service(answer: Option<&'static str>) -> (AuthRequestConfig, Arc<Mutex<String>>) {
        let seen = Arc::new(Mutex::new(String::new()));
        let s = seen.clone();
        let addr = serve(move |head| {
            *s.lock().unwrap() = head;
            answer.map(|a| a.as_bytes().to_vec())
        })
        .await;
        let cfg = AuthRequestConfig {
            url: format!("http://{addr}/auth?v=1"),
            authority: addr.to_string(),
            path: "/auth?v=1".into(),
            timeout: Duration::from_millis(500),
            copy_headers: vec!["X-User".into(), "X-Roles".into()],
        };
        (cfg, seen)
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

    #[tokio::test]
    async fn allows_and_copies_headers() {
        let ok = "HTTP/1.1 200 OK\r\nx-user: alice\r\nX-Other: no\r\nX-Roles: a\r\nX-Roles: b\r\nContent-Length: 0\r\n\r\n";
        let (cfg, seen) = service(Some(ok)).await;
        let got = ask(&cfg, &client_head(), IP).await;
        let want = vec![
            ("X-User".to_owned(), b"alice".to_vec()),
            ("X-Roles".to_owned(), b"a".to_vec()),
            ("X-Roles".to_owned(), b"b".to_vec()),
        ];
        assert_eq!(got, Ok(want));
        // Field names go out lower-case (hyper's choice; HTTP field names are case-insensitive).
        let seen = seen.lock().unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("get /auth?v=1 http/1.1\r\n"), "{seen}");
        for has in [
            "host: 127.0.0.1:",
            "authorization: bearer t\r\n",
            "cookie: session=s\r\n",
            "sec-websocket-key: dghlihnhbxbszsbub25jzq==\r\n",
            "x-original-uri: /ws?room=1\r\n",
            "x-original-method: get\r\n",
            "x-forwarded-for: 203.0.113.7\r\n",
            "x-forwarded-host: chat.example.com\r\n",
        ] {
            assert!(seen.contains(has), "{has:?} missing in {seen}");
        }
        for hasnt in [
            "upgrade:",
            "x-secret-hop",
            "6.6.6.6",
            "/spoofed",
            "\r\nhost: chat",
            "connection:",
        ] {
            assert!(!seen.contains(hasnt), "{hasnt:?} leaked in {seen}");
        }
    }

    #[tokio::test]
    async fn relays_401_and_403() {
        let no = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\nContent-Length: 0\r\n\r\n";
        let (cfg, _) = service(Some(no)).await;
        let www_authenticate = Some(b"Bearer realm=\"x\"".to_vec());
        let want = AuthRequestFailure::Denied {
            status: 401,
            www_authenticate,
        };
        assert_eq!(ask(&cfg, &client_head(), IP).await, Err(want));
        let (cfg, _) = service(Some("HTTP/1.1 403 Forbidden\r\n\r\n")).await;
        let want = AuthRequestFailure::Denied {
            status: 403,
            www_authenticate: None,
        };
        assert_eq!(ask(&cfg, &client_head(), IP).await, Err(want));
    }

    #[tokio::test]
    async fn anything_else_is_unavailable() {
        for answer in [
            Some("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"),
            Some("HTTP/1.1 302 Found\r\nLocation: /login\r\n\r\n"),
            Some("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff0\r\nAA"),
            Some("garbage\r\n\r\n"),
            Some(""),
            None, // never answers: the timeout
        ] {
            let (cfg, _) = service(answer).await;
            let got = ask(&cfg, &client_head(), IP).await;
            assert_eq!(got, Err(AuthRequestFailure::Unavailable), "{answer:?}");
        }
        let (mut cfg, _) = service(None).await;
        let free = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        cfg.authority = free.to_string();
        assert_eq!(
            ask(&cfg, &client_head(), IP).await,
            Err(AuthRequestFailure::Unavailable)
        );
    }
}
