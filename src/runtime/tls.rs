//! TLS server configuration for a listener: certificates loaded (or generated for the demo), the
//! SNI resolver, protocol versions, ALPN, and the client certificate verifier
//! ([`client_auth`](super::client_auth)) when the listener has `client_auth`.
//!
//! Owns: PEM loading via `rustls-pki-types` (`PemObject`), the cert/key consistency check, and
//! choosing a certificate by SNI against each certificate's SAN names (first = default). With
//! `tls.acme`, files still win for their own names; other names get the ACME certificate
//! (`crate::acme`), and `acme-tls/1` validation handshakes get the challenge certificate.
//! Does not own the handshake itself (`proxy::tls`); it hands the handshake the SNI name it
//! chose for ([`take_resolved_sni`]).

use std::cell::RefCell;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use crate::acme::{ACME_TLS_ALPN, AcmeManager};
use crate::config::{CertFiles, CertSource, TlsConfig, TlsVersion};
use crate::runtime::client_auth;

/// Build the rustls server config for one listener. Errors name the files and what is wrong.
/// `http2`: offer `h2` (RFC 8441 WebSockets over HTTP/2) before `http/1.1`. `acme`: the
/// manager of `tls.acme` (required when the block is set).
pub fn server_config(
    tls: &TlsConfig,
    http2: bool,
    acme: Option<Arc<AcmeManager>>,
) -> Result<Arc<ServerConfig>, Vec<String>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = match &tls.certificates {
        CertSource::Files(files) => {
            let mut loaded = Vec::new();
            let mut errors = Vec::new();
            for f in files {
                match load_pair(f, &provider) {
                    Ok(ck) => loaded.push(Arc::new(ck)),
                    Err(e) => errors.push(format!("{}: {e}", f.origin)),
                }
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            loaded
        }
        CertSource::SelfSigned(names) => vec![Arc::new(
            self_signed(names, &provider).map_err(|e| vec![e])?,
        )],
    };
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let verifier = match &tls.client_auth {
        Some(auth) => client_auth::verifier(auth, &provider).map_err(|e| vec![e])?,
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| vec![format!("TLS versions: {e}")])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SniResolver {
            certs,
            acme: acme.clone(),
        }));
    // RFC 6455 upgrades are HTTP/1.1; RFC 8441 extended CONNECT is h2, preferred when offered.
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    // RFC 8737 §6.2: validation connections offer only `acme-tls/1`; listed last, so a client
    // offering it with anything else never gets it.
    if acme.is_some() {
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    // Stateless resumption so returning clients skip the certificate signature; one ticket per
    // handshake (clients use one per connection; the default of two costs CPU for nothing).
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| vec![format!("TLS tickets: {e}")])?;
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

fn load_pair(files: &CertFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("cannot read certificate {cert_path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM in certificate {cert_path}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("no CERTIFICATE block in {cert_path}"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("cannot read private key {key_path}: {e}"))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            format!("private key {key_path} does not match certificate {cert_path}")
        }
        e => format!("unusable certificate {cert_path} / key {key_path}: {e}"),
    })
}

/// A certificate for `names` made in memory at start (demo/dev only: clients must be told to
/// trust it, e.g. `--insecure`).
fn self_signed(names: &[String], provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| format!("cannot generate a self-signed certificate for {names:?}: {e}"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    CertifiedKey::from_der(vec![generated.cert.der().clone()], key, provider)
        .map_err(|e| format!("self-signed certificate: {e}"))
}

/// Picks the first certificate whose SAN names cover the SNI name; then the ACME certificate;
/// then the first one. An `acme-tls/1`-only hello (RFC 8737 §4: the validation client offers
/// that single protocol) gets the challenge certificate for its name or nothing (§3: no other
/// certificate may answer it); a hello offering it among others is an ordinary client.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Arc<CertifiedKey>>,
    acme: Option<Arc<AcmeManager>>,
}

thread_local! {
    /// The SNI name of the ClientHello this thread last chose a certificate for.
    static RESOLVED_SNI: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The SNI name (lower-cased) of the ClientHello this thread last chose a certificate for,
/// taken. rustls' unbuffered server connection does not expose the name; the handshake
/// (`proxy::tls_conn`) runs rustls on this thread and takes the name right after each step.
pub fn take_resolved_sni() -> Option<String> {
    RESOLVED_SNI.with_borrow_mut(Option::take)
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(str::to_ascii_lowercase);
        RESOLVED_SNI.with_borrow_mut(|seen| seen.clone_from(&sni));
        if let Some(acme) = &self.acme
            && hello.alpn().is_some_and(|mut p| {
                p.next() == Some(ACME_TLS_ALPN) && p.all(|p| p == ACME_TLS_ALPN)
            })
        {
            return acme.challenge(sni.as_deref()?);
        }
        if (self.certs.len() > 1 || self.acme.is_some())
            && let Some(name) = sni.as_deref()
            && let Ok(name) = ServerName::try_from(name)
        {
            let found = self.certs.iter().find(|ck| {
                ck.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
            });
            if let Some(ck) = found {
                return Some(Arc::clone(ck));
            }
        }
        if let Some(acme) = &self.acme
            && (self.certs.is_empty() || sni.as_deref().is_some_and(|n| acme.covers(n)))
        {
            return acme.certificate();
        }
        self.certs.first().cloned()
    }
}
