//! The request target, normalised: the origin-form path routes match and the backend receives.
//!
//! Owns turning the target into a canonical path (percent-encoded dots decoded, dot segments
//! resolved, repeated slashes merged) so that `/a/%2e%2e/admin` cannot reach a route that
//! `/admin` would not. Anything not origin-form is refused.

use crate::error::Refusal;

/// A normalised origin-form target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: String,
    /// Including the leading `?`, or empty.
    pub query: String,
}

impl Target {
    /// What is sent to the backend.
    pub fn to_request_target(&self) -> String {
        format!("{}{}", self.path, self.query)
    }
}

/// RFC 3986 §5.2.4 dot-segment removal after decoding `%2e`, plus merging of empty segments.
/// Refuses anything that is not origin-form, `%00`, broken percent-encoding and `..` above the root.
pub fn normalise(target: &str) -> Result<Target, Refusal> {
    if !target.starts_with('/') || target.contains('#') {
        return Err(Refusal::BadTarget);
    }
    let (raw_path, query) = match target.find('?') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, ""),
    };
    let mut segments: Vec<String> = Vec::new();
    let parts: Vec<&str> = raw_path[1..].split('/').collect();
    let last = parts.len() - 1;
    let mut trailing_slash = false;
    for (i, raw) in parts.iter().enumerate() {
        let seg = decode_dots(raw)?;
        match seg.as_str() {
            "" => trailing_slash = i == last,
            "." => trailing_slash = i == last,
            ".." => {
                if segments.pop().is_none() {
                    return Err(Refusal::BadTarget);
                }
                trailing_slash = i == last;
            }
            _ => {
                segments.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut path = String::with_capacity(raw_path.len());
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() || trailing_slash {
        path.push('/');
    }
    Ok(Target {
        path,
        query: query.to_owned(),
    })
}

/// Decode `%2e`/`%2E` to `.`; keep every other escape as written, but refuse `%00` and broken ones.
fn decode_dots(seg: &str) -> Result<String, Refusal> {
    if !seg.contains('%') {
        return Ok(seg.to_owned());
    }
    let b = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(Refusal::BadTarget)?;
            let hex = std::str::from_utf8(hex).map_err(|_| Refusal::BadTarget)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| Refusal::BadTarget)?;
            match v {
                0 => return Err(Refusal::BadTarget),
                b'.' => out.push('.'),
                _ => out.push_str(&seg[i..i + 3]),
            }
            i += 3;
        } else {
            // Safe to index by byte: we only ever split at ASCII '%' boundaries.
            let next = seg[i..].find('%').map_or(seg.len(), |o| i + o);
            out.push_str(&seg[i..next]);
            i = next;
        }
    }
    Ok(out)
}

/// RFC 3986 §2.1 percent-decoding to bytes; a broken escape stays as written, `+` stays `+`.
pub fn percent_decode(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(t: &str) -> Result<String, Refusal> {
        normalise(t).map(|t| t.to_request_target())
    }

    #[test]
    fn normalises_paths() {
        assert_eq!(n("/"), Ok("/".into()));
        assert_eq!(n("/a/b"), Ok("/a/b".into()));
        assert_eq!(n("/a/b/"), Ok("/a/b/".into()));
        assert_eq!(n("/a/./b"), Ok("/a/b".into()));
        assert_eq!(n("/a/../b"), Ok("/b".into()));
        assert_eq!(n("/a/%2e%2E/admin"), Ok("/admin".into()));
        assert_eq!(n("/a/%2e/b"), Ok("/a/b".into()));
        assert_eq!(n("//a///b"), Ok("/a/b".into()));
        assert_eq!(n("/a/.."), Ok("/".into()));
        assert_eq!(n("/a/b/.."), Ok("/a/".into()));
        assert_eq!(n("/a?x=/../y"), Ok("/a?x=/../y".into()));
        assert_eq!(n("/a%2Fb"), Ok("/a%2Fb".into()));
        assert_eq!(n("/é/x"), Ok("/é/x".into()));
        for bad in [
            "/..",
            "/a/../..",
            "*",
            "http://x/",
            "/a%00",
            "/a%zz",
            "/a%2",
            "/a#f",
            "",
        ] {
            assert_eq!(n(bad), Err(Refusal::BadTarget), "{bad}");
        }
    }
}
