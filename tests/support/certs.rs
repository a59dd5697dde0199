//! Certificates made at test time: one throwaway CA per proxy and leaf certificates it signs.
//! Nothing is read from or committed to disk except the per-test temp directory.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

/// A CA the test clients trust.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, PEM for the proxy config and DER to compare with what a
/// client was served.
#[derive(Clone)]
pub struct TestCert {
    pub names: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs is valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "wsgate test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("generate CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign CA");
        TestCa { issuer }
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
        }
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
