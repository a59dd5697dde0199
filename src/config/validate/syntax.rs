//! Syntax of the strings a config names things with: listener/pool names, route hosts and paths,
//! backend and auth-service URLs, self-signed certificate names, header names and tokens. Pure
//! functions from text to a normalised value or a sentence saying what is wrong; [`super`]
//! attaches the location and field path.

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
pub(super) fn is_dns_name(host: &str) -> bool {
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

/// Where a backend URL points.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BackendUrl {
    /// `host:port` (`[v6]:port`), port 80 (`ws://`) or 443 (`wss://`) by default.
    pub authority: String,
    /// The host alone: lower-case, IPv6 without brackets (as SNI and certificate checks want it).
    pub host: String,
    /// `wss://`.
    pub tls: bool,
}

/// `ws://HOST[:PORT][/]` or `wss://HOST[:PORT][/]`.
pub(super) fn backend_url(url: &str) -> Result<BackendUrl, String> {
    let expected = "expected ws://HOST[:PORT] or wss://HOST[:PORT]";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not a URL; {expected}"));
    };
    let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "ws" => (false, 80),
        "wss" => (true, 443),
        _ => {
            return Err(format!(
                "unsupported scheme `{scheme}://` in `{url}`; {expected}"
            ));
        }
    };
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
    let (host, authority) = url_authority(url, authority, default_port, expected)?;
    Ok(BackendUrl {
        authority,
        host,
        tls,
    })
}

/// `host[:port]` or `[v6][:port]`; the host part keeps its brackets.
pub(super) fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    const BAD_V6: &str = "has a malformed IPv6 host, expected [ADDR]:PORT";
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
            Err("has an IPv6 address that must be in brackets, e.g. [::1]:9501")
        }
        Some((host, port)) => Ok((host, Some(port))),
    }
}

/// Where an `http://` URL points: what to connect to and what to ask for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct HttpTarget {
    /// `host:port` (`[v6]:port`), port 80 or 443 by default.
    pub authority: String,
    /// Origin-form request target: path (default `/`) and query.
    pub path: String,
}

/// `http(s)://HOST[:PORT][/PATH][?QUERY]` (a JWKS URL, an auth service).
pub(super) fn http_url(url: &str) -> Result<HttpTarget, String> {
    let expected = "expected http(s)://HOST[:PORT]/PATH";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not a URL; {expected}"));
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => {
            return Err(format!(
                "unsupported scheme `{scheme}://` in `{url}`; {expected}"
            ));
        }
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{url}` must not contain spaces or control characters"
        ));
    }
    if rest.contains('#') {
        return Err(format!("`{url}` must not have a fragment; {expected}"));
    }
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (_host, authority) = url_authority(url, authority, default_port, expected)?;
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    Ok(HttpTarget { authority, path })
}

/// RFC 9110 §5.6.2 `token`: header names, cookie names (RFC 6265 §4.1.1) and WebSocket
/// subprotocol names (RFC 6455 §4.1) are all tokens.
pub(super) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A query parameter name made of RFC 3986 §2.3 unreserved characters: it needs no
/// percent-encoding, so it can be compared as written.
pub(super) fn is_query_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// A header wsgate may set on the backend request from configuration (a JWT claim, an auth
/// service's answer): a valid name that is not hop-by-hop and not one wsgate writes itself.
pub(super) fn settable_header(name: &str) -> Result<(), String> {
    if !is_token(name) {
        return Err(format!(
            "`{name}` is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if crate::wire::is_hop_by_hop(&lower) {
        return Err(format!(
            "`{name}` is a hop-by-hop header (RFC 9110 §7.6.1); pick another name such as `X-User-Id`"
        ));
    }
    let own = ["host", "content-length", "forwarded"].contains(&lower.as_str())
        || lower.starts_with("sec-websocket-")
        || lower.starts_with("x-forwarded-");
    if own {
        return Err(format!(
            "`{name}` is written by wsgate itself (Host, Content-Length, Forwarded, X-Forwarded-*, Sec-WebSocket-*); pick another name such as `X-User-Id`"
        ));
    }
    Ok(())
}

/// The host (normalised, IPv6 without brackets) and `host:port` of a URL's authority part.
fn url_authority(
    url: &str,
    authority: &str,
    default_port: u16,
    expected: &str,
) -> Result<(String, String), String> {
    if authority.contains('@') {
        return Err(format!("`{url}` must not contain user info; {expected}"));
    }
    let (host, port) = split_host_port(authority).map_err(|msg| format!("`{url}` {msg}"))?;
    if host.is_empty() {
        return Err(format!("`{url}` has no host; {expected}"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("`{url}` has an invalid port `{p}` (1..=65535)")),
        },
    };
    let host = normalize_host(host).map_err(|msg| format!("in `{url}`: {msg}"))?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((host, authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls() {
        let ok = |u| backend_url(u).unwrap();
        let at = |u| ok(u).authority;
        assert_eq!(at("ws://127.0.0.1:9501"), "127.0.0.1:9501");
        assert_eq!(at("ws://Echo.Internal/"), "echo.internal:80");
        assert_eq!(at("WS://[::1]:9501/"), "[::1]:9501");
        assert_eq!(at("ws://[0:0::1]"), "[::1]:80");
        let wss = |authority: &str, host: &str| BackendUrl {
            authority: authority.to_owned(),
            host: host.to_owned(),
            tls: true,
        };
        assert_eq!(
            ok("wss://Chat.Internal"),
            wss("chat.internal:443", "chat.internal")
        );
        assert_eq!(ok("wss://[::1]:8443/"), wss("[::1]:8443", "::1"));
        assert!(!ok("ws://a:1").tls);
        assert_eq!(ok("ws://a:1").host, "a");
        let err = |u| backend_url(u).unwrap_err();
        assert!(err("http://a:1").contains("unsupported scheme"));
        assert!(err("https://a:1").contains("unsupported scheme"));
        assert!(err("ws://u@a:1").contains("user info"));
        assert!(err("ws://a:1/x").contains("must not have a path"));
        assert!(err("wss://a:1/x").contains("must not have a path"));
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
    fn http_urls() {
        let ok = |u| http_url(u).unwrap();
        let target = |authority: &str, path: &str| HttpTarget {
            authority: authority.to_owned(),
            path: path.to_owned(),
        };
        assert_eq!(
            ok("http://127.0.0.1:9100/auth"),
            target("127.0.0.1:9100", "/auth")
        );
        assert_eq!(ok("HTTP://Auth.Local"), target("auth.local:80", "/"));
        assert_eq!(ok("http://[::1]?x=1"), target("[::1]:80", "/?x=1"));
        assert_eq!(
            ok("https://id.example.com/jwks"),
            target("id.example.com:443", "/jwks")
        );
        assert_eq!(
            ok("HTTPS://Auth.Example.com:8443/check?x=1"),
            target("auth.example.com:8443", "/check?x=1")
        );
        let err = |u| http_url(u).unwrap_err();
        assert!(err("ws://a/x").contains("unsupported scheme"));
        assert!(err("http://u@a/x").contains("user info"));
        assert!(err("http://a/x#y").contains("fragment"));
        assert!(err("http://a/x y").contains("spaces"));
        assert!(err("http:///x").contains("no host"));
        assert!(err("http://a:0/").contains("invalid port"));
        assert!(err("a:1/x").contains("not a URL"));
    }

    #[test]
    fn settable_headers() {
        assert!(settable_header("X-User-Id").is_ok());
        assert!(settable_header("Authorization").is_ok());
        for bad in [
            "Connection",
            "upgrade",
            "TE",
            "Host",
            "X-Forwarded-For",
            "Sec-WebSocket-Protocol",
            "X User",
            "",
        ] {
            assert!(settable_header(bad).is_err(), "{bad}");
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
