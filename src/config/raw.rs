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
mod limits;
mod listener;
mod schema;
mod session;
mod spanned;

pub use self::cluster::{RawCluster, RawClusterKey, RawPerSubject};
pub use self::limits::{RawLimits, RawPerIp};
pub use self::listener::{RawAcme, RawCertFiles, RawClientAuth, RawListener, RawTls};
pub use self::session::{RawKeepalive, RawMessageRate, RawSession};
pub use self::spanned::Spanned;

use std::collections::HashMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A list of text values, e.g. `origins: [...]`.
pub type SpannedList = Spanned<Vec<Spanned<String>>>;

/// A mapping of text to text, e.g. `require: { scope: chat }`. Duplicate keys are a YAML error.
pub type SpannedMap = Spanned<HashMap<Spanned<String>, Spanned<String>>>;

/// The whole file.
#[derive(Debug, Deserialize, JsonSchema)]
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `text` or `json`.
    pub format: Option<Spanned<String>>,
    /// A level (`info`) or per-target directives (`warn,wsgate::session=info`).
    pub level: Option<Spanned<String>>,
}

/// `admin`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `IP:PORT`; keep it on loopback or a management network.
    pub bind: Spanned<String>,
    /// Environment variable holding the bearer token that `/sessions*` require.
    pub token_env: Option<Spanned<String>>,
}

/// `routes[i]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Absent or `*`: any host.
    pub host: Option<Spanned<String>>,
    /// Path prefix starting with `/`; the most specific host + path wins.
    pub path: Spanned<String>,
    /// A name under `pools:`.
    pub pool: Spanned<String>,
    // The policy keys of [`RawPolicy`], repeated because serde's `flatten` drops both
    // `deny_unknown_fields` and spans.
    /// Allowed `Origin` headers (else 403): `scheme://host[:port]`, `*.` subdomains, or `"null"`.
    pub origins: Option<Spanned<Vec<RawOrigin>>>,
    /// Absent = true when `origins` is set; false lets clients without `Origin` pass.
    pub require_origin: Option<Spanned<bool>>,
    /// Who may upgrade: exactly one of `jwt` / `request`.
    pub auth: Option<Spanned<RawAuth>>,
    /// Handshakes on the whole route; over it: 429.
    pub rate: Option<Spanned<RawRate>>,
    /// Open tunnels on this route; over it: 503.
    pub max_connections: Option<Spanned<String>>,
    /// Live sessions per token `sub` (needs `auth.jwt`).
    pub per_subject: Option<Spanned<RawPerSubject>>,
    /// Checked for the whole life of a tunnel; merged with `defaults.session` key by key.
    pub session: Option<Spanned<RawSession>>,
    /// `refuse` (default, 426) or `proxy`: what happens to requests that are not upgrades.
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
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `scheme://host[:port]` patterns, or `"null"`.
    pub origins: Option<Spanned<Vec<RawOrigin>>>,
    /// Absent = true when `origins` is set; false lets clients without `Origin` pass.
    pub require_origin: Option<Spanned<bool>>,
    /// Who may upgrade: exactly one of `jwt` / `request`.
    pub auth: Option<Spanned<RawAuth>>,
    /// Handshakes on the whole route; over it: 429.
    pub rate: Option<Spanned<RawRate>>,
    /// Open tunnels on the route; over it: 503.
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
#[derive(Debug, Deserialize, JsonSchema)]
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Verify a JWT locally.
    pub jwt: Option<Spanned<RawJwt>>,
    /// Ask an HTTP service (like nginx `auth_request`); 2xx admits.
    pub request: Option<Spanned<RawAuthRequest>>,
    /// Absent = `[header]`.
    pub token_from: Option<Spanned<Vec<Spanned<RawTokenSource>>>>,
    /// Pass the credential on to the backend; absent = false (removed).
    pub forward_token: Option<Spanned<bool>>,
    /// Claim → header name.
    pub claims_to_headers: Option<SpannedMap>,
}

/// `auth.jwt`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// At least one; any mix of key sources.
    pub keys: Spanned<Vec<Spanned<RawJwtKey>>>,
    /// `iss` must equal this; absent = unchecked.
    pub issuer: Option<Spanned<String>>,
    /// `aud` must contain this; absent = unchecked.
    pub audience: Option<Spanned<String>>,
    /// Clock skew allowed on `exp`/`nbf`; absent = 30s, at most 10m.
    pub leeway: Option<Spanned<String>>,
    /// Claim → required value.
    pub require: Option<SpannedMap>,
}

/// `auth.jwt.keys[i]`: exactly one of `file`, `secret_env`, `jwks_file`, `jwks_url`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJwtKey {
    /// PEM public key, relative to the config file's directory; needs `alg`.
    pub file: Option<Spanned<String>>,
    /// Environment variable holding an HMAC secret; needs an `HS*` `alg`.
    pub secret_env: Option<Spanned<String>>,
    /// JWKS file, relative to the config file's directory; each key names its `alg`.
    pub jwks_file: Option<Spanned<String>>,
    /// JWKS document fetched over http(s) and refreshed.
    pub jwks_url: Option<Spanned<String>>,
    /// The key's algorithm: `RS*`, `PS*`, `ES256`, `ES384`, `EdDSA` or `HS*`.
    pub alg: Option<Spanned<String>>,
    /// Only with `jwks_url`.
    pub refresh: Option<Spanned<String>>,
}

/// `auth.request`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuthRequest {
    /// `http://HOST[:PORT]/PATH`.
    pub url: Spanned<String>,
    /// For the whole auth request.
    pub timeout: Option<Spanned<String>>,
    /// Headers of the auth answer copied onto the backend request.
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// At least one.
    pub backends: Spanned<Vec<RawBackend>>,
    /// Absent = round robin.
    pub balance: Option<Spanned<RawBalance>>,
    /// Only with at least one `wss://` backend.
    pub tls: Option<Spanned<RawBackendTls>>,
    /// `v1` or `v2`; absent = no PROXY header.
    pub proxy_protocol: Option<Spanned<String>>,
    /// Absent = no active checks.
    pub health: Option<Spanned<RawHealth>>,
    /// Eject a backend after consecutive connect failures or bad handshakes.
    pub passive: Option<Spanned<RawPassive>>,
    /// 0..=10, at most one less than the number of backends; absent = 0.
    pub retries: Option<Spanned<String>>,
}

/// `pools.NAME.backends[i]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// `ws://HOST[:PORT][/]` or `wss://HOST[:PORT][/]`.
    pub url: Spanned<String>,
    /// 1..=1000; absent = 1.
    pub weight: Option<Spanned<String>>,
}

/// `pools.NAME.tls`: every key optional. Paths are relative to the config file's directory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackendTls {
    /// PEM CA bundle; absent = the system roots.
    pub ca: Option<Spanned<String>>,
    /// DNS name for SNI and verification instead of each URL's host.
    pub server_name: Option<Spanned<String>>,
    /// PEM client certificate chain; only with `client_key`.
    pub client_cert: Option<Spanned<String>>,
    /// PEM private key for `client_cert`.
    pub client_key: Option<Spanned<String>>,
}

/// `pools.NAME.health`: every key optional.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// Between checks of one backend; absent = 5s, at least 100ms.
    pub interval: Option<Spanned<String>>,
    /// Per check; absent = 2s, shorter than `interval`.
    pub timeout: Option<Spanned<String>>,
    /// Consecutive successes before a down backend is up (1..=100).
    pub rise: Option<Spanned<String>>,
    /// Consecutive failures before an up backend is down (1..=100).
    pub fall: Option<Spanned<String>>,
    /// `tcp` or `{ websocket: PATH }`; absent = `tcp`.
    pub check: Option<Spanned<RawChoice<Spanned<String>>>>,
}

/// `pools.NAME.passive`: every key optional.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPassive {
    /// Consecutive failures before ejection; 0 = never.
    pub failures: Option<Spanned<String>>,
    /// How long an ejected backend stays out.
    pub cooldown: Option<Spanned<String>>,
}
