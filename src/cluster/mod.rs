//! The fleet: limits, session caps and session control shared by several wsgate instances
//! through one Redis/Valkey (`cluster:`). No consensus of its own: every shared decision is one
//! atomic script in Redis ([`scripts`]), every instance heartbeats its name and touches the caps
//! it holds members under ([`beat`]), and operator closes travel on a pub/sub channel
//! ([`control`]).
//!
//! [`Fleet`] lives as long as the process: the slots held ([`held`]) and the releaser survive a
//! reload, while the [`link::Link`] (client, connection, background tasks) is replaced whole when
//! `cluster:` changes (the new server learns every live slot from the first heartbeat).
//! Redis trouble never stalls a handshake: admission calls are bounded by `cluster.timeout`,
//! skipped while the link is down, and then decided by `cluster.on_error` ([`checks`]).

pub mod beat;
pub mod checks;
pub mod control;
pub mod held;
pub mod keys;
pub mod link;
pub mod scripts;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::mpsc;

use crate::config::ClusterConfig;
use crate::metrics::Metrics;
use crate::session::Registry;
use held::{Held, Release};
use link::{CallError, Link};

/// Every instance heartbeats this often.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// An instance not heard from for this long is dead: its slots stop counting.
pub const DEAD_AFTER: Duration = Duration::from_secs(8);
/// Cap keys live this long after their last touch (held caps are touched every heartbeat).
pub const KEY_TTL: Duration = Duration::from_secs(60);
/// The fleet list forgets everything after this long without any heartbeat.
pub const FLEET_TTL: Duration = Duration::from_secs(3600);

/// One live instance as `GET /fleet` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    /// Unix milliseconds (Redis's clock).
    pub last_heartbeat_ms: u64,
    pub sessions: u64,
}

/// The fleet state of this process.
pub struct Fleet {
    link: ArcSwapOption<Link>,
    held: Arc<Held>,
    releases: Mutex<Option<mpsc::UnboundedReceiver<Release>>>,
    metrics: Arc<Metrics>,
    sessions: Arc<Registry>,
    /// Serialises [`Fleet::configure`].
    configure: Mutex<()>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let link = self.link.load();
        f.debug_struct("Fleet")
            .field("cluster", &link.as_ref().map(|l| &l.cfg))
            .field("held", &self.held.len())
            .finish()
    }
}

impl Fleet {
    /// A fleet with no `cluster:` yet (an instance alone).
    pub fn new(metrics: Arc<Metrics>, sessions: Arc<Registry>) -> Fleet {
        let (tx, rx) = mpsc::unbounded_channel();
        Fleet {
            link: ArcSwapOption::empty(),
            held: Arc::new(Held::new(tx)),
            releases: Mutex::new(Some(rx)),
            metrics,
            sessions,
            configure: Mutex::new(()),
        }
    }

    /// Follow `cluster` (start, or a reload): a changed block gets a new link and the old one's
    /// tasks stop; `None` leaves the fleet. Must run inside the tokio runtime.
    pub fn configure(self: &Arc<Self>, cluster: Option<&ClusterConfig>) -> Result<(), String> {
        let _one = self.configure.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.link.load_full();
        if current.as_ref().map(|l| &l.cfg) == cluster {
            return Ok(());
        }
        let new = match cluster {
            Some(cfg) => Some(Arc::new(Link::new(cfg, Arc::clone(&self.metrics))?)),
            None => None,
        };
        if let Some(link) = &new {
            tracing::info!(
                redis = %link.cfg.redis_redacted(),
                instance = %link.cfg.instance,
                "fleet: joining"
            );
            tokio::spawn(beat::run(Arc::downgrade(self), Arc::clone(link)));
            tokio::spawn(control::listen(Arc::downgrade(self), Arc::clone(link)));
            let releases = self
                .releases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(rx) = releases {
                tokio::spawn(beat::release(Arc::downgrade(self), rx));
            }
        }
        self.link.store(new);
        if let Some(old) = current {
            old.stop.cancel();
        }
        Ok(())
    }

    /// Leave the fleet at shutdown, after the sessions ended: wait (bounded) until their slots
    /// are freed in Redis, take this instance off the fleet list, stop the link.
    pub async fn leave(self: &Arc<Self>) {
        let Some(link) = self.link() else { return };
        let deadline = tokio::time::Instant::now() + link.background_budget();
        while self.held.unsettled() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (hb, n) = link.keys.fleet();
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM").arg(&hb).arg(&link.cfg.instance).ignore();
        pipe.cmd("HDEL").arg(&n).arg(&link.cfg.instance).ignore();
        let left: Result<(), CallError> = link
            .run("leave", &pipe, link.background_budget(), false)
            .await;
        if left.is_ok() {
            tracing::info!(instance = %link.cfg.instance, "fleet: left");
        }
        // Only fails on a new link; `None` builds none.
        let _ = self.configure(None);
    }

    /// The link in use, if `cluster:` is configured.
    pub fn link(&self) -> Option<Arc<Link>> {
        self.link.load_full()
    }

    /// Whether `cluster:` is configured.
    pub fn is_configured(&self) -> bool {
        self.link.load().is_some()
    }

    /// The live sessions of this instance.
    pub fn sessions(&self) -> &Arc<Registry> {
        &self.sessions
    }

    /// The metrics the fleet counts in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The slots this instance holds.
    pub fn held(&self) -> &Arc<Held> {
        &self.held
    }

    /// The live instances of the fleet, from Redis.
    pub async fn instances(&self) -> Result<Vec<Instance>, CallError> {
        let link = self.link().ok_or(CallError::Down)?;
        let (hb, n) = link.keys.fleet();
        let mut pipe = redis::pipe();
        let dead = DEAD_AFTER.as_millis().to_string();
        scripts::call(&mut pipe, &scripts::INSTANCES, &[&hb, &n], &[dead]);
        let (flat,): (Vec<String>,) = link
            .run("fleet", &pipe, link.background_budget(), false)
            .await?;
        Ok(flat
            .chunks_exact(3)
            .map(|c| Instance {
                name: c[0].clone(),
                last_heartbeat_ms: c[1].parse::<f64>().map_or(0, |ms| ms as u64),
                sessions: c[2].parse().unwrap_or(0),
            })
            .collect())
    }

    /// Publish an operator close (`POST /sessions/close` with `"scope": "fleet"`) to every
    /// other instance. `request` is the checked JSON body.
    pub async fn publish_close(&self, request: serde_json::Value) -> Result<(), CallError> {
        let link = self.link().ok_or(CallError::Down)?;
        control::publish(&link, control::Message::close(&link.cfg.instance, request)).await
    }
}
