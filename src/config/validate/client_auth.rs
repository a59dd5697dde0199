//! `listeners[i].tls.client_auth` → [`ClientAuth`]: the CA bundle that issues client
//! certificates, whether one is required, and the optional revocation list. `client_auth` lives
//! under `tls:`, so a plain listener cannot have it (an unknown key there is a YAML error).
//!
//! The files are read and parsed here, so that a missing CA, a bundle without a certificate or
//! a CRL that does not parse is reported at its line:col. [`read_ca`] and [`read_crls`] are
//! also what `crate::runtime::client_auth` loads them with when a runtime is built (a reload
//! reads them again); this module keeps nothing.

use std::path::Path;

use crate::config::raw::Spanned;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

use super::keys::read_capped;
use super::{Errors, resolve};
use crate::config::ClientAuth;
use crate::config::raw::RawClientAuth;

/// `client_auth` at `at` (`listeners[0].tls.client_auth`). `None`: errors reported.
pub(super) fn client_auth(
    raw: Spanned<RawClientAuth>,
    at: &str,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<ClientAuth> {
    let raw = raw.value;
    let before = errs.list.len();
    let ca_at = format!("{at}.ca");
    let ca = resolve(&raw.ca, &ca_at, base_dir, errs);
    if let Some(path) = &ca
        && let Err(msg) = read_ca(path)
    {
        errs.at(&raw.ca.referenced, ca_at, msg);
    }
    let crl = raw.crl.as_ref().and_then(|crl| {
        let crl_at = format!("{at}.crl");
        let path = resolve(crl, &crl_at, base_dir, errs)?;
        match read_crls(&path) {
            Ok(_) => Some(path),
            Err(msg) => {
                errs.at(&crl.referenced, crl_at, msg);
                None
            }
        }
    });
    (errs.list.len() == before).then_some(ClientAuth {
        ca: ca?,
        required: raw.required.is_none_or(|r| r.value),
        crl,
    })
}

/// The client CA bundle: PEM, at least one certificate, each usable as a trust anchor.
pub fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_capped(path)?;
    let shown = path.display();
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{shown}` is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "`{shown}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); give the CA that issues client certificates"
        ));
    }
    for (i, der) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(der).map_err(|e| {
            format!(
                "certificate {} in `{shown}` is not usable as a CA: {e}",
                i + 1
            )
        })?;
    }
    Ok(certs)
}

/// The revocation lists: PEM (`-----BEGIN X509 CRL-----`, one or more) or one DER list, each
/// parsed as RFC 5280 §5 requires.
pub fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let bytes = read_capped(path)?;
    let shown = path.display();
    // A DER list is one SEQUENCE (0x30); anything else is read as PEM.
    let crls = if bytes.first() != Some(&0x30) {
        CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{shown}` is not valid PEM: {e}"))?
    } else {
        vec![CertificateRevocationListDer::from(bytes)]
    };
    if crls.is_empty() {
        return Err(format!(
            "`{shown}` holds no revocation list (`-----BEGIN X509 CRL-----`, or one DER list)"
        ));
    }
    for (i, der) in crls.iter().enumerate() {
        webpki::BorrowedCertRevocationList::from_der(der)
            .map_err(|e| format!("revocation list {} in `{shown}` does not parse: {e}", i + 1))?;
    }
    Ok(crls)
}
