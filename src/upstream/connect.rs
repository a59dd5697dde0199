//! One attempt at one backend: TCP connect (TCP_NODELAY, keepalive), TLS for `wss://`, the PROXY
//! header when the pool asks for it ([`open`], shared with `plain`), then the upgrade request and
//! its answer head (`h1`). Says whether a failure happened before any answer (the caller may try
//! another backend) or after.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use tokio::time::Instant;

use super::h1::{self, Answer, Link, Outgoing};
use super::{Backend, BackendStream, Bounds, Pool, proxy_out, tls};
use crate::error::Refusal;

/// How an attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Before an answer head: another backend may be tried.
    Retry(Refusal),
    /// The backend answered something unusable: final.
    Final(Refusal),
}

/// Idle time before TCP keepalive probes on backend sockets (dead peers behind NAT).
const KEEPALIVE: Duration = Duration::from_secs(60);

pub async fn attempt(
    pool: &Pool,
    backend: &Arc<Backend>,
    request: &Outgoing,
    client: SocketAddr,
    destination: SocketAddr,
    bounds: Bounds,
    deadline: Instant,
) -> Result<(Answer, Link), Failure> {
    let stream = open(pool, backend, client, destination, bounds.connect)
        .await
        .map_err(Failure::Retry)?;
    // The connection lives on (body or upgrade) until `deadline` at most.
    match h1::send(stream, request.clone(), bounds.max_head_bytes, deadline).await {
        Ok(answered) => Ok(answered),
        Err(e) => match h1::refusal_for(&e) {
            // The connection's driver stops at `deadline`, which ends the exchange as a close
            // would: a backend still dribbling its answer then is too slow (504), not closed.
            Refusal::BackendClosed if Instant::now() >= deadline => {
                attempt_failed(backend, "backend did not answer in time", &"deadline");
                Err(Failure::Retry(Refusal::BackendTimeout))
            }
            Refusal::BackendClosed => {
                attempt_failed(backend, "backend closed before answering", &e);
                Err(Failure::Retry(Refusal::BackendClosed))
            }
            other => {
                tracing::warn!(backend = %backend.url, reason = other.reason(), error = %e, "backend answer unusable");
                Err(Failure::Final(other))
            }
        },
    }
}

/// A connected stream to `backend`, ready for HTTP: TCP (bounded by `timeout`), the PROXY header
/// when the pool sends one, then TLS for `wss://` (bounded by `timeout` again). Any failure
/// happened before a request was sent: another backend may be tried.
pub async fn open(
    pool: &Pool,
    backend: &Backend,
    client: SocketAddr,
    destination: SocketAddr,
    timeout: Duration,
) -> Result<BackendStream, Refusal> {
    let mut tcp = connect_tcp(backend, timeout).await?;
    // The PROXY header goes first on the wire, before any TLS: it names the client and the
    // address the client connected to.
    if let Some(version) = pool.proxy_protocol {
        let header = proxy_out::header(version, client, destination);
        tcp.write_all(&header)
            .await
            .map_err(|_| Refusal::BackendClosed)?;
    }
    match (&pool.connector, backend.tls) {
        (Some(connector), true) => {
            let tls = tls::handshake(connector, tcp, &backend.server_name, timeout)
                .await
                .map_err(|reason| {
                    tracing::warn!(backend = %backend.url, %reason, "backend TLS handshake failed");
                    Refusal::BackendUnavailable
                })?;
            Ok(BackendStream::Tls(Box::new(tls)))
        }
        _ => Ok(BackendStream::Plain(tcp)),
    }
}

async fn connect_tcp(backend: &Backend, timeout: Duration) -> Result<TcpStream, Refusal> {
    match tokio::time::timeout(timeout, TcpStream::connect(backend.authority.as_str())).await {
        Err(_) => {
            attempt_failed(backend, "backend connect timed out", &"timeout");
            Err(Refusal::BackendConnectTimeout)
        }
        Ok(Err(e)) => {
            attempt_failed(backend, "backend connect failed", &e);
            Err(Refusal::BackendUnavailable)
        }
        Ok(Ok(stream)) => {
            // Small frames must not wait for Nagle; failures to tune the socket are harmless.
            let _ = stream.set_nodelay(true);
            let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
            Ok(stream)
        }
    }
}

/// Log a failed attempt at `backend` that another backend may make up for: at warn for the
/// first failure of an outage, at debug while the backend keeps failing (its ejection or its
/// active checks say the rest once), so a dead backend is not one warn per connection.
pub fn attempt_failed(backend: &Backend, what: &str, error: &dyn std::fmt::Display) {
    if backend.health.failure_told() {
        tracing::debug!(backend = %backend.url, %error, "{what}");
    } else {
        tracing::warn!(backend = %backend.url, %error, "{what}");
    }
}
