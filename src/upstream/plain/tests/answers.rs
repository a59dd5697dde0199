//! `forward` and what backends answer: relayed whole, or the refusal for an answer that is too
//! large, too late, cut short or not HTTP at all, and failover when a backend is not there.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::Request;
use tokio::net::TcpListener;

use super::backend::{Backend, Reply};
use super::{OK_HELLO, body_of, full, get, pool, run, to};
use crate::error::Refusal;

#[tokio::test]
async fn a_chunked_answer_is_relayed_whole_with_its_length() {
    let b = Backend::answering(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
         3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
    )
    .await;
    let p = pool(&[b.addr], 0, None);
    let answer = run(
        get("/poll").body(full("")).expect("request"),
        &to(&p, "/poll"),
    )
    .await;
    let answer = answer.expect("answered");
    assert!(!answer.headers().contains_key("transfer-encoding"));
    assert_eq!(answer.headers()["content-type"], "text/plain");
    assert_eq!(body_of(answer).await, "hello");
}

#[tokio::test]
async fn an_answer_body_over_the_cap_is_502() {
    let declared = Backend::answering("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n").await;
    // Two 512-byte chunks fill the 1 KiB cap; the one byte after them is over it.
    let chunk = |c: &str| format!("200\r\n{}\r\n", c.repeat(0x200));
    let streamed = Backend::answering(&format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{}{}1\r\nz\r\n0\r\n\r\n",
        chunk("x"),
        chunk("y")
    ))
    .await;
    for b in [&declared, &streamed] {
        let p = pool(&[b.addr], 0, None);
        let answer = run(
            get("/big").body(full("")).expect("request"),
            &to(&p, "/big"),
        )
        .await;
        assert_eq!(answer.err(), Some(Refusal::BackendMalformed));
    }
    assert_eq!(Refusal::BackendMalformed.status(), 502);
}

#[tokio::test]
async fn a_silent_backend_is_504_when_the_request_time_is_up() {
    let mut b = Backend::start(Reply::Hold(Vec::new())).await;
    let p = pool(&[b.addr], 0, None);
    let mut to = to(&p, "/poll");
    to.bounds.exchange = Duration::from_millis(300);
    let answer = run(get("/poll").body(full("")).expect("request"), &to).await;
    assert_eq!(answer.err(), Some(Refusal::BackendTimeout));
    assert_eq!(Refusal::BackendTimeout.status(), 504);
    // It did get the request: the time went to waiting for its answer.
    assert_eq!(b.request().await.line, "GET /poll HTTP/1.1");
}

#[tokio::test]
async fn garbage_or_a_cut_answer_is_502_without_a_panic() {
    let cases: &[(&[u8], Refusal)] = &[
        (b"garbage\r\n\r\n", Refusal::BackendMalformed),
        (b"HTTP/1.1 abc OK\r\n\r\n", Refusal::BackendMalformed),
        (b"\x00\xff\x16\x03\x01\r\n\r\n", Refusal::BackendMalformed),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            Refusal::BackendMalformed,
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            Refusal::BackendMalformed,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            Refusal::BackendClosed,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            Refusal::BackendClosed,
        ),
        (b"", Refusal::BackendClosed),
    ];
    for (bytes, want) in cases {
        let b = Backend::start(Reply::Close(bytes.to_vec())).await;
        let p = pool(&[b.addr], 0, None);
        let answer = run(get("/").body(full("")).expect("request"), &to(&p, "/")).await;
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(answer.err(), Some(*want), "backend sent {text:?}");
        assert_eq!(want.status(), 502);
    }
}

/// A port nobody listens on (bound, then closed).
async fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}

#[tokio::test]
async fn an_unreachable_backend_is_502_and_failover_reaches_the_next() {
    let dead = dead_port().await;
    let p = pool(&[dead], 0, None);
    let answer = run(get("/").body(full("")).expect("request"), &to(&p, "/")).await;
    assert_eq!(answer.err(), Some(Refusal::BackendUnavailable));
    let mut live = Backend::answering(OK_HELLO).await;
    let p = pool(&[dead, live.addr], 1, None);
    let answer = run(get("/").body(full("")).expect("request"), &to(&p, "/")).await;
    assert_eq!(body_of(answer.expect("answered")).await, "hello");
    assert_eq!(live.request().await.line, "GET / HTTP/1.1");
}

#[tokio::test]
async fn a_head_answer_keeps_its_length_without_a_body() {
    let b = Backend::answering("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n").await;
    let p = pool(&[b.addr], 0, None);
    let req = Request::head("/file").body(full("")).expect("request");
    let answer = run(req, &to(&p, "/file")).await.expect("answered");
    assert_eq!(answer.headers()["content-length"], "1234");
    assert_eq!(body_of(answer).await, "");
}
