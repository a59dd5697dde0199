//! Reload: read, parse, validate and build the whole new runtime off the data path, then swap it
//! in (arc-swap). Open tunnels are never touched; new connections use the new runtime; a failed
//! build keeps the running one. State that must survive (caps, rate limits, backend health)
//! carries over inside `Runtime::build`; listeners are reconciled by `AcceptSet`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::admin::server::AdminServer;
use crate::config::ConfigErrors;
use crate::gateway::{prime_metrics, start_health};
use crate::proxy::accept_set::AcceptSet;
use crate::runtime::Runtime;
use crate::stats::Stats;

/// Re-reads the config file and swaps the runtime (SIGHUP). Open tunnels are never touched; new
/// connections see the new runtime; a failed reload keeps the running one.
#[derive(Clone)]
pub struct Reloader {
    path: Option<PathBuf>,
    runtime: Arc<ArcSwap<Runtime>>,
    accept: Arc<AcceptSet>,
    /// One reload at a time.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Applies `log.level` of a reloaded config.
    set_log_level: Option<crate::lifecycle::logging::LevelSetter>,
    stats: Arc<Stats>,
    /// Follows `admin.bind` (when the gateway started its admin endpoint).
    admin: Arc<AdminServer>,
}

impl Reloader {
    pub(crate) fn new(
        path: Option<PathBuf>,
        runtime: Arc<ArcSwap<Runtime>>,
        stats: Arc<Stats>,
        accept: Arc<AcceptSet>,
        admin: Arc<AdminServer>,
    ) -> Reloader {
        Reloader {
            path,
            runtime,
            accept,
            lock: Arc::new(tokio::sync::Mutex::new(())),
            set_log_level: None,
            stats,
            admin,
        }
    }

    /// The addresses being accepted on, by listener name.
    pub fn listener_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.accept.addrs()
    }

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
            Ok::<_, ConfigErrors>((runtime, old, new, config))
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
        let (runtime, old, new, config) = built;
        if let Some(set) = &self.set_log_level {
            set(&config.log.level);
        }
        // A changed `cluster:` gets a new Redis connection; the old one is dropped after.
        self.stats
            .fleet
            .configure(config.cluster.as_ref())
            .map_err(|message| {
                ConfigErrors(vec![crate::config::ConfigError {
                    file: "<reload>".into(),
                    line: 0,
                    col: 0,
                    path: "cluster".into(),
                    message,
                }])
            })?;
        crate::session::revoke::watch_key_sets(&new, &self.stats.sessions);
        let generation = new.generation;
        let admin_token = new.admin_token.as_deref().map(str::to_owned);
        prime_metrics(&new, &self.stats);
        start_health(&new, &self.stats);
        // An `acme` block that changed or went away: its old manager stops renewing now, not
        // when the last connection holding the old runtime ends.
        for m in old
            .acme
            .iter()
            .filter(|m| !new.acme.iter().any(|n| Arc::ptr_eq(n, m)))
        {
            m.stop();
        }
        runtime.store(Arc::new(new));
        old.health_stop.cancel();
        // Listeners follow the new config; a failure to bind one is reported, the rest applies.
        for problem in self.accept.reconcile(&config.listeners) {
            tracing::error!(error = %problem, "reload: listener not changed");
        }
        // Likewise the admin endpoint: a new `admin.bind` that cannot be bound keeps the old.
        if let Err(e) = self
            .admin
            .reconcile(config.admin.as_ref(), admin_token)
            .await
        {
            tracing::error!(error = %e, "reload: admin endpoint not moved");
        }
        Ok(generation)
    }

    /// The generation of the runtime in use.
    pub fn generation(&self) -> u64 {
        self.runtime.load().generation
    }
}
