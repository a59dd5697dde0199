//! One certificate order against the ACME directory (RFC 8555 §7.4), proven with TLS-ALPN-01
//! (RFC 8737) on the listener itself: the account (created once, kept in the state directory),
//! the order, one challenge certificate per name handed to the resolver while the CA
//! validates, the CSR with a fresh key, and the chain.
//!
//! Every request to the CA is bounded: the whole order runs under [`ORDER_TIMEOUT`] (see
//! `super::task`), and polls use instant-acme's [`RetryPolicy`] with its own deadline.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::Shared;
use super::store::{AccountFile, Paths, Stored};
use crate::config::AcmeConfig;

/// Upper bound on one whole order: account, authorizations, validation, finalize, download.
pub const ORDER_TIMEOUT: Duration = Duration::from_secs(180);

/// How the CA is polled while it validates and while it issues.
fn polling() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(Duration::from_secs(60))
}

/// Order, prove and download a certificate for `config.domains`; stores it (when the state
/// directory lets it) and returns it.
pub async fn issue(config: &AcmeConfig, shared: &Shared) -> Result<Stored, String> {
    let paths = Paths::new(config);
    let account = account(config, &paths).await?;
    let identifiers: Vec<Identifier> = (config.domains.iter())
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = (account.new_order(&NewOrder::new(&identifiers)).await)
        .map_err(|e| format!("new order: {e}"))?;
    let result = prove_and_finalize(&mut order, config, shared).await;
    shared.clear_challenges();
    let (chain, key_pem) = result?;
    let stored = super::store::parse(chain.as_bytes(), key_pem.as_bytes())?;
    // The CA has issued it: serve it even when it cannot be kept (state_dir full or read-only).
    // Failing here would throw it away and order again at every retry, each a new certificate
    // counted against the CA's rate limits, while the old one ages.
    if let Err(error) = paths.save_certificate(&chain, &key_pem) {
        tracing::warn!(%error, "acme: certificate issued but not stored; serving it from memory (a restart orders again)");
    }
    Ok(stored)
}

async fn prove_and_finalize(
    order: &mut instant_acme::Order,
    config: &AcmeConfig,
    shared: &Shared,
) -> Result<(String, String), String> {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
        match authz.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => return Err(format!("authorization is {other:?}")),
        }
        let mut challenge = authz
            .challenge(ChallengeType::TlsAlpn01)
            .ok_or("the CA offers no tls-alpn-01 challenge")?;
        let name = challenge.identifier().to_string();
        let digest = challenge.key_authorization().digest();
        shared.add_challenge(&name, challenge_certificate(&name, digest.as_ref())?);
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("challenge for {name}: {e}"))?;
    }
    let status = (order.poll_ready(&polling()).await).map_err(|e| format!("validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("order is {status:?} after validation"));
    }
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(config.domains.clone()).map_err(|e| e.to_string())?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    (order.finalize_csr(csr.der()).await).map_err(|e| format!("finalize: {e}"))?;
    let chain = (order.poll_certificate(&polling()).await)
        .map_err(|e| format!("certificate download: {e}"))?;
    Ok((chain, key.serialize_pem()))
}

/// The stored account for this directory, or a new one (kept for next time).
async fn account(config: &AcmeConfig, paths: &Paths) -> Result<Account, String> {
    let builder = || match &config.ca {
        Some(ca) => Account::builder_with_root(ca),
        None => Account::builder(),
    };
    let builder = |()| builder().map_err(|e| format!("ACME HTTP client: {e}"));
    if let Some(stored) = paths.load_account()?
        && stored.directory == config.directory
    {
        return (builder(())?.from_credentials(stored.credentials).await)
            .map_err(|e| format!("stored account: {e}"));
    }
    let contact = config.email.as_ref().map(|e| format!("mailto:{e}"));
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = (builder(())?.create(&new, config.directory.clone(), None))
        .await
        .map_err(|e| format!("new account at {}: {e}", config.directory))?;
    paths.save_account(&AccountFile {
        directory: config.directory.clone(),
        credentials,
    })?;
    tracing::info!(directory = %config.directory, "acme: account created");
    Ok(account)
}

/// RFC 8737 §3: a self-signed certificate for `name` carrying the critical
/// id-pe-acmeIdentifier extension with SHA-256 of the key authorization.
fn challenge_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    if digest.len() != 32 {
        return Err("key authorization digest is not SHA-256".into());
    }
    let mut params = CertificateParams::new(vec![name.to_owned()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its consistency check parses the certificate with webpki,
    // which refuses the critical acmeIdentifier extension this certificate exists to carry.
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signer = (provider.key_provider.load_private_key(key))
        .map_err(|e| format!("challenge certificate key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}
