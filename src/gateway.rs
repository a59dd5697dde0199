//! The top of the process: a validated config, the listeners bound for it, and the shutdown
//! sequence (stop accepting, drain tunnels up to `drain_timeout`, then close what is left).
//!
//! `main` and the tests use the same three calls: [`Gateway::new`], [`Gateway::bind`],
//! [`Gateway::serve`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigErrors};
use crate::proxy::listener;
use crate::runtime::Runtime;
use crate::stats::Stats;

/// How to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Stop accepting, let tunnels finish for up to `drain_timeout`, then close the rest.
    Drain,
    /// Stop accepting and close every tunnel now.
    Immediate,
}

/// A listening socket for one configured listener.
#[derive(Debug)]
pub struct BoundListener {
    /// The listener's `name` from the config.
    pub name: String,
    pub(crate) socket: TcpListener,
}

impl BoundListener {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// A running (or ready to run) wsgate.
pub struct Gateway {
    config: Config,
    runtime: Arc<ArcSwap<Runtime>>,
    stats: Arc<Stats>,
    close_tunnels: CancellationToken,
}

/// How often keyed limiter state is pruned.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// Keep keyed limiter memory bounded: forget per-address state nobody used lately.
async fn maintain(runtime: Arc<ArcSwap<Runtime>>) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let rt = runtime.load();
        rt.per_ip.maintain();
        tracing::debug!(
            rate_keys = rt.per_ip.rate_keys(),
            conn_keys = rt.per_ip.conn_keys(),
            "limiter maintenance"
        );
    }
}

/// Grace period for tunnels to unwind after they were told to close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

impl Gateway {
    /// Build everything the config names (certificates, routes, pools) without binding.
    pub fn new(config: Config) -> Result<Gateway, ConfigErrors> {
        let runtime = Runtime::build(&config)?;
        Ok(Gateway {
            config,
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            stats: Arc::new(Stats::default()),
            close_tunnels: CancellationToken::new(),
        })
    }

    /// Counters shared with the data path.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Cancelling this token closes every open tunnel and handshake at once (a second signal
    /// during a drain does this).
    pub fn closer(&self) -> CancellationToken {
        self.close_tunnels.clone()
    }

    /// Bind every configured listener. Must be called inside a tokio runtime.
    pub fn bind(&self) -> io::Result<Vec<BoundListener>> {
        self.config
            .listeners
            .iter()
            .map(|l| {
                let socket = listener::bind(l.bind).map_err(|e| {
                    io::Error::new(e.kind(), format!("listener {} on {}: {e}", l.name, l.bind))
                })?;
                Ok(BoundListener {
                    name: l.name.clone(),
                    socket,
                })
            })
            .collect()
    }

    /// Accept on `listeners` until `shutdown` resolves, then stop as it says.
    pub async fn serve(
        self,
        listeners: Vec<BoundListener>,
        shutdown: impl Future<Output = Shutdown>,
    ) {
        let tracker = TaskTracker::new();
        let stop_accepting = CancellationToken::new();
        let close_tunnels = self.close_tunnels.clone();
        let mut accept_loops = Vec::with_capacity(listeners.len());
        for bound in listeners {
            let ctx = listener::AcceptCtx {
                name: Arc::from(bound.name.as_str()),
                runtime: Arc::clone(&self.runtime),
                stats: Arc::clone(&self.stats),
                tracker: tracker.clone(),
                close: close_tunnels.clone(),
            };
            accept_loops.push(tokio::spawn(listener::accept_loop(
                bound.socket,
                ctx,
                stop_accepting.clone(),
            )));
        }

        let maintenance = tokio::spawn(maintain(Arc::clone(&self.runtime)));
        let stop_health = CancellationToken::new();
        for pool in &self.runtime.load().pools {
            pool.start_health(stop_health.clone());
        }
        let mode = shutdown.await;
        maintenance.abort();
        stop_health.cancel();
        stop_accepting.cancel();
        for handle in accept_loops {
            // An accept loop only ends by cancellation; a join error means it panicked, which
            // must not stop the drain of everything else.
            let _ = handle.await;
        }
        tracker.close();
        let open = self.stats.open_tunnels();
        if mode == Shutdown::Drain {
            let budget = self.runtime.load().limits.drain_timeout;
            tracing::info!(open_tunnels = open, ?budget, "draining");
            let drained = tokio::select! {
                r = tokio::time::timeout(budget, tracker.wait()) => r.is_ok(),
                () = close_tunnels.cancelled() => false,
            };
            if drained {
                tracing::info!("drained");
                return;
            }
            tracing::warn!(
                open_tunnels = self.stats.open_tunnels(),
                "drain timeout reached, closing the remaining tunnels"
            );
        } else {
            tracing::info!(open_tunnels = open, "closing all tunnels");
        }
        close_tunnels.cancel();
        if tokio::time::timeout(CLOSE_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::error!("connections still open after close; exiting anyway");
        }
    }
}
