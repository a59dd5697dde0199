//! Why wsgate ends a session, and what each leg is told: the table of issue "sessions that stay
//! valid" in one enum, so call sites never build close codes or reason strings themselves.

/// A reason wsgate ends a session on its own (a Close a peer starts is relayed, not listed here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The token's `exp` (plus leeway) passed.
    TokenExpired,
    /// `session.max_lifetime` reached.
    Lifetime,
    /// The gateway is draining (SIGTERM) or closing (SIGINT).
    Drain,
    /// A message or frame over `session.max_message` / `max_frame`; `from_client` names the sender.
    TooBig { from_client: bool },
    /// A frame that breaks RFC 6455 §5; `from_client` names the sender.
    Protocol { from_client: bool },
    /// The client sent data messages faster than `session.messages`.
    Rate,
    /// A keepalive Ping went unanswered; `client_dead` names the silent leg.
    Keepalive { client_dead: bool },
    /// Closed through the admin API with this code and reason.
    Operator { code: u16, text: String },
    /// A JWKS refresh removed the key the session's token was signed with.
    KeyRevoked,
    /// A newer session of the same subject took this one's place (`per_subject`,
    /// `on_exceed: close_oldest`).
    Replaced,
}

/// What one leg is sent: a Close with this code and reason, or nothing (the peer is dead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Farewell {
    Close(u16, String),
    Nothing,
}

impl Farewell {
    fn close(code: u16, text: &str) -> Farewell {
        Farewell::Close(code, text.to_owned())
    }
}

/// Codes an operator may close with (RFC 6455 §7.4.1 plus the private range).
pub fn operator_code_allowed(code: u16) -> bool {
    matches!(code, 1000 | 1001 | 1008 | 1011 | 1012 | 1013 | 4000..=4999)
}

/// Default operator close.
pub const OPERATOR_CODE: u16 = 1008;
/// Default operator close reason.
pub const OPERATOR_TEXT: &str = "closed by operator";
/// The longest Close reason (125-byte control payload less the 2-byte code).
pub const MAX_REASON_BYTES: usize = 123;

impl Reason {
    /// The label in session records and metrics (`closed_by = wsgate:<label>`).
    pub fn label(&self) -> &'static str {
        match self {
            Reason::TokenExpired => "token_expired",
            Reason::Lifetime => "lifetime",
            Reason::Drain => "drain",
            Reason::TooBig { .. } => "too_big",
            Reason::Protocol { .. } => "protocol",
            Reason::Rate => "rate",
            Reason::Keepalive { .. } => "keepalive",
            Reason::Operator { .. } => "operator",
            Reason::KeyRevoked => "key_revoked",
            Reason::Replaced => "replaced",
        }
    }

    /// What the client is sent.
    pub fn to_client(&self) -> Farewell {
        self.farewell(true)
    }

    /// What the backend is sent.
    pub fn to_backend(&self) -> Farewell {
        self.farewell(false)
    }

    fn farewell(&self, client_leg: bool) -> Farewell {
        const AWAY: (u16, &str) = (1001, "going away");
        let (code, text) = match self {
            Reason::TokenExpired => (1008, "token expired"),
            Reason::Lifetime => (1001, "session lifetime"),
            Reason::Drain => AWAY,
            Reason::TooBig { from_client } if *from_client == client_leg => {
                (1009, "message too big")
            }
            Reason::Protocol { from_client } if *from_client == client_leg => {
                (1002, "protocol error")
            }
            Reason::TooBig { .. } | Reason::Protocol { .. } => AWAY,
            Reason::Rate if client_leg => (1008, "rate limit"),
            Reason::Rate => AWAY,
            Reason::Keepalive { client_dead } if *client_dead == client_leg => {
                return Farewell::Nothing;
            }
            Reason::Keepalive { .. } => AWAY,
            Reason::Operator { code, text } => return Farewell::Close(*code, text.clone()),
            Reason::KeyRevoked => (1008, "key revoked"),
            Reason::Replaced => (1008, "replaced"),
        };
        Farewell::close(code, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(r: &Reason) -> (Farewell, Farewell) {
        (r.to_client(), r.to_backend())
    }

    #[test]
    fn every_reason_maps_to_the_table() {
        let c = |code, t: &str| Farewell::Close(code, t.to_owned());
        let away = c(1001, "going away");
        let rows = [
            (
                Reason::TokenExpired,
                c(1008, "token expired"),
                c(1008, "token expired"),
            ),
            (
                Reason::Lifetime,
                c(1001, "session lifetime"),
                c(1001, "session lifetime"),
            ),
            (Reason::Drain, away.clone(), away.clone()),
            (
                Reason::TooBig { from_client: true },
                c(1009, "message too big"),
                away.clone(),
            ),
            (
                Reason::TooBig { from_client: false },
                away.clone(),
                c(1009, "message too big"),
            ),
            (
                Reason::Protocol { from_client: true },
                c(1002, "protocol error"),
                away.clone(),
            ),
            (
                Reason::Protocol { from_client: false },
                away.clone(),
                c(1002, "protocol error"),
            ),
            (Reason::Rate, c(1008, "rate limit"), away.clone()),
            (
                Reason::Keepalive { client_dead: true },
                Farewell::Nothing,
                away.clone(),
            ),
            (
                Reason::Keepalive { client_dead: false },
                away.clone(),
                Farewell::Nothing,
            ),
            (
                Reason::KeyRevoked,
                c(1008, "key revoked"),
                c(1008, "key revoked"),
            ),
            (Reason::Replaced, c(1008, "replaced"), c(1008, "replaced")),
            (
                Reason::Operator {
                    code: 4001,
                    text: "bye".into(),
                },
                c(4001, "bye"),
                c(4001, "bye"),
            ),
        ];
        for (reason, client, backend) in rows {
            assert_eq!(pair(&reason), (client, backend), "{reason:?}");
        }
    }

    #[test]
    fn operator_codes() {
        for ok in [1000, 1001, 1008, 1011, 1012, 1013, 4000, 4999] {
            assert!(operator_code_allowed(ok), "{ok}");
        }
        for bad in [0, 999, 1002, 1005, 1006, 1015, 3000, 5000] {
            assert!(!operator_code_allowed(bad), "{bad}");
        }
    }
}
