//! The one close sequence for every reason wsgate ends a session.
//!
//! 1. A Close with the reason's code and text goes to each leg that is still open, at the next
//!    frame boundary of the direction towards it (a leg whose peer already sent a Close through
//!    gets none: it has its Close). A frame in flight that does not finish within
//!    `close_timeout` costs that leg its Close.
//! 2. Up to `close_timeout` for each peer's Close reply (or its EOF).
//! 3. Both connections are shut down (TLS close_notify first), within the same bound.
//!
//! Does not own why (that is [`Reason`]) or when (`tunnel::drive`).

use std::task::Context;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::frames::build;
use super::splice::Half;
use crate::session::Reason;
use crate::session::reason::Farewell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Our Closes are waiting for frame boundaries or being written.
    Sending,
    /// Waiting for the peers' Close replies.
    Awaiting,
    /// Shutting both connections down.
    ShuttingDown,
}

/// A session being closed by wsgate.
#[derive(Debug)]
pub struct Closing {
    pub reason: Reason,
    /// When the current phase gives up.
    pub deadline: Instant,
    phase: Phase,
    close_timeout: Duration,
    /// What the client was sent (or was due to be sent).
    to_client: Farewell,
    /// Whether a Close reply is awaited from the client / the backend.
    expect_reply: [bool; 2],
    /// The frame in flight towards the client did not finish in time: it got no Close.
    client_abandoned: bool,
}

impl Closing {
    /// Queue the Closes on both directions and start the clock.
    pub fn start(
        reason: Reason,
        up: &mut Half,
        down: &mut Half,
        close_timeout: Duration,
    ) -> Closing {
        let to_client = reason.to_client();
        let expect_reply = [
            queue(to_client.clone(), down, up, false),
            queue(reason.to_backend(), up, down, true),
        ];
        tracing::debug!(reason = reason.label(), "closing the session");
        Closing {
            reason,
            deadline: Instant::now() + close_timeout,
            phase: Phase::Sending,
            close_timeout,
            to_client,
            expect_reply,
            client_abandoned: false,
        }
    }

    /// The code the client was sent (none when its leg lost its Close to a stuck frame).
    pub fn client_code(&self) -> Option<u16> {
        match &self.to_client {
            Farewell::Close(code, _) if !self.client_abandoned => Some(*code),
            _ => None,
        }
    }

    /// The reason text the client was sent.
    pub fn client_text(&self) -> Option<String> {
        match &self.to_client {
            Farewell::Close(_, text) if !self.client_abandoned => Some(text.clone()),
            _ => None,
        }
    }

    /// Move through the phases as far as the legs allow; true once both connections are shut.
    pub fn poll_finished<C, B>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        backend: &mut B,
        up: &mut Half,
        down: &mut Half,
    ) -> bool
    where
        C: AsyncRead + AsyncWrite + Unpin,
        B: AsyncRead + AsyncWrite + Unpin,
    {
        if self.phase == Phase::Sending && written(down) && written(up) {
            self.phase = Phase::Awaiting;
            self.deadline = Instant::now() + self.close_timeout;
        }
        if self.phase == Phase::Awaiting
            && (!self.expect_reply[0] || replied(up))
            && (!self.expect_reply[1] || replied(down))
        {
            self.phase = Phase::ShuttingDown;
        }
        if self.phase != Phase::ShuttingDown {
            return false;
        }
        super::drive::poll_shut_both(cx, client, backend, up, down)
    }

    /// The phase's deadline passed: true to end the session now.
    pub fn on_deadline(&mut self, now: Instant, up: &mut Half, down: &mut Half) -> bool {
        if self.phase != Phase::Sending {
            return true;
        }
        // A frame in flight did not finish: that leg is closed without wsgate's Close, and
        // nothing more goes to it.
        self.client_abandoned = !written(down);
        for half in [up, down] {
            if !written(half) {
                half.insert = None;
                half.sealed = true;
            }
        }
        self.phase = Phase::Awaiting;
        self.deadline = now + self.close_timeout;
        false
    }
}

/// Queue `farewell` on `toward` (the direction to that leg); `from` is the direction from it.
/// Returns whether a Close reply from that leg is awaited.
fn queue(farewell: Farewell, toward: &mut Half, from: &Half, masked: bool) -> bool {
    let Farewell::Close(code, text) = farewell else {
        // That peer is dead: nothing to send, nothing to wait for.
        toward.insert = None;
        toward.sealed = true;
        return false;
    };
    if toward.close_forwarded || toward.sealed || toward.done {
        return false;
    }
    toward.insert = Some(build::close(code, &text, masked).into_boxed_slice());
    toward.insert_is_close = true;
    !(from.peer_close.is_some() || from.eof || from.bad.is_some() || from.done)
}

/// wsgate's Close is out on this direction, or none is due.
fn written(toward: &Half) -> bool {
    toward.insert.is_none() && (toward.close_out() || toward.close_forwarded || toward.done)
}

/// The peer behind this direction's source answered (or is gone).
fn replied(from: &Half) -> bool {
    from.peer_close.is_some() || from.eof || from.bad.is_some() || from.done
}
