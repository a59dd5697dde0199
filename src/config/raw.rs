//! The YAML file as written: serde structs that mirror `config/wsgate.yaml` key for key.
//!
//! Every struct denies unknown keys, so a typo (`drain_timout`) is an error with its line:col
//! instead of a silently ignored setting. Values stay close to their text (`"10s"` is a
//! `String` here); units, ranges and cross references are checked in
//! [`crate::config::validate`], which is why every value a semantic error can point at keeps its
//! [`Spanned`] location. Optional sections are `Option` so that an absent key and an empty one
//! both reach validation, which reports them with a sentence rather than a serde message.

use std::collections::HashMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

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
}

/// `listeners[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: Spanned<String>,
    /// `IP:PORT`, e.g. `"127.0.0.1:8443"` or `"[::]:443"`.
    pub bind: Spanned<String>,
    /// Absent: a plain `ws://` listener.
    pub tls: Option<Spanned<RawTls>>,
}

/// `listeners[i].tls`: exactly one of `certificates` / `self_signed`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Chosen by SNI; the first is the default.
    pub certificates: Option<Spanned<Vec<Spanned<RawCertFiles>>>>,
    /// DNS names or IP addresses for an in-memory self-signed certificate.
    pub self_signed: Option<Spanned<Vec<Spanned<String>>>>,
    /// `"1.2"` or `"1.3"`; absent = 1.2.
    pub min_version: Option<Spanned<String>>,
}

/// `listeners[i].tls.certificates[j]`: PEM paths, relative to the config file's directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertFiles {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
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
    pub tunnel_idle_timeout: Option<Spanned<String>>,
    pub drain_timeout: Option<Spanned<String>>,
}

/// `routes[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Absent or `*`: any host.
    pub host: Option<Spanned<String>>,
    pub path: Spanned<String>,
    pub pool: Spanned<String>,
}

/// `pools.NAME`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub backends: Spanned<Vec<RawBackend>>,
}

/// `pools.NAME.backends[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// `ws://HOST[:PORT][/]`.
    pub url: Spanned<String>,
}
