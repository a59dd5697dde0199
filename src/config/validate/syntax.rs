//! Syntax of the strings a config names things with: listener/pool names, route hosts and paths,
//! backend URLs, self-signed certificate names. Pure functions from text to a normalised value
//! or a sentence saying what is wrong; [`super`] attaches the location and field path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A name for the generated certificate: an IP address or a DNS name (`*.` wildcard allowed).
pub(super) fn self_signed_name(name: &str) -> Result<String, String> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let dns = name.strip_prefix("*.").unwrap_or(name);
    if is_dns_name(&dns.to_ascii_lowercase()) {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(format!("`{name}` is neither a DNS name nor an IP address"))
    }
}

/// Listener and pool names appear in logs and metric labels: keep them to a safe alphabet.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name; use 1 to 64 of A-Z a-z 0-9 - _ ."
        ))
    }
}

/// A route host: lower-case DNS name, IPv4 literal, or IPv6 literal (written with or without
/// brackets; returned without them, in compressed form, which is how `proxy::validate::host`
/// reports a `Host: [v6]:port` header). No port: routes match the host part only.
pub(super) fn normalize_host(raw: &str) -> Result<String, String> {
    let host = raw.to_ascii_lowercase();
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(ip)) => Ok(ip.to_string()),
            Some(Err(_)) => Err(format!("`{raw}` is not an IPv6 address")),
            None => Err(format!(
                "`{raw}`: a host must not include a port (or a stray `[`)"
            )),
        };
    }
    if host.contains(':') {
        return match host.parse::<Ipv6Addr>() {
            Ok(ip) => Ok(ip.to_string()),
            Err(_) => Err(format!("`{raw}`: a host must not include a port")),
        };
    }
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("`{raw}` is not a valid IPv4 address"));
    }
    if is_dns_name(&host) {
        Ok(host)
    } else {
        Err(format!("`{raw}` is not a valid host name"))
    }
}

/// RFC 1123 host name (underscore tolerated, as in many internal names), already lower-case.
fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// A route path prefix: absolute, no query/fragment, no `//` or dot segments (which would let
/// one route shadow or escape another after normalisation), no spaces or control characters.
pub(super) fn check_path(path: &str) -> Result<(), String> {
    let problem = if !path.starts_with('/') {
        "must start with `/`"
    } else if path.contains(['?', '#']) {
        "must not contain `?` or `#` (routes match the path only)"
    } else if path.contains("//") {
        "must not contain `//`"
    } else if path.split('/').any(|s| s == "." || s == "..") {
        "must not contain `.` or `..` segments"
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain spaces or control characters"
    } else {
        return Ok(());
    };
    Err(format!("`{path}` {problem}"))
}

/// `ws://HOST[:PORT][/]` → `host:port` (`[v6]:port`), port 80 by default.
pub(super) fn backend_authority(url: &str) -> Result<String, String> {
    let expected = "expected ws://HOST[:PORT]";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not a URL; {expected}"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "ws" => {}
        "wss" => return Err("wss:// backends are not supported yet".to_owned()),
        _ => {
            return Err(format!(
                "unsupported scheme `{scheme}://` in `{url}`; {expected}"
            ));
        }
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "`{url}` must not have a query or fragment; {expected}"
        ));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !(path.is_empty() || path == "/") {
        return Err(format!(
            "`{url}` must not have a path (the client's path is forwarded); {expected}"
        ));
    }
    if authority.contains('@') {
        return Err(format!("`{url}` must not contain user info; {expected}"));
    }
    let (host, port) = split_host_port(authority).map_err(|msg| format!("`{url}` {msg}"))?;
    if host.is_empty() {
        return Err(format!("`{url}` has no host; {expected}"));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("`{url}` has an invalid port `{p}` (1..=65535)")),
        },
    };
    let host = normalize_host(host).map_err(|msg| format!("in `{url}`: {msg}"))?;
    if host.contains(':') {
        return Ok(format!("[{host}]:{port}"));
    }
    Ok(format!("{host}:{port}"))
}

/// `host[:port]` or `[v6][:port]`; the host part keeps its brackets.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    const BAD_V6: &str = "has a malformed IPv6 host, expected ws://[ADDR]:PORT";
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or(BAD_V6)?;
        let (host, rest) = authority.split_at(end + 1);
        if rest.is_empty() {
            return Ok((host, None));
        }
        return rest
            .strip_prefix(':')
            .map(|p| (host, Some(p)))
            .ok_or(BAD_V6);
    }
    match authority.split_once(':') {
        None => Ok((authority, None)),
        Some((_, port)) if port.contains(':') => {
            Err("has an IPv6 address that must be in brackets, e.g. ws://[::1]:9501")
        }
        Some((host, port)) => Ok((host, Some(port))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls() {
        let ok = |u| backend_authority(u).unwrap();
        assert_eq!(ok("ws://127.0.0.1:9501"), "127.0.0.1:9501");
        assert_eq!(ok("ws://Echo.Internal/"), "echo.internal:80");
        assert_eq!(ok("WS://[::1]:9501/"), "[::1]:9501");
        assert_eq!(ok("ws://[0:0::1]"), "[::1]:80");
        let err = |u| backend_authority(u).unwrap_err();
        assert_eq!(err("wss://a:1"), "wss:// backends are not supported yet");
        assert!(err("http://a:1").contains("unsupported scheme"));
        assert!(err("ws://u@a:1").contains("user info"));
        assert!(err("ws://a:1/x").contains("must not have a path"));
        assert!(err("ws://a:1?x").contains("query"));
        assert!(err("ws://a:0").contains("invalid port"));
        assert!(err("ws://a:99999").contains("invalid port"));
        assert!(err("ws://a:").contains("invalid port"));
        assert!(err("ws://::1:80").contains("brackets"));
        assert!(err("ws://[::1").contains("IPv6"));
        assert!(err("ws://[::1]x").contains("malformed"));
        assert!(err("ws://").contains("no host"));
        assert!(err("ws://a b:1").contains("not a valid host"));
        assert!(err("127.0.0.1:9501").contains("not a URL"));
    }

    #[test]
    fn hosts() {
        assert_eq!(normalize_host("WS.Test").unwrap(), "ws.test");
        assert_eq!(normalize_host("10.0.0.1").unwrap(), "10.0.0.1");
        assert_eq!(normalize_host("::1").unwrap(), "::1");
        assert_eq!(normalize_host("[0:0::1]").unwrap(), "::1");
        for bad in [
            "ws.test:443",
            "",
            "a..b",
            "-a.b",
            "999.1.1.1",
            "a b",
            "[::1]:80",
            "*.x",
        ] {
            assert!(normalize_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        for good in ["/", "/echo/", "/a/b.c", "/.well-known/x"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in [
            "echo", "/a?b", "/a#b", "//a", "/a//b", "/./a", "/a/..", "/a b", "",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
