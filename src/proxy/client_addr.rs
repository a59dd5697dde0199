//! The real client address: the socket peer, unless that peer is one of `trusted_proxies`, in
//! which case the rightmost untrusted `X-Forwarded-For` entry.
//!
//! This module owns the X-Forwarded-For walk and the trust test. It does not read PROXY protocol
//! headers (that is [`super::proxy_protocol`], whose source address becomes the `peer` passed
//! here), nor does it write the `X-Forwarded-For` sent to the backend (the request rebuild does).
//!
//! Why rightmost: every trusted hop appends the address it saw to the right of the list, so the
//! entries right of the first untrusted one were written by proxies we trust, and everything left
//! of it was written by the client and may be forged.
//!
//! Returned addresses are canonical: an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a
//! dual-stack socket reports for IPv4 peers) comes back as IPv4, so logs, limits and the header
//! sent on show one spelling per client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::policy::Cidr;

/// True when `ip` lies in one of the `trusted` networks (IPv4-mapped IPv6 matches IPv4 networks).
pub fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|net| net.contains(ip))
}

/// The client address for limits, logs and the forwarded header.
///
/// `xff_values` are the raw values of every `X-Forwarded-For` field line in order; they are read
/// as one comma-separated list. When `peer` is trusted, the list is walked from the right,
/// skipping trusted addresses, and the first untrusted address is the client. If every entry is
/// trusted, the leftmost one is the client (a request that started inside the trusted network).
///
/// A garbage entry (not an IP address, with or without a port) stops the walk, and the last
/// trusted hop seen (or `peer`) is the client. That is the conservative choice: an entry a trusted
/// proxy would never have written means we can no longer tell who wrote what, and the nearest
/// address we do trust is not client-controlled. Empty list elements (`a,,b`) are skipped, as
/// HTTP list syntax allows them.
pub fn client_ip<'a>(
    peer: IpAddr,
    trusted: &[Cidr],
    xff_values: impl Iterator<Item = &'a [u8]>,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let lines: Vec<&[u8]> = xff_values.collect();
    let mut last_trusted = peer;
    for entry in lines
        .iter()
        .rev()
        .flat_map(|line| line.rsplit(|&b| b == b','))
    {
        let entry = trim_ows(entry);
        if entry.is_empty() {
            continue;
        }
        let Some(ip) = parse_entry(entry) else {
            return last_trusted;
        };
        if !is_trusted(ip, trusted) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// Strip optional whitespace (RFC 9110 §5.6.3: SP / HTAB) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// One list entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:443`. Anything else (`unknown`, obfuscated RFC 7239 names, zone ids, bad ports)
/// is `None`.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    let ip = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !after.is_empty() && !after.strip_prefix(':').is_some_and(is_port) {
            return None;
        }
        IpAddr::V6(inside.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        ip
    } else {
        // Only IPv4 may carry a port without brackets; a bare IPv6 has several colons.
        let (host, port) = text.split_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter()
            .map(|s| Cidr::parse(s).expect("test CIDR"))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn resolve(peer: &str, trusted: &[&str], lines: &[&str]) -> IpAddr {
        client_ip(ip(peer), &nets(trusted), lines.iter().map(|l| l.as_bytes()))
    }

    const TRUSTED: &[&str] = &["10.0.0.0/8", "::1/128", "fd00::/8"];

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(
            resolve("203.0.113.9", TRUSTED, &["1.1.1.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(resolve("203.0.113.9", &[], &["1.1.1.1"]), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        assert_eq!(resolve("10.0.0.1", TRUSTED, &[]), ip("10.0.0.1"));
        assert_eq!(resolve("10.0.0.1", TRUSTED, &[" , "]), ip("10.0.0.1"));
    }

    #[test]
    fn rightmost_untrusted_entry_wins_over_spoofed_leftmost() {
        // The client forged "6.6.6.6" and "10.9.9.9"; our proxy appended 198.51.100.7.
        let got = resolve("10.0.0.1", TRUSTED, &["6.6.6.6, 10.9.9.9, 198.51.100.7"]);
        assert_eq!(got, ip("198.51.100.7"));
        // Two trusted hops in front of us.
        let got = resolve("10.0.0.1", TRUSTED, &["6.6.6.6, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn several_field_lines_form_one_list() {
        let got = resolve(
            "10.0.0.1",
            TRUSTED,
            &["6.6.6.6, 198.51.100.7", "10.0.0.3", "10.0.0.2"],
        );
        assert_eq!(got, ip("198.51.100.7"));
        let got = resolve("10.0.0.1", TRUSTED, &["6.6.6.6", "198.51.100.7,10.0.0.2"]);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn all_trusted_gives_the_leftmost() {
        assert_eq!(
            resolve("10.0.0.1", TRUSTED, &["10.0.0.5, 10.0.0.2"]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn ipv6_entries_and_peers() {
        assert_eq!(resolve("::1", TRUSTED, &["2001:db8::7"]), ip("2001:db8::7"));
        assert_eq!(
            resolve("::1", TRUSTED, &["2001:db8::7, fd00::2"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            resolve("fd00::1", TRUSTED, &["[2001:db8::7]:443"]),
            ip("2001:db8::7")
        );
        assert_eq!(resolve("::2", TRUSTED, &["2001:db8::7"]), ip("::2"));
    }

    #[test]
    fn ports_are_ignored() {
        assert_eq!(
            resolve("10.0.0.1", TRUSTED, &["1.2.3.4:5678"]),
            ip("1.2.3.4")
        );
        assert_eq!(
            resolve("10.0.0.1", TRUSTED, &["2001:db8::9, [::1]:80"]),
            ip("2001:db8::9")
        );
        assert_eq!(
            resolve("10.0.0.1", TRUSTED, &["[2001:db8::9]"]),
            ip("2001:db8::9")
        );
    }

    #[test]
    fn mapped_addresses_are_canonical_and_trusted_as_ipv4() {
        assert_eq!(
            resolve("::ffff:10.0.0.1", TRUSTED, &["::ffff:1.2.3.4"]),
            ip("1.2.3.4")
        );
        assert_eq!(
            resolve("::ffff:203.0.113.1", TRUSTED, &[]),
            ip("203.0.113.1")
        );
        assert!(is_trusted(ip("::ffff:10.1.1.1"), &nets(TRUSTED)));
        assert!(!is_trusted(ip("11.1.1.1"), &nets(TRUSTED)));
    }

    #[test]
    fn garbage_stops_at_the_last_trusted_hop() {
        assert_eq!(resolve("10.0.0.1", TRUSTED, &["unknown"]), ip("10.0.0.1"));
        assert_eq!(
            resolve("10.0.0.1", TRUSTED, &["1.1.1.1, garbage, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        for bad in [
            "1.2.3.4:99999",
            "1.2.3.4:",
            "[::1",
            "[::1]x",
            "::1:80:",
            "fe80::1%eth0",
            "1.2.3",
        ] {
            assert_eq!(
                resolve("10.0.0.1", TRUSTED, &[bad]),
                ip("10.0.0.1"),
                "{bad}"
            );
        }
        let invalid_utf8: &[&[u8]] = &[b"\xff\xfe"];
        let got = client_ip(ip("10.0.0.1"), &nets(TRUSTED), invalid_utf8.iter().copied());
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn whitespace_and_empty_elements_are_tolerated() {
        assert_eq!(
            resolve("10.0.0.1", TRUSTED, &["\t1.2.3.4 ,, "]),
            ip("1.2.3.4")
        );
    }
}
