//! The client's message rate (`session.messages`): a GCRA cell per data message, on governor's
//! direct limiter, allocated only for routes that set it.

use std::fmt;

use governor::{DefaultDirectRateLimiter, RateLimiter};

use super::frames::MessageGate;
use crate::config::policy::Rate;

/// One session's message limiter.
pub struct MessageRate(DefaultDirectRateLimiter);

impl MessageRate {
    pub fn new(rate: &Rate) -> MessageRate {
        MessageRate(RateLimiter::direct(crate::admit::limits::quota(rate, 1)))
    }
}

impl fmt::Debug for MessageRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageRate")
    }
}

impl MessageGate for MessageRate {
    fn allow(&mut self) -> bool {
        self.0.check().is_ok()
    }
}
