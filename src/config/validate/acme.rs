//! `listeners[i].tls.acme` → [`AcmeConfig`]: the names (DNS only, no wildcards: TLS-ALPN-01
//! cannot prove those, RFC 8737 §3), the directory URL (https), the optional CA file for the
//! directory's own HTTPS (read here, so a wrong file is reported at its line:col), the state
//! directory and `renew_before`.
//!
//! Nothing is contacted and nothing is created here: `wsgate check` stays offline. The account,
//! orders and files are `crate::acme`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::raw::Spanned;

use super::backend_tls::{Pem, pem_file};
use super::syntax::is_dns_name;
use super::{Errors, resolve};
use crate::config::AcmeConfig;
use crate::config::raw::RawAcme;
use crate::config::units::parse_positive_duration;

/// Let's Encrypt production, the directory used when `directory` is absent.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// `renew_before` when absent: Let's Encrypt's own advice for 90-day certificates.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// `acme` at `at`. `None`: errors reported.
pub(super) fn acme(
    raw: Spanned<RawAcme>,
    at: &str,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<AcmeConfig> {
    let raw = raw.value;
    let before = errs.list.len();
    if raw.domains.value.is_empty() {
        let msg = "is empty; list the DNS names the certificate is for";
        errs.at(&raw.domains.referenced, format!("{at}.domains"), msg);
    }
    let mut domains: Vec<String> = Vec::new();
    for (j, d) in raw.domains.value.iter().enumerate() {
        if let Some(name) = errs.check(d, format!("{at}.domains[{j}]"), domain) {
            if domains.contains(&name) {
                let msg = format!("`{name}` is listed twice");
                errs.at(&d.referenced, format!("{at}.domains[{j}]"), msg);
            } else {
                domains.push(name);
            }
        }
    }
    let email = raw
        .email
        .and_then(|e| errs.check(&e, format!("{at}.email"), email));
    let directory = match &raw.directory {
        None => Some(LETS_ENCRYPT.to_owned()),
        Some(d) => errs.check(d, format!("{at}.directory"), directory),
    };
    let ca = pem_file(
        raw.ca.as_ref(),
        &format!("{at}.ca"),
        Pem::Certificate,
        base_dir,
        errs,
    );
    let state_dir = match &raw.state_dir {
        Some(dir) => resolve(dir, &format!("{at}.state_dir"), base_dir, errs),
        None => Some(default_state_dir(base_dir)),
    };
    let renew_before = match &raw.renew_before {
        None => Some(RENEW_BEFORE),
        Some(r) => errs.check(r, format!("{at}.renew_before"), parse_positive_duration),
    };
    if errs.list.len() != before {
        return None;
    }
    Some(AcmeConfig {
        domains,
        email,
        directory: directory?,
        ca,
        state_dir: state_dir?,
        renew_before: renew_before?,
    })
}

/// `$STATE_DIRECTORY/acme` under systemd (`StateDirectory=wsgate`), `acme` next to the config
/// file otherwise.
fn default_state_dir(base_dir: &Path) -> PathBuf {
    // systemd passes a colon-separated list when a unit names several directories.
    let state = std::env::var("STATE_DIRECTORY").ok();
    match state.as_deref().and_then(|s| s.split(':').next()) {
        Some(dir) if !dir.is_empty() => Path::new(dir).join("acme"),
        _ => base_dir.join("acme"),
    }
}

fn domain(text: &str) -> Result<String, String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.starts_with("*.") {
        return Err(format!(
            "`{text}` is a wildcard; TLS-ALPN-01 cannot validate wildcard names (RFC 8737 §3): list each name"
        ));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("`{text}` is an IP address; list DNS names"));
    }
    if !is_dns_name(&name) || !name.contains(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("`{text}` is not a valid DNS name"));
    }
    Ok(name)
}

fn email(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid = text.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && is_dns_name(&host.to_ascii_lowercase()) && !host.contains('@')
    }) && !text.contains(|c: char| c.is_whitespace() || c.is_control());
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an e-mail address (user@example.com)"
        ))
    }
}

/// RFC 8555 §6.1: the ACME server is reached over HTTPS.
fn directory(text: &str) -> Result<String, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("https://")
        .ok_or_else(|| format!("`{text}` must be an https:// URL (RFC 8555 §6.1)"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || text.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{text}` is not a valid URL"));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{directory, domain, email};

    #[test]
    fn domains_are_dns_names_without_wildcards() {
        assert_eq!(domain("Chat.Example.com.").unwrap(), "chat.example.com");
        assert!(domain("*.example.com").unwrap_err().contains("wildcard"));
        assert!(domain("127.0.0.1").unwrap_err().contains("IP address"));
        assert!(domain("bad name").is_err());
    }

    #[test]
    fn email_and_directory() {
        assert_eq!(email("ops@example.com").unwrap(), "ops@example.com");
        assert!(email("ops").is_err());
        assert!(email("a b@example.com").is_err());
        assert!(directory("http://x/dir").unwrap_err().contains("https://"));
        assert!(directory("https:///dir").is_err());
        assert_eq!(
            directory(" https://x:14000/dir ").unwrap(),
            "https://x:14000/dir"
        );
    }
}
