//! Properties of the Origin allowlist (`admit::origin`) over generated origins: an exact entry
//! admits exactly the origins with its scheme, host (any case) and port (default spelled or
//! not), and nothing else; `scheme://*.domain` admits every subdomain and never the bare domain,
//! a name that merely ends with the domain's letters (`evil-example.com`, `evilexample.com`), the
//! domain followed by more labels (`example.com.evil.net`), another scheme or another port; and
//! whatever a wildcard admits, out of arbitrary bytes around the domain, really is under it.

use hyper::HeaderMap;
use hyper::header::HeaderValue;
use proptest::prelude::*;
use wsgate::admit::origin::OriginAllow;
use wsgate::config::policy::OriginPolicy;
use wsgate::error::Refusal;

fn allow(patterns: &[String]) -> OriginAllow {
    OriginAllow::new(&OriginPolicy {
        allowed: patterns.to_vec(),
        require: true,
    })
    .expect("generated patterns are valid")
}

/// The verdict on a request whose only `Origin` line is `origin`.
fn judge(a: &OriginAllow, origin: &str) -> Result<(), Refusal> {
    let mut fields = HeaderMap::new();
    let value = HeaderValue::from_str(origin).expect("generated origins are visible ASCII");
    fields.insert("origin", value);
    a.check(&fields)
}

/// An origin, normalised the way RFC 6454 compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> u16 {
    if matches!(scheme, "http" | "ws") {
        80
    } else {
        443
    }
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["http", "https", "ws", "wss"])
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
}

/// One to three labels and a top-level label: `ab.example.com`.
fn domain() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..3), "[a-z]{2,4}")
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(80u16), Just(443), Just(8080), Just(8443), 1u16..]
}

fn origin() -> impl Strategy<Value = Origin> {
    (scheme(), domain(), prop::option::of(port())).prop_map(|(scheme, host, port)| Origin {
        scheme,
        host,
        port: port.unwrap_or_else(|| default_port(scheme)),
    })
}

/// Upper-cases the letters of `text` where `flips` says so (cycled).
fn recase(text: &str, flips: &[bool]) -> String {
    text.chars()
        .zip(flips.iter().cycle())
        .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
        .collect()
}

/// How a browser (or a hand-written config) may spell `o`: any case, the default port written
/// out or left implicit, a trailing `/`.
#[derive(Debug, Clone)]
struct Spelling {
    flips: Vec<bool>,
    explicit_default: bool,
    slash: bool,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (
        prop::collection::vec(any::<bool>(), 1..16),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(flips, explicit_default, slash)| Spelling {
            flips,
            explicit_default,
            slash,
        })
}

fn spell(o: &Origin, s: &Spelling) -> String {
    let port = if o.port != default_port(o.scheme) || s.explicit_default {
        format!(":{}", o.port)
    } else {
        String::new()
    };
    let slash = if s.slash { "/" } else { "" };
    recase(&format!("{}://{}{port}{slash}", o.scheme, o.host), &s.flips)
}

/// A near miss of `o`: one component changed, or the host stretched or cut at the edges.
fn near_miss(o: Origin) -> impl Strategy<Value = Origin> {
    let (a, b, c, d, e) = (o.clone(), o.clone(), o.clone(), o.clone(), o.clone());
    prop_oneof![
        scheme().prop_map(move |scheme| Origin {
            scheme,
            ..a.clone()
        }),
        port().prop_map(move |port| Origin { port, ..b.clone() }),
        label().prop_map(move |l| Origin {
            host: format!("{l}.{}", c.host),
            ..c.clone()
        }),
        label().prop_map(move |l| Origin {
            host: format!("{}.{l}", d.host),
            ..d.clone()
        }),
        "[a-z0-9-]{1,3}".prop_map(move |l| Origin {
            host: format!("{l}{}", e.host),
            ..e.clone()
        }),
        Just(Origin {
            host: o
                .host
                .split_once('.')
                .map_or(o.host.clone(), |x| x.1.to_owned()),
            ..o.clone()
        }),
    ]
}

/// Bytes that could confuse a hand-written origin parser, mixed with ordinary host characters.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-z0-9]{1,3}",
            prop::sample::select(vec![
                ".",
                "-",
                "_",
                ":",
                "@",
                "/",
                "\\",
                "?",
                "#",
                "[",
                "]",
                "%2e",
                ":443",
                ":80",
                ".evil.net",
                "evil-",
                " ",
                "..",
            ])
            .prop_map(str::to_owned),
        ],
        0..5,
    )
    .prop_map(|parts| parts.concat())
}

/// Scheme, host and port of an origin-shaped string as a careful reader sees them: the host
/// after `://` up to a `:` or `/`, the port after that `:` (the scheme's default when absent);
/// `None` when there is no `://` or the port is not a number.
fn read_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find([':', '/']).unwrap_or(rest.len());
    let (host, after) = rest.split_at(end);
    let port = match after.strip_prefix(':') {
        Some(p) => p.trim_end_matches('/').parse().ok()?,
        None => default_port(&scheme),
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn an_exact_origin_admits_every_spelling_of_itself(
        o in origin(),
        listed in spelling(),
        sent in spelling(),
    ) {
        let a = allow(&[spell(&o, &listed)]);
        prop_assert_eq!(judge(&a, &spell(&o, &sent)), Ok(()));
    }

    #[test]
    fn an_exact_origin_admits_nothing_else(
        (o, other) in origin().prop_flat_map(|o| (Just(o.clone()), near_miss(o))),
        listed in spelling(),
        sent in spelling(),
    ) {
        let a = allow(&[spell(&o, &listed)]);
        let want = if other == o { Ok(()) } else { Err(Refusal::OriginNotAllowed) };
        prop_assert_eq!(judge(&a, &spell(&other, &sent)), want, "{:?} vs {:?}", o, other);
    }

    #[test]
    fn a_wildcard_admits_every_subdomain(
        o in origin(),
        subs in prop::collection::vec(label(), 1..4),
        listed in spelling(),
        sent in spelling(),
    ) {
        let pattern = spell(&Origin { host: format!("*.{}", o.host), ..o.clone() }, &listed);
        let a = allow(&[pattern]);
        let sub = Origin { host: format!("{}.{}", subs.join("."), o.host), ..o };
        prop_assert_eq!(judge(&a, &spell(&sub, &sent)), Ok(()));
    }

    #[test]
    fn a_wildcard_never_admits_the_bare_domain_or_a_suffix_trick(
        o in origin(),
        junk in "[a-z0-9]{1,6}",
        sub in label(),
        other_scheme in scheme(),
        other_port in port(),
        listed in spelling(),
        sent in spelling(),
    ) {
        let pattern = spell(&Origin { host: format!("*.{}", o.host), ..o.clone() }, &listed);
        let a = allow(std::slice::from_ref(&pattern));
        let host = |host: String| Origin { host, ..o.clone() };
        let mut tricks = vec![
            o.clone(),
            host(format!("{junk}-{}", o.host)),
            host(format!("{junk}{}", o.host)),
            host(format!("{}.{junk}.net", o.host)),
            host(format!("{sub}.{}.{junk}", o.host)),
            host(format!("{sub}.{}-{junk}", o.host)),
            host(format!("{sub}{}", o.host)),
        ];
        let sub_origin = host(format!("{sub}.{}", o.host));
        if other_scheme != o.scheme {
            tricks.push(Origin { scheme: other_scheme, ..sub_origin.clone() });
        }
        if other_port != o.port {
            tricks.push(Origin { port: other_port, ..sub_origin.clone() });
        }
        for t in tricks {
            let sent = spell(&t, &sent);
            let verdict = judge(&a, &sent);
            let refused = Err(Refusal::OriginNotAllowed);
            prop_assert_eq!(verdict, refused, "{} admitted by {}", sent, pattern);
        }
        for (raw, why) in [
            (format!("{}://{sub}.{}@evil.net", o.scheme, o.host), "userinfo"),
            (format!("{}://evil.net/{sub}.{}", o.scheme, o.host), "path"),
            (format!("{}://evil.net#{sub}.{}", o.scheme, o.host), "fragment"),
            (format!("{}://{sub}.{}.", o.scheme, o.host), "trailing dot"),
            (format!("{}://.{}", o.scheme, o.host), "empty label"),
        ] {
            prop_assert_eq!(judge(&a, &raw), Err(Refusal::OriginNotAllowed), "{} ({})", raw, why);
        }
    }

    #[test]
    fn whatever_a_wildcard_admits_is_under_its_domain(
        o in origin(),
        before in (soup(), any::<bool>()).prop_map(|(s, dot)| if dot { s + "." } else { s }),
        after in (soup(), 0..4).prop_map(|(s, how)| (s, how)),
        scheme_text in prop::option::weighted(
            0.3,
            prop::sample::select(vec!["http", "https", "ws", "wss", "HTTPS", "ftp", ""]),
        ),
    ) {
        let a = allow(&[format!("{}://*.{}:{}", o.scheme, o.host, o.port)]);
        let scheme_text = scheme_text.unwrap_or(o.scheme);
        let after = match after {
            (_, 0) => String::new(),
            (_, 1) => format!(":{}", o.port),
            (_, 2) => format!(":{}/", o.port),
            (soup, _) => soup,
        };
        let sent = format!("{scheme_text}://{before}{}{after}", o.host);
        prop_assume!(HeaderValue::from_str(&sent).is_ok());
        if judge(&a, &sent).is_ok() {
            let (scheme, host, port) = read_origin(sent.trim()).expect("admitted, so readable");
            prop_assert_eq!((scheme.as_str(), port), (o.scheme, o.port), "{}", sent);
            let suffix = format!(".{}", o.host);
            prop_assert!(host.len() > suffix.len() && host.ends_with(&suffix), "{}", sent);
            let label = |l: &str| {
                let name = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
                !l.is_empty() && l.bytes().all(name)
            };
            prop_assert!(host.split('.').all(label), "{} admitted with host {:?}", sent, host);
        }
    }

    #[test]
    fn null_is_admitted_only_when_listed(o in origin(), with_null in any::<bool>()) {
        let plain = Spelling { flips: vec![false], explicit_default: false, slash: false };
        let mut listed = vec![spell(&o, &plain)];
        if with_null {
            listed.push("null".to_owned());
        }
        let want = if with_null { Ok(()) } else { Err(Refusal::OriginNotAllowed) };
        prop_assert_eq!(judge(&allow(&listed), "null"), want);
    }
}

/// Found by `whatever_a_wildcard_admits_is_under_its_domain`: a host with `[`, `]` or an empty
/// label, which no browser sends, was read as a name and admitted under `*.example.com`.
#[test]
fn a_wildcard_refuses_hosts_no_browser_sends() {
    let a = allow(&["https://*.example.com".to_owned()]);
    for sent in [
        "https://x[.example.com",
        "https://x].example.com",
        "https://[.example.com",
        "https://a..b.example.com",
        "https://a..example.com",
        "https://a.b..example.com:443",
    ] {
        assert_eq!(judge(&a, sent), Err(Refusal::OriginNotAllowed), "{sent}");
    }
    assert_eq!(judge(&a, "https://a.b.example.com"), Ok(()));
}
