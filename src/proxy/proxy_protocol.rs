//! PROXY protocol v1/v2 (HAProxy spec): read the header a load balancer sends before the client's
//! bytes, and return the client's source address.
//!
//! This module owns reading exactly the header, never a byte more (the TLS ClientHello follows,
//! and there is no putting bytes back into a `TcpStream`), under one timeout, and parsing it with
//! `ppp`. It does not decide whether the peer may send a header at all (only `trusted_proxies`
//! may; the caller checks that with [`super::client_addr::is_trusted`] first), nor what the
//! source address is then used for.
//!
//! Byte-exact reading: the first 12 bytes are read at once (every v1 header is at least 15 bytes
//! and the v2 signature is exactly 12). v2 then needs 4 more bytes, which declare the length of
//! the rest. v1 has no length, so it is read one byte at a time up to its CRLF (at most 107
//! bytes, spec §2.1): a few dozen small reads once per connection, the price of not
//! over-reading.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// v1 headers are at most 107 bytes including CRLF (spec §2.1).
const V1_MAX: usize = 107;
/// The v2 signature (spec §2.2).
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// v2 headers we accept: 16-byte preamble plus up to 520 bytes of addresses and TLVs. UNIX
/// addresses take 216 bytes; the rest leaves room for the TLVs load balancers add.
const V2_MAX: usize = 536;

/// What the header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address; `None` for v2 `LOCAL` (health checks), v1 `UNKNOWN`, and address
    /// families other than TCP over IPv4/IPv6: the socket peer stands.
    pub source: Option<SocketAddr>,
}

/// Why no header could be read. The connection is dropped in every case.
#[derive(Debug)]
pub enum ProxyError {
    /// The whole header did not arrive within the timeout.
    Timeout,
    /// The peer closed before the header was complete.
    Closed,
    /// Not a PROXY header, or one we refuse (too long, bad addresses).
    Malformed(&'static str),
    /// A socket error while reading.
    Io(io::Error),
}

impl ProxyError {
    /// A short label for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::Timeout => "proxy_header_timeout",
            ProxyError::Closed => "proxy_header_closed",
            ProxyError::Malformed(_) => "proxy_header_malformed",
            ProxyError::Io(_) => "proxy_header_io",
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Timeout => f.write_str("PROXY header timed out"),
            ProxyError::Closed => f.write_str("connection closed inside the PROXY header"),
            ProxyError::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            ProxyError::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

impl std::error::Error for ProxyError {}

impl From<io::Error> for ProxyError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ProxyError::Closed
        } else {
            ProxyError::Io(e)
        }
    }
}

/// Read one PROXY v1 or v2 header from `stream`, consuming exactly its bytes, within `timeout`.
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<ProxyHeader, ProxyError> {
    tokio::time::timeout(timeout, read_exact_header(stream))
        .await
        .map_err(|_| ProxyError::Timeout)?
}

async fn read_exact_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<ProxyHeader, ProxyError> {
    let mut buf = [0u8; V2_MAX];
    stream.read_exact(&mut buf[..12]).await?;
    if buf[..12] == V2_SIGNATURE {
        stream.read_exact(&mut buf[12..16]).await?;
        let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if len > V2_MAX {
            return Err(ProxyError::Malformed("v2 header longer than 536 bytes"));
        }
        stream.read_exact(&mut buf[16..len]).await?;
        return parse_v2(&buf[..len]);
    }
    if !buf.starts_with(b"PROXY ") || buf[..12].contains(&b'\n') {
        return Err(ProxyError::Malformed("no PROXY signature"));
    }
    // Stop at the first LF, so not even a malformed line makes us read into the client's bytes.
    let mut len = 12;
    while buf[len - 1] != b'\n' {
        if len == V1_MAX {
            return Err(ProxyError::Malformed("v1 header without CRLF in 107 bytes"));
        }
        stream.read_exact(&mut buf[len..len + 1]).await?;
        len += 1;
    }
    if buf[len - 2] != b'\r' {
        return Err(ProxyError::Malformed("v1 header ends in LF without CR"));
    }
    parse_v1(&buf[..len])
}

fn parse_v1(bytes: &[u8]) -> Result<ProxyHeader, ProxyError> {
    use ppp::v1::{Addresses, Header};
    // US-ASCII only (spec §2.1), checked before `ppp` sees it: its parser cuts the line at the
    // first CR plus two bytes, which panics inside a multi-byte character (fuzzing, #13).
    if !bytes.is_ascii() {
        return Err(ProxyError::Malformed("v1 header is not ASCII"));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| ProxyError::Malformed("v1 header is not ASCII"))?;
    let header =
        Header::try_from(text).map_err(|_| ProxyError::Malformed("v1 header does not parse"))?;
    let source = match header.addresses {
        Addresses::Unknown => None,
        Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
    };
    Ok(ProxyHeader { source })
}

fn parse_v2(bytes: &[u8]) -> Result<ProxyHeader, ProxyError> {
    use ppp::v2::{Addresses, Command, Header};
    let header =
        Header::try_from(bytes).map_err(|_| ProxyError::Malformed("v2 header does not parse"))?;
    let source = match (header.command, header.addresses) {
        // LOCAL: the proxy's own connection (health check); spec §2.2 says use the real peer.
        (Command::Local, _) => None,
        (Command::Proxy, Addresses::IPv4(a)) => {
            Some(SocketAddr::from((a.source_address, a.source_port)))
        }
        (Command::Proxy, Addresses::IPv6(a)) => {
            Some(SocketAddr::from((a.source_address, a.source_port)))
        }
        (Command::Proxy, Addresses::Unspecified | Addresses::Unix(_)) => None,
    };
    Ok(ProxyHeader { source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Command, Protocol, Version};

    const CLIENT_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    const T: Duration = Duration::from_secs(5);

    /// Read a header from `header ++ CLIENT_HELLO` and return it with what stayed unread.
    async fn read(header: &[u8]) -> (Result<ProxyHeader, ProxyError>, Vec<u8>) {
        let all = [header, CLIENT_HELLO].concat();
        let mut rest: &[u8] = &all;
        let got = read_header(&mut rest, T).await;
        (got, rest.to_vec())
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn v2(command: Command, src: &str, dst: &str) -> Vec<u8> {
        Builder::with_addresses(
            Version::Two | command,
            Protocol::Stream,
            (addr(src), addr(dst)),
        )
        .build()
        .expect("ppp builds the header")
    }

    #[tokio::test]
    async fn v1_tcp4_and_tcp6_leave_the_next_bytes_unread() {
        let (got, rest) = read(b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n").await;
        assert_eq!(got.expect("v1").source, Some(addr("192.0.2.7:51000")));
        assert_eq!(rest, CLIENT_HELLO);
        let (got, rest) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n").await;
        assert_eq!(got.expect("v1").source, Some(addr("[2001:db8::7]:51000")));
        assert_eq!(rest, CLIENT_HELLO);
    }

    #[tokio::test]
    async fn v1_unknown_keeps_the_peer() {
        let (got, rest) = read(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(got.expect("v1").source, None);
        assert_eq!(rest, CLIENT_HELLO);
    }

    #[tokio::test]
    async fn v2_proxy_ipv4_ipv6_and_local() {
        let (got, rest) = read(&v2(Command::Proxy, "192.0.2.7:51000", "10.0.0.1:443")).await;
        assert_eq!(got.expect("v2").source, Some(addr("192.0.2.7:51000")));
        assert_eq!(rest, CLIENT_HELLO);
        let (got, rest) = read(&v2(
            Command::Proxy,
            "[2001:db8::7]:51000",
            "[2001:db8::1]:443",
        ))
        .await;
        assert_eq!(got.expect("v2").source, Some(addr("[2001:db8::7]:51000")));
        assert_eq!(rest, CLIENT_HELLO);
        let (got, rest) = read(&v2(Command::Local, "192.0.2.7:51000", "10.0.0.1:443")).await;
        assert_eq!(got.expect("v2 LOCAL").source, None);
        assert_eq!(rest, CLIENT_HELLO);
    }

    #[tokio::test]
    async fn v2_with_tlvs_is_read_to_its_declared_end() {
        let header = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            (addr("192.0.2.7:51000"), addr("10.0.0.1:443")),
        )
        .write_tlv(0x05, b"unique-connection-id")
        .and_then(|b| b.build())
        .expect("ppp builds the header");
        let (got, rest) = read(&header).await;
        assert_eq!(
            got.expect("v2 with TLV").source,
            Some(addr("192.0.2.7:51000"))
        );
        assert_eq!(rest, CLIENT_HELLO);
    }

    #[tokio::test]
    async fn truncated_headers_are_closed_errors() {
        let full = v2(Command::Proxy, "192.0.2.7:51000", "10.0.0.1:443");
        for cut in [5, 12, 14, full.len() - 1] {
            let mut input: &[u8] = &full[..cut];
            let got = read_header(&mut input, T).await;
            assert!(
                matches!(got, Err(ProxyError::Closed)),
                "cut at {cut}: {got:?}"
            );
        }
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.7 10.0";
        assert!(matches!(
            read_header(&mut input, T).await,
            Err(ProxyError::Closed)
        ));
    }

    #[tokio::test]
    async fn garbage_is_malformed() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            CLIENT_HELLO,
            b"PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 443\r\n",
            b"PROXY TCP9 192.0.2.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n",
            b"PROXY \r\n",
        ] {
            let (got, _) = read(bad).await;
            assert!(
                matches!(got, Err(ProxyError::Malformed(_))),
                "{bad:?}: {got:?}"
            );
        }
        // No CRLF within 107 bytes.
        let long = [&b"PROXY TCP4 "[..], &[b'1'; 200]].concat();
        let (got, rest) = read(&long).await;
        assert!(matches!(got, Err(ProxyError::Malformed(_))), "{got:?}");
        assert_eq!(
            rest.len(),
            long.len() + CLIENT_HELLO.len() - V1_MAX,
            "stops reading at 107 bytes"
        );
        // A v2 header declaring more than we accept.
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let (got, _) = read(&huge).await;
        assert!(matches!(got, Err(ProxyError::Malformed(_))), "{got:?}");
        // A v2 header with a bad version nibble.
        let mut bad_version = v2(Command::Proxy, "192.0.2.7:51000", "10.0.0.1:443");
        bad_version[12] = 0x31;
        let (got, _) = read(&bad_version).await;
        assert!(matches!(got, Err(ProxyError::Malformed(_))), "{got:?}");
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (_writer, mut reader) = tokio::io::duplex(64);
        let got = read_header(&mut reader, Duration::from_millis(20)).await;
        assert!(matches!(got, Err(ProxyError::Timeout)), "{got:?}");
    }
}
