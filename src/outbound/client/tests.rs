//! Unit tests of `outbound::client` (and the one-answer server other unit tests share).

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-answer-per-connection HTTP server on 127.0.0.1:0: `answer` maps the received
/// request head to the raw bytes written back (then the connection closes). A `None` answer
/// means: read the head, never answer (a hung service).
pub(crate) async fn serve<F>(answer: F) -> std::net::SocketAddr
where
    F: Fn(String) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let head = read_head_text(&mut s).await;
                if head.is_empty() {
                    return;
                }
                match answer(head) {
                    Some(bytes) => {
                        let _ = s.write_all(&bytes).await;
                        let _ = s.shutdown().await;
                    }
                    None => {
                        let mut sink = [0u8; 64];
                        while let Ok(1..) = s.read(&mut sink).await {}
                    }
                }
            });
        }
    });
    addr
}

/// A request head as text (empty when the peer closed first).
async fn read_head_text<S: AsyncReadExt + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn client() -> HttpClient {
    HttpClient::shared().clone()
}

#[test]
fn parses_urls() {
    let u = parse_url("https://id.example.com/.well-known/jwks.json").unwrap();
    assert_eq!(
        (u.scheme_str(), u.host(), u.port_u16(), u.path()),
        (
            Some("https"),
            Some("id.example.com"),
            None,
            "/.well-known/jwks.json"
        )
    );
    let u = parse_url("HTTP://127.0.0.1:9100?x=1").unwrap();
    assert_eq!((u.port_u16(), u.query()), (Some(9100), Some("x=1")));
    let u = parse_url("http://[::1]:8080/a").unwrap();
    assert_eq!(u.host(), Some("[::1]"));
    for bad in [
        "ftp://x/",
        "http://",
        "/just/a/path",
        "http://u@h/",
        "http://h:0/",
        "http://h:x/",
        "http://[::1/",
        "http://a/x y",
    ] {
        assert!(parse_url(bad).is_err(), "{bad} {:?}", parse_url(bad));
    }
}

#[tokio::test]
async fn gets_bounded_bodies() {
    let addr = serve(|head| {
        assert!(head.starts_with("GET /doc HTTP/1.1\r\n"), "{head}");
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello".to_vec())
    })
    .await;
    let url = format!("http://{addr}/doc");
    let r = client()
        .get(&url, Duration::from_secs(5), 16)
        .await
        .unwrap();
    assert_eq!(
        (
            r.status,
            &r.body[..],
            r.headers.get("x-a").map(|v| v.as_bytes())
        ),
        (200, &b"hello"[..], Some(&b"1"[..]))
    );
    let e = client()
        .get(&url, Duration::from_secs(5), 4)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "too_large");
}

#[tokio::test]
async fn a_chunk_size_near_2_pow_64_is_an_error_not_a_panic() {
    let addr = serve(|_| {
        let attack = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      fffffffffffffff0\r\nAAAA";
        Some(attack.as_bytes().to_vec())
    })
    .await;
    let url = format!("http://{addr}/jwks.json");
    let e = client()
        .get(&url, Duration::from_secs(5), 1024)
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind, "closed" | "malformed" | "too_large"),
        "{e}"
    );
    // Bigger than any u64: refused while parsing.
    let addr = serve(|_| {
        let attack = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      1fffffffffffffff0\r\nAAAA";
        Some(attack.as_bytes().to_vec())
    })
    .await;
    let e = client()
        .get(&format!("http://{addr}/"), Duration::from_secs(5), 1024)
        .await
        .unwrap_err();
    assert!(matches!(e.kind, "closed" | "malformed"), "{e}");
}

#[tokio::test]
async fn times_out_and_reports_connect_failures() {
    let addr = serve(|_| None).await;
    let e = client()
        .get(&format!("http://{addr}/"), Duration::from_millis(200), 16)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "timeout");
    // A port that was just free: connection refused.
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let e = client()
        .get(&format!("http://{free}/"), Duration::from_secs(5), 16)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "connect");
}

#[tokio::test]
async fn speaks_https_and_checks_the_name() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let der = params.self_signed(&key).unwrap().der().clone();
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], pkcs8)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            read_head_text(&mut tls).await;
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .await;
            let _ = tls.shutdown().await;
        }
    });
    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let ours = HttpClient::new(tls);
    let wait = Duration::from_secs(5);
    let r = ours
        .get(&format!("https://localhost:{port}/"), wait, 64)
        .await;
    assert_eq!(r.map(|r| r.body), Ok(Bytes::from_static(b"{}")));
    // A name the certificate does not hold is refused.
    let e = ours
        .get(&format!("https://127.0.0.1:{port}/"), wait, 64)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "tls", "{e}");
    // The shared client trusts the system roots only, not this self-signed certificate.
    let e = client()
        .get(&format!("https://localhost:{port}/"), wait, 64)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "tls", "{e}");
}
