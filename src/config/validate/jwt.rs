//! `auth.jwt` → [`JwtConfig`]: keys, issuer, audience, leeway and required claims.
//!
//! Every key pins its algorithm, and the pairing is checked here: a PEM `file` never verifies an
//! HMAC algorithm and a `secret_env` never verifies anything else, which rules out algorithm
//! confusion (a public key used as an HMAC secret) at load time; `none` is not an algorithm.
//! Key files are read and parsed by [`super::keys`] so that a wrong path is reported at its
//! line:col. Verifying tokens is `crate::admit::jwt`'s job.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::auth::sorted;
use super::syntax::http_url;
use super::{Errors, keys, resolve};
use crate::config::policy::{JwtConfig, JwtKey};
use crate::config::raw::{RawJwt, RawJwtKey, Spanned, SpannedMap};
use crate::config::units::parse_duration;

pub(super) fn jwt_config(
    raw: RawJwt,
    at: &str,
    base: &Path,
    errs: &mut Errors,
) -> Option<JwtConfig> {
    let before = errs.list.len();
    if raw.keys.value.is_empty() {
        let msg =
            "is empty; list at least one key (`file`, `secret_env`, `jwks_file` or `jwks_url`)";
        errs.at(&raw.keys.referenced, format!("{at}.keys"), msg);
    }
    let keys: Vec<JwtKey> = (raw.keys.value.into_iter().enumerate())
        .filter_map(|(i, k)| jwt_key(k, &format!("{at}.keys[{i}]"), base, errs))
        .collect();
    let mut text = |raw: Option<Spanned<String>>, name: &str| {
        let raw = raw?;
        errs.check(&raw, format!("{at}.{name}"), |s| match s.trim() {
            "" => Err("is empty; remove the key to accept any value".to_owned()),
            s => Ok(s.to_owned()),
        })
    };
    let issuer = text(raw.issuer, "issuer");
    let audience = text(raw.audience, "audience");
    let leeway = match raw.leeway {
        None => Duration::from_secs(30),
        Some(l) => errs
            .check(&l, format!("{at}.leeway"), parse_leeway)
            .unwrap_or_default(),
    };
    let require = raw
        .require
        .map_or_else(Vec::new, |r| string_map(r, &format!("{at}.require"), errs));
    (errs.list.len() == before).then_some(JwtConfig {
        keys,
        issuer,
        audience,
        leeway,
        require,
    })
}

/// Clock skew allowed on `exp`/`nbf`: 0..=10m (more would keep expired tokens alive).
fn parse_leeway(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > Duration::from_secs(600) {
        return Err(format!("`{}` is too long; at most 10m", text.trim()));
    }
    Ok(d)
}

/// The algorithms a key may pin, as written in the config and in a JWT header.
const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("HS256", Algorithm::HS256),
    ("HS384", Algorithm::HS384),
    ("HS512", Algorithm::HS512),
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

fn algorithm(text: &str) -> Result<Algorithm, String> {
    let text = text.trim();
    if let Some((_, alg)) = ALGORITHMS.iter().find(|(name, _)| *name == text) {
        return Ok(*alg);
    }
    let names: Vec<&str> = ALGORITHMS.iter().map(|(name, _)| *name).collect();
    let names = names.join(", ");
    if text.eq_ignore_ascii_case("none") {
        return Err(format!(
            "`{text}` (unsigned tokens) is never accepted; expected one of {names}"
        ));
    }
    match ALGORITHMS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
    {
        Some((name, _)) => Err(format!(
            "unknown algorithm `{text}`; did you mean `{name}`?"
        )),
        None => Err(format!(
            "unknown algorithm `{text}`; expected one of {names}"
        )),
    }
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// One `keys[i]`: exactly one source, and `alg` / `refresh` only where they mean something.
fn jwt_key(raw: Spanned<RawJwtKey>, at: &str, base: &Path, errs: &mut Errors) -> Option<JwtKey> {
    let k = &raw.value;
    let named = [
        ("file", &k.file),
        ("secret_env", &k.secret_env),
        ("jwks_file", &k.jwks_file),
        ("jwks_url", &k.jwks_url),
    ];
    let set: Vec<(&str, &Spanned<String>)> = (named.iter())
        .filter_map(|(name, v)| Some((*name, v.as_ref()?)))
        .collect();
    let (kind, value) = match set.as_slice() {
        [] => {
            let msg = "needs one of `file` (PEM public key), `secret_env` (HMAC secret), `jwks_file` or `jwks_url`";
            errs.at(&raw.referenced, at, msg);
            return None;
        }
        [one] => *one,
        [(first, _), (second, v), ..] => {
            let msg = format!(
                "set exactly one of `file`, `secret_env`, `jwks_file` and `jwks_url`, not both `{first}` and `{second}`"
            );
            errs.at(&v.referenced, format!("{at}.{second}"), msg);
            return None;
        }
    };
    if let (Some(refresh), false) = (&k.refresh, kind == "jwks_url") {
        errs.at(
            &refresh.referenced,
            format!("{at}.refresh"),
            "only applies to `jwks_url`",
        );
    }
    match kind {
        "jwks_file" | "jwks_url" => jwks_key(kind, value, k, at, base, errs),
        _ => pinned_key(kind, value, &raw, at, base, errs),
    }
}

/// A `jwks_file` or `jwks_url` key: each JWKS key names its own algorithm.
fn jwks_key(
    kind: &str,
    value: &Spanned<String>,
    k: &RawJwtKey,
    at: &str,
    base: &Path,
    errs: &mut Errors,
) -> Option<JwtKey> {
    if let Some(alg) = &k.alg {
        let msg = "JWKS keys carry their own `alg`; remove `alg` here";
        errs.at(&alg.referenced, format!("{at}.alg"), msg);
    }
    let value_at = format!("{at}.{kind}");
    if kind == "jwks_file" {
        let path = resolve(value, &value_at, base, errs)?;
        errs.check(value, value_at, |_| keys::check_jwks(&path))?;
        return Some(JwtKey::JwksFile { path });
    }
    let refresh = match &k.refresh {
        None => Some(Duration::from_secs(600)),
        Some(r) => errs.check(r, format!("{at}.refresh"), parse_refresh),
    };
    errs.check(value, value_at, http_url)?;
    Some(JwtKey::JwksUrl {
        url: value.value.clone(),
        refresh: refresh?,
    })
}

/// A `file` or `secret_env` key with its pinned `alg`: PEM files for public-key algorithms,
/// secrets for HMAC, never the other way round.
fn pinned_key(
    kind: &str,
    value: &Spanned<String>,
    raw: &Spanned<RawJwtKey>,
    at: &str,
    base: &Path,
    errs: &mut Errors,
) -> Option<JwtKey> {
    let Some(alg_raw) = &raw.value.alg else {
        let names: Vec<&str> = ALGORITHMS.iter().map(|(name, _)| *name).collect();
        let msg = format!("`{kind}` keys need `alg`, one of {}", names.join(", "));
        errs.at(&raw.referenced, format!("{at}.alg"), msg);
        return None;
    };
    let alg = errs.check(alg_raw, format!("{at}.alg"), algorithm)?;
    let alg_name = alg_raw.value.trim();
    let value_at = format!("{at}.{kind}");
    if kind == "file" {
        if is_hmac(alg) {
            let msg = format!(
                "`{alg_name}` is an HMAC algorithm: its shared secret comes from `secret_env`, not a PEM `file`"
            );
            errs.at(&alg_raw.referenced, format!("{at}.alg"), msg);
            return None;
        }
        let path = resolve(value, &value_at, base, errs)?;
        errs.check(value, value_at, |_| keys::check_pem(&path, alg))?;
        return Some(JwtKey::File { path, alg });
    }
    if !is_hmac(alg) {
        let msg = format!(
            "`{alg_name}` verifies with a public key: use `file` (PEM) or a JWKS; `secret_env` is for HS256, HS384 and HS512"
        );
        errs.at(&alg_raw.referenced, format!("{at}.alg"), msg);
        return None;
    }
    let var = errs.check(value, value_at, env_var_name)?;
    Some(JwtKey::SecretEnv { var, alg })
}

/// JWKS refresh interval: at least 10s (the identity provider is not ours to hammer).
fn parse_refresh(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_secs(10) {
        return Err(format!("`{}` is too short; at least 10s", text.trim()));
    }
    Ok(d)
}

pub(super) fn env_var_name(name: &str) -> Result<String, String> {
    let ok = name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "`{name}` is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)"
        ))
    }
}

/// `require`: claim → required value, sorted by claim.
fn string_map(raw: SpannedMap, at: &str, errs: &mut Errors) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (claim, value) in sorted(raw) {
        if claim.value.trim().is_empty() {
            errs.at(
                &claim.referenced,
                format!("{at}.{}", claim.value),
                "empty claim name",
            );
        } else {
            out.push((claim.value, value.value));
        }
    }
    out
}
