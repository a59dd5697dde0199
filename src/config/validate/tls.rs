//! `listeners[i].tls` → [`TlsConfig`]: the certificates (PEM file pairs, only resolved to paths
//! here and read by `crate::runtime::tls`, or names for a self-signed one), the TLS floor,
//! `client_auth` ([`super::client_auth`]) and `acme` ([`super::acme`]).

use std::path::Path;

use serde_saphyr::Location;

use crate::config::raw::Spanned;

use super::syntax::self_signed_name;
use super::{Errors, acme, client_auth, resolve};
use crate::config::raw::{RawCertFiles, RawTls};
use crate::config::{CertFiles, CertSource, TlsConfig, TlsVersion};

/// `None`: the section had errors (already reported).
pub(super) fn tls(
    raw: Spanned<RawTls>,
    at: &str,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<TlsConfig> {
    let (loc, tls) = (raw.referenced, raw.value);
    let has_acme = tls.acme.is_some();
    let acme = (tls.acme).map(|a| acme::acme(a, &format!("{at}.acme"), base_dir, errs));
    let (files, names) = (tls.certificates, tls.self_signed);
    let certificates = cert_source(files, names, has_acme, &loc, at, base_dir, errs);
    let min_version = match tls.min_version.as_ref().map(|v| (v, v.value.trim())) {
        None | Some((_, "1.2")) => Some(TlsVersion::V1_2),
        Some((_, "1.3")) => Some(TlsVersion::V1_3),
        Some((v, other)) => {
            let msg =
                format!("`{other}` is not a supported TLS version; expected \"1.2\" or \"1.3\"");
            errs.at(&v.referenced, format!("{at}.min_version"), msg);
            None
        }
    };
    let client_auth = match tls.client_auth {
        None => Some(None),
        Some(c) => {
            client_auth::client_auth(c, &format!("{at}.client_auth"), base_dir, errs).map(Some)
        }
    };
    Some(TlsConfig {
        certificates: certificates?,
        min_version: min_version?,
        client_auth: client_auth?,
        acme: acme.map_or(Some(None), |a| a.map(Some))?,
    })
}

/// Exactly one of `certificates` (non-empty) / `self_signed` (non-empty), or `acme` with or
/// without `certificates`. `None`: errors reported.
fn cert_source(
    files: Option<Spanned<Vec<Spanned<RawCertFiles>>>>,
    names: Option<Spanned<Vec<Spanned<String>>>>,
    acme: bool,
    tls_loc: &Location,
    at: &str,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<CertSource> {
    let before = errs.list.len();
    let source = match (files, names) {
        (Some(_), Some(names)) => {
            let msg = "set exactly one of `certificates` and `self_signed`, not both";
            errs.at(&names.referenced, format!("{at}.self_signed"), msg);
            return None;
        }
        (None, None) if acme => CertSource::Files(Vec::new()),
        (None, Some(names)) if acme => {
            let msg = "cannot be combined with `acme`; use `certificates` for the names ACME should not serve";
            errs.at(&names.referenced, format!("{at}.self_signed"), msg);
            return None;
        }
        (None, None) => {
            let msg = "needs `certificates` (PEM files), `acme` or `self_signed` (names for a generated certificate)";
            errs.at(tls_loc, at, msg);
            return None;
        }
        (Some(files), None) => {
            if files.value.is_empty() {
                let msg = "is empty; list at least one `{ cert: FILE, key: FILE }` pair";
                errs.at(&files.referenced, format!("{at}.certificates"), msg);
            }
            let mut out = Vec::new();
            for (j, pair) in files.value.into_iter().enumerate() {
                let at = format!("{at}.certificates[{j}]");
                let cert = resolve(&pair.value.cert, &format!("{at}.cert"), base_dir, errs);
                let key = resolve(&pair.value.key, &format!("{at}.key"), base_dir, errs);
                let origin = errs.place(&pair.referenced);
                if let (Some(cert), Some(key)) = (cert, key) {
                    out.push(CertFiles { cert, key, origin });
                }
            }
            CertSource::Files(out)
        }
        (None, Some(names)) => {
            if names.value.is_empty() {
                let msg = "is empty; list the DNS names or IPs the certificate is for";
                errs.at(&names.referenced, format!("{at}.self_signed"), msg);
            }
            let mut out = Vec::new();
            for (j, name) in names.value.into_iter().enumerate() {
                match self_signed_name(&name.value) {
                    Ok(n) => out.push(n),
                    Err(msg) => errs.at(&name.referenced, format!("{at}.self_signed[{j}]"), msg),
                }
            }
            CertSource::SelfSigned(out)
        }
    };
    (errs.list.len() == before).then_some(source)
}
