//! `auth.request`: ask an HTTP service whether a client may open the tunnel, like nginx
//! `auth_request`.
//!
//! Owns: the question (the client's method, its headers minus hop-by-hop and forwarding fields,
//! no body, sent to the configured path, with `X-Original-URI`, `X-Original-Method`,
//! `X-Forwarded-For` and `X-Forwarded-Host` set by wsgate) and reading the answer: 2xx admits
//! and yields the `copy_headers` of the answer, 401/403 are relayed (with `WWW-Authenticate`),
//! anything else, a connect failure or the timeout is "unavailable" (503). Does not own setting
//! those headers on the backend request (`upstream::request`) or the refusal's answer.

use std::net::IpAddr;

use super::http_client::{self, Url};
use crate::config::policy::AuthRequestConfig;
use crate::proxy::head::{Fields, RequestHead, is_hop_by_hop};

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

/// The answer's body is never read: only its status and fields matter, and the connection is
/// closed after the head.
const MAX_ANSWER_BODY: Option<usize> = None;

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
    head: &RequestHead,
    client_ip: IpAddr,
) -> Result<Vec<(String, Vec<u8>)>, AuthRequestFailure> {
    let tls = match Url::parse(&cfg.url).map(|u| http_client::tls_for(&u)) {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return Err(unavailable(cfg, e.kind, &e.detail)),
        // The config check parsed `url`; a plain connection to `authority` is what remains.
        Err(_) => None,
    };
    let question = question(cfg, head, client_ip);
    let answer = http_client::request(&cfg.authority, tls, question, cfg.timeout, MAX_ANSWER_BODY)
        .await
        .map_err(|e| unavailable(cfg, e.kind, &e.detail))?;
    match answer.status {
        200..=299 => Ok(cfg
            .copy_headers
            .iter()
            .flat_map(|want| {
                answer
                    .headers
                    .iter()
                    .filter(move |(name, _)| name.eq_ignore_ascii_case(want))
                    .map(move |(_, value)| (want.clone(), value.clone()))
            })
            .collect()),
        status @ (401 | 403) => Err(AuthRequestFailure::Denied {
            status,
            www_authenticate: answer.header("www-authenticate").map(<[u8]>::to_vec),
        }),
        status => Err(unavailable(cfg, "status", &status.to_string())),
    }
}

fn unavailable(cfg: &AuthRequestConfig, kind: &'static str, detail: &str) -> AuthRequestFailure {
    tracing::warn!(url = %cfg.url, reason = kind, detail, "auth service unavailable");
    AuthRequestFailure::Unavailable
}

/// The request head sent to the service.
fn question(cfg: &AuthRequestConfig, head: &RequestHead, client_ip: IpAddr) -> Vec<u8> {
    let named: Vec<String> = head
        .tokens("connection")
        .map(str::to_ascii_lowercase)
        .collect();
    let mut out = Vec::with_capacity(512 + head.fields.len() * 48);
    let mut line = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    let request_line = format!("{} {} HTTP/1.1\r\n", head.method, cfg.path);
    line("Host", cfg.authority.as_bytes());
    for field in &head.fields {
        let lower = field.name.to_ascii_lowercase();
        if !(is_hop_by_hop(&lower) || DROPPED.contains(&lower.as_str()) || named.contains(&lower)) {
            line(&field.name, &field.value);
        }
    }
    line("X-Original-URI", head.target.as_bytes());
    line("X-Original-Method", head.method.as_bytes());
    line("X-Forwarded-For", client_ip.to_string().as_bytes());
    if let Ok(host) = head.single("host") {
        line("X-Forwarded-Host", host);
    }
    line("Connection", b"close");
    out.extend_from_slice(b"\r\n");
    let mut whole = request_line.into_bytes();
    whole.append(&mut out);
    whole
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::http_client::tests::serve;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn client_head() -> RequestHead {
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
        crate::proxy::head::test_head("/ws?room=1", &fields)
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
        let seen = seen.lock().unwrap().clone();
        assert!(seen.starts_with("GET /auth?v=1 HTTP/1.1\r\n"), "{seen}");
        for has in [
            "Host: 127.0.0.1:",
            "Authorization: Bearer t\r\n",
            "Cookie: session=s\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "X-Original-URI: /ws?room=1\r\n",
            "X-Original-Method: GET\r\n",
            "X-Forwarded-For: 203.0.113.7\r\n",
            "X-Forwarded-Host: chat.example.com\r\n",
            "Connection: close\r\n",
        ] {
            assert!(seen.contains(has), "{has:?} missing in {seen}");
        }
        for hasnt in [
            "Upgrade:",
            "X-Secret-Hop",
            "6.6.6.6",
            "/spoofed",
            "\r\nHost: chat",
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
