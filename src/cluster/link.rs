//! One connection to the fleet's Redis/Valkey for one `cluster:` config: the client (TLS with the
//! system roots or `ca:`), a lazily connecting, self-reconnecting multiplexed connection, and the
//! one way every call goes: bounded by a time budget, timed into the latency histogram, failures
//! counted by kind, and the up/down state kept.
//!
//! While Redis is down, admission calls are not even tried ([`Link::is_up`]): a handshake never
//! waits for a reconnect. The heartbeat keeps trying in the background and marks the link up
//! again on its first answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, FromRedisValue, Pipeline, RedisError, ServerErrorKind};
use tokio_util::sync::CancellationToken;

use super::keys::Keys;
use super::scripts;
use crate::config::ClusterConfig;
use crate::metrics::Metrics;

/// Background calls (heartbeat, re-registration, releases, publish) get at least this long.
pub const BACKGROUND_BUDGET: Duration = Duration::from_secs(1);

/// Why a call did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// Past its budget.
    Timeout,
    /// Refused, reset, not connected.
    Connection,
    /// Redis answered with an error (a script fault, wrong type, out of memory).
    Script,
    /// Not tried: the link is down until the heartbeat gets an answer.
    Down,
}

impl CallError {
    /// The `kind` label of `wsgate_redis_errors`.
    pub fn kind(self) -> &'static str {
        match self {
            CallError::Timeout => "timeout",
            CallError::Connection => "connection",
            CallError::Script => "script",
            CallError::Down => "down",
        }
    }
}

/// The connection of one `cluster:` config; replaced whole on a reload that changes it.
pub struct Link {
    pub cfg: ClusterConfig,
    pub keys: Keys,
    client: Client,
    conn: ConnectionManager,
    up: AtomicBool,
    metrics: Arc<Metrics>,
    /// Stops this link's background tasks when a reload replaces it.
    pub stop: CancellationToken,
}

impl Link {
    /// A link that connects on first use. Errors: the URL or the `ca:` file (already checked
    /// by validation, so only a file changed since then).
    pub fn new(cfg: &ClusterConfig, metrics: Arc<Metrics>) -> Result<Link, String> {
        let client = client(cfg)?;
        let budget = cfg.timeout.max(BACKGROUND_BUDGET);
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(budget))
            .set_response_timeout(Some(budget))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| format!("cluster.redis: {e}"))?;
        metrics.fleet().redis_up(false);
        Ok(Link {
            keys: Keys::new(&cfg.prefix),
            cfg: cfg.clone(),
            client,
            conn,
            // Optimistic until a call fails: the first handshakes try Redis (bounded) rather
            // than follow `on_error` before the first heartbeat had a chance.
            up: AtomicBool::new(true),
            metrics,
            stop: CancellationToken::new(),
        })
    }

    /// The client, for the pub/sub connection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the last call (or heartbeat) got an answer.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    fn set_up(&self, up: bool) {
        self.metrics.fleet().redis_up(up);
        if self.up.swap(up, Ordering::AcqRel) != up {
            if up {
                tracing::info!(redis = %self.cfg.redis_redacted(), "fleet: Redis answers");
            } else {
                tracing::warn!(redis = %self.cfg.redis_redacted(), "fleet: Redis unreachable; fleet checks follow on_error until it answers");
            }
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Run `pipe` (one round trip) within `budget`; a pipeline whose script Redis does not know
    /// (a restarted server) loads the scripts and is sent once more, within the same budget.
    /// `admission`: skipped while the link is down.
    pub async fn run<T: FromRedisValue>(
        &self,
        call: &'static str,
        pipe: &Pipeline,
        budget: Duration,
        admission: bool,
    ) -> Result<T, CallError> {
        if admission && !self.is_up() {
            self.metrics.fleet().error(CallError::Down.kind());
            return Err(CallError::Down);
        }
        let started = Instant::now();
        let mut conn = self.conn.clone();
        let attempt = async {
            match pipe.query_async::<T>(&mut conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    load_scripts(&mut conn).await?;
                    pipe.query_async::<T>(&mut conn).await
                }
                other => other,
            }
        };
        let result = match tokio::time::timeout(budget, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(CallError::Timeout),
        };
        self.metrics.fleet().call(call, started.elapsed());
        match &result {
            Ok(_) => self.set_up(true),
            Err(e) => {
                self.metrics.fleet().error(e.kind());
                if *e != CallError::Script {
                    self.set_up(false);
                }
            }
        }
        result
    }

    /// The budget of a call a handshake waits for.
    pub fn admission_budget(&self) -> Duration {
        self.cfg.timeout
    }

    /// The budget of a background call.
    pub fn background_budget(&self) -> Duration {
        self.cfg.timeout.max(BACKGROUND_BUDGET)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn classify(e: &RedisError) -> CallError {
    if e.is_timeout() {
        CallError::Timeout
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        CallError::Connection
    } else {
        match e.kind() {
            ErrorKind::Server(_) | ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
                CallError::Script
            }
            _ => CallError::Connection,
        }
    }
}

async fn load_scripts(conn: &mut ConnectionManager) -> redis::RedisResult<()> {
    for script in scripts::all() {
        script.load_async(conn).await?;
    }
    Ok(())
}

/// The client of `cfg.redis`: `rediss://` trusts `cfg.ca` when given, else the system roots.
fn client(cfg: &ClusterConfig) -> Result<Client, String> {
    let url = cfg.redis.as_str();
    let built = match &cfg.ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cluster.ca: cannot read {}: {e}", path.display()))?;
            Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
        }
        None => Client::open(url),
    };
    built.map_err(|e| format!("cluster.redis: {} is not usable: {e}", cfg.redis_redacted()))
}
