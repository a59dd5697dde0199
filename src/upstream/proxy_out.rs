//! PROXY protocol header (HAProxy spec v1/v2) sent first to a backend whose pool has
//! `proxy_protocol:`, so the backend sees the real client address.
//!
//! Owns: building the header bytes with `ppp`. Source = the client's address (after any trusted
//! inbound PROXY header), destination = the address on wsgate the client connected to. Does not
//! own writing it (the caller writes it before the TLS handshake or the upgrade request) or
//! reading inbound headers (`proxy::proxy_protocol`).
//!
//! Address families: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener
//! reports for IPv4 clients) is written as plain IPv4. When the two addresses are still of
//! different families, both are written as IPv6, the IPv4 one mapped, so the client address is
//! never lost (`UNKNOWN`/`LOCAL` would tell the backend to use the socket peer, i.e. wsgate).

use std::net::{IpAddr, SocketAddr};

use ppp::v2::{Builder, Command, Protocol, Version};

use crate::config::ProxyVersion;

/// The header announcing a TCP connection from `client` to `proxy_local`.
pub fn header(version: ProxyVersion, client: SocketAddr, proxy_local: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(client, proxy_local);
    match version {
        ProxyVersion::V1 => ppp::v1::Addresses::from((source, destination))
            .to_string()
            .into_bytes(),
        ProxyVersion::V2 => Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            (source, destination),
        )
        .build()
        // Invariant: the builder writes into a Vec (infallible) and a TCP4/TCP6 address block
        // is 12 or 36 bytes, far below the u16 length limit, its only other failure.
        .expect("a v2 header with two IP addresses always builds"),
    }
}

/// Both addresses in one family: IPv4 when both are IPv4 (or IPv4-mapped), else IPv6.
fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    let a = SocketAddr::new(a.ip().to_canonical(), a.port());
    let b = SocketAddr::new(b.ip().to_canonical(), b.port());
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (as_v6(a), as_v6(b))
    }
}

fn as_v6(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    /// Parse a v2 header back and return (source, destination).
    fn parse_v2(bytes: &[u8]) -> (SocketAddr, SocketAddr) {
        let header = ppp::v2::Header::try_from(bytes).expect("valid v2 header");
        assert_eq!(header.command, Command::Proxy);
        assert_eq!(header.protocol, Protocol::Stream);
        assert_eq!(header.len(), bytes.len(), "nothing after the header");
        match header.addresses {
            ppp::v2::Addresses::IPv4(a) => (
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            ),
            ppp::v2::Addresses::IPv6(a) => (
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            ),
            other => panic!("unexpected addresses {other:?}"),
        }
    }

    #[test]
    fn v1_ipv4_is_tcp4_text() {
        let bytes = header(
            ProxyVersion::V1,
            addr("203.0.113.7:51000"),
            addr("10.0.0.1:443"),
        );
        assert_eq!(bytes, b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n");
        let text = std::str::from_utf8(&bytes).expect("ascii");
        let parsed = ppp::v1::Header::try_from(text).expect("valid v1 header");
        assert_eq!(
            parsed.addresses,
            ppp::v1::Addresses::new_tcp4(
                std::net::Ipv4Addr::new(203, 0, 113, 7),
                std::net::Ipv4Addr::new(10, 0, 0, 1),
                51000,
                443
            )
        );
    }

    #[test]
    fn v1_ipv6_is_tcp6_text() {
        let bytes = header(
            ProxyVersion::V1,
            addr("[2001:db8::7]:4000"),
            addr("[::1]:8443"),
        );
        assert_eq!(bytes, b"PROXY TCP6 2001:db8::7 ::1 4000 8443\r\n");
    }

    #[test]
    fn v2_ipv4_round_trips() {
        let client = addr("198.51.100.9:40000");
        let local = addr("127.0.0.1:8080");
        let bytes = header(ProxyVersion::V2, client, local);
        assert_eq!(&bytes[..12], b"\r\n\r\n\0\r\nQUIT\n", "v2 signature");
        assert_eq!(bytes.len(), 16 + 12, "preamble + TCP4 block");
        assert_eq!(parse_v2(&bytes), (client, local));
    }

    #[test]
    fn v2_ipv6_round_trips() {
        let client = addr("[2001:db8::1]:1234");
        let local = addr("[2001:db8::2]:443");
        let bytes = header(ProxyVersion::V2, client, local);
        assert_eq!(bytes.len(), 16 + 36, "preamble + TCP6 block");
        assert_eq!(parse_v2(&bytes), (client, local));
    }

    #[test]
    fn mapped_ipv4_is_written_as_ipv4() {
        let client = addr("[::ffff:192.0.2.5]:5555");
        let local = addr("[::ffff:10.1.1.1]:443");
        let bytes = header(ProxyVersion::V2, client, local);
        assert_eq!(
            parse_v2(&bytes),
            (addr("192.0.2.5:5555"), addr("10.1.1.1:443"))
        );
        let v1 = header(ProxyVersion::V1, client, local);
        assert_eq!(v1, b"PROXY TCP4 192.0.2.5 10.1.1.1 5555 443\r\n");
    }

    #[test]
    fn mixed_families_map_ipv4_into_ipv6() {
        let client = addr("192.0.2.5:5555");
        let local = addr("[2001:db8::2]:443");
        let bytes = header(ProxyVersion::V2, client, local);
        assert_eq!(
            parse_v2(&bytes),
            (addr("[::ffff:192.0.2.5]:5555"), local),
            "the client address survives as IPv4-mapped IPv6"
        );
        let v1 = header(ProxyVersion::V1, client, local);
        assert_eq!(v1, b"PROXY TCP6 ::ffff:192.0.2.5 2001:db8::2 5555 443\r\n");
    }
}
