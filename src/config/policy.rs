//! Typed admission policy: who may open a tunnel on a route (Origin, token, rates, caps), what
//! the route does with requests that are not upgrades (`http`), and where the client's address
//! comes from. Filled by `validate` from the `defaults:` block, each
//! route's own keys (a route key replaces the default key of the same name), `limits.per_ip`,
//! `limits.max_connections` and `trusted_proxies`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::cluster::{PerSubject, Scope};

/// The policy of one route after merging `defaults:`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub origins: Option<OriginPolicy>,
    pub auth: Option<Arc<AuthConfig>>,
    /// Handshake rate for the whole route.
    pub rate: Option<Rate>,
    /// `rate.scope`: counted by this instance alone or across the fleet.
    pub rate_scope: Scope,
    /// `per_subject:`: live sessions per token subject on this route.
    pub per_subject: Option<PerSubject>,
    /// Open tunnels on the route.
    pub max_connections: Option<u32>,
    /// What keeps being checked after the upgrade.
    pub session: SessionPolicy,
    /// What happens to a request that is not a WebSocket upgrade.
    pub http: HttpMode,
}

/// A route's `http:` key: what wsgate does with a request that is not a WebSocket upgrade (the
/// page that opens the socket, a long-polling fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMode {
    /// `refuse` (default): answer `426 Upgrade Required`.
    #[default]
    Refuse,
    /// `proxy`: forward it to the route's pool (`crate::upstream::plain`), bounded by
    /// `limits.max_request_body_bytes`, `max_response_body_bytes` and `http_request_timeout`.
    Proxy,
}

impl HttpMode {
    /// `refuse` or `proxy`, as written in the config.
    pub fn parse(text: &str) -> Result<HttpMode, String> {
        match text.trim() {
            "refuse" => Ok(HttpMode::Refuse),
            "proxy" => Ok(HttpMode::Proxy),
            other => Err(format!(
                "`{other}` is not `refuse` (answer 426) or `proxy` (forward to the route's pool)"
            )),
        }
    }
}

/// `session:` (route keys over `defaults:`, key by key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Close the session (1008 `token expired`) when its token's `exp` plus leeway passes.
    /// Resolved by validation: default true on routes with `auth.jwt`.
    pub close_at_token_expiry: bool,
    pub max_lifetime: Option<Duration>,
    /// Whole message, sum of its fragments' payload lengths as sent on the wire.
    pub max_message: Option<u64>,
    /// One frame's payload length.
    pub max_frame: Option<u64>,
    /// Client -> backend data messages.
    pub messages: Option<Rate>,
    pub keepalive: Option<Keepalive>,
    /// Enforce RFC 6455 §5 framing rules (masking, RSV, opcodes, control frames) with 1002.
    pub check_frames: bool,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            close_at_token_expiry: false,
            max_lifetime: None,
            max_message: None,
            max_frame: None,
            messages: None,
            keepalive: None,
            check_frames: true,
        }
    }
}

/// `session.keepalive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence from a peer for this long: wsgate pings it.
    pub interval: Duration,
    /// No Pong within this long: the peer is dead.
    pub timeout: Duration,
}

/// `origins:` + `require_origin:`.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Validated patterns as written: `https://app.example.com`, `https://*.example.com:8443`,
    /// `http://localhost:3000`, or `null`.
    pub allowed: Vec<String>,
    /// Refuse requests without `Origin` (default true when `origins` is set).
    pub require: bool,
}

/// `auth:`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub method: AuthMethod,
    /// Where the token may come from, in order; default `[header]`.
    pub token_from: Vec<TokenSource>,
    /// Pass the credential on to the backend (default false: stripped).
    pub forward_token: bool,
    /// Claim name → request header set on the backend request (client values removed first).
    pub claims_to_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum AuthMethod {
    Jwt(JwtConfig),
    Request(AuthRequestConfig),
}

/// `auth.jwt`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub keys: Vec<JwtKey>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock skew allowed on `exp`/`nbf` (default 30s).
    pub leeway: Duration,
    /// Claim → required value (equal, or contained in an array / space-separated list).
    pub require: Vec<(String, String)>,
}

/// One entry of `auth.jwt.keys`. Every key pins its algorithm (JWKS keys by their `alg`).
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// PEM public key (RSA, EC or Ed25519), path resolved against the config directory.
    File {
        path: PathBuf,
        alg: jsonwebtoken::Algorithm,
    },
    /// Shared secret read from this environment variable (HS*).
    SecretEnv {
        var: String,
        alg: jsonwebtoken::Algorithm,
    },
    /// A JWKS document on disk.
    JwksFile { path: PathBuf },
    /// A JWKS document fetched over HTTP(S), refreshed every `refresh` and on an unknown `kid`.
    JwksUrl { url: String, refresh: Duration },
}

/// One entry of `auth.token_from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Header,
    /// `?<name>=<token>`.
    Query(String),
    /// `Cookie: <name>=<token>`.
    Cookie(String),
    /// `Sec-WebSocket-Protocol: <marker>, <token>` (browsers cannot set headers).
    Subprotocol { marker: String },
}

/// `auth.request`: ask an HTTP service (like nginx `auth_request`).
#[derive(Debug, Clone)]
pub struct AuthRequestConfig {
    /// As written, `http(s)://HOST[:PORT]/PATH`; `https://` is verified against the system
    /// roots.
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// Origin-form path (and query) to send.
    pub path: String,
    pub timeout: Duration,
    /// Headers of a 2xx answer copied onto the backend request.
    pub copy_headers: Vec<String>,
}

/// A GCRA rate: `count` per `per`, with `burst` cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
    pub burst: u32,
}

/// `limits.per_ip`.
#[derive(Debug, Clone, Default)]
pub struct PerIp {
    pub rate: Option<Rate>,
    pub max_connections: Option<u32>,
    /// `per_ip.scope`: applies to both the rate and `max_connections`.
    pub scope: Scope,
}

/// An IP network, `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    /// Parse `ADDR/PREFIX` (a bare address is a host route). Host bits must be zero.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().unwrap_or(u8::MAX),
        };
        let net = ipnet::IpNet::new(addr, prefix)
            .map_err(|_| format!("{text:?}: prefix length must be 0..={max}"))?;
        if net.trunc() != net {
            return Err(format!(
                "{text:?} has host bits set (did you mean {}/{prefix}?)",
                net.network()
            ));
        }
        Ok(Cidr(net))
    }

    /// True when `ip` is inside this network. IPv4-mapped IPv6 addresses match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl std::fmt::Display for Cidr {
    /// `ADDR/PREFIX`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let v6 = Cidr::parse("::1/128").unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        assert!(!v6.contains("::2".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.1/8").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert_eq!(Cidr::parse("127.0.0.1").unwrap().0.prefix_len(), 32);
        assert!(Cidr::parse("10.0.0.0/x").is_err());
    }
}
