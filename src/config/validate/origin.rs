//! Syntax of one `origins` pattern (RFC 6454 §6.1 serialisation): `scheme://host[:port]` or the
//! literal `null`, with an optional `*.` standing for one or more leftmost labels. Returned in the
//! form a browser sends (lower-case scheme and host, default port left out), so that matching
//! at run time (in `crate::admit::origin`) is an exact comparison plus the wildcard suffix.

use super::syntax::{is_dns_name, normalize_host, split_host_port};

const EXPECTED: &str = "expected scheme://host[:port] (e.g. `https://app.example.com`, `https://*.example.com`) or \"null\"";

/// A validated, normalised Origin pattern.
pub(super) fn pattern(text: &str) -> Result<String, String> {
    if text == "null" {
        return Ok(text.to_owned());
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!("`{text}` is not an origin; {EXPECTED}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => {
            return Err(format!(
                "unsupported scheme `{scheme}://` in `{text}`; expected http, https, ws or wss"
            ));
        }
    };
    // A lone trailing `/` is a common copy-paste from the address bar: it carries no path.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "`{text}` must not have a path, query or fragment (browsers send scheme://host[:port] only)"
        ));
    }
    if authority.contains('@') {
        return Err(format!("`{text}` must not contain user info; {EXPECTED}"));
    }
    let (host, port) = split_host_port(authority).map_err(|msg| format!("`{text}` {msg}"))?;
    let host = wildcard_host(host).map_err(|msg| format!("in `{text}`: {msg}"))?;
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("`{text}` has an invalid port `{p}` (1..=65535)")),
        },
    };
    if port == default_port {
        Ok(format!("{scheme}://{host}"))
    } else {
        Ok(format!("{scheme}://{host}:{port}"))
    }
}

/// A host, an IP literal (IPv6 returned in brackets), or `*.` + a DNS name of two labels or more.
fn wildcard_host(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    if let Some(base) = host.strip_prefix("*.") {
        let base = base.to_ascii_lowercase();
        if base.contains('*') || !is_dns_name(&base) {
            return Err(format!("`{host}`: `*.` must be followed by a DNS name"));
        }
        if !base.contains('.') {
            return Err(format!(
                "`{host}` would match every name under `.{base}`; name at least two labels after `*.`"
            ));
        }
        return Ok(format!("*.{base}"));
    }
    if host.contains('*') {
        return Err(format!(
            "`*` is allowed only as the whole leftmost label, as in `https://*.example.com` (matching any subdomain), not in `{host}`"
        ));
    }
    let host = normalize_host(host)?;
    if host.contains(':') {
        return Ok(format!("[{host}]"));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_normalised() {
        let ok = |p| pattern(p).unwrap();
        assert_eq!(ok("https://App.Example.com"), "https://app.example.com");
        assert_eq!(
            ok("HTTPS://app.example.com:443/"),
            "https://app.example.com"
        );
        assert_eq!(ok("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(ok("http://localhost:80"), "http://localhost");
        assert_eq!(
            ok("https://*.Example.com:8443"),
            "https://*.example.com:8443"
        );
        assert_eq!(ok("wss://[0:0::1]:443"), "wss://[::1]");
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("null"), "null");
    }

    #[test]
    fn tricks_are_refused() {
        let err = |p| pattern(p).unwrap_err();
        assert!(err("https://evil*.com").contains("whole leftmost label"));
        assert!(err("https://*example.com").contains("whole leftmost label"));
        assert!(err("https://a.*.example.com").contains("whole leftmost label"));
        assert!(err("https://*.*.example.com").contains("followed by a DNS name"));
        assert!(err("https://*.com").contains("every name under `.com`"));
        assert!(err("https://app.example.com/x").contains("path"));
        assert!(err("https://app.example.com?x").contains("query"));
        assert!(err("https://u@app.example.com").contains("user info"));
        assert!(err("ftp://app.example.com").contains("unsupported scheme"));
        assert!(err("app.example.com").contains("not an origin"));
        assert!(err("https://").contains("no host"));
        assert!(err("https://a:0").contains("invalid port"));
        assert!(err("https://a b").contains("not a valid host"));
        assert!(err("Null").contains("not an origin"));
    }
}
