//! The TLS stage: a handshake bounded by `tls_handshake_timeout`, and the SNI name it carried.
//! rustls speaks TLS 1.2 and 1.3 only and never renegotiates; certificates and versions come
//! from `runtime::tls`.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Why a TLS handshake did not complete (for the log and the counter).
#[derive(Debug)]
pub enum TlsFailure {
    Timeout,
    Handshake(std::io::Error),
}

/// Run the server handshake within `timeout`.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, TlsFailure> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Err(_) => Err(TlsFailure::Timeout),
        Ok(Err(e)) => Err(TlsFailure::Handshake(e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// The SNI host name the client sent, lower-cased.
pub fn sni(stream: &TlsStream<TcpStream>) -> Option<String> {
    stream
        .get_ref()
        .1
        .server_name()
        .map(str::to_ascii_lowercase)
}
