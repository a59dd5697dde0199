//! How a session ended: who or what ended it, the Close code and reason, messages each way,
//! the rule a peer broke, keepalive pings. What the session record and the close metrics are
//! made of (`tunnel::drive` fills it in).

use super::frames::Violation;
use crate::session::Reason;

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Both directions finished; the client ended first (or sent the first Close).
    Client,
    /// Both directions finished; the backend ended first (or sent the first Close).
    Backend,
    /// Reading from or writing to the client failed.
    ClientError,
    /// Reading from or writing to the backend failed.
    BackendError,
    /// No byte either way for the idle timeout.
    IdleTimeout,
    /// One side ended and the other did not follow within the half-close timeout.
    HalfCloseTimeout,
    /// wsgate ended the session for this reason, with its close sequence.
    Wsgate(Reason),
    /// The gateway cut every connection (the drain budget ran out): no close sequence.
    Shutdown,
}

/// Which peer: the client or the backend (a clean end, or the first Close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Backend,
}

impl Side {
    /// The session's end when this side finished first.
    pub(super) fn end(self) -> End {
        match self {
            Side::Client => End::Client,
            Side::Backend => End::Backend,
        }
    }
}

impl End {
    /// Label for the session record and the `closed_by` metric label.
    pub fn label(&self) -> &'static str {
        match self {
            End::Client => "client",
            End::Backend => "backend",
            End::ClientError => "client_error",
            End::BackendError => "backend_error",
            End::IdleTimeout => "idle_timeout",
            End::HalfCloseTimeout => "half_close_timeout",
            End::Wsgate(r) => r.label(),
            End::Shutdown => "shutdown",
        }
    }

    /// Who ended it: `client`, `backend` or `wsgate`.
    pub fn who(&self) -> &'static str {
        match self {
            End::Client | End::ClientError => "client",
            End::Backend | End::BackendError => "backend",
            _ => "wsgate",
        }
    }
}

/// The end of a session, for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub end: End,
    /// The code of the first Close (a peer's, or wsgate's to the client).
    pub close_code: Option<u16>,
    /// wsgate's reason text, when wsgate closed.
    pub close_reason: Option<String>,
    pub messages_to_backend: u64,
    pub messages_to_client: u64,
    /// The rule a peer broke, if that ended it.
    pub violation: Option<Violation>,
    /// Keepalive Pings sent to the client and to the backend.
    pub pings: [u64; 2],
}

#[cfg(test)]
mod tests {
    use super::{End, Violation};
    use crate::metrics::known;
    use crate::session::Reason;

    /// Every reason, once. The match below stops compiling when a variant is added: add it here.
    fn every_reason() -> Vec<Reason> {
        let all = vec![
            Reason::TokenExpired,
            Reason::Lifetime,
            Reason::Drain,
            Reason::TooBig { from_client: true },
            Reason::Protocol { from_client: true },
            Reason::Rate,
            Reason::Keepalive { client_dead: true },
            Reason::Operator {
                code: 4000,
                text: String::new(),
            },
            Reason::KeyRevoked,
            Reason::Replaced,
        ];
        for r in &all {
            match r {
                Reason::TokenExpired
                | Reason::Lifetime
                | Reason::Drain
                | Reason::TooBig { .. }
                | Reason::Protocol { .. }
                | Reason::Rate
                | Reason::Keepalive { .. }
                | Reason::Operator { .. }
                | Reason::KeyRevoked
                | Reason::Replaced => {}
            }
        }
        all
    }

    #[test]
    fn every_end_and_violation_label_is_set_up_at_zero_in_the_metrics() {
        let mut ends = vec![
            End::Client,
            End::Backend,
            End::ClientError,
            End::BackendError,
            End::IdleTimeout,
            End::HalfCloseTimeout,
            End::Shutdown,
        ];
        ends.extend(every_reason().into_iter().map(End::Wsgate));
        for end in &ends {
            match end {
                End::Client
                | End::Backend
                | End::ClientError
                | End::BackendError
                | End::IdleTimeout
                | End::HalfCloseTimeout
                | End::Wsgate(_)
                | End::Shutdown => {}
            }
            assert!(known::TUNNEL_CLOSED_BY.contains(&end.label()), "{end:?}");
        }
        use Violation::*;
        let violations = [
            Masking,
            Rsv,
            Opcode,
            Control,
            Fragmentation,
            CloseFrame,
            Length,
            FrameTooBig,
            MessageTooBig,
            Rate,
        ];
        for v in violations {
            match v {
                Masking | Rsv | Opcode | Control | Fragmentation | CloseFrame | Length
                | FrameTooBig | MessageTooBig | Rate => {}
            }
            assert!(known::VIOLATIONS.contains(&v.label()), "{v:?}");
        }
    }
}
