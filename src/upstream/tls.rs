//! TLS towards `wss://` backends: the rustls client configuration of a pool and the bounded
//! handshake, with errors that name the reason (for the 502 log line).
//!
//! Owns: the trust anchors (the pool's `tls.ca` PEM bundle, else the system CA bundle), the
//! optional client certificate (mTLS), ALPN `http/1.1` and TLS 1.2+.
//! Does not own the TCP connect (`upstream::connect`), which name to verify (`config` resolves
//! `tls.server_name` against the URL host), or what happens after the handshake.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::BackendTls;

/// The only application protocol a WebSocket upgrade can ride on (RFC 6455 §4.1).
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The client configuration for a pool's `wss://` backends.
///
/// `None` (no `tls:` block) trusts the system roots and sends no client certificate.
pub fn connector(tls: Option<&BackendTls>) -> Result<TlsConnector, String> {
    let base = match tls.and_then(|t| t.ca.as_ref()) {
        Some(ca) => client_config(load_roots(ca)?)?,
        None => client_config(system_roots())?,
    };
    // Cloning keeps the verifier and provider; only what differs per pool is changed.
    let mut config = ClientConfig::clone(&base);
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    match tls.map(|t| (&t.client_cert, &t.client_key)) {
        Some((Some(cert), Some(key))) => {
            let certified = load_client_cert(cert, key, &config)?;
            config.client_auth_cert_resolver = Arc::new(ClientCert(Arc::new(certified)));
        }
        Some((Some(_), None)) | Some((None, Some(_))) => {
            return Err("tls: client_cert and client_key go together".to_owned());
        }
        _ => {}
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Where the system trust store usually lives (what `openssl-probe` looks for), after
/// `SSL_CERT_FILE`.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A client config trusting `roots`, on the aws-lc-rs provider, TLS 1.2 and 1.3.
fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's CA bundle: `SSL_CERT_FILE`, else the first bundle found at a usual place.
/// Empty (every `wss://` handshake fails, logged) when none is found.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
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
            tracing::debug!(path, added, "loaded the system CA bundle");
            return roots;
        }
    }
    tracing::warn!("no system CA bundle found; wss:// backends will fail (set SSL_CERT_FILE)");
    roots
}

/// The TLS handshake over `tcp`, verifying the certificate for `server_name` (a DNS name or an
/// IP literal), within `timeout`. The error says why, e.g. `certificate not trusted:
/// UnknownIssuer`, `name mismatch: ...`, `timeout`.
pub async fn handshake(
    connector: &TlsConnector,
    tcp: TcpStream,
    server_name: &str,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| format!("bad server name {server_name:?}: {e}"))?;
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => Err("timeout".to_owned()),
        Ok(Err(e)) => Err(describe(&e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// A short, specific reason for a failed handshake.
fn describe(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "closed during handshake".to_owned(),
            _ => format!("io: {e}"),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => describe_cert(c),
        rustls::Error::AlertReceived(alert) => format!("backend sent alert: {alert:?}"),
        rustls::Error::NoApplicationProtocol => "backend refused ALPN http/1.1".to_owned(),
        other => format!("tls: {other}"),
    }
}

fn describe_cert(c: &CertificateError) -> String {
    match c {
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            format!("name mismatch: expected {expected:?}, certificate has {presented:?}")
        }
        CertificateError::NotValidForName => "name mismatch".to_owned(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".to_owned()
        }
        CertificateError::UnknownIssuer
        | CertificateError::BadSignature
        | CertificateError::Revoked
        | CertificateError::InvalidPurpose
        | CertificateError::InvalidPurposeContext { .. } => {
            format!("certificate not trusted: {}", short(c))
        }
        other => format!("certificate rejected: {}", short(other)),
    }
}

/// The variant name without its context fields.
fn short(c: &CertificateError) -> String {
    let full = format!("{c:?}");
    match full.find([' ', '(', '{']) {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

/// Every certificate in a PEM bundle, as trust anchors; at least one must load.
fn load_roots(path: &std::path::Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("tls.ca {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.ca {shown}: {e}"))?;
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("tls.ca {shown}: no usable CA certificate"));
    }
    if ignored > 0 {
        tracing::warn!(path = %shown, ignored, "tls.ca: some certificates could not be used");
    }
    Ok(roots)
}

/// The client certificate chain and its key; the key must match the first certificate.
fn load_client_cert(
    cert: &std::path::Path,
    key: &std::path::Path,
    config: &ClientConfig,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls.client_cert {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.client_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls.client_cert {}: no certificate",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls.client_key {}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, config.crypto_provider())
        .map_err(|e| format!("tls.client_key {}: {e}", key.display()))
}

/// Always offers the one configured client certificate (rustls checks the signature scheme).
struct ClientCert(Arc<CertifiedKey>);

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCert")
    }
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
