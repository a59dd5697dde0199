//! The top of the process: a validated config, the listeners bound for it, and the shutdown
//! sequence (stop accepting, drain tunnels up to `drain_timeout`, then close what is left).
//!
//! `main` and the tests use the same three calls: [`Gateway::new`], [`Gateway::bind`],
//! [`Gateway::serve`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::server::{AdminDeps, AdminServer};
use crate::config::{AdminBind, Bind, Config, ConfigErrors};
use crate::proxy::accept_set::{self, AcceptSet};
use crate::proxy::listener;
pub use crate::reload::Reloader;
use crate::runtime::Runtime;
use crate::session::{Reason, Registry};
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
    /// A socket the caller bound (and may keep a clone of), for listener `name`: a test that
    /// must know the port before wsgate starts, or keep it across restarts. Must be called
    /// inside a tokio runtime.
    pub fn from_std(name: &str, socket: std::net::TcpListener) -> io::Result<BoundListener> {
        socket.set_nonblocking(true)?;
        Ok(BoundListener {
            name: name.to_owned(),
            socket: TcpListener::from_std(socket)?,
        })
    }

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
    /// Cancelled when a drain runs out of time: cuts the connections (handshakes in flight,
    /// HTTP/2 connections); the tunnels themselves are cut through the session registry.
    close_tunnels: CancellationToken,
    /// Cancelled by a second signal: Close 1001 to every session now, cut after `close_timeout`.
    hurry: CancellationToken,
    /// The running accept loops (shared with the reloader, which adds and removes listeners).
    accept: Arc<AcceptSet>,
    /// `/readyz`: true until a shutdown starts.
    ready: Arc<std::sync::atomic::AtomicBool>,
    /// The admin endpoint, once [`Gateway::start_admin`] started it (reloads move it).
    admin: Arc<AdminServer>,
}

pub(crate) fn start_health(rt: &Runtime, stats: &Stats) {
    for pool in &rt.pools {
        pool.start_health_reporting(rt.health_stop.clone(), Some(&stats.metrics));
    }
    // Certificate renewal: started once per manager; a reload that kept one changes nothing.
    for manager in &rt.acme {
        manager.start(Arc::clone(&stats.metrics));
    }
}

/// Every listener and route `rt` names gets its series at zero (at start and on reload).
pub(crate) fn prime_metrics(rt: &Runtime, stats: &Stats) {
    let listeners = rt.listeners.keys().map(String::as_str);
    let routes = rt.routes.iter().map(|r| &*r.label);
    stats.metrics.prime(listeners, routes);
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

/// Ask every live session to close (Close 1001 `going away`).
fn close_all(sessions: &Registry) {
    let n = sessions.close_where(|_| true, &Reason::Drain);
    tracing::debug!(sessions = n, "Close 1001 sent to every session");
}

/// Close 1001 to the sessions open now, spread evenly over `spread` (oldest first), so their
/// clients do not all reconnect in the same second. Sessions keep working until their turn.
async fn spread_closes(sessions: Arc<Registry>, spread: Duration) {
    let all = sessions.snapshot();
    let n = all.len().max(1) as u32;
    let start = tokio::time::Instant::now();
    for (i, handle) in all.iter().enumerate() {
        let turn = start + spread.mul_f64(f64::from(i as u32) / f64::from(n));
        tokio::time::sleep_until(turn).await;
        handle.request_close(Reason::Drain);
    }
}

/// Grace period for tunnels to unwind after they were told to close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

impl Gateway {
    /// Build everything the config names (certificates, routes, pools) without binding.
    pub fn new(config: Config) -> Result<Gateway, ConfigErrors> {
        let runtime = Runtime::build(&config, None)?;
        let stats = Arc::new(Stats::default());
        prime_metrics(&runtime, &stats);
        crate::session::revoke::watch_key_sets(&runtime, &stats.sessions);
        let runtime = Arc::new(ArcSwap::from_pointee(runtime));
        let close_tunnels = CancellationToken::new();
        let accept = AcceptSet::new(
            Arc::clone(&runtime),
            Arc::clone(&stats),
            close_tunnels.clone(),
        );
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let admin = Arc::new(AdminServer::new(AdminDeps {
            metrics: Arc::clone(&stats.metrics),
            ready: Arc::clone(&ready),
            fleet: Arc::clone(&stats.fleet),
        }));
        Ok(Gateway {
            config,
            runtime,
            stats,
            close_tunnels,
            hurry: CancellationToken::new(),
            accept: Arc::new(accept),
            ready,
            admin,
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

    /// The bearer token `/sessions*` require (`admin.token_env`), if one is configured.
    pub fn admin_token(&self) -> Option<String> {
        self.runtime
            .load()
            .admin_token
            .as_deref()
            .map(str::to_owned)
    }

    /// Where the config puts the admin endpoint, if anywhere.
    pub fn admin_bind(&self) -> Option<&AdminBind> {
        self.config.admin.as_ref()
    }

    /// Bind and serve the admin endpoint `admin.bind` names (TCP or `unix:`), if any, until
    /// [`Gateway::serve`] ends; from now on a reload that changes `admin.bind` moves it.
    pub async fn start_admin(&self) -> io::Result<()> {
        let bind = self.config.admin.as_ref();
        self.admin.start(bind, self.admin_token()).await
    }

    /// A handle that reloads the config file while [`Gateway::serve`] runs.
    pub fn reloader(&self) -> Reloader {
        Reloader::new(
            self.config.source.clone(),
            Arc::clone(&self.runtime),
            Arc::clone(&self.stats),
            Arc::clone(&self.accept),
            Arc::clone(&self.admin),
        )
    }

    /// The addresses being accepted on, by listener name (after `serve` started them).
    pub fn listener_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.accept.addrs()
    }

    /// Cancelling this token during a drain sends Close 1001 to every session at once and cuts
    /// what is left after `limits.close_timeout` (a second signal does this).
    pub fn closer(&self) -> CancellationToken {
        self.hurry.clone()
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
                .map_err(|e| accept_set::describe(e, &l.name, &l.bind))?;
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
        let close_tunnels = self.close_tunnels.clone();
        for bound in listeners {
            let bind = self
                .config
                .listeners
                .iter()
                .find(|l| l.name == bound.name)
                .map(|l| l.bind.clone());
            let bind = bind.unwrap_or_else(|| Bind::Systemd(bound.name.clone()));
            self.accept.start(&bound.name, bind, bound.socket);
        }
        let tracker = self.accept.tracker.clone();
        if let Err(e) = self.stats.fleet.configure(self.config.cluster.as_ref()) {
            tracing::error!(error = %e, "fleet: cannot join; fleet checks follow on_error");
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
        self.runtime.load().acme.iter().for_each(|m| m.stop());
        self.accept.stop_all().await;
        tracker.close();
        let open = self.stats.open_tunnels();
        let limits = self.runtime.load().limits.clone();
        let sessions = Arc::clone(&self.stats.sessions);
        sessions.start_draining();
        let drained = if mode == Shutdown::Drain {
            tracing::info!(open_tunnels = open, budget = ?limits.drain_timeout, spread = ?limits.drain_spread, "draining");
            let spread = tokio::spawn(spread_closes(Arc::clone(&sessions), limits.drain_spread));
            let drained = tokio::select! {
                r = tokio::time::timeout(limits.drain_timeout, tracker.wait()) => r.is_ok(),
                () = self.hurry.cancelled() => {
                    tracing::warn!("closing every session now");
                    close_all(&sessions);
                    tokio::time::timeout(limits.close_timeout, tracker.wait()).await.is_ok()
                }
            };
            spread.abort();
            drained
        } else {
            tracing::info!(open_tunnels = open, "closing all sessions");
            close_all(&sessions);
            tokio::time::timeout(limits.close_timeout, tracker.wait())
                .await
                .is_ok()
        };
        if drained {
            tracing::info!("drained");
            self.admin.stop().await;
            self.stats.fleet.leave().await;
            return;
        }
        tracing::warn!(
            open_tunnels = self.stats.open_tunnels(),
            "drain budget spent, cutting the remaining connections"
        );
        sessions.cut_all();
        close_tunnels.cancel();
        if tokio::time::timeout(CLOSE_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::error!("connections still open after close; exiting anyway");
        }
        self.admin.stop().await;
        self.stats.fleet.leave().await;
    }
}
