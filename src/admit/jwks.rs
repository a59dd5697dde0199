//! JWKS documents (RFC 7517): parsing a key set into verification keys with pinned algorithms,
//! and keeping a remote set fresh.
//!
//! Owns: which JWKs are usable (signature keys whose algorithm can be pinned: by `alg`, else by
//! the curve for EC/OKP keys, else RS256 for RSA; encryption keys and `oct` keys without `alg`
//! are skipped), the fetch (timeout, 1 MiB cap, through the pooled `outbound::client`), the cache (`ArcSwap`), the refresh timer, and
//! the refresh on an unknown `kid` (single-flight, at most once per 10 s, so a `kid` spray cannot
//! hammer the identity provider). A failed refresh keeps the last good set; an outage is logged
//! once when it starts and once when it ends, not per retry. Does not own token verification
//! (`jwt`).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::outbound::client::HttpClient;

/// Largest JWKS document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Time allowed for one fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two fetches triggered by tokens (unknown `kid`).
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// Retry delay after a failed timed refresh, when shorter than the refresh interval.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Called after a refresh with the set's URL and the key ids it now holds.
pub type RefreshHook = Box<dyn Fn(&str, &[&str]) + Send + Sync>;

/// A verification key and the one algorithm it may verify.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    /// The JWKS URL the key was fetched from (`None` for keys from files and the environment):
    /// sessions verified with it are closed when a refresh drops it.
    pub origin: Option<Arc<str>>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?}, {:?})", self.kid, self.alg)
    }
}

/// Parse a JWKS document. Unusable keys are skipped (each noted in the second list); a document
/// that is not a JWKS is an error.
pub fn parse_set(doc: &[u8]) -> Result<(Vec<Key>, Vec<String>), String> {
    let value: serde_json::Value =
        serde_json::from_slice(doc).map_err(|e| format!("not JSON: {e}"))?;
    let entries = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match usable_key(entry) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(e) => skipped.push(format!("keys[{i}]: {e}")),
        }
    }
    Ok((keys, skipped))
}

/// One JWK as a key; `Ok(None)` for keys not meant for signatures.
fn usable_key(entry: &serde_json::Value) -> Result<Option<Key>, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| format!("not a JWK: {e}"))?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let alg = pinned_alg(&jwk)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("bad key material: {e}"))?;
    Ok(Some(Key {
        kid: jwk.common.key_id.clone(),
        origin: None,
        alg,
        key,
    }))
}

/// The algorithm a JWK may verify: its `alg` when given (checked against the key type), else
/// the only one its curve allows, else RS256 for RSA (the OpenID Connect default).
fn pinned_alg(jwk: &Jwk) -> Result<Algorithm, String> {
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => return Err("unknown \"alg\"".into()),
        Some(a) => Some(
            Algorithm::from_str(&a.to_string())
                .map_err(|_| format!("\"alg\" {a} is not a signature algorithm"))?,
        ),
    };
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(format!("unsupported EC curve {:?}", p.curve)),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => Algorithm::EdDSA,
            _ => return Err(format!("unsupported OKP curve {:?}", p.curve)),
        },
        AlgorithmParameters::RSA(_) => {
            let rsa = [
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ];
            return match declared {
                None => Ok(Algorithm::RS256),
                Some(a) if rsa.contains(&a) => Ok(a),
                Some(a) => Err(format!("\"alg\" {a:?} does not fit an RSA key")),
            };
        }
        AlgorithmParameters::OctetKey(_) => {
            let hs = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
            return match declared {
                Some(a) if hs.contains(&a) => Ok(a),
                _ => Err("a symmetric key needs \"alg\" HS256/384/512".into()),
            };
        }
        _ => return Err("unsupported key type".into()),
    };
    match declared {
        Some(a) if a != implied => Err(format!("\"alg\" {a:?} does not fit the curve")),
        _ => Ok(implied),
    }
}

/// A key set served at a URL, refreshed in the background and on demand.
pub struct RemoteJwks {
    url: String,
    refresh: Duration,
    keys: ArcSwap<Vec<Key>>,
    /// Held during a fetch (single flight); holds when the last fetch started.
    gate: Mutex<Option<Instant>>,
    timer_started: AtomicBool,
    /// Bumped whenever a fetched set replaces the keys (verified-token caches compare it).
    generation: AtomicU64,
    /// [`MIN_REFETCH`], shorter in tests.
    min_refetch: Duration,
    /// Told the key ids after each successful refresh (key revocation).
    on_refresh: OnceLock<RefreshHook>,
    /// The last fetch failed: an outage is logged at warn once, when it starts, and once at
    /// info when a fetch works again; the retries in between at debug.
    failing: AtomicBool,
}

impl RemoteJwks {
    /// Nothing is fetched here: startup must not depend on the identity provider.
    pub fn new(url: String, refresh: Duration) -> RemoteJwks {
        RemoteJwks {
            url,
            refresh,
            keys: ArcSwap::from_pointee(Vec::new()),
            gate: Mutex::new(None),
            timer_started: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            min_refetch: MIN_REFETCH,
            on_refresh: OnceLock::new(),
            failing: AtomicBool::new(false),
        }
    }

    /// The same with another least time between token-triggered fetches.
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> RemoteJwks {
        self.min_refetch = min_refetch;
        self
    }

    /// The same, starting from what `old` (this URL's set before a reload) holds: its keys and
    /// whether its last fetch failed (an outage already logged is not logged again). The first
    /// fetch replaces the keys as usual.
    pub fn carrying(self, old: &RemoteJwks) -> RemoteJwks {
        self.keys.store(old.keys());
        let failing = old.failing.load(Ordering::Acquire);
        self.failing.store(failing, Ordering::Release);
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The current set (empty until the first successful fetch).
    /// Changes every time a fetched set replaces the keys.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn keys(&self) -> Arc<Vec<Key>> {
        self.keys.load_full()
    }

    /// Start the refresh timer once (first fetch now, then every `refresh`; after a failure
    /// sooner). The task holds a weak reference and ends when the set is dropped (config
    /// reload). Outside a Tokio runtime this does nothing and can be called again later.
    pub fn start(self: &Arc<Self>) {
        if self.timer_started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.timer_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let Some(me) = weak.upgrade() else { return };
                let ok = {
                    let mut last = me.gate.lock().await;
                    // A token-triggered fetch just ran (e.g. the first token beat this task).
                    if last.is_some_and(|t| t.elapsed() < me.min_refetch)
                        && !me.keys.load().is_empty()
                    {
                        true
                    } else {
                        *last = Some(Instant::now());
                        me.fetch().await
                    }
                };
                let wait = if ok {
                    me.refresh
                } else {
                    me.refresh.min(RETRY_AFTER_FAILURE)
                };
                drop(me);
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// After each successful refresh, `hook` is told this set's URL and the key ids it holds
    /// now, so that sessions verified with a key that is gone can be closed (the gateway wires
    /// it to its session registry). Set once.
    pub fn on_refresh(&self, hook: RefreshHook) {
        let _ = self.on_refresh.set(hook);
    }

    fn revoke_missing(&self, keys: &[Key]) {
        if let Some(hook) = self.on_refresh.get() {
            let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
            hook(&self.url, &kids);
        }
    }

    /// A token named a `kid` no key has: fetch now, unless a token-triggered fetch started less
    /// than [`MIN_REFETCH`] ago. Concurrent callers wait for the one fetch in flight (bounded by
    /// [`FETCH_TIMEOUT`]) instead of starting their own.
    pub async fn refresh_for_unknown_kid(&self) {
        let mut last = self.gate.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        self.fetch().await;
    }

    /// Fetch and swap in the set; on any failure keep the last good one. True on success.
    async fn fetch(&self) -> bool {
        match self.try_fetch().await {
            Ok(keys) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(url = %self.url, keys = keys.len(), "JWKS refresh works again");
                } else {
                    tracing::debug!(url = %self.url, keys = keys.len(), "JWKS refreshed");
                }
                self.revoke_missing(&keys);
                self.keys.store(Arc::new(keys));
                self.generation.fetch_add(1, Ordering::Release);
                true
            }
            Err(error) => {
                let kept = self.keys.load().len();
                if self.failing.swap(true, Ordering::AcqRel) {
                    tracing::debug!(url = %self.url, %error, kept, "JWKS refresh failed again");
                } else {
                    tracing::warn!(url = %self.url, %error, kept, "JWKS refresh failed; keeping the last good set (retried quietly until it works)");
                }
                false
            }
        }
    }

    async fn try_fetch(&self) -> Result<Vec<Key>, String> {
        let answer = HttpClient::shared()
            .get(&self.url, FETCH_TIMEOUT, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(format!("status {}", answer.status));
        }
        let (keys, skipped) = parse_set(&answer.body)?;
        for s in &skipped {
            tracing::debug!(url = %self.url, skipped = %s, "JWKS key not usable");
        }
        if keys.is_empty() {
            return Err("no usable signature key in the document".into());
        }
        let origin: Arc<str> = Arc::from(self.url.as_str());
        Ok(keys
            .into_iter()
            .map(|k| Key {
                origin: Some(Arc::clone(&origin)),
                ..k
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
