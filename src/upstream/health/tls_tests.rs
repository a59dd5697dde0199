//! `wss://` backends through the pool's TLS connector: a test CA made by rcgen, the system roots
//! (which do not trust it), a wrong server name, and a backend that requires a client
//! certificate (mTLS). The TLS backend speaks the same WebSocket check protocol as `tests`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::probe::probe;
use super::tests::{Answer, serve_ws, target, ws_check};
use crate::config::BackendTls;
use crate::upstream::tls;

/// A CA, a `localhost` server certificate and a client certificate, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    ca_der: CertificateDer<'static>,
    server: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki() -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
        .expect("self-signed CA");
    let leaf = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec![name.to_owned()]).expect("SAN");
        let cert = params.signed_by(&key, &issuer).expect("signed leaf");
        (cert, key)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path
    };
    let (server_cert, server_key) = leaf("localhost");
    let (client_cert, client_key) = leaf("wsgate-client");
    let server_key = PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes());
    Pki {
        ca: write("ca.pem", issuer.pem()),
        ca_der: issuer.der().clone(),
        server: (
            vec![server_cert.der().clone()],
            server_key.expect("server key"),
        ),
        client_cert: write("client.pem", client_cert.pem()),
        client_key: write("client.key", client_key.serialize_pem()),
        _dir: dir,
    }
}

/// A TLS backend with the `localhost` certificate, speaking the WebSocket check protocol;
/// with `require_client_cert`, only clients with a certificate from the CA get through.
async fn tls_backend(pki: &Pki, require_client_cert: bool) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3");
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).expect("CA is a trust anchor");
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let (chain, key) = (pki.server.0.clone(), pki.server.1.clone_key());
    let config = builder.with_single_cert(chain, key).expect("server cert");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_ws(tls, Answer::Correct).await;
                }
            });
        }
    });
    addr
}

fn backend_tls(pki: &Pki, client: bool) -> BackendTls {
    BackendTls {
        ca: Some(pki.ca.clone()),
        server_name: None,
        client_cert: client.then(|| pki.client_cert.clone()),
        client_key: client.then(|| pki.client_key.clone()),
    }
}

async fn handshake_to(
    addr: SocketAddr,
    connector: &TlsConnector,
    name: &str,
) -> Result<(), String> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tls::handshake(connector, tcp, name, Duration::from_secs(5))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn wss_backend_is_trusted_through_the_pool_ca_only() {
    let pki = pki();
    let addr = tls_backend(&pki, false).await;
    let with_ca = tls::connector(Some(&backend_tls(&pki, false))).expect("connector");
    assert_eq!(
        with_ca.config().alpn_protocols,
        vec![b"http/1.1".to_vec()],
        "offers HTTP/1.1 only"
    );
    assert_eq!(handshake_to(addr, &with_ca, "localhost").await, Ok(()));
    let system = tls::connector(None).expect("system roots connector");
    let untrusted = handshake_to(addr, &system, "localhost").await.unwrap_err();
    assert_eq!(untrusted, "certificate not trusted: UnknownIssuer");
    let misnamed = handshake_to(addr, &with_ca, "other.test")
        .await
        .unwrap_err();
    assert!(misnamed.starts_with("name mismatch"), "{misnamed}");
    // The same through a WebSocket check over TLS.
    assert_eq!(
        probe(&target(addr, Some(with_ca)), &ws_check()).await,
        Ok(())
    );
    let down = probe(&target(addr, Some(system)), &ws_check()).await;
    assert_eq!(
        down,
        Err("certificate not trusted: UnknownIssuer".to_owned())
    );
}

#[tokio::test]
async fn mtls_backend_accepts_the_configured_client_certificate() {
    let pki = pki();
    let addr = tls_backend(&pki, true).await;
    let with_cert = tls::connector(Some(&backend_tls(&pki, true))).expect("connector");
    assert_eq!(
        probe(&target(addr, Some(with_cert)), &ws_check()).await,
        Ok(())
    );
    // Without one the server refuses (in TLS 1.3 the alert comes after the client's handshake).
    let without = tls::connector(Some(&backend_tls(&pki, false))).expect("connector");
    let refused = probe(&target(addr, Some(without)), &ws_check()).await;
    assert!(
        refused.is_err_and(|e| e.starts_with("answer")),
        "refused after the handshake"
    );
}

#[test]
fn connector_refuses_half_a_client_identity_and_a_missing_ca() {
    let pki = pki();
    let mut half = backend_tls(&pki, true);
    half.client_key = None;
    assert!(tls::connector(Some(&half)).is_err());
    let missing = BackendTls {
        ca: Some(PathBuf::from("/nonexistent/ca.pem")),
        ..BackendTls::default()
    };
    let err = tls::connector(Some(&missing)).err().unwrap_or_default();
    assert!(err.starts_with("tls.ca /nonexistent/ca.pem"), "{err}");
}
