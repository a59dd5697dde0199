//! Series about live sessions: how they end (code, who), the frame rules peers break, and
//! keepalive. Recorded once per session, when its tunnel task ends.

use prometheus_client::encoding::EncodeLabelSet;

use super::{Metrics, OpenTunnel};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CloseLabels {
    route: String,
    code: String,
    closed_by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ViolationLabels {
    route: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct LegLabels {
    pub(super) leg: &'static str,
}

/// How one session ended, for its series.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionEnd {
    /// The Close code the client got (or sent first).
    pub code: Option<u16>,
    /// `client`, `backend` or `wsgate`.
    pub closed_by: &'static str,
    /// The frame rule a peer broke.
    pub violation: Option<&'static str>,
    /// Keepalive Pings sent to the client and to the backend.
    pub pings: [u64; 2],
    /// Keepalive found this leg dead: `client` or `backend`.
    pub dead: Option<&'static str>,
}

impl Metrics {
    /// The session series of `route` at zero: the usual close codes and every frame rule.
    pub(super) fn prime_session(&self, route: &str) {
        for &(code, closed_by) in super::known::SESSION_CLOSES {
            self.session_closes.get_or_create_owned(&CloseLabels {
                route: route.to_owned(),
                code: code.to_owned(),
                closed_by,
            });
        }
        for &kind in super::known::VIOLATIONS {
            self.frame_violations.get_or_create_owned(&ViolationLabels {
                route: route.to_owned(),
                kind,
            });
        }
    }

    fn session_ended(&self, route: &str, end: &SessionEnd) {
        let code = end
            .code
            .map_or_else(|| "none".to_owned(), |c| c.to_string());
        self.session_closes
            .get_or_create(&CloseLabels {
                route: route.to_owned(),
                code,
                closed_by: end.closed_by,
            })
            .inc();
        if let Some(kind) = end.violation {
            self.frame_violations
                .get_or_create(&ViolationLabels {
                    route: route.to_owned(),
                    kind,
                })
                .inc();
        }
        for (leg, n) in [("client", end.pings[0]), ("backend", end.pings[1])] {
            if n > 0 {
                self.keepalive_pings
                    .get_or_create(&LegLabels { leg })
                    .inc_by(n);
            }
        }
        if let Some(leg) = end.dead {
            self.keepalive_dead.get_or_create(&LegLabels { leg }).inc();
        }
    }
}

impl OpenTunnel {
    /// Record how the session ended.
    pub fn session_ended(&self, end: &SessionEnd) {
        self.metrics.session_ended(&self.route, end);
    }
}
