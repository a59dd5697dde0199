//! Origin policy (RFC 6454 origins as browsers send them): exact scheme + host + port, with
//! default ports normalised and hosts compared case-insensitively; `*.example.com` matches one or
//! more labels below `example.com` and nothing else (never `example.com` itself, never
//! `evilexample.com`, never `example.com.evil.test`); `null` only when listed. A host is an IPv6
//! literal or non-empty dot-separated labels of letters, digits, `-` and `_`; anything else is
//! refused before matching.
//!
//! Owns: compiling the configured patterns and judging one request. Does not own the pattern
//! syntax errors of the config file (`config::validate`), which this re-checks defensively.

use crate::config::policy::OriginPolicy;
use crate::error::Refusal;
use crate::wire::Fields;

/// A compiled `origins:` list.
#[derive(Debug, Clone)]
pub struct OriginAllow {
    rules: Vec<Rule>,
    require: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Null,
    Exact(Origin),
    /// `suffix` is `.example.com`: the host must end with it and have a non-empty label before.
    Wildcard {
        scheme: String,
        suffix: String,
        port: u16,
    },
}

/// A parsed, normalised origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl OriginAllow {
    /// Compile the policy; an invalid pattern is an error naming it.
    pub fn new(policy: &OriginPolicy) -> Result<OriginAllow, String> {
        let rules = policy
            .allowed
            .iter()
            .map(|p| compile(p).ok_or_else(|| format!("invalid origin pattern {p:?}")))
            .collect::<Result<_, _>>()?;
        Ok(OriginAllow {
            rules,
            require: policy.require,
        })
    }

    /// Judge the request's `Origin` field.
    pub fn check<H: Fields>(&self, head: &H) -> Result<(), Refusal> {
        let value = match head.single("origin") {
            Ok(v) => v,
            Err(0) if self.require => return Err(Refusal::OriginMissing),
            Err(0) => return Ok(()),
            Err(_) => return Err(Refusal::DuplicateOrigin),
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| Refusal::OriginNotAllowed)?
            .trim();
        if value == "null" {
            return if self.rules.contains(&Rule::Null) {
                Ok(())
            } else {
                Err(Refusal::OriginNotAllowed)
            };
        }
        let origin = parse(value).ok_or(Refusal::OriginNotAllowed)?;
        if self.rules.iter().any(|r| r.matches(&origin)) {
            Ok(())
        } else {
            Err(Refusal::OriginNotAllowed)
        }
    }
}

impl Rule {
    fn matches(&self, o: &Origin) -> bool {
        match self {
            Rule::Null => false,
            Rule::Exact(e) => e == o,
            Rule::Wildcard {
                scheme,
                suffix,
                port,
            } => {
                *scheme == o.scheme
                    && *port == o.port
                    && o.host.len() > suffix.len()
                    && o.host.ends_with(suffix.as_str())
                    && !o.host[..o.host.len() - suffix.len()].ends_with('.')
            }
        }
    }
}

fn compile(pattern: &str) -> Option<Rule> {
    if pattern == "null" {
        return Some(Rule::Null);
    }
    if let Some((scheme, rest)) = pattern.split_once("://*.") {
        let o = parse(&format!("{scheme}://{rest}"))?;
        return Some(Rule::Wildcard {
            scheme: o.scheme,
            suffix: format!(".{}", o.host),
            port: o.port,
        });
    }
    parse(pattern).map(Rule::Exact)
}

/// `scheme://host[:port]` with nothing after it (a trailing `/` is tolerated).
fn parse(text: &str) -> Option<Origin> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return None,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@', '\\']) || rest.is_empty() {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        let addr: std::net::Ipv6Addr = addr.parse().ok()?;
        (format!("[{addr}]"), after.strip_prefix(':'))
    } else {
        let (h, p) = match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        // A name or an IPv4 address: non-empty dot-separated labels, so no `[`, `]` or `..`
        // that a browser could never have put in an origin.
        let label = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        };
        if !h.split('.').all(label) {
            return None;
        }
        (h.to_ascii_lowercase(), p)
    };
    let port = match port {
        None => default_port,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    Some(Origin { scheme, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_request;

    fn allow(patterns: &[&str], require: bool) -> OriginAllow {
        OriginAllow::new(&OriginPolicy {
            allowed: patterns.iter().map(|p| p.to_string()).collect(),
            require,
        })
        .unwrap()
    }

    fn check(a: &OriginAllow, origin_lines: &str) -> Result<(), Refusal> {
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{origin_lines}\r\n");
        a.check(&parse_request(raw.as_bytes(), 16).unwrap())
    }

    #[test]
    fn exact_and_wildcard_origins() {
        let a = allow(
            &[
                "https://app.example.com",
                "https://*.example.com",
                "http://localhost:3000",
            ],
            true,
        );
        for ok in [
            "https://app.example.com",
            "HTTPS://APP.Example.com:443",
            "https://a.example.com",
            "https://a.b.example.com",
            "http://localhost:3000",
        ] {
            assert_eq!(check(&a, &format!("Origin: {ok}\r\n")), Ok(()), "{ok}");
        }
        for bad in [
            "https://example.com",
            "https://evilexample.com",
            "https://example.com.evil.test",
            "https://app.example.com.evil.test",
            "http://app.example.com",
            "https://app.example.com:8443",
            "http://localhost:3001",
            "https://localhost:3000",
            "null",
            "https://app.example.com/path",
            "https://user@app.example.com",
            "https://x[.example.com",
            "https://x].example.com",
            "https://a..example.com",
            "https://a..b.example.com",
            "https://.example.com",
            "https://app.example.com.",
            "garbage",
        ] {
            assert_eq!(
                check(&a, &format!("Origin: {bad}\r\n")),
                Err(Refusal::OriginNotAllowed),
                "{bad}"
            );
        }
        assert_eq!(check(&a, ""), Err(Refusal::OriginMissing));
        let two = "Origin: https://app.example.com\r\nOrigin: https://app.example.com\r\n";
        assert_eq!(check(&a, two), Err(Refusal::DuplicateOrigin));
    }

    #[test]
    fn null_and_optional_origin() {
        let a = allow(&["null", "http://[::1]:8080"], false);
        assert_eq!(check(&a, "Origin: null\r\n"), Ok(()));
        assert_eq!(check(&a, ""), Ok(()));
        assert_eq!(check(&a, "Origin: http://[0::1]:8080\r\n"), Ok(()));
        assert!(
            OriginAllow::new(&OriginPolicy {
                allowed: vec!["ftp://x".into()],
                require: true
            })
            .is_err()
        );
    }
}
