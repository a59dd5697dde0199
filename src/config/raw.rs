//! The YAML file as written: serde structs that mirror `config/wsgate.yaml` key for key.
//!
//! Every struct denies unknown keys, so a typo (`drain_timout`) is an error with its line:col
//! instead of a silently ignored setting. Values stay close to their text (`"10s"` is a
//! `String` here); units, ranges and cross references are checked in
//! [`crate::config::validate`], which is why every value a semantic error can point at keeps its
//! [`Spanned`] location. Optional sections are `Option` so that an absent key and an empty one
//! both reach validation, which reports them with a sentence rather than a serde message.
//!
//! The admission keys (`defaults:`, a route's `origins`/`auth`/`rate`/`max_connections`/`http`,
//! `limits.per_ip`, `trusted_proxies`, `proxy_protocol`) follow the same rules; their meaning is
//! documented on [`crate::config::policy`]; the `session:` keys are in [`session`], `cluster:`
//! and `per_subject:` in [`cluster`].

mod cluster;
mod listener;
mod session;

pub use self::cluster::{RawCluster, RawClusterKey, RawPerSubject};
pub use self::listener::{RawAcme, RawCertFiles, RawListener, RawTls};
pub use self::session::{RawKeepalive, RawMessageRate, RawSession};

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// A list of text values, e.g. `origins: [...]`.
pub type SpannedList = Spanned<Vec<Spanned<String>>>;

/// A mapping of text to text, e.g. `require: { scope: chat }`. Duplicate keys are a YAML error.
pub type SpannedMap = Spanned<HashMap<Spanned<String>, Spanned<String>>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Sockets to accept on; at least one.
    pub listeners: Option<Spanned<Vec<RawListener>>>,
    /// Time and size bounds; absent = all defaults.
    pub limits: Option<RawLimits>,
    /// Host + path prefix → pool; at least one.
    pub routes: Option<Spanned<Vec<RawRoute>>>,
    /// Pool name → pool. Duplicate names are a YAML duplicate-key error before we get here.
    pub pools: Option<Spanned<HashMap<Spanned<String>, RawPool>>>,
    /// Route policy keys used by every route that does not set them itself.
    pub defaults: Option<Spanned<RawPolicy>>,
    /// CIDRs (`10.0.0.0/8`, `::1/128`) whose PROXY header and `X-Forwarded-For` are believed.
    pub trusted_proxies: Option<SpannedList>,
    /// Log line format and level.
    pub log: Option<RawLog>,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: Option<RawAdmin>,
    /// The Redis/Valkey a fleet shares; absent = every instance counts alone.
    #[serde(default, deserialize_with = "cluster::cluster_key")]
    pub cluster: RawClusterKey,
}

/// `log`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `text` or `json`.
    pub format: Option<Spanned<String>>,
    /// A level (`info`) or per-target directives (`warn,wsgate::session=info`).
    pub level: Option<Spanned<String>>,
}

/// `admin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `IP:PORT`; keep it on loopback or a management network.
    pub bind: Spanned<String>,
    /// Environment variable holding the bearer token that `/sessions*` require.
    pub token_env: Option<Spanned<String>>,
}

/// `limits`: every key optional; absent = [`crate::config::Limits::default`].
///
/// Every value is text (`10s`, `16KiB`; a bare number like `100` is read as text too) so that a
/// bad value is a validation error reported together with the others, not a serde type error
/// that stops the parse. Units are parsed by [`crate::config::units`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub tls_handshake_timeout: Option<Spanned<String>>,
    pub request_header_timeout: Option<Spanned<String>>,
    pub max_request_header_bytes: Option<Spanned<String>>,
    pub max_request_headers: Option<Spanned<String>>,
    pub backend_connect_timeout: Option<Spanned<String>>,
    pub backend_handshake_timeout: Option<Spanned<String>>,
    pub max_relayed_body_bytes: Option<Spanned<String>>,
    /// Proxied plain requests (`http: proxy`): the client's body, the backend's answer body, and
    /// the whole exchange.
    pub max_request_body_bytes: Option<Spanned<String>>,
    pub max_response_body_bytes: Option<Spanned<String>>,
    pub http_request_timeout: Option<Spanned<String>>,
    pub tunnel_idle_timeout: Option<Spanned<String>>,
    pub tunnel_half_close_timeout: Option<Spanned<String>>,
    pub drain_timeout: Option<Spanned<String>>,
    /// Wait for a frame in flight, then for each peer's Close reply, this long.
    pub close_timeout: Option<Spanned<String>>,
    /// Spread drain Close frames over this window (`0s` = all at once).
    pub drain_spread: Option<Spanned<String>>,
    /// Open client connections in all.
    pub max_connections: Option<Spanned<String>>,
    pub per_ip: Option<Spanned<RawPerIp>>,
}

/// `limits.per_ip`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPerIp {
    /// `N/s`, `N/m` or `N/h`.
    pub handshakes: Option<Spanned<String>>,
    /// Only with `handshakes`; absent = N.
    pub burst: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<String>>,
    /// `local` (default) or `fleet`: for the rate and `max_connections` (fleet needs `cluster:`).
    pub scope: Option<Spanned<String>>,
}

/// `routes[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Absent or `*`: any host.
    pub host: Option<Spanned<String>>,
    pub path: Spanned<String>,
    pub pool: Spanned<String>,
    // The policy keys of [`RawPolicy`], repeated because serde's `flatten` drops both
    // `deny_unknown_fields` and spans.
    pub origins: Option<Spanned<Vec<RawOrigin>>>,
    pub require_origin: Option<Spanned<bool>>,
    pub auth: Option<Spanned<RawAuth>>,
    pub rate: Option<Spanned<RawRate>>,
    pub max_connections: Option<Spanned<String>>,
    pub per_subject: Option<Spanned<RawPerSubject>>,
    pub session: Option<Spanned<RawSession>>,
    pub http: Option<Spanned<String>>,
}

impl RawRoute {
    /// The route's own policy keys (each replaces the `defaults:` key of the same name, except
    /// `session`, whose keys are merged one by one).
    pub fn take_policy(&mut self) -> RawPolicy {
        RawPolicy {
            origins: self.origins.take(),
            require_origin: self.require_origin.take(),
            auth: self.auth.take(),
            rate: self.rate.take(),
            max_connections: self.max_connections.take(),
            per_subject: self.per_subject.take(),
            session: self.session.take(),
            http: self.http.take(),
        }
    }
}

/// `defaults:`, and the policy keys of a route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `scheme://host[:port]` patterns, or `"null"`.
    pub origins: Option<Spanned<Vec<RawOrigin>>>,
    pub require_origin: Option<Spanned<bool>>,
    pub auth: Option<Spanned<RawAuth>>,
    pub rate: Option<Spanned<RawRate>>,
    pub max_connections: Option<Spanned<String>>,
    /// Live sessions per token `sub` on each route (needs `auth.jwt`).
    pub per_subject: Option<Spanned<RawPerSubject>>,
    /// Merged with a route's `session` key by key.
    pub session: Option<Spanned<RawSession>>,
    /// `refuse` (default) or `proxy`: what happens to requests that are not upgrades.
    pub http: Option<Spanned<String>>,
}

/// One `origins` entry. `None`: an unquoted YAML `null`, read as the `"null"` origin.
pub type RawOrigin = Spanned<Option<String>>;

/// A route's (or `defaults:`) `rate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    /// `N/s`, `N/m` or `N/h`.
    pub handshakes: Spanned<String>,
    /// Absent = N.
    pub burst: Option<Spanned<String>>,
    /// `local` (default) or `fleet` (counted across the fleet; needs `cluster:`).
    pub scope: Option<Spanned<String>>,
}

/// `auth`: exactly one of `jwt` / `request`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub jwt: Option<Spanned<RawJwt>>,
    pub request: Option<Spanned<RawAuthRequest>>,
    /// Absent = `[header]`.
    pub token_from: Option<Spanned<Vec<Spanned<RawTokenSource>>>>,
    pub forward_token: Option<Spanned<bool>>,
    /// Claim → header name.
    pub claims_to_headers: Option<SpannedMap>,
}

/// `auth.jwt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub keys: Spanned<Vec<Spanned<RawJwtKey>>>,
    pub issuer: Option<Spanned<String>>,
    pub audience: Option<Spanned<String>>,
    pub leeway: Option<Spanned<String>>,
    /// Claim → required value.
    pub require: Option<SpannedMap>,
}

/// `auth.jwt.keys[i]`: exactly one of `file`, `secret_env`, `jwks_file`, `jwks_url`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtKey {
    /// PEM public key, relative to the config file's directory; needs `alg`.
    pub file: Option<Spanned<String>>,
    /// Environment variable holding an HMAC secret; needs an `HS*` `alg`.
    pub secret_env: Option<Spanned<String>>,
    pub jwks_file: Option<Spanned<String>>,
    pub jwks_url: Option<Spanned<String>>,
    pub alg: Option<Spanned<String>>,
    /// Only with `jwks_url`.
    pub refresh: Option<Spanned<String>>,
}

/// `auth.request`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthRequest {
    /// `http://HOST[:PORT]/PATH`.
    pub url: Spanned<String>,
    pub timeout: Option<Spanned<String>>,
    pub copy_headers: Option<SpannedList>,
}

/// One `auth.token_from` entry: a bare word (`header`, `subprotocol`) or a one-key mapping
/// (`{ query: NAME }`, `{ cookie: NAME }`, `{ subprotocol: MARKER }`). Which words and keys are
/// allowed is checked in validation, so that a wrong one is reported with the others.
#[derive(Debug)]
pub enum RawTokenSource {
    Word(String),
    Map(Vec<(Spanned<String>, Spanned<String>)>),
}

impl<'de> Deserialize<'de> for RawTokenSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;

        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = RawTokenSource;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`header`, `subprotocol` or a mapping like `{ query: NAME }`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTokenSource::Word(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(RawTokenSource::Map(entries))
            }
        }

        deserializer.deserialize_any(SourceVisitor)
    }
}

/// A bare word or a one-key mapping whose value is `V`: `balance: least_connections` /
/// `balance: { hash: ... }`, `check: tcp` / `check: { websocket: /health }`. Which words and keys
/// are allowed is checked in validation, so that a wrong one is reported with the others. A
/// number or boolean written where a word goes is kept as its text.
#[derive(Debug)]
pub enum RawChoice<V> {
    Word(String),
    Map(Vec<(Spanned<String>, V)>),
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for RawChoice<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChoiceVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for ChoiceVisitor<V> {
            type Value = RawChoice<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a word or a one-key mapping like `{ hash: path }`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawChoice::Word(v.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawChoice::Word(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawChoice::Word(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawChoice::Word(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawChoice::Word(v.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(RawChoice::Map(entries))
            }
        }

        deserializer.deserialize_any(ChoiceVisitor(std::marker::PhantomData))
    }
}

/// `balance:`: a policy name, or `{ hash: KEY }` where KEY is a word (`path`, `client_ip`,
/// `subprotocol`) or `{ header | cookie | query: NAME }`.
pub type RawBalance = RawChoice<Spanned<RawChoice<Spanned<String>>>>;

/// `pools.NAME`. Every key but `backends` optional; counts are text, like [`RawLimits`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub backends: Spanned<Vec<RawBackend>>,
    /// Absent = round robin.
    pub balance: Option<Spanned<RawBalance>>,
    /// Only with at least one `wss://` backend.
    pub tls: Option<Spanned<RawBackendTls>>,
    /// `v1` or `v2`; absent = no PROXY header.
    pub proxy_protocol: Option<Spanned<String>>,
    /// Absent = no active checks.
    pub health: Option<Spanned<RawHealth>>,
    pub passive: Option<Spanned<RawPassive>>,
    /// 0..=10, at most one less than the number of backends; absent = 0.
    pub retries: Option<Spanned<String>>,
}

/// `pools.NAME.backends[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// `ws://HOST[:PORT][/]` or `wss://HOST[:PORT][/]`.
    pub url: Spanned<String>,
    /// 1..=1000; absent = 1.
    pub weight: Option<Spanned<String>>,
}

/// `pools.NAME.tls`: every key optional. Paths are relative to the config file's directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackendTls {
    /// PEM CA bundle; absent = the system roots.
    pub ca: Option<Spanned<String>>,
    /// DNS name for SNI and verification instead of each URL's host.
    pub server_name: Option<Spanned<String>>,
    /// PEM client certificate chain; only with `client_key`.
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
}

/// `pools.NAME.health`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub rise: Option<Spanned<String>>,
    pub fall: Option<Spanned<String>>,
    /// `tcp` or `{ websocket: PATH }`; absent = `tcp`.
    pub check: Option<Spanned<RawChoice<Spanned<String>>>>,
}

/// `pools.NAME.passive`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassive {
    /// Consecutive failures before ejection; 0 = never.
    pub failures: Option<Spanned<String>>,
    pub cooldown: Option<Spanned<String>>,
}
