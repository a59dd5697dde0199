//! The files a configuration names: the config file itself, listener certificates and keys,
//! listener client CA bundles and revocation lists (`client_auth`), backend TLS CA bundles and client certificates, JWT public keys and JWKS documents, and the
//! CA bundle of `cluster.ca`.
//!
//! This is what a change watcher (`crate::lifecycle::watch`) has to look at to know that a reload
//! would read something new. It only lists paths; it reads nothing and does not check that they
//! exist (validation and `Runtime::build` do).

use std::collections::HashSet;
use std::path::PathBuf;

use super::policy::{AuthMethod, JwtKey};
use super::{CertSource, Config};

/// Every file `config` names, the config file (`config.source`) first, each path once, in the
/// order the config names them. Paths are as resolved by validation (against the config file's
/// directory). Environment variables (`secret_env`) and URLs (`jwks_url`) are not files.
pub fn watched_files(config: &Config) -> Vec<PathBuf> {
    let mut files = Files::default();
    if let Some(source) = &config.source {
        files.add(source);
    }
    for listener in &config.listeners {
        if let Some(CertSource::Files(pairs)) = listener.tls.as_ref().map(|t| &t.certificates) {
            for pair in pairs {
                files.add(&pair.cert);
                files.add(&pair.key);
            }
        }
        if let Some(auth) = listener.tls.as_ref().and_then(|t| t.client_auth.as_ref()) {
            files.add(&auth.ca);
            if let Some(crl) = &auth.crl {
                files.add(crl);
            }
        }
    }
    for pool in &config.pools {
        if let Some(tls) = &pool.tls {
            for path in [&tls.ca, &tls.client_cert, &tls.client_key]
                .into_iter()
                .flatten()
            {
                files.add(path);
            }
        }
    }
    for route in &config.routes {
        let Some(auth) = &route.policy.auth else {
            continue;
        };
        let AuthMethod::Jwt(jwt) = &auth.method else {
            continue;
        };
        for key in &jwt.keys {
            match key {
                JwtKey::File { path, .. } | JwtKey::JwksFile { path } => files.add(path),
                JwtKey::SecretEnv { .. } | JwtKey::JwksUrl { .. } => {}
            }
        }
    }
    if let Some(ca) = config.cluster.as_ref().and_then(|c| c.ca.as_ref()) {
        files.add(ca);
    }
    files.list
}

/// An insertion-ordered set (routes sharing `defaults:` name the same key file many times).
#[derive(Default)]
struct Files {
    list: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
}

impl Files {
    fn add(&mut self, path: &std::path::Path) {
        if self.seen.insert(path.to_path_buf()) {
            self.list.push(path.to_path_buf());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::policy::{AuthConfig, JwtConfig, TokenSource};
    use crate::config::{
        BackendTls, CertFiles, ClientAuth, ClusterConfig, TlsConfig, TlsVersion, load_str,
    };

    const PLAIN: &str = r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
routes:
  - { path: /a, pool: p }
  - { path: /b, pool: p }
pools:
  p:
    backends: [ { url: "ws://127.0.0.1:1" } ]
"#;

    fn at(name: &str) -> PathBuf {
        Path::new("/etc/wsgate").join(name)
    }

    fn jwt(keys: Vec<JwtKey>) -> Option<Arc<AuthConfig>> {
        Some(Arc::new(AuthConfig {
            method: AuthMethod::Jwt(JwtConfig {
                keys,
                issuer: None,
                audience: None,
                leeway: std::time::Duration::from_secs(30),
                require: Vec::new(),
            }),
            token_from: vec![TokenSource::Header],
            forward_token: false,
            claims_to_headers: Vec::new(),
        }))
    }

    /// Validation reads every named file, so the file-naming parts are set on a loaded config.
    #[test]
    fn lists_every_named_file_once_in_order() {
        let mut config = load_str(PLAIN, "wsgate.yaml", Path::new("/etc/wsgate")).expect("config");
        config.source = Some(at("wsgate.yaml"));
        let pair = |cert: &str, key: &str| CertFiles {
            cert: at(cert),
            key: at(key),
            origin: String::new(),
        };
        config.listeners[0].tls = Some(TlsConfig {
            certificates: CertSource::Files(vec![pair("a.pem", "a.key"), pair("b.pem", "b.key")]),
            min_version: TlsVersion::V1_2,
            client_auth: Some(ClientAuth {
                ca: at("clients-ca.pem"),
                required: true,
                crl: Some(at("clients.crl")),
            }),
            acme: None,
        });
        config.pools[0].tls = Some(BackendTls {
            ca: Some(at("ca.pem")),
            server_name: None,
            client_cert: Some(at("c.pem")),
            client_key: Some(at("c.key")),
        });
        // Both routes share one key set, as with `defaults:`: each file is listed once.
        let keys = vec![
            JwtKey::File {
                path: at("jwt.pem"),
                alg: jsonwebtoken::Algorithm::RS256,
            },
            JwtKey::JwksFile {
                path: at("keys.json"),
            },
            JwtKey::SecretEnv {
                var: "S".into(),
                alg: jsonwebtoken::Algorithm::HS256,
            },
            JwtKey::JwksUrl {
                url: "https://id.example.com/jwks.json".into(),
                refresh: std::time::Duration::from_secs(600),
            },
        ];
        for route in &mut config.routes {
            route.policy.auth = jwt(keys.clone());
        }
        config.cluster = Some(ClusterConfig {
            redis: "rediss://redis.example.com".into(),
            ca: Some(at("redis-ca.pem")),
            prefix: "wsgate:".into(),
            instance: "gw-1".into(),
            timeout: std::time::Duration::from_millis(50),
            on_error: crate::config::OnError::Allow,
        });
        let expected = [
            "wsgate.yaml",
            "a.pem",
            "a.key",
            "b.pem",
            "b.key",
            "clients-ca.pem",
            "clients.crl",
            "ca.pem",
            "c.pem",
            "c.key",
            "jwt.pem",
            "keys.json",
            "redis-ca.pem",
        ]
        .map(at);
        assert_eq!(watched_files(&config), expected);
    }

    #[test]
    fn a_string_config_names_no_file() {
        let config = load_str(PLAIN, "wsgate.yaml", Path::new("")).expect("config");
        assert!(watched_files(&config).is_empty());
    }
}
