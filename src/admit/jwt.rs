//! JWT verification (RFC 7519 / RFC 7515) with keys whose algorithm is pinned.
//!
//! Owns: loading the configured keys (PEM files, secrets from the environment, JWKS files; JWKS
//! URLs are only registered, see `jwks`), choosing the key (`kid` first, else every key pinned
//! to the token's `alg`), the checks (`exp` required and checked with leeway, `nbf`, `iss`/`aud`
//! when configured, `require`), the short failure labels, and turning claims into header values.
//! The header `alg` must equal the key's pinned algorithm, so algorithm confusion (an HS256 token
//! "signed" with an RSA public key) and `alg: none` are impossible. Does not own where the token
//! comes from (`token`) or what the refusal looks like on the wire (`proxy::respond`).

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::{Map, Value};

use super::jwks::{Key, RemoteJwks};
use super::jwt_cache::VerifiedCache;
use crate::config::policy::{JwtConfig, JwtKey};
use crate::error::Refusal;
use keys::{load_jwks_file, load_pem, load_secret};

/// Who the token says the client is.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `sub`, when a string.
    pub subject: Option<String>,
    /// `exp` in Unix seconds (always present once verified).
    pub expires_at: Option<u64>,
    /// `URL#kid` of the JWKS key that verified the token (keys from a JWKS URL only).
    pub key_id: Option<String>,
    pub claims: Map<String, Value>,
}

/// Why a token was refused. The labels are bounded (logs, counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// 401: `expired`, `not_yet_valid`, `bad_signature`, `wrong_issuer`, `wrong_audience`,
    /// `alg_not_allowed`, `unknown_kid`, `missing_claim`, `malformed`.
    Invalid(&'static str),
    /// 403: the token is valid but a `require` claim is not met (`require_not_met`).
    Insufficient(&'static str),
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Invalid(r) | AuthFailure::Insufficient(r) => r,
        }
    }

    /// The RFC 6750 §3.1 `error` for `WWW-Authenticate: Bearer error="..."`.
    pub fn rfc6750_error(self) -> &'static str {
        match self {
            AuthFailure::Invalid(_) => "invalid_token",
            AuthFailure::Insufficient(_) => "insufficient_scope",
        }
    }

    pub fn refusal(self) -> Refusal {
        match self {
            AuthFailure::Invalid(_) => Refusal::TokenInvalid,
            AuthFailure::Insufficient(_) => Refusal::ClaimsInsufficient,
        }
    }
}

/// The keys and rules of one `auth.jwt` block. Cheap to share; build once per config.
pub struct JwtVerifier {
    keys: Vec<Key>,
    remote: Vec<Arc<RemoteJwks>>,
    /// The `exp`/`nbf`/`iss`/`aud` rules, one copy per algorithm (`algorithms == [alg]`), so
    /// that verifying clones nothing.
    validations: Vec<Validation>,
    require: Vec<(String, String)>,
    /// Tokens that verified recently (bounded, at most `jwt_cache::MAX_AGE` each).
    cache: VerifiedCache,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.remote.iter().map(|r| r.url()).collect();
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys)
            .field("jwks_urls", &urls)
            .finish_non_exhaustive()
    }
}

/// What trying the known keys gave.
enum Attempt {
    Done(Result<Identity, AuthFailure>),
    /// No key verified the signature. `kid_known`: a key has the token's `kid`; `tried`: some
    /// key pinned to the token's `alg` was tried (and the signature did not verify).
    Miss {
        kid_known: bool,
        tried: bool,
    },
}

impl JwtVerifier {
    /// The key sets this verifier fetches from URLs.
    pub fn remote_sets(&self) -> &[Arc<RemoteJwks>] {
        &self.remote
    }

    /// Load every key of `cfg`. Errors name the key (`auth.jwt.keys[i]`) and what is wrong; all
    /// are reported, not just the first. JWKS URLs are not fetched here: a set whose URL
    /// `previous` (the same route before a reload) also fetched starts from the keys it holds,
    /// so a reload while the identity provider is out does not refuse every token.
    pub fn build(
        cfg: &JwtConfig,
        previous: Option<&JwtVerifier>,
    ) -> Result<Arc<JwtVerifier>, Vec<String>> {
        let mut keys = Vec::new();
        let mut remote = Vec::new();
        let mut errors = Vec::new();
        for (i, key) in cfg.keys.iter().enumerate() {
            let at = format!("auth.jwt.keys[{i}]");
            match key {
                JwtKey::File { path, alg } => match load_pem(path, *alg) {
                    Ok(k) => keys.push(k),
                    Err(e) => errors.push(format!("{at}: {}: {e}", path.display())),
                },
                JwtKey::SecretEnv { var, alg } => match load_secret(var, *alg) {
                    Ok(k) => keys.push(k),
                    Err(e) => errors.push(format!("{at}: {e}")),
                },
                JwtKey::JwksFile { path } => match load_jwks_file(path) {
                    Ok(set) => keys.extend(set),
                    Err(e) => errors.push(format!("{at}: {}: {e}", path.display())),
                },
                JwtKey::JwksUrl { url, refresh } => match crate::outbound::client::parse_url(url) {
                    Ok(_) => {
                        let set = RemoteJwks::new(url.clone(), *refresh);
                        let before =
                            previous.and_then(|p| p.remote.iter().find(|r| r.url() == url));
                        remote.push(Arc::new(match before {
                            Some(old) => set.carrying(old),
                            None => set,
                        }));
                    }
                    Err(e) => errors.push(format!("{at}: {e}")),
                },
            }
        }
        if cfg.keys.is_empty() {
            errors.push("auth.jwt.keys: at least one key is needed".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Arc::new(JwtVerifier::new(keys, remote, cfg)))
    }

    /// A verifier over already loaded keys (also what tests use).
    pub fn new(keys: Vec<Key>, remote: Vec<Arc<RemoteJwks>>, cfg: &JwtConfig) -> JwtVerifier {
        let mut base = Validation::new(Algorithm::HS256);
        base.leeway = cfg.leeway.as_secs();
        base.validate_exp = true;
        base.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = &cfg.issuer {
            base.set_issuer(&[iss]);
            required.push("iss");
        }
        match &cfg.audience {
            Some(aud) => {
                base.set_audience(&[aud]);
                required.push("aud");
            }
            // Without a configured audience jsonwebtoken refuses every token that has `aud`.
            None => base.validate_aud = false,
        }
        base.set_required_spec_claims(&required);
        let families = [
            AlgorithmFamily::Hmac,
            AlgorithmFamily::Rsa,
            AlgorithmFamily::Ec,
            AlgorithmFamily::Ed,
        ];
        let validations = families
            .iter()
            .flat_map(|f| f.algorithms())
            .map(|alg| Validation {
                algorithms: vec![*alg],
                ..base.clone()
            })
            .collect();
        JwtVerifier {
            keys,
            remote,
            validations,
            require: cfg.require.clone(),
            cache: VerifiedCache::default(),
        }
    }

    /// Start the JWKS refresh timers now (first fetch in the background) instead of on the
    /// first token. Call inside the runtime after `build`; safe to call more than once.
    pub fn spawn_refresh(&self) {
        for r in &self.remote {
            r.start();
        }
    }

    /// Verify `token`: signature with a key pinned to its `alg`, then the claims.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let generation = self.key_generation();
        if let Some(identity) = self.cache.get(token, generation) {
            return Ok(identity);
        }
        let identity = self.verify_uncached(token).await?;
        self.cache.insert(token, &identity, self.key_generation());
        Ok(identity)
    }

    /// Sum of the JWKS generations: changes whenever any fetched set changes.
    fn key_generation(&self) -> u64 {
        self.remote.iter().map(|r| r.generation()).sum()
    }

    async fn verify_uncached(&self, token: &str) -> Result<Identity, AuthFailure> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthFailure::Invalid(header_fault(token)))?;
        self.spawn_refresh();
        let kid = header.kid.as_deref();
        let mut refreshed = false;
        loop {
            let sets: Vec<Arc<Vec<Key>>> = self.remote.iter().map(|r| r.keys()).collect();
            let all = self.keys.iter().chain(sets.iter().flat_map(|s| s.iter()));
            match self.attempt(token, header.alg, kid, all) {
                Attempt::Done(result) => return result,
                Attempt::Miss { kid_known, tried } => {
                    if refreshed || self.remote.is_empty() || kid_known {
                        return Err(AuthFailure::Invalid(match (tried, kid) {
                            (true, _) => "bad_signature",
                            (false, Some(_)) if !kid_known => "unknown_kid",
                            (false, _) => "alg_not_allowed",
                        }));
                    }
                }
            }
            // Unknown kid, or no key (yet) for this alg: the identity provider may have rotated.
            refreshed = true;
            for r in &self.remote {
                r.refresh_for_unknown_kid().await;
            }
        }
    }

    /// Try each candidate key; a signature failure moves on to the next key, any other
    /// failure is final (the signature was good).
    fn attempt<'k>(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
        keys: impl Iterator<Item = &'k Key>,
    ) -> Attempt {
        let mut kid_known = false;
        let mut tried = false;
        let Some(validation) = self.validations.iter().find(|v| v.algorithms == [alg]) else {
            return Attempt::Miss {
                kid_known: false,
                tried: false,
            };
        };
        for key in keys {
            match (kid, key.kid.as_deref()) {
                (Some(want), Some(have)) if want != have => continue,
                (Some(_), Some(_)) => kid_known = true,
                _ => {}
            }
            if key.alg != alg {
                continue;
            }
            tried = true;
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                Ok(data) => {
                    let key_id = key.origin.as_ref().zip(key.kid.as_ref());
                    let key_id = key_id.map(|(url, kid)| format!("{url}#{kid}"));
                    return Attempt::Done(self.admit(data.claims, key_id));
                }
                Err(e) if is_key_mismatch(e.kind()) => {}
                Err(e) => return Attempt::Done(Err(AuthFailure::Invalid(label(e.kind())))),
            }
        }
        Attempt::Miss { kid_known, tried }
    }

    /// Signature and registered claims are good: check `require`, build the identity.
    fn admit(
        &self,
        claims: Map<String, Value>,
        key_id: Option<String>,
    ) -> Result<Identity, AuthFailure> {
        for (name, want) in &self.require {
            if !claim_contains(claims.get(name), want) {
                return Err(AuthFailure::Insufficient("require_not_met"));
            }
        }
        let expires_at = claims.get("exp").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        });
        Ok(Identity {
            subject: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
            expires_at,
            key_id,
            claims,
        })
    }
}

/// Errors that mean "this key did not verify this signature": try the next key.
fn is_key_mismatch(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
    )
}

fn label(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not_yet_valid",
        ErrorKind::InvalidIssuer => "wrong_issuer",
        ErrorKind::InvalidAudience => "wrong_audience",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "alg_not_allowed",
        ErrorKind::MissingRequiredClaim(_) => "missing_claim",
        ErrorKind::InvalidSignature => "bad_signature",
        _ => "malformed",
    }
}

/// Why a header did not parse: an algorithm we do not know (`none` among them) or garbage.
fn header_fault(token: &str) -> &'static str {
    let alg = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned));
    match alg {
        Some(a) if Algorithm::from_str(&a).is_err() => "alg_not_allowed",
        _ => "malformed",
    }
}

/// `require`: a string claim equal to `want` or holding it as a space-separated word (OAuth
/// `scope`), an array holding it, or a number/bool printing as it.
fn claim_contains(claim: Option<&Value>, want: &str) -> bool {
    let scalar = |v: &Value| match v {
        Value::String(s) => s == want,
        Value::Number(n) => n.to_string() == want,
        Value::Bool(b) => b.to_string() == want,
        _ => false,
    };
    match claim {
        Some(Value::String(s)) => s == want || s.split(' ').any(|w| w == want),
        Some(Value::Array(items)) => items.iter().any(scalar),
        Some(v) => scalar(v),
        None => false,
    }
}

/// A claim as a request header value (`claims_to_headers`): strings as they are, numbers and
/// booleans printed, arrays and objects as JSON; `None` when absent, null, or holding a control
/// character (CR, LF, NUL... would split or corrupt the header).
pub fn claim_as_header_value(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let text = match claims.get(name)? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let bad = |c: char| c.is_ascii_control() && c != '\t';
    (!text.contains(bad)).then_some(text)
}

mod keys;
#[cfg(test)]
pub(crate) mod tests;
