//! Everything that talks to a backend before the tunnel: pick one from the pool, connect within
//! `backend_connect_timeout` (TLS for `wss://`, a PROXY header when the pool asks), send the
//! rebuilt upgrade request, read its answer head (on hyper's HTTP/1 client: `h1`). A backend that refuses, times out or resets
//! before an answer head is skipped for the next one, up to the pool's `retries`, all inside one
//! `backend_handshake_timeout`; an answer, whatever it is, is never retried. Judging the answer is
//! `proxy::verify`; reading a non-101 body and taking the stream back after a 101 is `h1`.

pub mod balance;
pub mod connect;
pub mod h1;
pub mod health;
pub mod plain;
pub mod pool;
pub mod proxy_out;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Refusal;
pub use h1::{Answer, Link, Outgoing};
pub use pool::{Backend, LiveGuard, Pool};
pub use stream::BackendStream;

/// Bounds of one backend exchange.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub connect: Duration,
    pub handshake: Duration,
    pub max_head_bytes: usize,
}

/// A backend that answered (any status), ready for `verify`.
pub struct Answered {
    pub answer: Answer,
    /// The connection task: keep it until the body is read or the stream is taken back.
    pub link: Link,
    pub backend: Arc<Backend>,
    /// When the whole exchange must be over (the relay of a non-101 body uses what is left).
    pub deadline: Instant,
}

/// Pick, connect, send `request`, read the answer head; fail over as the pool allows.
/// `client` and `destination` (the address the client connected to) go into PROXY headers.
pub async fn exchange(
    pool: &Pool,
    key: Option<&[u8]>,
    request: &Outgoing,
    client: SocketAddr,
    destination: SocketAddr,
    bounds: Bounds,
) -> Result<Answered, Refusal> {
    let deadline = Instant::now() + bounds.handshake;
    let mut tried: Vec<usize> = Vec::new();
    let mut last = None;
    for attempt in 0..=pool.retries {
        let Some(backend) = pool.next_untried(&mut tried, key) else {
            break;
        };
        // Split what is left of the budget over the attempts still allowed, so one backend that
        // hangs cannot use up the failover.
        let left = pool.retries - attempt + 1;
        let now = Instant::now();
        let share = deadline.saturating_duration_since(now) / left;
        let attempt_deadline = if left == 1 { deadline } else { now + share };
        let result = tokio::time::timeout_at(
            attempt_deadline,
            connect::attempt(
                pool,
                &backend,
                request,
                client,
                destination,
                bounds,
                deadline,
            ),
        )
        .await;
        match result {
            Ok(Ok((answer, link))) => {
                return Ok(Answered {
                    answer,
                    link,
                    backend,
                    deadline,
                });
            }
            Ok(Err(connect::Failure::Retry(refusal))) => {
                backend.health.report_failure(&pool.passive, &backend.url);
                last = Some(refusal);
            }
            Ok(Err(connect::Failure::Final(refusal))) => {
                backend.health.report_failure(&pool.passive, &backend.url);
                return Err(refusal);
            }
            Err(_) => {
                connect::attempt_failed(&backend, "backend did not answer in time", &"deadline");
                backend.health.report_failure(&pool.passive, &backend.url);
                last = Some(Refusal::BackendTimeout);
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(last.unwrap_or(Refusal::BackendUnavailable))
}
