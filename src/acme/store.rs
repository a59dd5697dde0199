//! The state directory of one `acme` block: the account (key + id, per directory URL) and the
//! certificate chain with its key, as files only wsgate's user can read (dir 0700, files 0600),
//! each written whole to a temporary name and renamed, so a crash never leaves half a key.
//!
//! Owns: file names, permissions, and reading a stored certificate back (with its expiry, from
//! the DER `notAfter`, see [`not_after`]). Does not own deciding when to renew (`super::task`).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use crate::config::AcmeConfig;
use crate::runtime::der::tlv;

/// A certificate ready to serve, and when it stops being valid.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: Arc<CertifiedKey>,
    pub not_after: SystemTime,
}

/// The account file: the directory it belongs to, and instant-acme's opaque credentials.
#[derive(Serialize, Deserialize)]
pub(super) struct AccountFile {
    pub directory: String,
    pub credentials: instant_acme::AccountCredentials,
}

/// File names under `state_dir`, by the certificate's first domain.
pub(super) struct Paths {
    dir: PathBuf,
    base: String,
}

impl Paths {
    pub fn new(config: &AcmeConfig) -> Paths {
        let first = config.domains.first().map_or("certificate", String::as_str);
        Paths {
            dir: config.state_dir.clone(),
            base: first.to_owned(),
        }
    }

    fn account(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.crt.pem", self.base))
    }

    fn key(&self) -> PathBuf {
        self.dir.join(format!("{}.key.pem", self.base))
    }

    /// The stored certificate, if both files are there, parse, match, and cover `domains`.
    pub fn load_certificate(&self, domains: &[String]) -> Result<Option<Stored>, String> {
        let (cert, key) = (self.cert(), self.key());
        if !cert.exists() || !key.exists() {
            return Ok(None);
        }
        let chain = std::fs::read(&cert).map_err(|e| format!("{}: {e}", cert.display()))?;
        let key_pem = std::fs::read(&key).map_err(|e| format!("{}: {e}", key.display()))?;
        let stored = parse(&chain, &key_pem).map_err(|e| format!("{}: {e}", cert.display()))?;
        let leaf = stored.key.end_entity_cert().map_err(|e| e.to_string())?;
        let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| e.to_string())?;
        let covers = domains.iter().all(|d| {
            rustls::pki_types::ServerName::try_from(d.as_str())
                .is_ok_and(|name| ee.verify_is_valid_for_subject_name(&name).is_ok())
        });
        Ok(covers.then_some(stored))
    }

    /// Keep a new certificate chain and its key (PEM).
    pub fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> Result<(), String> {
        self.ensure_dir()?;
        write_private(&self.key(), key_pem.as_bytes())?;
        write_private(&self.cert(), chain_pem.as_bytes())
    }

    pub fn load_account(&self) -> Result<Option<AccountFile>, String> {
        let path = self.account();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn save_account(&self, account: &AccountFile) -> Result<(), String> {
        self.ensure_dir()?;
        let json = serde_json::to_vec(account).map_err(|e| e.to_string())?;
        write_private(&self.account(), &json)
    }

    /// Creates the directory 0700, and makes an existing one (e.g. made by hand, or a
    /// `StateDirectory=` without `StateDirectoryMode=`) 0700 too.
    fn ensure_dir(&self) -> Result<(), String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .and_then(|()| {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| format!("cannot create {} (mode 0700): {e}", self.dir.display()))
    }
}

/// Write `bytes` to a 0600 temporary file next to `path`, then rename it over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A PEM chain and key → something rustls can serve, with the leaf's expiry.
pub fn parse(chain_pem: &[u8], key_pem: &[u8]) -> Result<Stored, String> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM certificate chain: {e}"))?;
    let leaf = chain.first().ok_or("no CERTIFICATE block")?;
    let not_after = not_after(leaf).ok_or("cannot read the certificate's notAfter")?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("invalid PEM key: {e}"))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| e.to_string())?;
    Ok(Stored {
        key: Arc::new(key),
        not_after,
    })
}

/// `tbsCertificate.validity.notAfter` (RFC 5280 §4.1) of a DER certificate, read by walking
/// the few DER headers in front of it; `None` for anything malformed.
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, cert, _) = tlv(der)?; // Certificate SEQUENCE
    let (_, mut tbs, _) = tlv(cert)?; // tbsCertificate SEQUENCE
    let (tag, _, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest; // [0] version
    }
    for _ in 0..3 {
        tbs = tlv(tbs)?.2; // serialNumber, signature, issuer
    }
    let (_, validity, _) = tlv(tbs)?;
    let (_, _, after) = tlv(validity)?; // skip notBefore
    let (tag, time, _) = tlv(after)?;
    parse_time(tag, time)
}

/// UTCTime (`YYMMDDHHMMSSZ`, RFC 5280 §4.1.2.5.1) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 14) => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{not_after, parse_time};

    #[test]
    fn times() {
        let t = |tag, s: &str| parse_time(tag, s.as_bytes());
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(t(0x17, "700101000000Z"), Some(epoch));
        assert_eq!(
            t(0x18, "20000301000000Z"),
            Some(epoch + Duration::from_secs(951_868_800))
        );
        assert_eq!(t(0x17, "491231235959Z"), t(0x18, "20491231235959Z"));
        assert_eq!(t(0x17, "7001010000Z"), None);
        assert_eq!(t(0x17, "701301000000Z"), None);
    }

    #[test]
    fn not_after_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 7, 9);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let expect = SystemTime::UNIX_EPOCH + Duration::from_secs(1_941_321_600);
        assert_eq!(not_after(cert.der()), Some(expect));
        assert_eq!(not_after(&cert.der()[..40]), None);
        assert_eq!(not_after(b""), None);
    }
}
