//! Unit tests of `admit::token`.

use super::*;

fn head(fields: &[(&str, &str)]) -> Head {
    crate::wire::test_head("/", fields)
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

fn token_of(h: &Head, q: &str) -> Result<Option<String>, Duplicate> {
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
    let s = |v: &str| strip_cookie(v.as_bytes(), "session").map(|v| String::from_utf8(v).unwrap());
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
