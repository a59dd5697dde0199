//! [`RawConfig`] → [`Config`]: units, ranges, syntax of hosts/paths/URLs and cross references.
//!
//! Every rule reports through one collector, so an operator sees all mistakes of a file in one
//! run instead of fixing them one restart at a time. Each error points at the value it is about
//! (`file:line:col` from the raw struct's spans) and names the field path. Submodules:
//! [`syntax`] (hosts, paths, URLs, names, header names), [`origin`] (Origin patterns),
//! [`limits`] (`limits:`, counts and rates), [`policy`] (`defaults:` + route policy keys,
//! `trusted_proxies`), [`session`] (`session:`), [`auth`] (`auth:`), [`jwt`] (`auth.jwt`),
//! [`keys`] (JWT key files), [`tls`] (`listeners[i].tls`), [`client_auth`] (its `client_auth`),
//! [`pool`] (`pools:`), [`backend_tls`] (`pools.NAME.tls`),
//! [`health`] (`pools.NAME.health`, `passive`), [`admin`] (`admin:`) and [`cluster`] (`cluster:`,
//! `scope`, `per_subject`).
//!
//! The file system is touched in four places only: JWT key files (`auth.jwt.keys[].file`,
//! `jwks_file`), the PEM files of a pool's `tls` (CA, client certificate and key), `cluster.ca`
//! and a listener's [`client_auth`] CA and CRL are read and checked here, so that a missing or wrong file is reported at its line:col instead
//! of failing every connection later. Listener certificate files are only resolved to paths (read
//! by `crate::runtime`), secrets named by `secret_env` and `admin.token_env` are read when the
//! runtime is built, host names are resolved at connect time, and `cluster.redis` is only parsed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

use crate::config::raw::Spanned;

mod acme;
mod admin;
mod auth;
mod backend_tls;
pub mod client_auth;
mod cluster;
mod health;
mod jwt;
mod keys;
mod limits;
mod origin;
mod policy;
mod pool;
mod session;
mod syntax;
mod tls;

use self::policy::PolicyParts;
use self::syntax::{check_name, check_path, normalize_host};
use super::load::ConfigError;
use super::raw::RawLog;
use super::raw::{RawConfig, RawListener, RawRoute};
use super::{Bind, Config, ListenerConfig, RouteConfig};
use super::{LogConfig, LogFormat};

/// Converts a parsed file into a [`Config`] (`source` left `None`; `load_file` sets it), or
/// returns every problem found, sorted by position. `base_dir` resolves relative paths (TLS
/// certificates, JWT keys).
pub fn validate(raw: RawConfig, file: &str, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Errors {
        file,
        list: Vec::new(),
    };
    // Judged on the list as written, so that one bad CIDR doesn't also fail `proxy_protocol`.
    let have_trusted = (raw.trusted_proxies.as_ref()).is_some_and(|t| !t.value.is_empty());
    let trusted_proxies = policy::trusted_proxies(raw.trusted_proxies, &mut errs);
    let listeners = listeners(raw.listeners, have_trusted, base_dir, &mut errs);
    // `scope: fleet` needs the block, even one with errors of its own (reported there).
    let fleet = raw.cluster.is_some();
    let cluster = cluster::cluster(raw.cluster, base_dir, &mut errs);
    let limits = limits::limits(raw.limits.unwrap_or_default(), fleet, &mut errs);
    let (pools, pool_names) = pool::pools(raw.pools, base_dir, &mut errs);
    let defaults = raw.defaults.map_or_else(PolicyParts::default, |d| {
        PolicyParts::parse(d.value, "defaults", base_dir, fleet, &mut errs)
    });
    // A verified client certificate names a session too (`per_subject` without a token).
    let certs = (listeners.iter()).any(|l| l.tls.as_ref().is_some_and(|t| t.client_auth.is_some()));
    let routes = routes(
        raw.routes,
        &pool_names,
        (&defaults, certs),
        base_dir,
        fleet,
        &mut errs,
    );
    let log = log(raw.log, &mut errs);
    let (admin, admin_token_env) = admin::admin(raw.admin, &mut errs);
    if !errs.list.is_empty() {
        // Unlocated errors (missing sections) last; stable, so same-place errors keep rule order.
        errs.list.sort_by_key(|e| (e.line == 0, e.line, e.col));
        return Err(errs.list);
    }
    Ok(Config {
        source: None,
        listeners,
        limits,
        routes,
        pools,
        trusted_proxies,
        log,
        admin,
        admin_token_env,
        cluster,
    })
}

/// `log:`: format `text` | `json`; level an `EnvFilter` directive (checked here).
fn log(raw: Option<RawLog>, errs: &mut Errors) -> LogConfig {
    let mut out = LogConfig::default();
    let Some(raw) = raw else {
        return out;
    };
    if let Some(f) = raw.format {
        match f.value.as_str() {
            "text" => out.format = LogFormat::Text,
            "json" => out.format = LogFormat::Json,
            other => errs.at(
                &f.referenced,
                "log.format",
                format!("`{other}` is not `text` or `json`"),
            ),
        }
    }
    if let Some(l) = raw.level {
        match tracing_subscriber::EnvFilter::try_new(&l.value) {
            Ok(_) => out.level = l.value,
            Err(e) => errs.at(
                &l.referenced,
                "log.level",
                format!(
                    "`{}`: {e} (e.g. `info`, `warn,wsgate::session=info`)",
                    l.value
                ),
            ),
        }
    }
    out
}

struct Errors<'a> {
    file: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn at(&mut self, loc: &Location, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.to_owned(),
            line: loc.line(),
            col: loc.column(),
            path: path.into(),
            message: message.into(),
        });
    }

    /// `file:line:col`, for messages that mention a second place and for `CertFiles::origin`.
    fn place(&self, loc: &Location) -> String {
        format!("{}:{}:{}", self.file, loc.line(), loc.column())
    }

    /// Runs `parse` on a located text value; a failure is reported at it under `path`.
    fn check<T>(
        &mut self,
        raw: &Spanned<String>,
        path: impl Into<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(&raw.value)
            .map_err(|msg| self.at(&raw.referenced, path, msg))
            .ok()
    }
}

fn listeners(
    raw: Option<Spanned<Vec<RawListener>>>,
    have_trusted_proxies: bool,
    base_dir: &Path,
    errs: &mut Errors,
) -> Vec<ListenerConfig> {
    let (loc, raw) = raw.map_or((Location::UNKNOWN, Vec::new()), |s| (s.referenced, s.value));
    if raw.is_empty() {
        errs.at(&loc, "listeners", "at least one listener is required");
    }
    let mut names: HashMap<String, Location> = HashMap::new();
    let mut binds: HashMap<SocketAddr, (usize, Location)> = HashMap::new();
    let mut out = Vec::new();
    for (i, l) in raw.into_iter().enumerate() {
        let at = format!("listeners[{i}]");
        let name = &l.name;
        if let Err(msg) = check_name(&name.value) {
            errs.at(&name.referenced, format!("{at}.name"), msg);
        } else if let Some(first) = names.get(&name.value) {
            let msg = format!(
                "duplicate listener name `{}` (first at {})",
                name.value,
                errs.place(first)
            );
            errs.at(&name.referenced, format!("{at}.name"), msg);
        } else {
            names.insert(name.value.clone(), name.referenced);
        }
        let text = l.bind.value.trim();
        let bind = if let Some(fd_name) = text.strip_prefix("systemd:") {
            match check_name(fd_name) {
                Ok(()) => Some(Bind::Systemd(fd_name.to_owned())),
                Err(msg) => {
                    errs.at(
                        &l.bind.referenced,
                        format!("{at}.bind"),
                        format!("systemd socket name: {msg}"),
                    );
                    None
                }
            }
        } else {
            match text.parse::<SocketAddr>() {
                Ok(addr) => Some(Bind::Addr(addr)),
                Err(_) => {
                    let msg = format!(
                        "`{}` is not an IP:PORT address (e.g. `127.0.0.1:8443` or `[::]:443`; host names are not resolved) nor `systemd:NAME`",
                        l.bind.value
                    );
                    errs.at(&l.bind.referenced, format!("{at}.bind"), msg);
                    None
                }
            }
        };
        let addr = match &bind {
            Some(Bind::Addr(a)) => Some(*a),
            _ => None,
        };
        if let Some(addr) = addr.filter(|a| a.port() != 0) {
            if let Some((j, first)) = binds.get(&addr) {
                let msg = format!(
                    "`{addr}` is already bound by listeners[{j}] ({})",
                    errs.place(first)
                );
                errs.at(&l.bind.referenced, format!("{at}.bind"), msg);
            } else {
                binds.insert(addr, (i, l.bind.referenced));
            }
        }
        // Outer `None`: the tls section had errors; inner `None`: a plain listener.
        let tls = match l.tls {
            None => Some(None),
            Some(t) => tls::tls(t, &format!("{at}.tls"), base_dir, errs).map(Some),
        };
        let proxy_protocol = l.proxy_protocol.is_some_and(|p| {
            if p.value && !have_trusted_proxies {
                let msg = "needs `trusted_proxies`: PROXY headers are accepted only from trusted peers, so with none every connection would be dropped";
                errs.at(&p.referenced, format!("{at}.proxy_protocol"), msg);
            }
            p.value
        });
        if let (Some(bind), Some(tls)) = (bind, tls) {
            out.push(ListenerConfig {
                name: l.name.value,
                bind,
                tls,
                proxy_protocol,
                http2: l.http2.is_none_or(|h| h.value),
            });
        }
    }
    out
}

fn resolve(raw: &Spanned<String>, at: &str, base_dir: &Path, errs: &mut Errors) -> Option<PathBuf> {
    if raw.value.trim().is_empty() {
        errs.at(&raw.referenced, at, "empty path");
        return None;
    }
    Some(base_dir.join(&raw.value))
}

fn routes(
    raw: Option<Spanned<Vec<RawRoute>>>,
    pool_names: &[String],
    (defaults, certs): (&PolicyParts, bool),
    base_dir: &Path,
    fleet: bool,
    errs: &mut Errors,
) -> Vec<RouteConfig> {
    let (loc, raw) = raw.map_or((Location::UNKNOWN, Vec::new()), |s| (s.referenced, s.value));
    if raw.is_empty() {
        errs.at(&loc, "routes", "at least one route is required");
    }
    let mut seen: HashMap<(Option<String>, String), (usize, Location)> = HashMap::new();
    let mut out = Vec::new();
    for (i, mut r) in raw.into_iter().enumerate() {
        let at = format!("routes[{i}]");
        let before = errs.list.len();
        let own = PolicyParts::parse(r.take_policy(), &at, base_dir, fleet, errs);
        let host = match r.host.as_ref().filter(|h| h.value.trim() != "*") {
            None => None,
            Some(h) => match normalize_host(&h.value) {
                Ok(host) => Some(host),
                Err(msg) => {
                    errs.at(&h.referenced, format!("{at}.host"), msg);
                    None
                }
            },
        };
        if let Err(msg) = check_path(&r.path.value) {
            errs.at(&r.path.referenced, format!("{at}.path"), msg);
        }
        if !pool_names.contains(&r.pool.value) {
            let known = match pool_names.join(", ") {
                list if list.is_empty() => "no pools are defined".to_owned(),
                list => format!("defined pools: {list}"),
            };
            let msg = format!("unknown pool `{}`; {known}", r.pool.value);
            errs.at(&r.pool.referenced, format!("{at}.pool"), msg);
        }
        if errs.list.len() != before {
            continue;
        }
        let key = (host.clone(), r.path.value.clone());
        if let Some((j, first)) = seen.get(&key) {
            let msg = format!(
                "duplicate route: host `{}` path `{}` is already routed by routes[{j}] at {}",
                host.as_deref().unwrap_or("*"),
                r.path.value,
                errs.place(first)
            );
            errs.at(&r.path.referenced, format!("{at}.path"), msg);
            continue;
        }
        seen.insert(key, (i, r.path.referenced));
        let Some(policy) = own.merge(defaults, &at, certs, errs) else {
            continue;
        };
        out.push(RouteConfig {
            host,
            path: r.path.value,
            pool: r.pool.value,
            policy,
        });
    }
    out
}
