//! Client certificates (mTLS) on a listener: the rustls verifier built from `client_auth`
//! (CA bundle, `required`, CRL), and what wsgate takes from a verified certificate
//! ([`ClientCert`]: its subject CN and first URI/DNS SAN).
//!
//! Owns: loading the files (with the readers validation uses), the revocation policy (the end
//! entity is checked against the CRL; a certificate no listed CRL speaks for is refused), and
//! the small DER walk that finds the subject CN (rustls-webpki exposes the SANs but only the
//! raw subject). Does not own the handshake (`proxy::tls`), the headers sent to backends
//! (`proxy::forward`) or the session identity (`admit`).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use super::der::tlv;
use crate::config::ClientAuth;
use crate::config::validate::client_auth::{read_ca, read_crls};

/// The request fields that carry a verified certificate's names to the backend. The client's
/// own values of these are always removed, on every listener.
pub const CLIENT_CERT_SUBJECT: &str = "x-client-cert-subject";
pub const CLIENT_CERT_SAN: &str = "x-client-cert-san";

/// Longest CN or SAN kept (RFC 5280 bounds a CN at 64 characters; URIs may be longer).
const MAX_NAME_CHARS: usize = 1024;

/// The verifier for `auth`: `required` refuses a handshake without a valid certificate; else
/// a client may send none, and one that is sent is verified all the same.
pub fn verifier(
    auth: &ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    let shown = auth.ca.display();
    for der in read_ca(&auth.ca)? {
        roots
            .add(der)
            .map_err(|e| format!("client CA `{shown}`: {e}"))?;
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    if let Some(crl) = &auth.crl {
        builder = builder
            .with_crls(read_crls(crl)?)
            .only_check_end_entity_revocation();
    }
    if !auth.required {
        builder = builder.allow_unauthenticated();
    }
    builder
        .build()
        .map_err(|e| format!("client certificate verifier ({shown}): {e}"))
}

/// Who a verified client certificate names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's first common name (OID 2.5.4.3).
    pub subject: Option<String>,
    /// The first URI SAN, else the first DNS SAN.
    pub san: Option<String>,
}

impl ClientCert {
    /// What the end-entity certificate `der` names; `None` when it does not parse (rustls has
    /// verified it, so that does not happen) or names nothing usable.
    pub fn from_der(der: &CertificateDer<'_>) -> Option<ClientCert> {
        let ee = webpki::EndEntityCert::try_from(der).ok()?;
        let san = ee
            .valid_uri_names()
            .next()
            .or_else(|| ee.valid_dns_names().next())
            .and_then(header_safe);
        let subject = common_name(ee.subject()).and_then(header_safe);
        (subject.is_some() || san.is_some()).then_some(ClientCert { subject, san })
    }

    /// The session identity: the CN, else the SAN.
    pub fn identity(&self) -> Option<&str> {
        self.subject.as_deref().or(self.san.as_deref())
    }
}

/// A name fit for a header value and a log line: printable ASCII without control characters,
/// bounded. Anything else is dropped rather than mangled.
fn header_safe(text: &str) -> Option<String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_NAME_CHARS
        && text.bytes().all(|b| (0x20..0x7f).contains(&b));
    ok.then(|| text.to_owned())
}

/// The first CN in an X.501 Name's contents (RDNSequence: SET OF SEQUENCE { OID, value }).
/// Values as UTF8String, PrintableString or IA5String; other string types are skipped.
fn common_name(mut name: &[u8]) -> Option<&str> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    while !name.is_empty() {
        let (tag, mut set, rest) = tlv(name)?;
        name = rest;
        if tag != 0x31 {
            return None;
        }
        while !set.is_empty() {
            let (tag, atv, rest) = tlv(set)?;
            set = rest;
            if tag != 0x30 {
                return None;
            }
            let (oid_tag, oid, value) = tlv(atv)?;
            if oid_tag != 0x06 || oid != CN {
                continue;
            }
            let (value_tag, value, _) = tlv(value)?;
            if matches!(value_tag, 0x0c | 0x13 | 0x16) {
                return std::str::from_utf8(value).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate; a SAN with `://` is a URI, else a DNS name.
    fn cert(cn: Option<&str>, sans: &[&str]) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::default();
        for san in sans {
            let name = san.to_string().try_into().expect("IA5");
            params.subject_alt_names.push(if san.contains("://") {
                rcgen::SanType::URI(name)
            } else {
                rcgen::SanType::DnsName(name)
            });
        }
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example Org");
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "DE");
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("self-signed").der().clone()
    }

    #[test]
    fn takes_the_cn_and_the_first_uri_san_before_dns() {
        let der = cert(
            Some("alice"),
            &["alice.example.com", "spiffe://example.org/alice"],
        );
        let got = ClientCert::from_der(&der).expect("names");
        assert_eq!(got.subject.as_deref(), Some("alice"));
        assert_eq!(got.san.as_deref(), Some("spiffe://example.org/alice"));
        assert_eq!(got.identity(), Some("alice"));
    }

    #[test]
    fn without_a_cn_the_san_is_the_identity() {
        let der = cert(None, &["bob.example.com"]);
        let got = ClientCert::from_der(&der).expect("names");
        assert_eq!(got.subject, None);
        assert_eq!(got.identity(), Some("bob.example.com"));
    }

    #[test]
    fn unsafe_names_and_garbage_are_dropped() {
        assert_eq!(header_safe("a\r\nX-Evil: 1"), None);
        assert_eq!(header_safe(""), None);
        assert_eq!(common_name(&[0x31, 0x05, 0x30]), None);
        assert_eq!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(tlv(&[0x30, 0x89]), None);
        assert!(ClientCert::from_der(&CertificateDer::from(vec![0x30, 0x00])).is_none());
    }
}
