//! The running accept loops, one per listener, by name. Started by `Gateway::serve`, reconciled
//! with the listener list of each reloaded config (new names bound and started, removed names
//! stopped, a changed address rebound), stopped all at once on shutdown. Stopping an accept
//! loop closes its socket only: connections it accepted live on in the shared tracker.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Bind, ListenerConfig};
use crate::proxy::listener::{self, AcceptCtx};
use crate::runtime::Runtime;
use crate::stats::Stats;

struct Running {
    bind: Bind,
    addr: Option<SocketAddr>,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// Every accept loop, and what a new one needs.
pub struct AcceptSet {
    runtime: Arc<ArcSwap<Runtime>>,
    stats: Arc<Stats>,
    /// Every connection task and tunnel, for the drain.
    pub tracker: TaskTracker,
    close: CancellationToken,
    /// Cancelled when accepting stops for good (a drain): h2 connections send GOAWAY on it.
    draining: CancellationToken,
    loops: Mutex<HashMap<String, Running>>,
    /// Set at shutdown: no loop starts after it.
    closed: AtomicBool,
}

impl AcceptSet {
    pub fn new(
        runtime: Arc<ArcSwap<Runtime>>,
        stats: Arc<Stats>,
        close: CancellationToken,
    ) -> AcceptSet {
        AcceptSet {
            runtime,
            stats,
            tracker: TaskTracker::new(),
            close,
            draining: CancellationToken::new(),
            loops: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Start accepting on `socket` as listener `name`.
    pub fn start(&self, name: &str, bind: Bind, socket: TcpListener) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let addr = socket.local_addr().ok();
        let ctx = AcceptCtx {
            name: Arc::from(name),
            runtime: Arc::clone(&self.runtime),
            stats: Arc::clone(&self.stats),
            tracker: self.tracker.clone(),
            close: self.close.clone(),
            draining: self.draining.clone(),
        };
        let stop = CancellationToken::new();
        let handle = tokio::spawn(listener::accept_loop(socket, ctx, stop.clone()));
        let running = Running {
            bind,
            addr,
            stop,
            handle,
        };
        let old = self.lock().insert(name.to_owned(), running);
        if let Some(old) = old {
            old.stop.cancel();
        }
    }

    /// Make the running loops match `wanted`: bind and start new listeners, stop removed ones,
    /// rebind those whose address changed. Returns one message per listener that failed.
    pub fn reconcile(&self, wanted: &[ListenerConfig]) -> Vec<String> {
        let mut errors = Vec::new();
        let removed: Vec<String> = self
            .lock()
            .keys()
            .filter(|name| !wanted.iter().any(|l| &l.name == *name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(r) = self.lock().remove(&name) {
                tracing::info!(listener = %name, "listener removed; its open connections live on");
                r.stop.cancel();
            }
        }
        for l in wanted {
            let same = self.lock().get(&l.name).is_some_and(|r| r.bind == l.bind);
            if same {
                continue;
            }
            match &l.bind {
                Bind::Addr(addr) => match listener::bind(*addr) {
                    Ok(socket) => {
                        tracing::info!(listener = %l.name, %addr, "listener added");
                        self.start(&l.name, l.bind.clone(), socket);
                    }
                    Err(e) => errors.push(describe(e, &l.name, &l.bind).to_string()),
                },
                Bind::Systemd(fd) => errors.push(format!(
                    "listener {}: systemd:{fd} sockets are passed at start only; restart to add it",
                    l.name
                )),
            }
        }
        errors
    }

    /// Addresses the loops accept on, by listener name.
    pub fn addrs(&self) -> Vec<(String, SocketAddr)> {
        let mut out: Vec<(String, SocketAddr)> = self
            .lock()
            .iter()
            .filter_map(|(name, r)| r.addr.map(|a| (name.clone(), a)))
            .collect();
        out.sort();
        out
    }

    /// Stop every loop (closing the sockets) and wait for them to end.
    pub async fn stop_all(&self) {
        self.closed.store(true, Ordering::Release);
        self.draining.cancel();
        let loops: Vec<Running> = self.lock().drain().map(|(_, r)| r).collect();
        for r in &loops {
            r.stop.cancel();
        }
        for r in loops {
            // An accept loop only ends by cancellation; a join error means it panicked, which
            // must not stop the drain of everything else.
            let _ = r.handle.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        // A poisoned map is still a valid map.
        self.loops.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bind errors carry the listener's name and address.
pub fn describe(e: io::Error, name: &str, bind: &Bind) -> io::Error {
    io::Error::new(e.kind(), format!("listener {name} on {bind}: {e}"))
}
