//! `pools.NAME.tls` → [`BackendTls`]: the CA bundle that verifies `wss://` backends, the name
//! they are verified against, and the client certificate for mTLS. Files are read here, so that
//! a missing or swapped file is reported at its line:col; they are parsed again by
//! `crate::upstream::tls` when the runtime is built (a reload reads them again).

use std::path::{Path, PathBuf};

use super::keys::read_capped;
use super::syntax::is_dns_name;
use super::{Errors, resolve};
use crate::config::BackendTls;
use crate::config::raw::{RawBackendTls, Spanned};

/// `tls` at `at`; `any_wss`: the pool has a `wss://` backend. `None`: errors reported.
pub(super) fn tls(
    raw: Spanned<RawBackendTls>,
    any_wss: bool,
    at: &str,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<BackendTls> {
    let (loc, raw) = (raw.referenced, raw.value);
    let before = errs.list.len();
    if !any_wss {
        let msg = "applies to `wss://` backends only, and this pool has none; remove it or use wss:// URLs";
        errs.at(&loc, at, msg);
    }
    let ca = pem_file(
        raw.ca.as_ref(),
        &format!("{at}.ca"),
        Pem::Certificate,
        base_dir,
        errs,
    );
    let server_name = raw
        .server_name
        .and_then(|n| errs.check(&n, format!("{at}.server_name"), server_name));
    let client_cert = pem_file(
        raw.client_cert.as_ref(),
        &format!("{at}.client_cert"),
        Pem::Certificate,
        base_dir,
        errs,
    );
    let client_key = pem_file(
        raw.client_key.as_ref(),
        &format!("{at}.client_key"),
        Pem::PrivateKey,
        base_dir,
        errs,
    );
    match (&raw.client_cert, &raw.client_key) {
        (Some(cert), None) => {
            let msg =
                "needs `client_key` too: a client certificate is presented with its private key";
            errs.at(&cert.referenced, format!("{at}.client_cert"), msg);
        }
        (None, Some(key)) => {
            let msg = "needs `client_cert` too: a private key is used with its certificate";
            errs.at(&key.referenced, format!("{at}.client_key"), msg);
        }
        _ => {}
    }
    (errs.list.len() == before).then_some(BackendTls {
        ca,
        server_name,
        client_cert,
        client_key,
    })
}

/// A DNS name (lower-cased) to send as SNI and verify the certificate against.
fn server_name(text: &str) -> Result<String, String> {
    let name = text.trim().to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "`{text}` is an IP address; `server_name` takes a DNS name (leave it out to verify each backend's URL host)"
        ));
    }
    if !is_dns_name(&name) {
        return Err(format!("`{text}` is not a valid DNS name"));
    }
    Ok(name)
}

#[derive(Clone, Copy)]
pub(super) enum Pem {
    Certificate,
    PrivateKey,
}

/// An optional PEM file at `at`, relative to `base_dir`, readable and holding what `kind` says.
/// `None` when absent or reported.
pub(super) fn pem_file(
    raw: Option<&Spanned<String>>,
    at: &str,
    kind: Pem,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<PathBuf> {
    let raw = raw?;
    let path = resolve(raw, at, base_dir, errs)?;
    let check = || {
        let text = read_capped(&path)?;
        let text = String::from_utf8_lossy(&text);
        let shown = path.display();
        match kind {
            Pem::Certificate if !text.contains("-----BEGIN CERTIFICATE-----") => Err(format!(
                "`{shown}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
            )),
            Pem::PrivateKey if !text.contains("PRIVATE KEY-----") => Err(format!(
                "`{shown}` holds no PEM private key (`-----BEGIN PRIVATE KEY-----`)"
            )),
            _ => Ok(()),
        }
    };
    match check() {
        Ok(()) => Some(path),
        Err(msg) => {
            errs.at(&raw.referenced, at, msg);
            None
        }
    }
}
