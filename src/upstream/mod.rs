//! Everything that talks to a backend before the tunnel: pick one from the pool, connect within
//! `backend_connect_timeout`, send the rebuilt upgrade request, read its answer head (and, for a
//! non-101, its bounded body). Judging the answer is `proxy::verify`.

pub mod answer;
pub mod pool;
pub mod request;

use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::Refusal;
pub use pool::{Backend, Pool};

/// Open a TCP connection to the backend. Name resolution counts against the same timeout.
pub async fn connect(backend: &Backend, timeout: Duration) -> Result<TcpStream, Refusal> {
    match tokio::time::timeout(timeout, TcpStream::connect(backend.authority.as_str())).await {
        Err(_) => Err(Refusal::BackendConnectTimeout),
        Ok(Err(e)) => {
            tracing::warn!(backend = %backend.url, error = %e, "backend connect failed");
            Err(Refusal::BackendUnavailable)
        }
        Ok(Ok(stream)) => {
            // Small frames must not wait for Nagle; failure to set it is harmless.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}
