//! A tunnel: the task that owns both legs of an upgraded connection, its guards, and the one
//! session record written when it ends.
//!
//! It is spawned as its own small task once the 101 is relayed (so the memory of the TLS accept
//! and the HTTP exchange is gone), registered with the shutdown tracker, and closed by the
//! gateway's close token when a drain runs out of time.

pub mod frames;
pub mod splice;

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admit::limits::Permit;
use crate::metrics::OpenTunnel;
use crate::stats::GaugeGuard;
use crate::upstream::LiveGuard;
use splice::{Counts, Timeouts};

/// Who and what a session is, for its record.
#[derive(Debug)]
pub struct Session {
    pub peer: SocketAddr,
    /// The client address (from PROXY protocol or a trusted `X-Forwarded-For`, else the peer).
    pub client: IpAddr,
    /// `sub` of a verified token.
    pub subject: Option<String>,
    /// `exp` of a verified token (Unix seconds): when the session's credential runs out.
    pub expires_at: Option<u64>,
    pub sni: Option<String>,
    pub route: String,
    pub backend: String,
    pub started: Instant,
}

/// Everything a tunnel task owns besides the two streams.
pub struct Tunnel {
    pub session: Session,
    pub to_backend_first: Vec<u8>,
    pub to_client_first: Vec<u8>,
    pub timeouts: Timeouts,
    pub close: CancellationToken,
    /// Released when the task ends, whatever way it ends.
    pub guards: Vec<GaugeGuard>,
    /// Connection-cap permits (global, route, per address), released with the task.
    pub permits: Vec<Permit>,
    /// Counts the tunnel on its backend while it lives.
    pub backend_live: Option<LiveGuard>,
    /// The tunnel on the open-tunnel gauges; its close goes to the duration and bytes series.
    pub open: OpenTunnel,
    /// The session's entry in the live registry; dropping it unlists the session.
    pub entry: crate::session::Entry,
}

/// Splice until the end, then log the session record.
pub async fn run<C, B>(mut client: C, mut backend: B, t: Tunnel)
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut counts = Counts::default();
    let end = tokio::select! {
        end = splice::splice(
            &mut client,
            &mut backend,
            t.to_backend_first,
            t.to_client_first,
            t.timeouts,
            &mut counts,
        ) => end.label(),
        () = t.close.cancelled() => "shutdown",
    };
    let s = &t.session;
    let duration = s.started.elapsed();
    tracing::info!(
        target: "wsgate::session",
        peer = %s.peer,
        client = %s.client,
        subject = s.subject.as_deref().unwrap_or("-"),
        sni = s.sni.as_deref().unwrap_or("-"),
        route = %s.route,
        backend = %s.backend,
        duration_ms = duration.as_millis() as u64,
        bytes_to_backend = counts.to_backend,
        bytes_to_client = counts.to_client,
        closed_by = end,
        "session closed"
    );
    t.open
        .closed(duration, counts.to_backend, counts.to_client, end);
    // Permits first: once the gauges read zero, every cap has its slot back.
    drop(t.permits);
    drop(t.entry);
    drop(t.backend_live);
    // Before the stats gauges: when `Stats` reads zero open tunnels, so do the metrics.
    drop(t.open);
    drop(t.guards);
}
