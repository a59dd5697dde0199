//! PROXY protocol v1/v2 headers as a load balancer's connection delivers them:
//! `proxy::proxy_protocol::read_header` over an in-memory reader, once with the bytes in one
//! piece and once cut at fuzzer-chosen points. Both must give the same header or the same
//! error, and consume the same number of bytes: exactly the header's, never one of the
//! client's bytes behind it.
//!
//! Input: `[config] [k] [k piece lengths] [stream]` (see `wsgate_fuzz::Framed`); the config
//! byte is unused.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wsgate::proxy::proxy_protocol::{ProxyError, ProxyHeader, read_header};
use wsgate_fuzz::{Framed, Pieces, runtime};

/// Far beyond anything an in-memory reader needs; it never waits.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A comparable outcome: the header, or the error's text.
fn outcome(r: Result<ProxyHeader, ProxyError>) -> Result<ProxyHeader, String> {
    r.map_err(|e| {
        assert!(
            !matches!(e, ProxyError::Timeout | ProxyError::Io(_)),
            "an in-memory read cannot time out or fail: {e}"
        );
        e.to_string()
    })
}

fuzz_target!(|data: &[u8]| {
    let input = Framed::parse(data);
    let (whole, whole_used, split, split_used) = runtime().block_on(async {
        let mut reader = input.stream;
        let whole = outcome(read_header(&mut reader, TIMEOUT).await);
        let whole_used = input.stream.len() - reader.len();
        let mut pieces = Pieces::new(input.pieces());
        let split = outcome(read_header(&mut pieces, TIMEOUT).await);
        (whole, whole_used, split, pieces.consumed)
    });
    assert_eq!(whole, split, "the cut changed the outcome");
    if whole.is_ok() {
        assert_eq!(whole_used, split_used, "the cut changed what was consumed");
        // v1 is at most 107 bytes, v2 at most 536.
        assert!(whole_used <= 536);
    }
});
