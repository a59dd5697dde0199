//! A pool of backends and how one is picked for a new tunnel (round robin for now).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::PoolConfig;

/// One backend address.
#[derive(Debug)]
pub struct Backend {
    /// As configured, for logs.
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
}

/// A named set of backends.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    backends: Vec<Backend>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(config: &PoolConfig) -> Self {
        Pool {
            name: config.name.clone(),
            backends: config
                .backends
                .iter()
                .map(|b| Backend {
                    url: b.url.clone(),
                    authority: b.authority.clone(),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next backend in turn; `None` only for an empty pool (validation forbids those).
    pub fn pick(&self) -> Option<&Backend> {
        if self.backends.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.backends.len();
        self.backends.get(i)
    }
}
