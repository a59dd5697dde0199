//! A pool of backends at run time: each backend with its health and live-tunnel count, the
//! balancer that picks among the usable ones, the TLS connector for `wss://` backends, and the
//! pool's failover and PROXY settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::config::{HashKey, HealthCheck, Passive, PoolConfig, ProxyVersion};
use crate::metrics::Metrics;
use crate::upstream::balance::Balancer;
use crate::upstream::health::{self, BackendHealth};
use crate::upstream::tls;

/// One backend.
#[derive(Debug)]
pub struct Backend {
    /// As configured, for logs; also the key of its health state.
    pub url: Arc<str>,
    /// `host:port` to connect to.
    pub authority: String,
    /// Name for SNI and certificate verification.
    pub server_name: String,
    /// Speak TLS (`wss://`).
    pub tls: bool,
    pub health: Arc<BackendHealth>,
    /// Tunnels open to this backend now (shared with the same backend across reloads).
    pub live: Arc<AtomicU32>,
}

/// Counts one live tunnel on a backend for as long as it is held.
#[derive(Debug)]
pub struct LiveGuard(Arc<Backend>);

impl LiveGuard {
    pub fn new(backend: &Arc<Backend>) -> LiveGuard {
        backend.live.fetch_add(1, Ordering::Relaxed);
        LiveGuard(Arc::clone(backend))
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A named set of backends.
pub struct Pool {
    pub name: String,
    backends: Vec<Arc<Backend>>,
    balancer: Balancer,
    /// For `wss://` backends.
    pub connector: Option<TlsConnector>,
    pub proxy_protocol: Option<ProxyVersion>,
    pub passive: Passive,
    pub retries: u32,
    pub hash_key: Option<HashKey>,
    health_check: Option<HealthCheck>,
}

impl Pool {
    /// Build the pool. Health state is keyed by backend URL so a reload can carry it over.
    /// With `previous` (the same pool before a reload), backends with the same URL keep their
    /// health state and live-tunnel count.
    pub fn new(config: &PoolConfig, previous: Option<&Pool>) -> Result<Pool, String> {
        let needs_tls = config.backends.iter().any(|b| b.tls);
        let connector = if needs_tls {
            Some(tls::connector(config.tls.as_ref())?)
        } else {
            None
        };
        let server_name_override = config.tls.as_ref().and_then(|t| t.server_name.clone());
        let backends: Vec<Arc<Backend>> = config
            .backends
            .iter()
            .map(|b| {
                let old = previous.and_then(|p| p.backends.iter().find(|o| *o.url == *b.url));
                Arc::new(Backend {
                    url: Arc::from(b.url.as_str()),
                    authority: b.authority.clone(),
                    server_name: server_name_override
                        .clone()
                        .unwrap_or_else(|| b.host.clone()),
                    tls: b.tls,
                    health: old
                        .map_or_else(|| Arc::new(BackendHealth::new()), |o| Arc::clone(&o.health)),
                    live: old.map_or_else(|| Arc::new(AtomicU32::new(0)), |o| Arc::clone(&o.live)),
                })
            })
            .collect();
        let weighted: Vec<(&str, u32)> = config
            .backends
            .iter()
            .map(|b| (b.url.as_str(), b.weight))
            .collect();
        let hash_key = match &config.balance {
            crate::config::Balance::Hash(k) => Some(k.clone()),
            _ => None,
        };
        Ok(Pool {
            name: config.name.clone(),
            balancer: Balancer::new(&config.balance, &weighted),
            backends,
            connector,
            proxy_protocol: config.proxy_protocol,
            passive: config.passive,
            retries: config.retries,
            hash_key,
            health_check: config.health.clone(),
        })
    }

    /// The next backend to try: usable (healthy, not ejected) and not in `tried`.
    pub fn pick(&self, tried: &[usize], key: Option<&[u8]>) -> Option<&Arc<Backend>> {
        let usable = |i: usize| {
            !tried.contains(&i) && self.backends.get(i).is_some_and(|b| b.health.is_usable())
        };
        let live = |i: usize| {
            self.backends
                .get(i)
                .map_or(u32::MAX, |b| b.live.load(Ordering::Relaxed))
        };
        let i = self.balancer.pick(usable, live, key)?;
        self.backends.get(i)
    }

    /// The next backend to try for a request: [`Pool::pick`] among those not in `tried`, which
    /// then records it. The failover loops of upgrades and plain requests both walk the pool
    /// this way; `None` (logged at debug when nothing was usable at all) ends the walk.
    pub fn next_untried(&self, tried: &mut Vec<usize>, key: Option<&[u8]>) -> Option<Arc<Backend>> {
        let backend = self.pick(tried, key).cloned();
        match &backend {
            Some(b) => tried.extend(self.index_of(b)),
            None if tried.is_empty() => {
                // Per request: each backend's own down or ejected line is the warn, once.
                tracing::debug!(pool = %self.name, "no usable backend: all are down or ejected");
            }
            None => {}
        }
        backend
    }

    /// Index of a backend of this pool (for `tried` lists).
    pub fn index_of(&self, backend: &Arc<Backend>) -> Option<usize> {
        self.backends.iter().position(|b| Arc::ptr_eq(b, backend))
    }

    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Start the active health checks, if configured.
    pub fn start_health(&self, stop: CancellationToken) -> Option<JoinHandle<()>> {
        self.start_health_reporting(stop, None)
    }

    /// [`start_health`](Self::start_health), with every backend's state on `metrics`: set now
    /// (up without checks) and on every change the checkers see.
    pub fn start_health_reporting(
        &self,
        stop: CancellationToken,
        metrics: Option<&Arc<Metrics>>,
    ) -> Option<JoinHandle<()>> {
        if let Some(metrics) = metrics {
            for b in &self.backends {
                metrics.backend_state(&self.name, &b.url, b.health.is_up());
            }
        }
        let check = self.health_check.clone()?;
        let targets = self
            .backends
            .iter()
            .map(|b| health::Target {
                url: b.url.to_string(),
                authority: b.authority.clone(),
                host: b.server_name.clone(),
                tls: if b.tls { self.connector.clone() } else { None },
                proxy: self.proxy_protocol,
                health: Arc::clone(&b.health),
            })
            .collect();
        let metrics = metrics.map(Arc::clone);
        Some(health::spawn_checks_reporting(
            &self.name, targets, check, stop, metrics,
        ))
    }
}
