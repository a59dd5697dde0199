//! The ACME keys (issue 12): `listeners[i].tls.acme`. One test pins the defaults, one every key
//! set; the others each pin one rule with its `file:line:col`, field path and message. Nothing
//! here contacts a CA or creates the state directory (`wsgate check` stays offline).

use std::path::Path;
use std::time::Duration;

use wsgate::config::{AcmeConfig, CertSource, load_str};

use super::{load, only_error};

/// A valid config whose only certificate source is `acme`; keys appended by [`with_acme`]
/// start on line 7, indented by eight spaces.
///
/// Line numbers: 4 tls, 5 acme, 6 domains.
const ACME_BASE: &str = "\
listeners:
  - name: public
    bind: \"127.0.0.1:8443\"
    tls:
      acme:
        domains: [Chat.Example.com, ws.example.com.]
routes:
  - { path: /echo/, pool: echo }
pools:
  echo:
    backends: [ { url: \"ws://127.0.0.1:9501\" } ]
";

const DOMAINS: &str = "domains: [Chat.Example.com, ws.example.com.]";

/// [`ACME_BASE`] with `keys` (lines of `acme:`, eight spaces in) after `domains`.
fn with_acme(keys: &str) -> String {
    ACME_BASE.replace(&format!("{DOMAINS}\n"), &format!("{DOMAINS}\n{keys}"))
}

/// [`ACME_BASE`] with `domains:` replaced by `line` (eight spaces in, line 6).
fn with_domains(line: &str) -> String {
    ACME_BASE.replace(DOMAINS, line)
}

/// The `acme` block of the first listener.
fn acme_of(config: &wsgate::config::Config) -> &AcmeConfig {
    let tls = config.listeners[0].tls.as_ref().expect("tls listener");
    tls.acme.as_ref().expect("acme block")
}

#[test]
fn absent_keys_take_their_defaults() {
    let config = load(ACME_BASE).unwrap_or_else(|e| panic!("{e:#?}"));
    let acme = acme_of(&config);
    // Lower-cased, trailing dot dropped, in config order (the first names the files).
    assert_eq!(acme.domains, ["chat.example.com", "ws.example.com"]);
    assert_eq!(acme.email, None);
    assert_eq!(
        acme.directory,
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(acme.ca, None);
    // `$STATE_DIRECTORY/acme` under systemd, `acme` next to the config file otherwise.
    let expected = match std::env::var("STATE_DIRECTORY") {
        Ok(dir) if !dir.is_empty() => Path::new(dir.split(':').next().unwrap_or("")).join("acme"),
        _ => Path::new("/etc/wsgate/acme").to_path_buf(),
    };
    assert_eq!(acme.state_dir, expected);
    assert_eq!(acme.renew_before, Duration::from_secs(30 * 86_400));
    // No `certificates`: every name is ACME's.
    let tls = config.listeners[0].tls.as_ref().expect("tls");
    assert!(matches!(&tls.certificates, CertSource::Files(f) if f.is_empty()));
}

#[test]
fn every_key_is_converted_and_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("acme-ca.pem"), super::cluster::ca_pem()).expect("write CA");
    let yaml = with_acme(
        "        email: ops@example.com\n        directory: \"https://localhost:14000/dir\"\n        ca: acme-ca.pem\n        state_dir: state/acme\n        renew_before: 7d\n",
    );
    let config = load_str(&yaml, "t.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let acme = acme_of(&config);
    assert_eq!(acme.email.as_deref(), Some("ops@example.com"));
    assert_eq!(acme.directory, "https://localhost:14000/dir");
    assert_eq!(
        acme.ca.as_deref(),
        Some(dir.path().join("acme-ca.pem").as_path())
    );
    assert_eq!(acme.state_dir, dir.path().join("state/acme"));
    assert_eq!(acme.renew_before, Duration::from_secs(7 * 86_400));
    // Loading is offline: the state directory is only created by the first order.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn certificates_may_sit_beside_acme() {
    let yaml = with_acme("").replace(
        "      acme:\n",
        "      certificates:\n        - { cert: other.pem, key: other.key }\n      acme:\n",
    );
    let config = load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    let tls = config.listeners[0].tls.as_ref().expect("tls");
    assert!(matches!(&tls.certificates, CertSource::Files(f) if f.len() == 1));
    assert_eq!(acme_of(&config).domains.len(), 2);
}

#[test]
fn acme_with_self_signed_is_refused() {
    let yaml = ACME_BASE.replace(
        "      acme:\n",
        "      self_signed: [localhost]\n      acme:\n",
    );
    assert_eq!(
        only_error(&yaml),
        "t.yaml:5:20: listeners[0].tls.self_signed: cannot be combined with `acme`; use `certificates` for the names ACME should not serve"
    );
}

#[test]
fn domains_missing_or_empty() {
    assert_eq!(
        only_error(&with_domains("email: ops@example.com")),
        "t.yaml:6:9: listeners[0].tls.acme.domains: missing field `domains`"
    );
    assert_eq!(
        only_error(&with_domains("domains: []")),
        "t.yaml:6:18: listeners[0].tls.acme.domains: is empty; list the DNS names the certificate is for"
    );
}

#[test]
fn domains_must_be_dns_names_without_wildcards() {
    assert_eq!(
        only_error(&with_domains(
            "domains: [ok.example.com, \"*.example.com\"]"
        )),
        "t.yaml:6:35: listeners[0].tls.acme.domains[1]: `*.example.com` is a wildcard; TLS-ALPN-01 cannot validate wildcard names (RFC 8737 §3): list each name"
    );
    assert_eq!(
        only_error(&with_domains("domains: [192.0.2.7]")),
        "t.yaml:6:19: listeners[0].tls.acme.domains[0]: `192.0.2.7` is an IP address; list DNS names"
    );
    assert_eq!(
        only_error(&with_domains("domains: [\"bad name.example\"]")),
        "t.yaml:6:19: listeners[0].tls.acme.domains[0]: `bad name.example` is not a valid DNS name"
    );
    assert_eq!(
        only_error(&with_domains("domains: [a.example.com, A.Example.com]")),
        "t.yaml:6:34: listeners[0].tls.acme.domains[1]: `a.example.com` is listed twice"
    );
}

#[test]
fn directory_must_be_an_https_url() {
    assert_eq!(
        only_error(&with_acme(
            "        directory: http://acme.internal/directory\n"
        )),
        "t.yaml:7:20: listeners[0].tls.acme.directory: `http://acme.internal/directory` must be an https:// URL (RFC 8555 §6.1)"
    );
    assert_eq!(
        only_error(&with_acme("        directory: \"https:///directory\"\n")),
        "t.yaml:7:20: listeners[0].tls.acme.directory: `https:///directory` is not a valid URL"
    );
}

#[test]
fn email_must_be_an_address() {
    assert_eq!(
        only_error(&with_acme("        email: ops\n")),
        "t.yaml:7:16: listeners[0].tls.acme.email: `ops` is not an e-mail address (user@example.com)"
    );
}

#[test]
fn ca_must_be_a_readable_pem_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("not-a-cert.pem"), "hello\n").expect("write");
    let error = |ca: &str| {
        let yaml = with_acme(&format!("        ca: {ca}\n"));
        let errors = load_str(&yaml, "t.yaml", dir.path())
            .expect_err("rejected")
            .0;
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors[0].to_string()
    };
    let missing = error("missing.pem");
    assert!(
        missing.starts_with("t.yaml:7:13: listeners[0].tls.acme.ca: ")
            && missing.contains(&dir.path().join("missing.pem").display().to_string()),
        "{missing}"
    );
    assert_eq!(
        error("not-a-cert.pem"),
        format!(
            "t.yaml:7:13: listeners[0].tls.acme.ca: `{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            dir.path().join("not-a-cert.pem").display()
        )
    );
    assert_eq!(
        error("\"\""),
        "t.yaml:7:13: listeners[0].tls.acme.ca: empty path"
    );
}

#[test]
fn renew_before_must_be_a_positive_duration() {
    assert_eq!(
        only_error(&with_acme("        renew_before: 0s\n")),
        "t.yaml:7:23: listeners[0].tls.acme.renew_before: `0s` must be greater than 0"
    );
    let soon = only_error(&with_acme("        renew_before: soon\n"));
    assert!(
        soon.starts_with("t.yaml:7:23: listeners[0].tls.acme.renew_before: "),
        "{soon}"
    );
}

#[test]
fn state_dir_must_not_be_empty() {
    assert_eq!(
        only_error(&with_acme("        state_dir: \"\"\n")),
        "t.yaml:7:20: listeners[0].tls.acme.state_dir: empty path"
    );
}

#[test]
fn unknown_acme_key_names_the_allowed_ones() {
    assert_eq!(
        only_error(&with_acme("        challenge: http-01\n")),
        "t.yaml:7:9: listeners[0].tls.acme.challenge: unknown field `challenge`, expected one of domains, email, directory, ca, state_dir, renew_before"
    );
}

#[test]
fn every_acme_mistake_is_reported_at_once() {
    let yaml = with_domains(
        "domains: [\"*.example.com\"]\n        email: ops\n        directory: ftp://x\n        renew_before: 0s",
    );
    let errors = load(&yaml).expect_err("rejected");
    let places: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
    assert_eq!(
        places,
        [
            "listeners[0].tls.acme.domains[0]",
            "listeners[0].tls.acme.email",
            "listeners[0].tls.acme.directory",
            "listeners[0].tls.acme.renew_before",
        ]
    );
}
