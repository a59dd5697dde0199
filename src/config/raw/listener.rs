//! `listeners:` as written: where to accept, TLS certificates (or a self-signed one), the TLS
//! floor, client certificates (mTLS), PROXY protocol, and whether TLS offers h2. Values stay text like the rest of
//! [`super`]; validation is `crate::config::validate`.

use schemars::JsonSchema;
use serde::Deserialize;

use super::Spanned;

/// `listeners[i]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Unique; shows up in logs and metrics (A-Z a-z 0-9 - _ .).
    pub name: Spanned<String>,
    /// `IP:PORT`, e.g. `"127.0.0.1:8443"` or `"[::]:443"`.
    pub bind: Spanned<String>,
    /// Absent: a plain `ws://` listener.
    pub tls: Option<Spanned<RawTls>>,
    /// Expect a PROXY v1/v2 header from trusted peers; absent = false.
    pub proxy_protocol: Option<Spanned<bool>>,
    /// Offer h2 in ALPN on a TLS listener (RFC 8441 WebSockets); absent = true.
    pub http2: Option<Spanned<bool>>,
}

/// `listeners[i].tls`: `certificates` and/or `acme`, or `self_signed` alone.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Chosen by SNI; the first is the default.
    pub certificates: Option<Spanned<Vec<Spanned<RawCertFiles>>>>,
    /// DNS names or IP addresses for an in-memory self-signed certificate.
    pub self_signed: Option<Spanned<Vec<Spanned<String>>>>,
    /// Certificates obtained and renewed automatically (ACME, TLS-ALPN-01 on this listener).
    pub acme: Option<Spanned<RawAcme>>,
    /// `"1.2"` or `"1.3"`; absent = 1.2.
    pub min_version: Option<Spanned<String>>,
    /// Ask clients for a certificate (mTLS); absent = never ask.
    pub client_auth: Option<Spanned<RawClientAuth>>,
}

/// `listeners[i].tls.client_auth`: paths relative to the config file's directory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// PEM bundle of the CAs that issue client certificates.
    pub ca: Spanned<String>,
    /// Absent = true: a client without a valid certificate fails the handshake. False: ask,
    /// admit without one, verify one that is given.
    pub required: Option<Spanned<bool>>,
    /// Certificate revocation list(s), PEM or DER; absent = no revocation check.
    pub crl: Option<Spanned<String>>,
}

/// `listeners[i].tls.certificates[j]`: PEM paths, relative to the config file's directory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCertFiles {
    /// PEM certificate chain.
    pub cert: Spanned<String>,
    /// PEM private key.
    pub key: Spanned<String>,
}

/// `listeners[i].tls.acme`: which names to obtain certificates for, from which directory, and
/// where to keep the account key and the certificates.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAcme {
    /// DNS names; one certificate covers them all.
    pub domains: Spanned<Vec<Spanned<String>>>,
    /// Contact address given to the CA (`mailto:`); absent = none.
    pub email: Option<Spanned<String>>,
    /// The ACME directory URL (https); absent = Let's Encrypt production.
    pub directory: Option<Spanned<String>>,
    /// PEM CA certificate(s) trusted for the directory's own HTTPS (private/test CAs).
    pub ca: Option<Spanned<String>>,
    /// Account key and certificates; absent = `$STATE_DIRECTORY/acme` or `./acme`.
    pub state_dir: Option<Spanned<String>>,
    /// Renew when the certificate expires within this duration; absent = `30d`.
    pub renew_before: Option<Spanned<String>>,
}
