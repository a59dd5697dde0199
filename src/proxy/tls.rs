//! The TLS stage: a handshake bounded by `tls_handshake_timeout`, the SNI name it carried and
//! the names of the client certificate rustls verified (listeners with `client_auth`).
//! rustls speaks TLS 1.2 and 1.3 only and never renegotiates; certificates and versions come
//! from `runtime::tls`; the connection itself is [`tls_conn`](super::tls_conn).

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::TcpStream;

use crate::proxy::tls_conn::{self, TlsConn};
use crate::runtime::client_auth::ClientCert;

/// Why a TLS handshake did not complete (for the log and the counter).
#[derive(Debug)]
pub enum TlsFailure {
    Timeout,
    Handshake(std::io::Error),
}

impl TlsFailure {
    /// The metric label: `timeout`, `client_certificate` (a listener with `client_auth` found
    /// none, or refused the one sent: rustls has sent the alert), or `handshake`.
    pub fn reason(&self) -> &'static str {
        let rustls_error = match self {
            TlsFailure::Timeout => return "timeout",
            TlsFailure::Handshake(e) => e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        };
        match rustls_error {
            Some(rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_)) => {
                "client_certificate"
            }
            _ => "handshake",
        }
    }
}

/// Run the server handshake within `timeout`. Returns the connection and the SNI host name
/// the client sent, lower-cased.
pub async fn accept(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<(TlsConn, Option<String>), TlsFailure> {
    match tokio::time::timeout(timeout, tls_conn::accept(config, tcp)).await {
        Err(_) => Err(TlsFailure::Timeout),
        Ok(Err(e)) => Err(TlsFailure::Handshake(e)),
        Ok(Ok(accepted)) => Ok(accepted),
    }
}

/// What the client's certificate names, when it sent one. rustls hands out peer certificates
/// only after its verifier accepted them (a refused one failed the handshake).
pub fn client_cert(stream: &TlsConn) -> Option<ClientCert> {
    let chain = stream.connection().peer_certificates()?;
    ClientCert::from_der(chain.first()?)
}
