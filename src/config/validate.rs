//! [`RawConfig`] → [`Config`]: units, ranges, syntax of hosts/paths/URLs and cross references.
//!
//! Every rule reports through one collector, so an operator sees all mistakes of a file in one
//! run instead of fixing them one restart at a time. Each error points at the value it is about
//! (`file:line:col` from the raw struct's spans) and names the field path. Nothing here touches
//! the file system or the network: certificate files are only resolved to paths (they are read
//! by `crate::runtime`), and backend host names are resolved at connect time. The syntax of
//! individual strings (hosts, paths, URLs, names) is in [`syntax`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

mod syntax;

use self::syntax::{backend_authority, check_name, check_path, normalize_host, self_signed_name};
use super::load::ConfigError;
use super::raw::{RawCertFiles, RawConfig, RawLimits, RawListener, RawPool, RawRoute, RawTls};
use super::units::{format_size, parse_positive_duration, parse_size};
use super::{
    BackendConfig, CertFiles, CertSource, Config, Limits, ListenerConfig, PoolConfig, RouteConfig,
    TlsConfig, TlsVersion,
};

/// Converts a parsed file into a [`Config`] (`source` left `None`; `load_file` sets it), or
/// returns every problem found, sorted by position. `base_dir` resolves relative cert paths.
pub fn validate(raw: RawConfig, file: &str, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Errors {
        file,
        list: Vec::new(),
    };
    let listeners = listeners(raw.listeners, base_dir, &mut errs);
    let limits = limits(raw.limits.unwrap_or_default(), &mut errs);
    let (pools, pool_names) = pools(raw.pools, &mut errs);
    let routes = routes(raw.routes, &pool_names, &mut errs);
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
    })
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
}

fn listeners(
    raw: Option<Spanned<Vec<RawListener>>>,
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
        let bind = match l.bind.value.trim().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let msg = format!(
                    "`{}` is not an IP:PORT address (e.g. `127.0.0.1:8443` or `[::]:443`; host names are not resolved)",
                    l.bind.value
                );
                errs.at(&l.bind.referenced, format!("{at}.bind"), msg);
                None
            }
        };
        if let Some(addr) = bind.filter(|a| a.port() != 0) {
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
            Some(t) => tls(t, &format!("{at}.tls"), base_dir, errs).map(Some),
        };
        if let (Some(bind), Some(tls)) = (bind, tls) {
            out.push(ListenerConfig {
                name: l.name.value,
                bind,
                tls,
            });
        }
    }
    out
}

/// `None`: the section had errors (already reported).
fn tls(raw: Spanned<RawTls>, at: &str, base_dir: &Path, errs: &mut Errors) -> Option<TlsConfig> {
    let (loc, tls) = (raw.referenced, raw.value);
    let certificates = cert_source(tls.certificates, tls.self_signed, &loc, at, base_dir, errs);
    let min_version = match tls.min_version.as_ref().map(|v| (v, v.value.trim())) {
        None | Some((_, "1.2")) => Some(TlsVersion::V1_2),
        Some((_, "1.3")) => Some(TlsVersion::V1_3),
        Some((v, other)) => {
            let msg =
                format!("`{other}` is not a supported TLS version; expected \"1.2\" or \"1.3\"");
            errs.at(&v.referenced, format!("{at}.min_version"), msg);
            None
        }
    };
    Some(TlsConfig {
        certificates: certificates?,
        min_version: min_version?,
    })
}

/// Exactly one of `certificates` (non-empty) / `self_signed` (non-empty). `None`: errors reported.
fn cert_source(
    files: Option<Spanned<Vec<Spanned<RawCertFiles>>>>,
    names: Option<Spanned<Vec<Spanned<String>>>>,
    tls_loc: &Location,
    at: &str,
    base_dir: &Path,
    errs: &mut Errors,
) -> Option<CertSource> {
    let before = errs.list.len();
    let source = match (files, names) {
        (Some(_), Some(names)) => {
            let msg = "set exactly one of `certificates` and `self_signed`, not both";
            errs.at(&names.referenced, format!("{at}.self_signed"), msg);
            return None;
        }
        (None, None) => {
            let msg = "needs `certificates` (PEM files) or `self_signed` (names for a generated certificate)";
            errs.at(tls_loc, at, msg);
            return None;
        }
        (Some(files), None) => {
            if files.value.is_empty() {
                let msg = "is empty; list at least one `{ cert: FILE, key: FILE }` pair";
                errs.at(&files.referenced, format!("{at}.certificates"), msg);
            }
            let mut out = Vec::new();
            for (j, pair) in files.value.into_iter().enumerate() {
                let at = format!("{at}.certificates[{j}]");
                let cert = resolve(&pair.value.cert, &format!("{at}.cert"), base_dir, errs);
                let key = resolve(&pair.value.key, &format!("{at}.key"), base_dir, errs);
                let origin = errs.place(&pair.referenced);
                if let (Some(cert), Some(key)) = (cert, key) {
                    out.push(CertFiles { cert, key, origin });
                }
            }
            CertSource::Files(out)
        }
        (None, Some(names)) => {
            if names.value.is_empty() {
                let msg = "is empty; list the DNS names or IPs the certificate is for";
                errs.at(&names.referenced, format!("{at}.self_signed"), msg);
            }
            let mut out = Vec::new();
            for (j, name) in names.value.into_iter().enumerate() {
                match self_signed_name(&name.value) {
                    Ok(n) => out.push(n),
                    Err(msg) => errs.at(&name.referenced, format!("{at}.self_signed[{j}]"), msg),
                }
            }
            CertSource::SelfSigned(out)
        }
    };
    (errs.list.len() == before).then_some(source)
}

fn resolve(raw: &Spanned<String>, at: &str, base_dir: &Path, errs: &mut Errors) -> Option<PathBuf> {
    if raw.value.trim().is_empty() {
        errs.at(&raw.referenced, at, "empty path");
        return None;
    }
    Some(base_dir.join(&raw.value))
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn limits(raw: RawLimits, errs: &mut Errors) -> Limits {
    let d = Limits::default();
    // `limits.NAME`: absent = default; a bad value is reported and the default kept.
    macro_rules! field {
        ($name:ident, $parse:expr) => {
            value_or(raw.$name, stringify!($name), d.$name, errs, $parse)
        };
    }
    Limits {
        tls_handshake_timeout: field!(tls_handshake_timeout, parse_positive_duration),
        request_header_timeout: field!(request_header_timeout, parse_positive_duration),
        max_request_header_bytes: field!(max_request_header_bytes, |s| size_in(s, KIB, MIB)),
        max_request_headers: field!(max_request_headers, |s| count_in(s, 1, 10_000)),
        backend_connect_timeout: field!(backend_connect_timeout, parse_positive_duration),
        backend_handshake_timeout: field!(backend_handshake_timeout, parse_positive_duration),
        max_relayed_body_bytes: field!(max_relayed_body_bytes, |s| size_in(s, 0, 16 * MIB)),
        tunnel_idle_timeout: field!(tunnel_idle_timeout, parse_positive_duration),
        drain_timeout: field!(drain_timeout, parse_positive_duration),
    }
}

fn size_in(text: &str, min: u64, max: u64) -> Result<usize, String> {
    let n = parse_size(text)?;
    if !(min..=max).contains(&n) {
        let (min, max) = (format_size(min), format_size(max));
        return Err(format!(
            "`{}` is out of range; expected {min}..={max}",
            text.trim()
        ));
    }
    // `max` is far below usize::MAX on every supported target.
    usize::try_from(n).map_err(|_| format!("`{}` is too large", text.trim()))
}

fn count_in(text: &str, min: usize, max: usize) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is out of range; expected {min}..={max}")),
        Err(_) => Err(format!(
            "`{}` is not a whole number; expected {min}..={max}",
            text.trim()
        )),
    }
}

/// Parses an optional `limits.NAME` value, reporting a failure and falling back to `default`.
fn value_or<T>(
    raw: Option<Spanned<String>>,
    name: &str,
    default: T,
    errs: &mut Errors,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> T {
    let Some(raw) = raw else { return default };
    parse(&raw.value).unwrap_or_else(|msg| {
        errs.at(&raw.referenced, format!("limits.{name}"), msg);
        default
    })
}

/// Returns the valid pools sorted by name, and the names of all declared pools (valid or not) so
/// that routes to a pool with a bad backend don't also report "unknown pool".
fn pools(
    raw: Option<Spanned<HashMap<Spanned<String>, RawPool>>>,
    errs: &mut Errors,
) -> (Vec<PoolConfig>, Vec<String>) {
    let (loc, raw) = raw.map_or((Location::UNKNOWN, HashMap::new()), |s| {
        (s.referenced, s.value)
    });
    if raw.is_empty() {
        errs.at(&loc, "pools", "at least one pool is required");
    }
    let mut raw: Vec<_> = raw.into_iter().collect();
    raw.sort_by(|a, b| a.0.value.cmp(&b.0.value));
    let names = raw.iter().map(|(name, _)| name.value.clone()).collect();
    let mut out = Vec::new();
    for (name, pool) in raw {
        let at = format!("pools.{}", name.value);
        if let Err(msg) = check_name(&name.value) {
            errs.at(&name.referenced, &at, msg);
        }
        if pool.backends.value.is_empty() {
            let msg = "has no backends; add at least one `{ url: \"ws://HOST:PORT\" }`";
            errs.at(&pool.backends.referenced, format!("{at}.backends"), msg);
        }
        let before = errs.list.len();
        let mut backends = Vec::new();
        for (i, b) in pool.backends.value.into_iter().enumerate() {
            match backend_authority(&b.url.value) {
                Ok(authority) => backends.push(BackendConfig {
                    url: b.url.value,
                    authority,
                }),
                Err(msg) => errs.at(&b.url.referenced, format!("{at}.backends[{i}].url"), msg),
            }
        }
        if errs.list.len() == before {
            out.push(PoolConfig {
                name: name.value,
                backends,
            });
        }
    }
    (out, names)
}

fn routes(
    raw: Option<Spanned<Vec<RawRoute>>>,
    pool_names: &[String],
    errs: &mut Errors,
) -> Vec<RouteConfig> {
    let (loc, raw) = raw.map_or((Location::UNKNOWN, Vec::new()), |s| (s.referenced, s.value));
    if raw.is_empty() {
        errs.at(&loc, "routes", "at least one route is required");
    }
    let mut seen: HashMap<(Option<String>, String), (usize, Location)> = HashMap::new();
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let at = format!("routes[{i}]");
        let before = errs.list.len();
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
        out.push(RouteConfig {
            host,
            path: r.path.value,
            pool: r.pool.value,
        });
    }
    out
}
