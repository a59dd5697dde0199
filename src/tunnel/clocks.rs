//! A session's clocks: when it was last active, when one side finished, keepalive Pings and
//! the Pongs they wait for, and what the timer firing means (idle and half-close timeouts,
//! token expiry, lifetime, a dead peer). The driver ([`super::drive`]) owns one [`Clocks`] per
//! session and asks here for the next deadline.

use tokio::time::Instant;

use super::close::Closing;
use super::drive::{Bounds, End};
use super::end::Side;
use super::frames::build;
use super::splice::Half;
use crate::session::Reason;

/// Per-session state besides the two directions.
pub(super) struct Clocks {
    pub(super) last_active: Instant,
    pub(super) half_closed_at: Option<Instant>,
    /// Last byte from the client / from the backend (keepalive).
    pub(super) last_rx: [Instant; 2],
    /// wsgate's Ping to the client / to the backend awaits its Pong until then.
    pub(super) ping_due: [Option<Instant>; 2],
    pub(super) first_done: Option<Side>,
    /// Who sent the first Close, and its code.
    pub(super) first_close: Option<(Side, Option<u16>)>,
    pub(super) pings: [u64; 2],
}

const CLIENT: usize = 0;
const BACKEND: usize = 1;

/// Reads, Pongs and first Closes since the last look.
pub(super) fn note_activity(c: &mut Clocks, up: &mut Half, down: &mut Half) {
    if up.rx || down.rx {
        let now = Instant::now();
        c.last_active = now;
        for (i, half) in [(CLIENT, &mut *up), (BACKEND, &mut *down)] {
            if std::mem::take(&mut half.rx) {
                c.last_rx[i] = now;
            }
            if std::mem::take(&mut half.pong) {
                c.ping_due[i] = None;
            }
        }
    }
    if c.first_close.is_none() {
        if let Some(code) = up.peer_close {
            c.first_close = Some((Side::Client, code));
        } else if let Some(code) = down.peer_close {
            c.first_close = Some((Side::Backend, code));
        }
    }
    if c.first_done.is_some() && c.half_closed_at.is_none() {
        c.half_closed_at = Some(Instant::now());
    }
}

/// The nearest moment something may have to happen.
pub(super) fn next_deadline(c: &Clocks, b: &Bounds, closing: &Option<Box<Closing>>) -> Instant {
    let mut at = c.last_active + b.timeouts.idle;
    let mut consider = |t: Option<Instant>| {
        if let Some(t) = t {
            at = at.min(t);
        }
    };
    consider(c.half_closed_at.map(|t| t + b.timeouts.half_close));
    if let Some(cl) = closing {
        consider(Some(cl.deadline));
        return at;
    }
    consider(b.expires);
    consider(b.lifetime);
    if let Some(ka) = b.keepalive.filter(|_| c.first_close.is_none()) {
        for i in [CLIENT, BACKEND] {
            consider(Some(c.ping_due[i].unwrap_or(c.last_rx[i] + ka.interval)));
        }
    }
    at
}

/// The timer fired: whatever is due now. `Some` ends the session at once.
pub(super) fn on_timer(
    now: Instant,
    c: &mut Clocks,
    b: &Bounds,
    closing: &mut Option<Box<Closing>>,
    up: &mut Half,
    down: &mut Half,
) -> Option<End> {
    if c.last_active + b.timeouts.idle <= now {
        return Some(
            closing
                .as_ref()
                .map_or(End::IdleTimeout, |cl| End::Wsgate(cl.reason.clone())),
        );
    }
    if c.half_closed_at
        .is_some_and(|t| t + b.timeouts.half_close <= now)
    {
        return Some(End::HalfCloseTimeout);
    }
    if let Some(cl) = closing.as_mut() {
        return cl
            .on_deadline(now, up, down)
            .then(|| End::Wsgate(cl.reason.clone()));
    }
    let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
    let reason = if due(b.expires) {
        Some(Reason::TokenExpired)
    } else if due(b.lifetime) {
        Some(Reason::Lifetime)
    } else {
        keepalive(now, c, b, up, down)
    };
    if let Some(reason) = reason {
        *closing = Some(Box::new(Closing::start(reason, up, down, b.close_timeout)));
    }
    None
}

/// Ping a silent peer; a Ping unanswered past its timeout is a dead peer.
fn keepalive(
    now: Instant,
    c: &mut Clocks,
    b: &Bounds,
    up: &mut Half,
    down: &mut Half,
) -> Option<Reason> {
    // A session whose close handshake started is not pinged any more.
    let ka = b.keepalive.filter(|_| c.first_close.is_none())?;
    for (i, toward) in [(CLIENT, &mut *down), (BACKEND, &mut *up)] {
        match c.ping_due[i] {
            Some(t) if t <= now => {
                return Some(Reason::Keepalive {
                    client_dead: i == CLIENT,
                });
            }
            Some(_) => {}
            None if c.last_rx[i] + ka.interval <= now => {
                toward.insert = Some(build::ping(i == BACKEND).into_boxed_slice());
                toward.insert_is_close = false;
                c.ping_due[i] = Some(now + ka.timeout);
                c.pings[i] += 1;
            }
            None => {}
        }
    }
    None
}
