//! The per-handshake CPU work wsgate adds besides TLS: parse the head (httparse into the
//! `http` types, as hyper's server does), check framing, normalise
//! the target, the RFC 6455 §4.2.1 checklist, rebuild the request, verify the 101 (§4.1).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wsgate::admit::Admission;
use wsgate::proxy::forward;
use wsgate::proxy::{validate, verify};
use wsgate::wire::{check_framing, normalise, parse_request, raw_target};

const BROWSER: &[u8] = b"GET /chat/room?id=42 HTTP/1.1\r\nHost: ws.example.com\r\n\
Connection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36\r\n\
Upgrade: websocket\r\nOrigin: https://app.example.com\r\nSec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
Cookie: session=abcdef0123456789; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

const ANSWER: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

fn handshake(c: &mut Criterion) {
    c.bench_function("request checks (parse+framing+route+validate)", |b| {
        b.iter(|| {
            let head = parse_request(black_box(BROWSER), 100).unwrap();
            let body = check_framing(&head).unwrap();
            let target = normalise(&raw_target(&head)).unwrap();
            let host = validate::host(&head, Some("ws.example.com")).unwrap();
            let up = validate::upgrade(&head, body).unwrap();
            black_box((target, host, up))
        })
    });

    let head = parse_request(BROWSER, 100).unwrap();
    let up = validate::upgrade(&head, check_framing(&head).unwrap()).unwrap();
    let host = validate::host(&head, None).unwrap();
    let target = normalise(&raw_target(&head)).unwrap();
    let admission = Admission::default();
    c.bench_function("rebuild forwarded request", |b| {
        b.iter(|| {
            black_box(forward::build(&forward::Forward {
                head: &head,
                target: &target,
                host: &host,
                upgrade: &up,
                admission: &admission,
                client_ip: "127.0.0.1".parse().unwrap(),
                proto: "https",
                client_cert: None,
            }))
        })
    });

    // The answer head is parsed by hyper now; this measures the checklist on its `HeaderMap`.
    let answer = hyper_answer(ANSWER);
    c.bench_function("verify 101 (§4.1 + accept)", |b| {
        b.iter(|| black_box(verify::check(black_box(&answer), &up).unwrap()))
    });
}

/// A 101 as hyper hands it over: status and field lines.
fn hyper_answer(raw: &[u8]) -> hyper::Response<()> {
    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut slots);
    parsed.parse(raw).unwrap();
    let mut answer = hyper::Response::new(());
    *answer.status_mut() = hyper::StatusCode::from_u16(parsed.code.unwrap()).unwrap();
    for h in parsed.headers.iter() {
        answer.headers_mut().append(
            hyper::header::HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_bytes(h.value).unwrap(),
        );
    }
    answer
}

criterion_group!(benches, handshake);
criterion_main!(benches);
