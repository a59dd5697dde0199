//! Listening sockets and the accept loop: one task per accepted connection, registered with the
//! shutdown tracker, holding one snapshot of the runtime. Accept errors (EMFILE and friends) back
//! off instead of spinning.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::proxy::conn;
use crate::runtime::Runtime;
use crate::stats::Stats;

/// Pending-connection queue length asked of the kernel (capped by `net.core.somaxconn`).
const BACKLOG: u32 = 4096;
/// Pause after an accept error such as EMFILE, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Bind a listening socket with `SO_REUSEADDR` and a deep backlog.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// What every connection accepted on one listener shares.
#[derive(Clone)]
pub struct AcceptCtx {
    pub name: Arc<str>,
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub stats: Arc<Stats>,
    pub tracker: TaskTracker,
    pub close: CancellationToken,
    /// Cancelled when the gateway stops accepting (a drain).
    pub draining: CancellationToken,
}

/// Accept until `stop` is cancelled; the socket is closed when this returns.
pub async fn accept_loop(socket: TcpListener, ctx: AcceptCtx, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            r = socket.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(listener = %ctx.name, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        ctx.stats.metrics.accepted(&ctx.name);
        // Small frames must not wait for Nagle; failure to set it is harmless.
        let _ = tcp.set_nodelay(true);
        let runtime = ctx.runtime.load_full();
        let Some(listener) = runtime.listeners.get(&*ctx.name).cloned() else {
            // The listener is gone from the running config; refuse by closing.
            ctx.stats.metrics.refused_at_accept("listener_removed");
            continue;
        };
        // The global cap is checked before any TLS work: a full proxy refuses fast.
        let Some(permit) = runtime.global.try_acquire() else {
            ctx.stats.metrics.refused_at_accept("global_full");
            tracing::warn!(listener = %ctx.name, %peer, "connection limit reached; closed");
            continue;
        };
        let conn = conn::ConnCtx {
            runtime,
            listener,
            stats: Arc::clone(&ctx.stats),
            tracker: ctx.tracker.clone(),
            close: ctx.close.clone(),
            draining: ctx.draining.clone(),
            peer,
            local: tcp.local_addr().unwrap_or(peer),
            permit: Some(permit),
            client_cert: None,
        };
        ctx.tracker.spawn(conn::handle(tcp, conn));
    }
}
