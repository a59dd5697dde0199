//! A session's life after the upgrade: both directions ([`Half`]), the clocks that end it
//! (idle, half-close, token expiry, lifetime, keepalive; kept in `tunnel::clocks`), requests
//! from outside (admin, drain, key revocation, through the registry [`Handle`]), violations the
//! trackers find, and the one close sequence every wsgate-initiated end goes through
//! ([`super::close`]).
//!
//! A Close that a peer starts is relayed like any frame; the outcome notes who started it.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::clocks::{Clocks, next_deadline, note_activity, on_timer};
use super::close::Closing;
use super::end::Side;
pub use super::end::{End, Outcome};
use super::frames::{Rules, Tracker, Violation};
use super::splice::{Fault, Half, Timeouts};
use crate::config::policy::Keepalive;
use crate::session::{Asked, Handle, Reason};

/// What a session is held to, fixed at the upgrade.
#[derive(Debug)]
pub struct Setup {
    pub timeouts: Timeouts,
    /// Bound on each step of the close sequence.
    pub close_timeout: Duration,
    /// Rules for the client's frames and the backend's.
    pub client_rules: Rules,
    pub backend_rules: Rules,
    /// The client's message rate.
    pub gate: Option<Box<dyn super::frames::MessageGate>>,
    /// When the token runs out (its `exp` plus leeway), if the route closes at expiry.
    pub expires: Option<Instant>,
    /// When `session.max_lifetime` is reached.
    pub lifetime: Option<Instant>,
    pub keepalive: Option<Keepalive>,
}

/// What of its [`Setup`] a session keeps for its life: the bounds its clocks read.
#[derive(Debug)]
pub(super) struct Bounds {
    pub(super) timeouts: Timeouts,
    pub(super) close_timeout: Duration,
    pub(super) expires: Option<Instant>,
    pub(super) lifetime: Option<Instant>,
    pub(super) keepalive: Option<Keepalive>,
}

/// A session's driver state: built from its [`Setup`] when the tunnel is assembled, kept in
/// the tunnel task for the session's life and borrowed by [`drive`]. Built before the task
/// so that no part of the setup is also kept there (what the task holds, it holds for hours).
pub struct State {
    up: Half,
    down: Half,
    c: Clocks,
    bounds: Bounds,
    closing: Option<Box<Closing>>,
    /// The handle knows this task's waker.
    registered: bool,
}

impl State {
    /// The session's state at its start (now). `to_backend_first` and `to_client_first` are
    /// the bytes read ahead of the tunnel (pipelined by the client, sent by the backend right
    /// behind its 101): tracked and forwarded first.
    pub fn new(setup: Setup, to_backend_first: Vec<u8>, to_client_first: Vec<u8>) -> State {
        let now = Instant::now();
        let mut client = Tracker::new(true, setup.client_rules);
        // The route's message rate gate rides with the client direction's tracker.
        client.gate = setup.gate;
        State {
            up: Half::new(client, to_backend_first),
            down: Half::new(Tracker::new(false, setup.backend_rules), to_client_first),
            c: Clocks {
                last_active: now,
                half_closed_at: None,
                last_rx: [now; 2],
                ping_due: [None; 2],
                first_done: None,
                first_close: None,
                pings: [0; 2],
            },
            bounds: Bounds {
                timeouts: setup.timeouts,
                close_timeout: setup.close_timeout,
                expires: setup.expires,
                lifetime: setup.lifetime,
                keepalive: setup.keepalive,
            },
            closing: None,
            registered: false,
        }
    }
}

/// Run the session until it ends. `handle` carries close requests in and counters out; a cut
/// (the drain ran out of time) ends it at once.
///
/// A function returning an `async move` block rather than an `async fn`, and everything the
/// tunnel task already holds is borrowed, not moved in: each would otherwise be kept twice in
/// every session's task (see `tunnel::run`).
// Not an `async fn` on purpose (see above): it would double the session's memory.
#[allow(clippy::manual_async_fn)]
pub fn drive<'a, C, B>(
    client: &'a mut C,
    backend: &'a mut B,
    state: &'a mut State,
    handle: &'a Handle,
) -> impl Future<Output = Outcome> + 'a
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    async move {
        // In the task, not boxed: one allocation less per session.
        let mut timer = pin!(tokio::time::sleep_until(next_deadline(
            &state.c,
            &state.bounds,
            &None
        )));
        poll_fn(|cx| {
            let State {
                up,
                down,
                c,
                bounds,
                closing,
                registered,
            } = &mut *state;
            loop {
                // The first poll registers this task's waker with the handle; after that the
                // handle is asked again only once it flags a request (and wakes the task).
                if !*registered || handle.is_asked() {
                    *registered = true;
                    let cut = match closing {
                        Some(_) => handle.poll_cut(cx),
                        None => match handle.poll_asked(cx) {
                            Asked::Cut => true,
                            Asked::Close(reason) => {
                                *closing = Some(Box::new(Closing::start(
                                    reason,
                                    up,
                                    down,
                                    bounds.close_timeout,
                                )));
                                false
                            }
                            Asked::Nothing => false,
                        },
                    };
                    if cut {
                        return Poll::Ready(outcome(End::Shutdown, c, &None, up, down));
                    }
                }
                let result = poll_both(cx, client, backend, up, down, &mut c.first_done);
                publish(handle, up, down);
                note_activity(c, up, down);
                if closing.is_none()
                    && let Some(reason) = violation_reason(up, down)
                {
                    *closing = Some(Box::new(Closing::start(
                        reason,
                        up,
                        down,
                        bounds.close_timeout,
                    )));
                    continue;
                }
                if let Poll::Ready(end) = result {
                    let end = match &closing {
                        Some(cl) if !matches!(end, End::ClientError | End::BackendError) => {
                            End::Wsgate(cl.reason.clone())
                        }
                        _ => end,
                    };
                    return Poll::Ready(outcome(end, c, closing, up, down));
                }
                if closing.is_none()
                    && up.peer_close.is_some()
                    && down.peer_close.is_some()
                    && poll_shut_both(cx, client, backend, up, down)
                {
                    // Both Closes passed: the close handshake is complete (§7.1.1, the server
                    // closes the connection first), whoever started it.
                    return Poll::Ready(outcome(End::Client, c, closing, up, down));
                }
                if let Some(cl) = closing.as_mut()
                    && cl.poll_finished(cx, client, backend, up, down)
                {
                    let end = End::Wsgate(cl.reason.clone());
                    return Poll::Ready(outcome(end, c, closing, up, down));
                }
                let armed = timer.deadline();
                let wanted = next_deadline(c, bounds, closing);
                if wanted < armed {
                    timer.as_mut().reset(wanted);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let now = Instant::now();
                match on_timer(now, c, bounds, closing, up, down) {
                    Some(end) => return Poll::Ready(outcome(end, c, closing, up, down)),
                    None => timer.as_mut().reset(next_deadline(c, bounds, closing)),
                }
            }
        })
        .await
    }
}

/// Counters for `/sessions`.
fn publish(handle: &Handle, up: &Half, down: &Half) {
    let c = &handle.counters;
    c.bytes_to_backend.store(up.bytes, Ordering::Relaxed);
    c.bytes_to_client.store(down.bytes, Ordering::Relaxed);
    c.messages_to_backend
        .store(up.tracker.messages, Ordering::Relaxed);
    c.messages_to_client
        .store(down.tracker.messages, Ordering::Relaxed);
}

/// A rule broken by either peer, as the reason to end the session.
fn violation_reason(up: &Half, down: &Half) -> Option<Reason> {
    let (v, from_client) = match (up.bad, down.bad) {
        (Some(v), _) => (v, true),
        (None, Some(v)) => (v, false),
        (None, None) => return None,
    };
    Some(match v {
        Violation::Rate => Reason::Rate,
        v if v.is_size() => Reason::TooBig { from_client },
        _ => Reason::Protocol { from_client },
    })
}

fn outcome(
    end: End,
    c: &Clocks,
    closing: &Option<Box<Closing>>,
    up: &Half,
    down: &Half,
) -> Outcome {
    let (end, close_code) = match (&end, closing, &c.first_close) {
        (End::Wsgate(_), Some(cl), _) => (end, cl.client_code()),
        (End::Client | End::Backend, None, Some((who, code))) => (who.end(), *code),
        _ => (end, None),
    };
    Outcome {
        close_reason: closing.as_ref().and_then(|cl| cl.client_text()),
        end,
        close_code,
        messages_to_backend: up.tracker.messages,
        messages_to_client: down.tracker.messages,
        violation: up.bad.or(down.bad),
        pings: c.pings,
    }
}

/// Shut both connections down (TLS close_notify first); true once both are.
pub(super) fn poll_shut_both<C, B>(
    cx: &mut Context<'_>,
    client: &mut C,
    backend: &mut B,
    up: &Half,
    down: &Half,
) -> bool
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    // A failed shutdown only means that peer is gone already.
    let client_shut = down.done || Pin::new(&mut *client).poll_shutdown(cx).is_ready();
    let backend_shut = up.done || Pin::new(&mut *backend).poll_shutdown(cx).is_ready();
    client_shut && backend_shut
}

fn poll_both<C, B>(
    cx: &mut Context<'_>,
    client: &mut C,
    backend: &mut B,
    up: &mut Half,
    down: &mut Half,
    first_done: &mut Option<Side>,
) -> Poll<End>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    if !up.done {
        match up.poll_copy(cx, client, backend) {
            Poll::Ready(Ok(())) => {
                first_done.get_or_insert(Side::Client);
            }
            Poll::Ready(Err(Fault::Read)) => return Poll::Ready(End::ClientError),
            Poll::Ready(Err(Fault::Write)) => return Poll::Ready(End::BackendError),
            Poll::Pending => {}
        }
    }
    if !down.done {
        match down.poll_copy(cx, backend, client) {
            Poll::Ready(Ok(())) => {
                first_done.get_or_insert(Side::Backend);
            }
            Poll::Ready(Err(Fault::Read)) => return Poll::Ready(End::BackendError),
            Poll::Ready(Err(Fault::Write)) => return Poll::Ready(End::ClientError),
            Poll::Pending => {}
        }
    }
    match (up.done && down.done, first_done) {
        (true, Some(side)) => Poll::Ready(side.end()),
        _ => Poll::Pending,
    }
}
