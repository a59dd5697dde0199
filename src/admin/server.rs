//! The running admin endpoint of a gateway: bound from `admin.bind` at start, rebound when a
//! reload changes `admin.bind` (the new socket first; the old one is closed only once the new
//! one listens, so a failed rebind keeps the endpoint where it was), stopped when the gateway
//! stops (a Unix socket file is removed then).
//!
//! Does not own serving requests ([`super::serve`]) or binding a socket ([`super::listen`]).

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::Fleet;
use crate::config::AdminBind;
use crate::metrics::Metrics;

/// What every admin server of a gateway serves.
#[derive(Debug)]
pub struct AdminDeps {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    pub fleet: Arc<Fleet>,
}

#[derive(Debug)]
struct Running {
    bind: AdminBind,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Stop serving and wait until the listener (and its socket file) is gone.
    async fn stop(self) {
        self.stop.cancel();
        // The serve loop returns at once on `stop`; a join error means it panicked: gone too.
        let _ = self.task.await;
    }
}

/// A gateway's admin endpoint, if started.
#[derive(Debug)]
pub struct AdminServer {
    deps: AdminDeps,
    /// `None` until [`AdminServer::start`]: a gateway whose caller serves admin itself (tests,
    /// embedders) is left alone by reloads.
    state: Mutex<Option<Option<Running>>>,
}

impl AdminServer {
    pub fn new(deps: AdminDeps) -> AdminServer {
        AdminServer {
            deps,
            state: Mutex::new(None),
        }
    }

    /// Bind and serve `bind` (nothing when `None`); from now on reloads follow `admin.bind`.
    pub async fn start(&self, bind: Option<&AdminBind>, token: Option<String>) -> io::Result<()> {
        let mut state = self.state.lock().await;
        let running = match bind {
            Some(bind) => Some(self.spawn(bind, token).await?),
            None => None,
        };
        *state = Some(running);
        Ok(())
    }

    /// Follow a reloaded `admin.bind`: unchanged, nothing happens; changed, the new socket is
    /// bound first and the old one closed after; a bind error keeps the old one and is returned.
    pub async fn reconcile(
        &self,
        bind: Option<&AdminBind>,
        token: Option<String>,
    ) -> io::Result<()> {
        let mut state = self.state.lock().await;
        let Some(current) = state.as_mut() else {
            return Ok(());
        };
        if current.as_ref().map(|r| &r.bind) == bind {
            return Ok(());
        }
        let next = match bind {
            Some(bind) => Some(self.spawn(bind, token).await?),
            None => None,
        };
        if let Some(old) = std::mem::replace(current, next) {
            tracing::info!(from = %old.bind, "admin endpoint moved by reload");
            old.stop().await;
        }
        Ok(())
    }

    /// Stop the endpoint (at the end of a gateway's life).
    pub async fn stop(&self) {
        let mut state = self.state.lock().await;
        if let Some(Some(running)) = state.as_mut().map(Option::take) {
            running.stop().await;
        }
    }

    async fn spawn(&self, bind: &AdminBind, token: Option<String>) -> io::Result<Running> {
        let listener = super::listen::bind(bind).await?;
        let auth = if token.is_some() { "bearer" } else { "none" };
        tracing::info!(addr = %listener.describe(), sessions_auth = auth, "admin endpoint listening");
        let stop = CancellationToken::new();
        let task = tokio::spawn(super::serve(
            listener,
            Arc::clone(&self.deps.metrics),
            Arc::clone(&self.deps.ready),
            Arc::clone(&self.deps.fleet),
            token,
            stop.clone(),
        ));
        Ok(Running {
            bind: bind.clone(),
            stop,
            task,
        })
    }
}
