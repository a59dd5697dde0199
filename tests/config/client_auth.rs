//! `listeners[i].tls.client_auth`: the client CA bundle (read and checked at load time), whether
//! a certificate is required, the optional CRL (PEM or DER), and where each mistake is reported.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber, date_time_ymd,
};
use wsgate::config::load_str;

use super::BASE;

/// Files a test writes next to its config: a client CA, its CRL as PEM and DER, and a key.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "clients CA");
        let key = KeyPair::generate().expect("CA key");
        let ca = params.self_signed(&key).expect("CA");
        let issuer = Issuer::new(params, key);
        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2025, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(7u64),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .expect("CRL");
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.path().join(name), bytes).expect("write test file")
        };
        write("clients-ca.pem", ca.pem().as_bytes());
        write("clients.crl", crl.pem().expect("CRL PEM").as_bytes());
        write("clients.crl.der", crl.der());
        write("garbage.crl", b"\x30\x03\x02\x01\x01");
        write(
            "key.pem",
            KeyPair::generate().expect("key").serialize_pem().as_bytes(),
        );
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn load(&self, yaml: &str) -> Result<wsgate::config::Config, Vec<String>> {
        load_str(yaml, "t.yaml", self.dir.path())
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    fn only_error(&self, yaml: &str) -> String {
        let errors = self.load(yaml).expect_err("config should be rejected");
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        errors[0].clone()
    }
}

/// [`BASE`] with `client_auth: { KEYS }` on line 6, after `self_signed`.
fn mtls(keys: &str) -> String {
    BASE.replace(
        "      self_signed: [localhost]\n",
        &format!("      self_signed: [localhost]\n      client_auth: {{ {keys} }}\n"),
    )
}

#[test]
fn client_auth_is_parsed_with_required_by_default() {
    let files = Files::new();
    let config = files.load(BASE).expect("base config");
    let tls = config.listeners[0].tls.as_ref().expect("tls");
    assert!(tls.client_auth.is_none(), "absent = never ask");

    let config = (files.load(&mtls("ca: clients-ca.pem, crl: clients.crl")))
        .unwrap_or_else(|e| panic!("{e:#?}"));
    let tls = config.listeners[0].tls.as_ref().expect("tls");
    let auth = tls.client_auth.as_ref().expect("client_auth");
    assert!(auth.required);
    assert_eq!(auth.ca, Path::new(&files.path("clients-ca.pem")));
    assert_eq!(
        auth.crl.as_deref(),
        Some(Path::new(&files.path("clients.crl")))
    );

    let yaml = mtls("ca: clients-ca.pem, required: false, crl: clients.crl.der");
    let config = files.load(&yaml).unwrap_or_else(|e| panic!("{e:#?}"));
    let tls = config.listeners[0].tls.as_ref().expect("tls");
    let auth = tls.client_auth.as_ref().expect("client_auth");
    assert!(!auth.required);
    assert!(auth.crl.is_some(), "a DER list is accepted too");
}

#[test]
fn the_ca_and_crl_are_watched_for_reload() {
    let files = Files::new();
    let config = files
        .load(&mtls("ca: clients-ca.pem, crl: clients.crl"))
        .unwrap_or_else(|e| panic!("{e:#?}"));
    let watched = wsgate::config::files::watched_files(&config);
    let expected = [files.path("clients-ca.pem"), files.path("clients.crl")];
    assert_eq!(watched, expected.map(std::path::PathBuf::from));
}

#[test]
fn a_missing_ca_file_is_reported_at_its_place() {
    let files = Files::new();
    assert_eq!(
        files.only_error(&mtls("ca: nowhere.pem")),
        format!(
            "t.yaml:6:26: listeners[0].tls.client_auth.ca: cannot read `{}`: No such file or directory (os error 2)",
            files.path("nowhere.pem")
        )
    );
}

#[test]
fn a_ca_file_without_a_certificate_is_refused() {
    let files = Files::new();
    assert_eq!(
        files.only_error(&mtls("ca: key.pem")),
        format!(
            "t.yaml:6:26: listeners[0].tls.client_auth.ca: `{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); give the CA that issues client certificates",
            files.path("key.pem")
        )
    );
}

#[test]
fn a_crl_that_does_not_parse_is_refused() {
    let files = Files::new();
    let error = files.only_error(&mtls("ca: clients-ca.pem, crl: garbage.crl"));
    let prefix = format!(
        "t.yaml:6:47: listeners[0].tls.client_auth.crl: revocation list 1 in `{}` does not parse: ",
        files.path("garbage.crl")
    );
    assert!(error.starts_with(&prefix), "{error}");
    // A PEM file without an X509 CRL block (here: a certificate) is no list either.
    assert_eq!(
        files.only_error(&mtls("ca: clients-ca.pem, crl: clients-ca.pem")),
        format!(
            "t.yaml:6:47: listeners[0].tls.client_auth.crl: `{}` holds no revocation list (`-----BEGIN X509 CRL-----`, or one DER list)",
            files.path("clients-ca.pem")
        )
    );
}

#[test]
fn client_auth_needs_a_ca_and_lives_under_tls() {
    let files = Files::new();
    let missing = files.only_error(&mtls("required: true"));
    assert!(missing.starts_with("t.yaml:6:"), "{missing}");
    assert!(missing.contains("missing field `ca`"), "{missing}");
    // On the listener itself (a plain listener has no `tls:`), the key is unknown.
    let plain = BASE.replace(
        "    tls:\n      self_signed: [localhost]\n",
        "    client_auth: { ca: clients-ca.pem }\n",
    );
    let error = files.only_error(&plain);
    assert!(error.starts_with("t.yaml:4:"), "{error}");
    assert!(error.contains("unknown field `client_auth`"), "{error}");
    let typo = files.only_error(&mtls("ca: clients-ca.pem, require: true"));
    assert!(typo.contains("unknown field `require`"), "{typo}");
}

#[test]
fn per_subject_without_a_token_needs_a_listener_with_client_auth() {
    let files = Files::new();
    let route = "pool: echo, per_subject: { max_sessions: 2 } }";
    let without = BASE.replace("pool: echo }", route);
    let error = files.only_error(&without);
    assert!(error.contains("routes[0].per_subject"), "{error}");
    let with = mtls("ca: clients-ca.pem").replace("pool: echo }", route);
    let config = files.load(&with).unwrap_or_else(|e| panic!("{e:#?}"));
    let cap = config.routes[0].policy.per_subject.expect("per_subject");
    assert_eq!(cap.max_sessions, 2);
}

#[test]
fn the_example_documents_client_auth() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wsgate.yaml");
    let example = std::fs::read_to_string(path).expect("example config");
    for key in [
        "client_auth:",
        "ca: ",
        "required: ",
        "crl: ",
        "X-Client-Cert-Subject",
    ] {
        assert!(
            example.contains(key),
            "config/wsgate.yaml does not mention `{key}`"
        );
    }
}
