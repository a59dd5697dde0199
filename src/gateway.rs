//! The top of the process: a validated config, the listeners bound for it, and the shutdown
//! sequence (stop accepting, drain tunnels up to `drain_timeout`, then close what is left).
//!
//! `main` and the tests use the same three calls: [`Gateway::new`], [`Gateway::bind`],
//! [`Gateway::serve`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Bind, Config, ConfigErrors};
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
    /// `/readyz`: true until a shutdown starts.
    ready: Arc<std::sync::atomic::AtomicBool>,
}

/// Re-reads the config file and swaps the runtime (SIGHUP). Open tunnels are never touched; new
/// connections see the new runtime; a failed reload keeps the running one.
#[derive(Clone)]
pub struct Reloader {
    path: Option<PathBuf>,
    runtime: Arc<ArcSwap<Runtime>>,
    /// One reload at a time.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Applies `log.level` of a reloaded config.
    set_log_level: Option<crate::lifecycle::logging::LevelSetter>,
    stats: Arc<Stats>,
}

impl Reloader {
    /// Apply `log.level` of each reloaded config through `setter`.
    pub fn with_log_level(mut self, setter: crate::lifecycle::logging::LevelSetter) -> Reloader {
        self.set_log_level = Some(setter);
        self
    }

    /// Read, parse, validate and build the whole new runtime off the data path, then swap.
    /// Returns the new generation, or every error (the running config stays).
    pub async fn reload(&self) -> Result<u64, ConfigErrors> {
        let _one = self.lock.lock().await;
        let result = self.reload_locked().await;
        let metrics = &self.stats.metrics;
        match &result {
            Ok(generation) => {
                metrics.reload("ok");
                metrics.config_generation(*generation);
            }
            Err(_) => metrics.reload("failed"),
        }
        result
    }

    async fn reload_locked(&self) -> Result<u64, ConfigErrors> {
        let path = self.path.clone().ok_or_else(|| {
            ConfigErrors(vec![crate::config::ConfigError {
                file: "<config>".into(),
                line: 0,
                col: 0,
                path: String::new(),
                message: "this configuration was not loaded from a file; nothing to reload".into(),
            }])
        })?;
        let runtime = Arc::clone(&self.runtime);
        // Certificates, keys and the file itself are read on a blocking thread.
        let built = tokio::task::spawn_blocking(move || {
            let config = crate::config::load_file(&path)?;
            let old = runtime.load_full();
            let new = Runtime::build(&config, Some(&old))?;
            Ok::<_, ConfigErrors>((runtime, old, new, config.log.level))
        })
        .await
        .map_err(|e| {
            ConfigErrors(vec![crate::config::ConfigError {
                file: "<reload>".into(),
                line: 0,
                col: 0,
                path: String::new(),
                message: format!("reload task failed: {e}"),
            }])
        })??;
        let (runtime, old, new, level) = built;
        if let Some(set) = &self.set_log_level {
            set(&level);
        }
        let generation = new.generation;
        start_health(&new, &self.stats);
        runtime.store(Arc::new(new));
        old.health_stop.cancel();
        Ok(generation)
    }

    /// The generation of the runtime in use.
    pub fn generation(&self) -> u64 {
        self.runtime.load().generation
    }
}

fn start_health(rt: &Runtime, stats: &Stats) {
    for pool in &rt.pools {
        pool.start_health_reporting(rt.health_stop.clone(), Some(&stats.metrics));
    }
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
        let runtime = Runtime::build(&config, None)?;
        Ok(Gateway {
            config,
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            stats: Arc::new(Stats::default()),
            close_tunnels: CancellationToken::new(),
            ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    /// Counters shared with the data path.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// The readiness flag `/readyz` reports; false once a shutdown starts.
    pub fn ready_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.ready)
    }

    /// The admin listener address from the config, if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.config.admin
    }

    /// A handle that reloads the config file while [`Gateway::serve`] runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            path: self.config.source.clone(),
            runtime: Arc::clone(&self.runtime),
            lock: Arc::new(tokio::sync::Mutex::new(())),
            set_log_level: None,
            stats: Arc::clone(&self.stats),
        }
    }

    /// Cancelling this token closes every open tunnel and handshake at once (a second signal
    /// during a drain does this).
    pub fn closer(&self) -> CancellationToken {
        self.close_tunnels.clone()
    }

    /// Bind every configured listener, or take it from systemd socket activation
    /// (`bind: "systemd:NAME"`). Must be called inside a tokio runtime.
    pub fn bind(&self) -> io::Result<Vec<BoundListener>> {
        let mut inherited = if self
            .config
            .listeners
            .iter()
            .any(|l| matches!(l.bind, Bind::Systemd(_)))
        {
            crate::lifecycle::systemd::listeners()?
        } else {
            HashMap::new()
        };
        self.config
            .listeners
            .iter()
            .map(|l| {
                let socket = match &l.bind {
                    Bind::Addr(addr) => listener::bind(*addr),
                    Bind::Systemd(name) => match inherited.remove(name) {
                        Some(std_listener) => TcpListener::from_std(std_listener),
                        None => Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("no socket named {name:?} was passed by systemd (FileDescriptorName=)"),
                        )),
                    },
                }
                .map_err(|e| {
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
        start_health(&self.runtime.load(), &self.stats);
        self.stats
            .metrics
            .config_generation(self.runtime.load().generation);
        let mode = shutdown.await;
        self.ready
            .store(false, std::sync::atomic::Ordering::Relaxed);
        maintenance.abort();
        self.runtime.load().health_stop.cancel();
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
