//! `forward` against real loopback backends: what reaches the backend (fields, bodies, PROXY
//! header), and the refusal for every way a client's request can fail before one is contacted.
//! What backends answer is in [`answers`].

mod answers;
mod backend;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Method, Request, Response, Version};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use self::backend::{Backend, Got, Reply, within};
use super::{Body, Plain, PlainBounds, forward};
use crate::config::{BackendConfig, Balance, Passive, PoolConfig, ProxyVersion};
use crate::error::Refusal;
use crate::upstream::Pool;

const OK_HELLO: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn pool(backends: &[SocketAddr], retries: u32, proxy: Option<ProxyVersion>) -> Pool {
    let config = PoolConfig {
        name: "p".into(),
        backends: (backends.iter())
            .map(|a| BackendConfig {
                url: format!("ws://{a}"),
                authority: a.to_string(),
                tls: false,
                host: a.ip().to_string(),
                weight: 1,
            })
            .collect(),
        balance: Balance::RoundRobin,
        tls: None,
        proxy_protocol: proxy,
        health: None,
        passive: Passive::default(),
        retries,
    };
    Pool::new(&config, None).expect("pool")
}

fn bounds() -> PlainBounds {
    PlainBounds {
        connect: Duration::from_secs(5),
        exchange: Duration::from_secs(5),
        max_request_body: 1024,
        max_response_body: 1024,
        max_answer_head: 16 * 1024,
    }
}

/// A request from `203.0.113.9` over https for `app.test` + `target`.
fn to<'a>(pool: &'a Pool, target: &'a str) -> Plain<'a> {
    Plain {
        pool,
        key: None,
        client: "203.0.113.9:50000".parse().expect("address"),
        local: "127.0.0.1:8443".parse().expect("address"),
        target,
        host: "app.test",
        forwarded_for: "198.51.100.1, 203.0.113.9",
        proto: "https",
        remove: &[],
        bounds: bounds(),
    }
}

fn get(target: &str) -> hyper::http::request::Builder {
    Request::builder().method(Method::GET).uri(target)
}

fn full(body: &'static str) -> Full<Bytes> {
    Full::new(Bytes::from_static(body.as_bytes()))
}

async fn run<B>(req: Request<B>, to: &Plain<'_>) -> Result<Response<Body>, Refusal>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    within("forward", forward(req, to)).await
}

/// A body of unknown length, as a chunked h1 body or h2 DATA frames arrive.
fn chunks(
    parts: &[&'static str],
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let frames: Vec<_> = (parts.iter())
        .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
        .collect();
    StreamBody::new(stream::iter(frames))
}

async fn body_of(answer: Response<Body>) -> String {
    let bytes = answer
        .into_body()
        .collect()
        .await
        .expect("full body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn get_reaches_the_backend_without_hop_by_hop_fields_and_with_forwarding_ones() {
    let mut b = Backend::answering(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: X-Private, keep-alive\r\n\
         X-Private: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n\r\nhello",
    )
    .await;
    let p = pool(&[b.addr], 0, None);
    let remove = ["x-user".to_owned()];
    let mut to = to(&p, "/page?x=1");
    to.remove = &remove;
    let req = get("/raw/../page?x=1")
        .header("host", "evil.test")
        .header("connection", "keep-alive, X-Secret")
        .header("x-secret", "1")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("upgrade", "h2c")
        .header("proxy-authorization", "Basic eA==")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.test")
        .header("x-forwarded-proto", "http")
        .header("forwarded", "for=6.6.6.6")
        .header("x-user", "admin")
        .header("accept", "text/html")
        .body(Full::<Bytes>::default())
        .expect("request");
    let answer = run(req, &to).await.expect("answered");
    assert_eq!(answer.status(), 200);
    let h = answer.headers();
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "proxy-authenticate",
    ] {
        assert!(!h.contains_key(gone), "{gone} relayed: {h:?}");
    }
    assert_eq!(h.get("x-kept").map(|v| v.as_bytes()), Some(&b"yes"[..]));
    assert_eq!(body_of(answer).await, "hello");
    let got = b.request().await;
    assert_eq!(got.line, "GET /page?x=1 HTTP/1.1");
    assert_eq!(got.fields.first().map(|(n, _)| n.as_str()), Some("Host"));
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
        "forwarded",
        "x-user",
        "content-length",
    ] {
        assert!(got.all(gone).is_empty(), "{gone} forwarded: {got:?}");
    }
    for (name, want) in [
        ("host", "app.test"),
        ("accept", "text/html"),
        ("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.test"),
    ] {
        assert_eq!(got.all(name), [want], "{name} in {got:?}");
    }
    assert_eq!(b.accepted(), 1);
}

#[tokio::test]
async fn post_bodies_arrive_whole_with_their_exact_length() {
    let mut b = Backend::start(Reply::Close(OK_HELLO.into())).await;
    let p = pool(&[b.addr], 0, None);
    let to = to(&p, "/submit");
    // A body of declared length.
    let req = Request::post("/submit")
        .body(full("a=1&b=2"))
        .expect("request");
    assert_eq!(run(req, &to).await.expect("answered").status(), 200);
    let got = b.request().await;
    assert_eq!(got.line, "POST /submit HTTP/1.1");
    assert_eq!(got.all("content-length"), ["7"]);
    assert_eq!(got.body, b"a=1&b=2");
    // A body of unknown length (chunked from the client, or h2 DATA frames) goes out whole.
    let body = chunks(&["part1,", "part2"]);
    let req = Request::post("/submit")
        .header("transfer-encoding", "chunked")
        .body(body)
        .expect("request");
    assert_eq!(run(req, &to).await.expect("answered").status(), 200);
    let got = b.request().await;
    assert_eq!(got.all("transfer-encoding"), Vec::<&str>::new());
    assert_eq!(got.all("content-length"), ["11"]);
    assert_eq!(got.body, b"part1,part2");
    // An empty POST still says so.
    let req = Request::post("/submit")
        .body(Full::<Bytes>::default())
        .expect("request");
    assert_eq!(run(req, &to).await.expect("answered").status(), 200);
    assert_eq!(b.request().await.all("content-length"), ["0"]);
}

#[tokio::test]
async fn a_request_body_over_the_cap_is_413_and_no_backend_hears_of_it() {
    let b = Backend::answering(OK_HELLO).await;
    let p = pool(&[b.addr], 0, None);
    let mut to = to(&p, "/upload");
    to.bounds.max_request_body = 16;
    let declared = Request::post("/upload")
        .body(full("seventeen bytes!!"))
        .expect("request");
    assert_eq!(
        run(declared, &to).await.err(),
        Some(Refusal::RequestBodyTooLarge)
    );
    let body = chunks(&["ten bytes!"; 3]);
    let streamed = Request::post("/upload").body(body).expect("request");
    assert_eq!(
        run(streamed, &to).await.err(),
        Some(Refusal::RequestBodyTooLarge)
    );
    assert_eq!(Refusal::RequestBodyTooLarge.status(), 413);
    assert_eq!(b.accepted(), 0, "a backend was contacted");
}

#[tokio::test]
async fn a_slow_or_broken_request_body_is_refused_before_any_backend() {
    let b = Backend::answering(OK_HELLO).await;
    let p = pool(&[b.addr], 0, None);
    let mut to = to(&p, "/upload");
    to.bounds.exchange = Duration::from_millis(200);
    // A body that never ends.
    let body = StreamBody::new(stream::pending::<Result<Frame<Bytes>, Infallible>>());
    let slow = Request::post("/upload").body(body).expect("request");
    assert_eq!(
        run(slow, &to).await.err(),
        Some(Refusal::RequestBodyTimeout)
    );
    let body = StreamBody::new(stream::iter([
        Ok(Frame::data(Bytes::from_static(b"half"))),
        Err(std::io::Error::other("client reset")),
    ]));
    let broken = Request::post("/upload").body(body).expect("request");
    assert_eq!(
        run(broken, &to).await.err(),
        Some(Refusal::RequestBodyIncomplete)
    );
    assert_eq!(b.accepted(), 0, "a backend was contacted");
}

#[tokio::test]
async fn an_h2_request_goes_out_as_http11_with_one_cookie_field() {
    let mut b = Backend::answering(OK_HELLO).await;
    let p = pool(&[b.addr], 0, None);
    let req = get("https://app.test/page?q=1")
        .version(Version::HTTP_2)
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("te", "trailers")
        .body(full(""))
        .expect("request");
    let answer = run(req, &to(&p, "/page?q=1")).await.expect("answered");
    assert_eq!(answer.status(), 200);
    let got = b.request().await;
    assert_eq!(got.line, "GET /page?q=1 HTTP/1.1");
    assert_eq!(got.all("cookie"), ["a=1; b=2"]);
    assert_eq!(got.all("host"), ["app.test"]);
    assert!(got.all("te").is_empty());
}

#[tokio::test]
async fn connect_is_no_plain_request() {
    let b = Backend::answering(OK_HELLO).await;
    let p = pool(&[b.addr], 0, None);
    let req = Request::connect("app.test:443")
        .body(full(""))
        .expect("request");
    assert_eq!(run(req, &to(&p, "/")).await.err(), Some(Refusal::BadTarget));
    assert_eq!(b.accepted(), 0);
}

#[tokio::test]
async fn a_proxy_header_names_the_client() {
    let mut b = Backend::answering(OK_HELLO).await;
    let p = pool(&[b.addr], 0, Some(ProxyVersion::V1));
    let answer = run(get("/").body(full("")).expect("request"), &to(&p, "/")).await;
    assert_eq!(answer.expect("answered").status(), 200);
    let got: Got = b.request().await;
    assert_eq!(
        got.proxy.as_deref(),
        Some("PROXY TCP4 203.0.113.9 127.0.0.1 50000 8443")
    );
}

/// hyper's own server in front, as the inbound service will be: `Incoming` bodies, a client
/// that keeps its connection for a second request, a fresh backend connection for each.
#[tokio::test]
async fn behind_a_hyper_server_the_client_keeps_its_connection() {
    let mut b = Backend::start(Reply::Close(OK_HELLO.into())).await;
    let p = Arc::new(pool(&[b.addr], 0, None));
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let front_addr = front.local_addr().expect("address");
    tokio::spawn(async move {
        let Ok((tcp, _)) = front.accept().await else {
            return;
        };
        let service = hyper::service::service_fn(move |req| {
            let p = Arc::clone(&p);
            async move {
                let target = req.uri().path().to_owned();
                let answer = match forward(req, &to(&p, &target)).await {
                    Ok(answer) => answer,
                    Err(refusal) => {
                        let mut r = Response::new(Body::new(Bytes::from(refusal.body())));
                        *r.status_mut() = hyper::StatusCode::from_u16(refusal.status())
                            .unwrap_or(hyper::StatusCode::BAD_GATEWAY);
                        r
                    }
                };
                Ok::<_, Infallible>(answer)
            }
        });
        let conn =
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
        let _ = conn.await;
    });
    let tcp = within("connect", TcpStream::connect(front_addr))
        .await
        .expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
            .await
            .expect("client handshake");
    tokio::spawn(conn);
    for (method, path, body) in [(Method::GET, "/", ""), (Method::POST, "/form", "x=1")] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "app.test")
            .body(full(body))
            .expect("request");
        let answer = within("an answer", send.send_request(req))
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200);
        let bytes = within("the body", answer.into_body().collect()).await;
        assert_eq!(bytes.expect("body").to_bytes(), "hello");
        let got = b.request().await;
        assert_eq!(
            (got.line.split(' ').nth(1), got.body),
            (Some(path), body.as_bytes().to_vec())
        );
    }
    assert_eq!(b.accepted(), 2, "one backend connection per request");
}

/// hyper's h2 server spawns each stream's service future: `forward` on an `Incoming` body must
/// be `Send` (a compile-time check).
#[allow(dead_code)]
fn forward_is_send<'a>(
    req: Request<hyper::body::Incoming>,
    to: &'a Plain<'a>,
) -> impl std::future::Future<Output = Result<Response<Body>, Refusal>> + Send + 'a {
    forward(req, to)
}
