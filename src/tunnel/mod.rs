//! A tunnel: the task that owns both legs of an upgraded connection, its guards, its place in
//! the session registry, and the one session record written when it ends.
//!
//! It is spawned as its own small task once the 101 is relayed (so the memory of the TLS accept
//! and the HTTP exchange is gone), registered with the shutdown tracker, and cut through its
//! registry handle when a drain runs out of time. Everything between is `drive`: the
//! frame trackers ([`frames`]) over both directions ([`splice`]), the session clocks, and the
//! close sequence ([`close`]).

mod clocks;
pub mod close;
pub mod drive;
pub mod end;
pub mod frames;
pub mod gate;
pub mod splice;

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::admit::limits::Permit;
use crate::config::policy::SessionPolicy;
use crate::metrics::{GaugeGuard, OpenTunnel, SessionEnd};
use crate::session::Reason;
use crate::upstream::LiveGuard;
use drive::{End, Setup, State};
use frames::Rules;
use splice::Timeouts;

/// What a session's record needs besides its registry entry (which holds the client, subject,
/// route and backend: one copy per session, not two).
#[derive(Debug)]
pub struct Session {
    pub peer: SocketAddr,
    pub sni: Option<Box<str>>,
    pub started: Instant,
}

/// Everything a tunnel task owns besides the two streams.
pub struct Tunnel {
    pub session: Session,
    /// The driver's state (its trackers, clocks and bounds) for the session's life.
    pub state: State,
    /// Released when the task ends, whatever way it ends.
    pub guards: Box<[GaugeGuard]>,
    /// Connection-cap permits (global, route, per address), released with the task.
    pub permits: Box<[Permit]>,
    /// Counts the tunnel on its backend while it lives.
    pub backend_live: Option<LiveGuard>,
    /// The tunnel on the open-tunnel gauges; its close goes to the duration and bytes series.
    pub open: OpenTunnel,
    /// The session's entry in the live registry; dropping it unlists the session.
    pub entry: crate::session::Entry,
}

/// What the tunnel of a route is held to.
pub struct Terms<'a> {
    pub policy: &'a SessionPolicy,
    pub timeouts: Timeouts,
    pub close_timeout: Duration,
    /// permessage-deflate was negotiated in the 101.
    pub deflate: bool,
    /// The token's `exp` (Unix seconds) and the leeway admission allowed on it.
    pub expires_at: Option<(u64, Duration)>,
}

/// The session's [`Setup`] from its route's terms, starting now.
pub fn setup(t: &Terms<'_>) -> Setup {
    let p = t.policy;
    let rules = Rules {
        check: p.check_frames,
        deflate: t.deflate,
        // Validation keeps sizes above 0.
        max_frame: p.max_frame.and_then(NonZeroU64::new),
        max_message: p.max_message.and_then(NonZeroU64::new),
    };
    let now = Instant::now();
    let expires = t
        .expires_at
        .filter(|_| p.close_at_token_expiry)
        .map(|(exp, leeway)| {
            let at = UNIX_EPOCH + Duration::from_secs(exp) + leeway;
            now + at.duration_since(SystemTime::now()).unwrap_or_default()
        });
    Setup {
        timeouts: t.timeouts,
        close_timeout: t.close_timeout,
        client_rules: rules,
        backend_rules: rules,
        gate: p
            .messages
            .as_ref()
            .map(|r| Box::new(gate::MessageRate::new(r)) as Box<dyn frames::MessageGate>),
        expires,
        lifetime: p.max_lifetime.map(|d| now + d),
        keepalive: p.keepalive,
    }
}

/// Run the session until it ends, then log its record.
///
/// Written as a function returning an `async move` block, not an `async fn`: an `async fn`
/// keeps its arguments twice in the task (as arguments and again as the body's locals), which
/// for a TLS client leg is over 1.8 KiB per session; the block uses them where they are.
// Not an `async fn` on purpose (see above): it would double the session's memory.
#[allow(clippy::manual_async_fn)]
pub fn run<C, B>(mut client: C, mut backend: B, mut t: Tunnel) -> impl Future<Output = ()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    async move {
        // The handle borrowed inside the call only: a local kept across the await would be
        // one more word in every session's task.
        let outcome = drive::drive(&mut client, &mut backend, &mut t.state, &t.entry.handle).await;
        let handle = &t.entry.handle;
        let end = outcome.end.label();
        let (to_backend, to_client, msgs_up, msgs_down) = handle.counters.read();
        let s = &t.session;
        let info = &handle.info;
        let duration = s.started.elapsed();
        tracing::info!(
            target: "wsgate::session",
            peer = %s.peer,
            client = %info.client,
            subject = info.subject.as_deref().unwrap_or("-"),
            sni = s.sni.as_deref().unwrap_or("-"),
            route = %info.route,
            backend = %info.backend,
            duration_ms = duration.as_millis() as u64,
            bytes_to_backend = to_backend,
            bytes_to_client = to_client,
            messages_to_backend = msgs_up,
            messages_to_client = msgs_down,
            closed_by = outcome.end.who(),
            end,
            close_code = outcome.close_code,
            close_reason = outcome.close_reason.as_deref(),
            violation = outcome.violation.map(|v| v.label()),
            "session closed"
        );
        t.open.closed(duration, to_backend, to_client, end);
        t.open.session_ended(&SessionEnd {
            code: outcome.close_code,
            closed_by: outcome.end.who(),
            violation: outcome.violation.map(|v| v.label()),
            pings: outcome.pings,
            dead: match outcome.end {
                End::Wsgate(Reason::Keepalive { client_dead }) => {
                    Some(if client_dead { "client" } else { "backend" })
                }
                _ => None,
            },
        });
        // Permits first: once the gauges read zero, every cap has its slot back.
        drop(t.permits);
        drop(t.entry);
        drop(t.backend_live);
        // The tunnel's gauges before the connection's: once no connection reads open, no tunnel does.
        drop(t.open);
        drop(t.guards);
    }
}
