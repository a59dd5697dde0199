//! Automatic certificates (ACME, RFC 8555) for the names of a listener's `tls.acme` block,
//! proven with TLS-ALPN-01 (RFC 8737) on that same listener: no port 80, no DNS API.
//!
//! Owns: one long-lived [`AcmeManager`] per distinct `acme` block. A reload that keeps the
//! block unchanged keeps the manager (and its certificate, its renewal timer and any order in
//! flight): `crate::runtime::Runtime::build` carries it over by equality of the config, as it
//! does pools. The manager serves what it has to the SNI resolver (`crate::runtime::tls`): the
//! current certificate, and while an order is validated, the `acme-tls/1` challenge
//! certificates. Until a first certificate exists, handshakes for its names fail cleanly (the
//! resolver has nothing to offer, rustls sends an alert); no placeholder is served.
//!
//! Submodules: [`store`] (state directory, file permissions, reading certificates back),
//! [`order`] (the protocol, via instant-acme), [`task`] (when to order: at start without a
//! valid stored certificate, then `renew_before` the expiry, backoff with jitter on failure).
//! Does not own the TLS handshake (`crate::proxy::tls`) nor the metrics registry.

pub mod order;
pub mod store;
pub mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::config::AcmeConfig;
use crate::metrics::Metrics;

/// The ALPN protocol of TLS-ALPN-01 validation connections (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// What the resolver reads and the renewal task writes.
#[derive(Debug, Default)]
pub struct Shared {
    current: ArcSwapOption<store::Stored>,
    /// Challenge certificates by DNS name, present only while an order is being validated.
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Shared {
    fn install(&self, stored: store::Stored) {
        self.current.store(Some(Arc::new(stored)));
    }

    fn not_after(&self) -> Option<SystemTime> {
        self.current.load().as_ref().map(|s| s.not_after)
    }

    fn add_challenge(&self, name: &str, key: Arc<CertifiedKey>) {
        let mut map = self
            .challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.insert(name.to_owned(), key);
    }

    fn clear_challenges(&self) {
        let mut map = self
            .challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.clear();
    }
}

/// One `acme` block: its certificate, its challenges, its renewal task.
#[derive(Debug)]
pub struct AcmeManager {
    config: AcmeConfig,
    shared: Arc<Shared>,
    /// Stops the renewal task when the last runtime using this manager is gone, or at shutdown.
    stop: CancellationToken,
    started: AtomicBool,
}

impl AcmeManager {
    /// A manager serving the stored certificate, if `state_dir` holds a usable one for these
    /// domains (read only; nothing is created or contacted until [`Self::start`]).
    pub fn new(config: &AcmeConfig) -> AcmeManager {
        let shared = Arc::new(Shared::default());
        match store::Paths::new(config).load_certificate(&config.domains) {
            Ok(Some(stored)) => shared.install(stored),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "acme: stored certificate unusable; a new one will be ordered")
            }
        }
        AcmeManager {
            config: config.clone(),
            shared,
            stop: CancellationToken::new(),
            started: AtomicBool::new(false),
        }
    }

    /// The manager of `previous` for the same block (a reload), or a new one.
    pub fn carry(config: &AcmeConfig, previous: &[Arc<AcmeManager>]) -> Arc<AcmeManager> {
        match previous.iter().find(|m| m.config == *config) {
            Some(m) => Arc::clone(m),
            None => Arc::new(AcmeManager::new(config)),
        }
    }

    pub fn config(&self) -> &AcmeConfig {
        &self.config
    }

    /// `name` (lower-case, from SNI) is one of this block's domains.
    pub fn covers(&self, name: &str) -> bool {
        self.config.domains.iter().any(|d| d == name)
    }

    /// The certificate to serve, once one exists.
    pub fn certificate(&self) -> Option<Arc<CertifiedKey>> {
        self.shared
            .current
            .load()
            .as_ref()
            .map(|s| Arc::clone(&s.key))
    }

    /// The TLS-ALPN-01 certificate for `name` while its validation is under way.
    pub fn challenge(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let map = (self.shared.challenges.lock()).unwrap_or_else(PoisonError::into_inner);
        map.get(name).cloned()
    }

    /// Start the renewal task (once; later calls, e.g. after a reload that kept this manager,
    /// do nothing). Must be called inside a tokio runtime.
    pub fn start(&self, metrics: Arc<Metrics>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let task = task::Renewal {
            config: self.config.clone(),
            shared: Arc::clone(&self.shared),
            metrics,
        };
        tokio::spawn(task.run(self.stop.clone()));
    }

    /// Stop the renewal task (shutdown); the certificate stays served.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for AcmeManager {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
