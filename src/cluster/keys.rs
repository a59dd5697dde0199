//! Key and channel names in Redis: every name starts with `cluster.prefix`, and the keys one
//! script touches share a Redis Cluster hash tag (`{...}`), so every check runs on any topology.
//!
//! A cap is identified by its *tag* (`ip:203.0.113.7`, `sub:*/chat␟alice`); the prefix is applied
//! at call time, so a reload that changes it moves the whole fleet state to the new names.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::admit::limits::IpKey;

/// Separates a route label from a subject inside a tag (a byte neither holds in practice).
const UNIT_SEPARATOR: char = '\u{1f}';

/// Names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The GCRA state of a client address's handshake rate.
    pub fn ip_rate(&self, ip: IpKey) -> String {
        format!("{}{{rate:{}}}", self.prefix, ip_text(ip))
    }

    /// The GCRA state of a route's handshake rate.
    pub fn route_rate(&self, route: &str) -> String {
        format!("{}{{rate:route:{route}}}", self.prefix)
    }

    /// The two keys of a session cap: its members (`instance/n`, scored by start time) and the
    /// instances holding members there (scored by their last touch).
    pub fn cap(&self, tag: &str) -> (String, String) {
        let base = format!("{}{{{tag}}}", self.prefix);
        (format!("{base}:m"), format!("{base}:i"))
    }

    /// The fleet's heartbeats (instance → last heartbeat, ms) and session counts.
    pub fn fleet(&self) -> (String, String) {
        let base = format!("{}{{fleet}}", self.prefix);
        (format!("{base}:hb"), format!("{base}:n"))
    }

    /// The pub/sub channel of session control.
    pub fn channel(&self) -> String {
        format!("{}control", self.prefix)
    }
}

/// The tag of a per-address connection cap.
pub fn ip_tag(ip: IpKey) -> String {
    format!("ip:{}", ip_text(ip))
}

/// The tag of a per-subject session cap on one route.
pub fn subject_tag(route: &str, subject: &str) -> String {
    format!("sub:{route}{UNIT_SEPARATOR}{subject}")
}

fn ip_text(ip: IpKey) -> String {
    match ip {
        IpKey::V4(v4) => Ipv4Addr::from(v4).to_string(),
        IpKey::V6Net64(net) => format!("{}/64", Ipv6Addr::from(u128::from(net) << 64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_their_hash_tag() {
        let k = Keys::new("wsgate:");
        let ip = IpKey::from("2001:db8::1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(k.ip_rate(ip), "wsgate:{rate:2001:db8::/64}");
        assert_eq!(k.route_rate("*/ws"), "wsgate:{rate:route:*/ws}");
        let (m, i) = k.cap(&subject_tag("*/ws", "alice"));
        assert_eq!(m, "wsgate:{sub:*/ws\u{1f}alice}:m");
        assert_eq!(i, "wsgate:{sub:*/ws\u{1f}alice}:i");
        let v4 = IpKey::from("203.0.113.7".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(ip_tag(v4), "ip:203.0.113.7");
        assert_eq!(k.fleet().0, "wsgate:{fleet}:hb");
        assert_eq!(k.channel(), "wsgate:control");
    }
}
