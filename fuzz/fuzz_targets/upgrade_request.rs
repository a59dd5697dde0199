//! The client's upgrade request, from bytes to a verdict, through the stages the gateway runs on
//! every request head: `wire::parse_request` (httparse, the parser hyper's server uses, into
//! the same `wire::Head`), `wire::check_framing` (RFC 9112 §6), `wire::normalise` of the target,
//! `proxy::validate::host` (with and without a TLS server name) and
//! `proxy::validate::upgrade` (RFC 6455 §4.2.1). Never a panic; a normalised target normalises
//! to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate::proxy::validate;
use wsgate::wire::{self, Fields};

/// hyper's field-count bound on the h1 front (`limits.max_request_headers` default).
const MAX_FIELDS: usize = 100;

fuzz_target!(|data: &[u8]| {
    let Ok(head) = wire::parse_request(data, MAX_FIELDS) else {
        return;
    };
    let framing = wire::check_framing(&head);
    if let Ok(target) = wire::normalise(&wire::raw_target(&head)) {
        let again = wire::normalise(&target.to_request_target());
        assert_eq!(again.as_ref(), Ok(&target), "normalising is not idempotent");
        assert!(target.path.starts_with('/'));
    }
    let host = validate::host(&head, None);
    if let Ok(h) = &host {
        // The name a route matches is what SNI would have to say: agreeing with itself passes.
        assert!(validate::host(&head, Some(&h.name)).is_ok());
    }
    let _ = validate::host(&head, Some("ws.test"));
    if let Ok(body) = framing
        && let Ok(up) = validate::upgrade(&head, body)
    {
        assert!(head.has_token("upgrade", "websocket"));
        assert!(!up.key.is_empty());
    }
    let _ = wire::connection_scoped(&head.headers);
    let _ = wire::end_to_end(&head.headers, &["sec-websocket-protocol"]).count();
});
