//! Certificates made at test time: one throwaway CA per proxy and leaf certificates it signs.
//! Nothing is read from or committed to disk except the per-test temp directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber, date_time_ymd,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

/// A CA the test clients trust.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Serial of the next client certificate (so that a CRL can name it).
    next_serial: AtomicU64,
}

/// A leaf certificate and its key, PEM for the proxy config and DER to compare with what a
/// client was served.
#[derive(Clone)]
pub struct TestCert {
    pub names: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    /// Set for client certificates ([`TestCa::client_leaf`]), which a CRL may revoke.
    pub serial: Option<u64>,
}

impl TestCa {
    pub fn new() -> TestCa {
        TestCa::named("wsgate test CA")
    }

    /// A CA with this subject CN (CAs that must not be mistaken for each other need two names:
    /// a verifier picks the issuer by name before it checks the signature).
    pub fn named(cn: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs is valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("generate CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign CA");
        TestCa {
            issuer,
            next_serial: AtomicU64::new(1000),
        }
    }

    /// The CA certificate, PEM (for a `ca:` file).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for these DNS names / IP addresses, signed by this CA.
    pub fn leaf(&self, names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("valid SAN names");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        TestCert {
            names,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            serial: None,
        }
    }

    /// A client certificate (extended key usage `clientAuth`) with subject CN `cn` and these
    /// SANs: a name with `://` is a URI SAN, anything else a DNS name.
    pub fn client_leaf(&self, cn: &str, sans: &[&str]) -> TestCert {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs is valid");
        for san in sans {
            let name = san.to_string().try_into().expect("an IA5 SAN");
            params.subject_alt_names.push(if san.contains("://") {
                SanType::URI(name)
            } else {
                SanType::DnsName(name)
            });
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().expect("generate client key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign client leaf");
        TestCert {
            names: sans.iter().map(|s| s.to_string()).collect(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            serial: Some(serial),
        }
    }

    /// A revocation list signed by this CA naming `revoked` (client certificates), PEM.
    pub fn crl_pem(&self, revoked: &[&TestCert]) -> String {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2025, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: (revoked.iter())
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from(c.serial.expect("a client certificate")),
                    revocation_time: date_time_ymd(2025, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).expect("sign CRL");
        crl.pem().expect("CRL as PEM")
    }

    /// A client config trusting this CA (the proxy's) and presenting `cert` with its key.
    pub fn client_config_presenting(&self, cert: &TestCert) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.issuer.der().clone())
            .expect("CA certificate is a valid trust anchor");
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("client key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert.der.clone()], key)
            .expect("client certificate and key match");
        Arc::new(config)
    }

    /// A client config trusting only this CA, offering TLS 1.2 and 1.3.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config_for(rustls::ALL_VERSIONS)
    }

    /// A client config trusting only this CA, offering exactly `versions`.
    pub fn client_config_for(
        &self,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.issuer.der().clone())
            .expect("CA certificate is a valid trust anchor");
        // Name the provider: more than one may be compiled in through dev-dependencies.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}
