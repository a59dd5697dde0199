//! Loading the keys of an `auth.jwt` block: PEM public keys, HMAC secrets from the environment,
//! and JWKS files. JWKS URLs are fetched by `super::super::jwks`.

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use super::super::jwks::{self, Key};

pub(super) fn load_pem(path: &std::path::Path, alg: Algorithm) -> Result<Key, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let key = match alg.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(&pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(&pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(&pem),
        AlgorithmFamily::Hmac => {
            return Err(format!("{alg:?} keys come from `secret_env`, not a file"));
        }
    }
    .map_err(|e| format!("not a {alg:?} public key in PEM: {e}"))?;
    Ok(Key {
        kid: None,
        origin: None,
        alg,
        key,
    })
}

pub(super) fn load_secret(var: &str, alg: Algorithm) -> Result<Key, String> {
    if alg.family() != AlgorithmFamily::Hmac {
        return Err(format!("`secret_env` is for HS256/384/512, not {alg:?}"));
    }
    let secret = std::env::var_os(var).filter(|v| !v.is_empty());
    let secret = secret.ok_or_else(|| format!("environment variable {var} is unset or empty"))?;
    let secret = secret.as_encoded_bytes();
    if secret.len() < 32 {
        tracing::warn!(var, "HMAC secret is shorter than 32 bytes");
    }
    Ok(Key {
        kid: None,
        origin: None,
        alg,
        key: DecodingKey::from_secret(secret),
    })
}

pub(super) fn load_jwks_file(path: &std::path::Path) -> Result<Vec<Key>, String> {
    let doc = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let (keys, skipped) = jwks::parse_set(&doc)?;
    if !skipped.is_empty() {
        return Err(format!("unusable keys: {}", skipped.join("; ")));
    }
    if keys.is_empty() {
        return Err("no signature key in the set".into());
    }
    Ok(keys)
}
