//! Certificates for `wss://` pool backends: a CA of their own (apart from the proxy's listener
//! CA) whose PEM a pool names in `tls.ca`, leaves for servers and for wsgate as a client (mTLS),
//! and the rustls server configuration of a [`super::PoolBackend`].

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// A CA for backend certificates (apart from the proxy's own test CA), as PEM for `tls.ca`.
pub struct BackendCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl BackendCa {
    pub fn new() -> BackendCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs is valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("generate CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign CA");
        BackendCa { issuer }
    }

    /// The CA certificate, for the pool's `tls.ca` file.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for these names (DNS or IP), signed by this CA: `(cert PEM, key PEM)`.
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).expect("valid SAN names");
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    }

    /// A server configuration with a leaf for `names`; with `client_auth`, only clients
    /// presenting a certificate from this CA complete the handshake.
    pub fn server_config(&self, names: &[&str], client_auth: bool) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports TLS 1.2 and 1.3");
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots
                .add(self.issuer.der().clone())
                .expect("the CA is a valid trust anchor");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client certificate verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let (cert, key) = self.leaf(names);
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("leaf PEM");
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("leaf key PEM");
        let config = builder
            .with_single_cert(chain, key)
            .expect("certificate matches key");
        Arc::new(config)
    }
}

impl Default for BackendCa {
    fn default() -> Self {
        BackendCa::new()
    }
}
