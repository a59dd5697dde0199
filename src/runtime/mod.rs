//! The live runtime built from a [`Config`]: TLS configurations per listener, the route table with its
//! pools, and the limits. Built whole off the data path; a connection takes one snapshot of it
//! when it arrives (invariant 4).

pub mod client_auth;
pub mod der;
pub mod route;
pub mod tls;

use std::collections::HashMap;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use crate::acme::AcmeManager;
use crate::admit::RoutePolicy;
use crate::admit::limits::{GlobalCap, PerIpLimits};
use crate::config::{Cidr, Config, ConfigError, ConfigErrors, Limits};
use crate::runtime::route::{Route, RouteTable};
use crate::upstream::Pool;

/// What a listener needs at accept time.
pub struct ListenerRuntime {
    pub name: String,
    /// `None`: plain listener.
    pub tls: Option<Arc<ServerConfig>>,
    /// Expect a PROXY protocol header first.
    pub proxy_protocol: bool,
}

impl ListenerRuntime {
    /// `X-Forwarded-Proto` for clients of this listener.
    pub fn proto(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// Everything the data path reads, immutable once built.
pub struct Runtime {
    pub limits: Limits,
    pub routes: RouteTable,
    /// Every pool, for health checks.
    pub pools: Vec<Arc<Pool>>,
    pub listeners: HashMap<String, Arc<ListenerRuntime>>,
    pub trusted_proxies: Vec<Cidr>,
    /// Open connections in all (taken at accept, before TLS).
    pub global: GlobalCap,
    pub per_ip: PerIpLimits,
    /// 1 for the first runtime, +1 per successful reload.
    pub generation: u64,
    /// Stops this runtime's health checks when a reload replaces it.
    pub health_stop: CancellationToken,
    /// The bearer token `/sessions*` require, read from `admin.token_env`; `None` when unset in
    /// the config.
    pub admin_token: Option<Arc<str>>,
    /// One manager per `tls.acme` block, carried over from the previous runtime when the block
    /// is unchanged (so a reload never starts a new order).
    pub acme: Vec<Arc<AcmeManager>>,
}

impl Runtime {
    /// Load certificates and index routes. Every failure is reported, not just the first.
    /// With `previous` (a reload), state that must survive carries over: connection counts and
    /// rate-limit state, backend health and live-tunnel counts (by backend URL), route caps (by
    /// route host + path).
    pub fn build(config: &Config, previous: Option<&Runtime>) -> Result<Runtime, ConfigErrors> {
        let file = config
            .source
            .as_ref()
            .map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
        let mut errors = Vec::new();
        let admin_token = match config.admin_token_env.as_deref().map(admin_token) {
            None => None,
            Some(Ok(token)) => Some(token),
            Some(Err(msg)) => {
                errors.extend(located(&file, "admin.token_env", vec![msg]));
                None
            }
        };
        let mut listeners = HashMap::new();
        let mut acme: Vec<Arc<AcmeManager>> = Vec::new();
        let before = previous.map_or(&[][..], |rt| &rt.acme[..]);
        for (i, l) in config.listeners.iter().enumerate() {
            let manager = l.tls.as_ref().and_then(|t| t.acme.as_ref()).map(|a| {
                let m = (acme.iter().find(|m| m.config() == a).cloned())
                    .unwrap_or_else(|| AcmeManager::carry(a, before));
                if !acme.iter().any(|x| Arc::ptr_eq(x, &m)) {
                    acme.push(Arc::clone(&m));
                }
                m
            });
            let tls = match &l.tls {
                None => None,
                Some(t) => match tls::server_config(t, l.http2, manager) {
                    Ok(sc) => Some(sc),
                    Err(msgs) => {
                        errors.extend(located(&file, &format!("listeners[{i}].tls"), msgs));
                        None
                    }
                },
            };
            let lr = ListenerRuntime {
                name: l.name.clone(),
                tls,
                proxy_protocol: l.proxy_protocol,
            };
            listeners.insert(l.name.clone(), Arc::new(lr));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let mut pools: HashMap<&str, Arc<Pool>> = HashMap::new();
        for p in &config.pools {
            let before = previous.and_then(|rt| rt.pools.iter().find(|old| old.name == p.name));
            match Pool::new(p, before.map(|b| b.as_ref())) {
                Ok(pool) => {
                    pools.insert(p.name.as_str(), Arc::new(pool));
                }
                Err(message) => {
                    errors.extend(located(&file, &format!("pools.{}", p.name), vec![message]))
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let mut routes = Vec::new();
        for (i, r) in config.routes.iter().enumerate() {
            let Some(pool) = pools.get(r.pool.as_str()) else {
                // Validation already refuses unknown pools; this keeps build total anyway.
                errors.push(ConfigError {
                    file: file.clone(),
                    line: 0,
                    col: 0,
                    path: format!("routes[{i}].pool"),
                    message: format!("unknown pool {:?}", r.pool),
                });
                continue;
            };
            let label = format!("{}{}", r.host.as_deref().unwrap_or("*"), r.path);
            let old_route = previous.and_then(|rt| rt.routes.by_label(&label));
            let before = old_route.map(|o| &o.policy);
            let policy = match RoutePolicy::build(&label, &r.policy, before) {
                Ok(p) => p,
                Err(msgs) => {
                    errors.extend(located(&file, &format!("routes[{i}]"), msgs));
                    continue;
                }
            };
            routes.push(Route {
                policy,
                http: r.policy.http,
                label: label.into(),
                host: r.host.clone(),
                prefix: r.path.clone(),
                pool: Arc::clone(pool),
            });
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Runtime {
            limits: config.limits.clone(),
            routes: RouteTable::new(routes),
            pools: pools.into_values().collect(),
            listeners,
            trusted_proxies: config.trusted_proxies.clone(),
            global: match previous {
                Some(rt) => rt.global.resized(config.limits.max_connections),
                None => GlobalCap::new(config.limits.max_connections),
            },
            per_ip: match previous {
                Some(rt) => rt.per_ip.reconfigured(&config.limits.per_ip),
                None => PerIpLimits::new(&config.limits.per_ip),
            },
            generation: previous.map_or(1, |rt| rt.generation + 1),
            health_stop: CancellationToken::new(),
            admin_token,
            acme,
        })
    }
}

/// The admin bearer token from the environment variable `var`: required, like a JWT key's
/// `secret_env`, so that a start or `wsgate check` fails instead of an admin API that no token
/// opens (or, worse, that an empty one does).
fn admin_token(var: &str) -> Result<Arc<str>, String> {
    let value = std::env::var_os(var).filter(|v| !v.is_empty());
    let value = value.ok_or_else(|| format!("environment variable {var} is unset or empty"))?;
    // RFC 6750 §2.1: the token travels in `Authorization: Bearer <token>`, visible ASCII only.
    match value.to_str() {
        Some(token) if token.bytes().all(|b| b.is_ascii_graphic()) => {
            if token.len() < 16 {
                tracing::warn!(var, "admin token is shorter than 16 characters");
            }
            Ok(Arc::from(token))
        }
        _ => Err(format!(
            "environment variable {var} must hold visible ASCII only (it is compared with an `Authorization: Bearer` header)"
        )),
    }
}

/// Errors found while building (certificates, keys) carry the file and field path; their
/// messages already name the file and entry they come from.
fn located(file: &str, path: &str, messages: Vec<String>) -> impl Iterator<Item = ConfigError> {
    let (file, path) = (file.to_owned(), path.to_owned());
    messages.into_iter().map(move |message| ConfigError {
        file: file.clone(),
        line: 0,
        col: 0,
        path: path.clone(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::admin_token;

    #[test]
    fn admin_token_must_be_set() {
        let err = admin_token("WSGATE_TEST_SURELY_UNSET_7C2D").unwrap_err();
        assert_eq!(
            err,
            "environment variable WSGATE_TEST_SURELY_UNSET_7C2D is unset or empty"
        );
        // `std::env::set_var` is unsafe while other test threads run: PATH is set wherever tests
        // run and holds no spaces on the machines that run them.
        if std::env::var("PATH").is_ok_and(|p| !p.is_empty() && !p.contains(' ')) {
            assert!(admin_token("PATH").is_ok());
        }
    }
}

/// A reload never starts a new ACME order for an unchanged `acme` block: the new runtime holds
/// the very manager (certificate, renewal task, order in flight) of the old one.
#[cfg(test)]
mod acme_reload {
    use std::sync::Arc;

    use super::Runtime;

    fn config(dir: &std::path::Path, renew_before: &str) -> crate::config::Config {
        let yaml = format!(
            "listeners:\n  - name: a\n    bind: \"127.0.0.1:0\"\n    tls:\n      acme:\n        domains: [a.example.com]\n        state_dir: state\n        renew_before: {renew_before}\n  - name: b\n    bind: \"127.0.0.1:0\"\n    tls:\n      acme:\n        domains: [a.example.com]\n        state_dir: state\n        renew_before: {renew_before}\nroutes:\n  - {{ path: /, pool: p }}\npools:\n  p: {{ backends: [ {{ url: \"ws://127.0.0.1:9\" }} ] }}\n"
        );
        crate::config::load_str(&yaml, "t.yaml", dir).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_unchanged_acme_block_keeps_its_manager_across_reloads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Runtime::build(&config(dir.path(), "30d"), None).expect("build");
        // Two listeners with the same block share one manager (one order, one certificate).
        assert_eq!(first.acme.len(), 1);
        let same = Runtime::build(&config(dir.path(), "30d"), Some(&first)).expect("reload");
        assert!(Arc::ptr_eq(&first.acme[0], &same.acme[0]));
        let changed = Runtime::build(&config(dir.path(), "20d"), Some(&same)).expect("reload");
        assert!(!Arc::ptr_eq(&same.acme[0], &changed.acme[0]));
        // Building is offline: nothing was created in the state directory.
        assert!(!dir.path().join("state").exists());
    }
}
