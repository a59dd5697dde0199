//! Unit tests of `admit::http_client` (and helpers other tests share).

use super::*;
use tokio::io::AsyncReadExt;
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
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                match answer(String::from_utf8_lossy(&buf).into_owned()) {
                    Some(bytes) => {
                        let _ = s.write_all(&bytes).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    addr
}

#[test]
fn parses_urls() {
    let u = Url::parse("https://id.example.com/.well-known/jwks.json").unwrap();
    assert_eq!(
        (u.https, u.host.as_str(), u.port, u.path.as_str()),
        (true, "id.example.com", 443, "/.well-known/jwks.json")
    );
    let u = Url::parse("HTTP://127.0.0.1:9100?x=1").unwrap();
    assert_eq!((u.port, u.path.as_str()), (9100, "/?x=1"));
    assert_eq!(u.authority(), "127.0.0.1:9100");
    let u = Url::parse("http://[::1]:8080/a").unwrap();
    assert_eq!(
        (u.host.as_str(), u.authority()),
        ("::1", "[::1]:8080".into())
    );
    for bad in [
        "ftp://x/",
        "http://",
        "http://u@h/",
        "http://h:0/",
        "http://h:x/",
        "http://h/#f",
        "http://[::1/",
    ] {
        assert!(Url::parse(bad).is_err(), "{bad}");
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
    let r = get(&url, Duration::from_secs(5), 16).await.unwrap();
    assert_eq!(
        (r.status, r.body.as_slice(), r.header("x-a")),
        (200, &b"hello"[..], Some(&b"1"[..]))
    );
    let e = get(&url, Duration::from_secs(5), 4).await.unwrap_err();
    assert_eq!(e.kind, "malformed");
}

#[tokio::test]
async fn times_out_and_reports_connect_failures() {
    let addr = serve(|_| None).await;
    let e = get(&format!("http://{addr}/"), Duration::from_millis(200), 16)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "timeout");
    // A port that was just free: connection refused.
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let e = get(&format!("http://{free}/"), Duration::from_secs(5), 16)
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
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], pkcs8)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .await;
            let _ = tls.shutdown().await;
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let config = client_config(roots).unwrap();
    let head = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec();
    let tls = |name: &str| Some((config.clone(), name.to_owned()));
    let authority = addr.to_string();
    let wait = Duration::from_secs(5);
    let r = request(&authority, tls("localhost"), head.clone(), wait, Some(64)).await;
    assert_eq!(r.map(|r| r.body), Ok(b"{}".to_vec()));
    // A name the certificate does not hold is refused.
    let e = request(&authority, tls("other.test"), head, wait, Some(64))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "tls");
}
