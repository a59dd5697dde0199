//! JWT key files named by `auth.jwt.keys[]`: read and parsed at load time so that a missing file,
//! a private key pasted by mistake or a key of the wrong type is reported at its line:col instead
//! of failing every token later. The keys themselves are loaded again by `crate::admit::jwt`
//! when the runtime is built (a reload reads the files again); this module keeps nothing.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey};

/// Far above any real PEM key, JWKS document or CA bundle.
const MAX_KEY_FILE_BYTES: usize = 1 << 20;

/// A PEM public key that `alg` can verify with.
pub(super) fn check_pem(path: &Path, alg: Algorithm) -> Result<(), String> {
    let pem = read_capped(path)?;
    let shown = path.display();
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN ") {
        return Err(format!(
            "`{shown}` is not a PEM file (no `-----BEGIN` line)"
        ));
    }
    if text.contains("PRIVATE KEY-----") {
        return Err(format!(
            "`{shown}` holds a private key; give wsgate only the public key (`openssl pkey -in KEY -pubout`)"
        ));
    }
    let (family, key) = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => ("RSA", DecodingKey::from_rsa_pem(&pem)),
        Algorithm::ES256 | Algorithm::ES384 => ("EC", DecodingKey::from_ec_pem(&pem)),
        Algorithm::EdDSA => ("Ed25519", DecodingKey::from_ed_pem(&pem)),
        // HMAC secrets never come from a file (refused by the caller); nothing to parse.
        _ => return Ok(()),
    };
    key.map(drop)
        .map_err(|e| format!("`{shown}` is not a PEM {family} public key, as {alg:?} needs: {e}"))
}

/// A JSON object with a non-empty `keys` array. Individual keys are judged when they are used
/// (a JWKS may hold keys for other purposes that wsgate skips).
pub(super) fn check_jwks(path: &Path) -> Result<(), String> {
    let bytes = read_capped(path)?;
    let shown = path.display();
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{shown}` is not a JSON document: {e}"))?;
    match doc.get("keys").and_then(serde_json::Value::as_array) {
        Some(keys) if !keys.is_empty() => Ok(()),
        Some(_) => Err(format!("`{shown}` has an empty `keys` list")),
        None => Err(format!(
            "`{shown}` is not a JWKS document (expected `{{\"keys\": [...]}}`)"
        )),
    }
}

/// The file's bytes, up to 1MiB (also used for the PEM files of `pools.NAME.tls`).
pub(super) fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let read_error = |e: std::io::Error| format!("cannot read `{shown}`: {e}");
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // usize → u64 is lossless on every supported target.
    (file.take(MAX_KEY_FILE_BYTES as u64 + 1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "`{shown}` is larger than 1MiB, too large for a key or certificate file"
        ));
    }
    Ok(bytes)
}
