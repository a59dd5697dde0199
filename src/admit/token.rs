//! Finding the bearer credential in a request, and removing it from what the backend receives.
//!
//! Owns: the four places a token may travel (`Authorization: Bearer`, a query parameter, a cookie,
//! a `Sec-WebSocket-Protocol` entry after a marker, for browsers that cannot set headers), the
//! order they are tried in, and the "two credentials are ambiguous" rule (400). Also the helpers
//! that strip a credential from the query, a `Cookie` line or the offered subprotocols before
//! forwarding. Does not own verification (`jwt`, `auth_request`) or the decision to strip
//! (`forward_token`, applied where the backend request is built).

use crate::config::policy::TokenSource;
use crate::proxy::head::{Fields, RequestHead};
use crate::proxy::route::Target;

/// A credential and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub token: String,
    pub source: TokenSource,
}

/// A configured source carries two credentials (two `Authorization` lines, the query parameter
/// or cookie twice, the subprotocol marker twice): the request is ambiguous, 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate(pub TokenSource);

/// The credential of the first configured source that holds one.
///
/// Every configured source is checked for duplicates, also those after the winner, so that a
/// request carrying two credentials is refused whatever the order. A source whose value is empty
/// (`Bearer ` with nothing after it, `?access_token=`, `session=`, a marker as the last entry)
/// counts as absent, but still counts towards a duplicate. `Authorization` with another scheme
/// (`Basic`) is not a bearer credential and is left alone.
pub fn find(
    head: &RequestHead,
    target: &Target,
    sources: &[TokenSource],
) -> Result<Option<Found>, Duplicate> {
    let mut found = None;
    for source in sources {
        let value = match source {
            TokenSource::Header => from_header(head),
            TokenSource::Query(name) => from_query(&target.query, name),
            TokenSource::Cookie(name) => from_cookies(head, name),
            TokenSource::Subprotocol { marker } => from_subprotocol(head, marker),
        }
        .map_err(|()| Duplicate(source.clone()))?;
        if found.is_none()
            && let Some(token) = value.filter(|t| !t.is_empty())
        {
            found = Some(Found {
                token,
                source: source.clone(),
            });
        }
    }
    Ok(found)
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`, scheme case-insensitive.
fn from_header(head: &RequestHead) -> Result<Option<String>, ()> {
    match head.single("authorization") {
        Ok(value) => {
            let value = String::from_utf8_lossy(value);
            let value = value.trim();
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            Ok(scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned()))
        }
        Err(0) => Ok(None),
        Err(_) => Err(()),
    }
}

/// RFC 6750 §2.3: `?<name>=<token>`, percent-decoded (names are compared decoded too, so
/// `access%5Ftoken` is the same parameter).
fn from_query(query: &str, name: &str) -> Result<Option<String>, ()> {
    let mut found = None;
    for pair in query.strip_prefix('?').unwrap_or(query).split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key) == name {
            if found.is_some() {
                return Err(());
            }
            found = Some(percent_decode(value));
        }
    }
    Ok(found)
}

/// RFC 6265 §5.4: `name=value` pairs separated by `;`, across every `Cookie` line. Names are
/// case-sensitive; a quoted value loses its quotes.
fn from_cookies(head: &RequestHead, name: &str) -> Result<Option<String>, ()> {
    let mut found = None;
    for line in head.values("cookie") {
        for (key, value) in cookie_pairs(line) {
            if key == name.as_bytes() {
                if found.is_some() {
                    return Err(());
                }
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                found = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    Ok(found)
}

/// `Sec-WebSocket-Protocol: <marker>, <token>[, others]`: the entry right after the marker.
fn from_subprotocol(head: &RequestHead, marker: &str) -> Result<Option<String>, ()> {
    let offered: Vec<&str> = head.tokens("sec-websocket-protocol").collect();
    let mut found = None;
    for (i, entry) in offered.iter().enumerate() {
        if *entry == marker {
            if found.is_some() {
                return Err(());
            }
            found = Some(
                offered
                    .get(i + 1)
                    .map_or_else(String::new, |t| (*t).to_owned()),
            );
        }
    }
    Ok(found)
}

/// Split one `Cookie` value into trimmed `(name, value)` pairs.
fn cookie_pairs(line: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    line.split(|&b| b == b';').filter_map(|pair| {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            return None;
        }
        let eq = pair.iter().position(|&b| b == b'=');
        Some(match eq {
            Some(i) => (pair[..i].trim_ascii(), pair[i + 1..].trim_ascii()),
            None => (pair, &b""[..]),
        })
    })
}

/// The query without every `name` parameter (and without empty `&&` segments). Keeps the
/// leading `?` only if something remains.
pub fn strip_query(query: &str, name: &str) -> String {
    let kept: Vec<&str> = query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| percent_decode(pair.split_once('=').map_or(*pair, |(k, _)| k)) != name)
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// One `Cookie` line without the `name` cookie; `None` when no cookie remains (drop the line).
pub fn strip_cookie(value: &[u8], name: &str) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            cookie_pairs(pair)
                .next()
                .is_none_or(|(k, _)| k != name.as_bytes())
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b"; "[..]))
}

/// The offered subprotocols without the marker and the token right after it.
pub fn strip_subprotocols(offered: &[String], marker: &str, token: &str) -> Vec<String> {
    let mut kept = Vec::with_capacity(offered.len());
    let mut after_marker = false;
    for entry in offered {
        let skip = entry == marker || (after_marker && entry == token);
        after_marker = entry == marker;
        if !skip {
            kept.push(entry.clone());
        }
    }
    kept
}

/// RFC 3986 §2.1 percent-decoding; a broken escape stays as written. `+` is not a space here
/// (tokens never hold either).
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let hex = |b: &u8| (*b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            )
        {
            // Two hex digits: at most 0xff.
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::head::Field;

    fn head(fields: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            target: "/".into(),
            minor: 1,
            fields: fields
                .iter()
                .map(|(n, v)| Field {
                    name: (*n).into(),
                    value: v.as_bytes().to_vec(),
                })
                .collect(),
            rest: Vec::new(),
        }
    }

    fn target(query: &str) -> Target {
        Target {
            path: "/ws".into(),
            query: query.into(),
        }
    }

    fn all() -> Vec<TokenSource> {
        vec![
            TokenSource::Header,
            TokenSource::Query("access_token".into()),
            TokenSource::Cookie("session".into()),
            TokenSource::Subprotocol {
                marker: "bearer".into(),
            },
        ]
    }

    fn token_of(h: &RequestHead, q: &str) -> Result<Option<String>, Duplicate> {
        find(h, &target(q), &all()).map(|f| f.map(|f| f.token))
    }

    #[test]
    fn header_bearer_any_case() {
        for v in ["Bearer abc", "bearer abc", "BEARER   abc "] {
            let f = find(&head(&[("Authorization", v)]), &target(""), &all());
            let want = Found {
                token: "abc".into(),
                source: TokenSource::Header,
            };
            assert_eq!(f, Ok(Some(want)), "{v}");
        }
        assert_eq!(
            token_of(&head(&[("Authorization", "Basic Zm9v")]), ""),
            Ok(None)
        );
        assert_eq!(
            token_of(&head(&[("Authorization", "Bearer")]), ""),
            Ok(None)
        );
        assert_eq!(
            token_of(&head(&[("Authorization", "Bearerabc")]), ""),
            Ok(None)
        );
        let two = head(&[("Authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(token_of(&two, ""), Err(Duplicate(TokenSource::Header)));
    }

    #[test]
    fn query_parameter() {
        let h = head(&[]);
        assert_eq!(token_of(&h, "?access_token=abc"), Ok(Some("abc".into())));
        assert_eq!(
            token_of(&h, "?a=1&access_token=a%2Eb&c"),
            Ok(Some("a.b".into()))
        );
        assert_eq!(token_of(&h, "?my_access_token=abc"), Ok(None));
        assert_eq!(token_of(&h, "?access_token_x=abc"), Ok(None));
        assert_eq!(token_of(&h, "?access_token="), Ok(None));
        assert_eq!(token_of(&h, "?access_token"), Ok(None));
        assert_eq!(token_of(&h, ""), Ok(None));
        let dup = Err(Duplicate(TokenSource::Query("access_token".into())));
        assert_eq!(token_of(&h, "?access_token=a&access_token=b"), dup);
        assert_eq!(token_of(&h, "?access_token=&access%5Ftoken=b"), dup);
    }

    #[test]
    fn cookie_across_lines() {
        let h = head(&[("Cookie", "a=1; session=tok; b=2")]);
        assert_eq!(token_of(&h, ""), Ok(Some("tok".into())));
        let h = head(&[
            ("Cookie", "sessionid=x; my_session=y"),
            ("Cookie", "session=\"q\""),
        ]);
        assert_eq!(token_of(&h, ""), Ok(Some("q".into())));
        assert_eq!(
            token_of(&head(&[("Cookie", "Session=x; session=")]), ""),
            Ok(None)
        );
        let h = head(&[("Cookie", "session=a"), ("Cookie", "x=1;session=b")]);
        assert_eq!(
            token_of(&h, ""),
            Err(Duplicate(TokenSource::Cookie("session".into())))
        );
    }

    #[test]
    fn subprotocol_entry_after_marker() {
        let h = head(&[("Sec-WebSocket-Protocol", "bearer, tok, chat")]);
        assert_eq!(token_of(&h, ""), Ok(Some("tok".into())));
        let h = head(&[
            ("Sec-WebSocket-Protocol", "chat, bearer"),
            ("Sec-WebSocket-Protocol", "tok"),
        ]);
        assert_eq!(token_of(&h, ""), Ok(Some("tok".into())));
        assert_eq!(
            token_of(&head(&[("Sec-WebSocket-Protocol", "chat, bearer")]), ""),
            Ok(None)
        );
        assert_eq!(
            token_of(&head(&[("Sec-WebSocket-Protocol", "bearerx, t")]), ""),
            Ok(None)
        );
        let h = head(&[("Sec-WebSocket-Protocol", "bearer, a, bearer, b")]);
        let marker = "bearer".into();
        assert_eq!(
            token_of(&h, ""),
            Err(Duplicate(TokenSource::Subprotocol { marker }))
        );
    }

    #[test]
    fn first_source_wins_and_any_duplicate_refuses() {
        let h = head(&[("Authorization", "Bearer h"), ("Cookie", "session=c")]);
        assert_eq!(token_of(&h, "?access_token=q"), Ok(Some("h".into())));
        let f = find(&h, &target("?access_token=q"), &all()[1..]);
        assert_eq!(
            f.map(|f| f.map(|f| f.source)),
            Ok(Some(TokenSource::Query("access_token".into())))
        );
        let dup = token_of(&h, "?access_token=q&access_token=r");
        assert_eq!(
            dup,
            Err(Duplicate(TokenSource::Query("access_token".into())))
        );
        // An empty earlier source does not hide a later one.
        let h = head(&[("Authorization", "Bearer "), ("Cookie", "session=c")]);
        assert_eq!(token_of(&h, ""), Ok(Some("c".into())));
        // Sources not configured are not looked at.
        let h = head(&[("Cookie", "session=c")]);
        assert_eq!(find(&h, &target(""), &[TokenSource::Header]), Ok(None));
    }

    #[test]
    fn strips_query_parameter() {
        assert_eq!(strip_query("?access_token=x", "access_token"), "");
        assert_eq!(
            strip_query("?a=1&access_token=x&b=2", "access_token"),
            "?a=1&b=2"
        );
        assert_eq!(
            strip_query("?my_access_token=1&access_token", "access_token"),
            "?my_access_token=1"
        );
        assert_eq!(strip_query("?access%5Ftoken=x&&a=", "access_token"), "?a=");
        assert_eq!(strip_query("", "access_token"), "");
        assert_eq!(strip_query("?a=%41", "access_token"), "?a=%41");
    }

    #[test]
    fn strips_cookie() {
        let s =
            |v: &str| strip_cookie(v.as_bytes(), "session").map(|v| String::from_utf8(v).unwrap());
        assert_eq!(s("session=x"), None);
        assert_eq!(s("session="), None);
        assert_eq!(s("a=1; session=x;b=2"), Some("a=1; b=2".into()));
        assert_eq!(s("sessionid=1; session=x"), Some("sessionid=1".into()));
        assert_eq!(s("x_session=1;;"), Some("x_session=1".into()));
        assert_eq!(s(""), None);
    }

    #[test]
    fn strips_subprotocols() {
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            strip_subprotocols(&v(&["bearer", "t"]), "bearer", "t"),
            v(&[])
        );
        assert_eq!(
            strip_subprotocols(&v(&["chat", "bearer", "t", "v2"]), "bearer", "t"),
            v(&["chat", "v2"])
        );
        // A protocol that merely equals the token elsewhere is kept.
        assert_eq!(
            strip_subprotocols(&v(&["t", "bearer", "t"]), "bearer", "t"),
            v(&["t"])
        );
        assert_eq!(
            strip_subprotocols(&v(&["chat"]), "bearer", "t"),
            v(&["chat"])
        );
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }
}
