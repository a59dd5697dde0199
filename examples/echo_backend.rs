//! A small WebSocket echo server for the README demo and manual testing, with a page that uses it.
//!
//! ```text
//! cargo run --example echo_backend -- 127.0.0.1:9501
//! ```
//!
//! `GET /` without an upgrade answers a small HTML page whose script opens a WebSocket back to
//! where the page came from (through wsgate, whose demo route has `http: proxy`) and shows the
//! echo of what the visitor types. An upgrade request on any path becomes an echo session: text
//! and binary messages come back, pings and closes are answered (tungstenite does both). One log
//! line per session. Plain HTTP/1.1 only: wsgate terminates TLS and HTTP/2 in front of it.

use std::convert::Infallible;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

const DEFAULT_ADDR: &str = "127.0.0.1:9501";

/// The demo page: a socket to `/` on the host the page came from, over TLS when the page was.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>wsgate echo</title>
<h1>wsgate echo</h1>
<form id="f"><input id="text" autofocus placeholder="type, then Enter"> <button>send</button></form>
<ul id="log"></ul>
<script>
const log = (line) => {
  const li = document.createElement("li");
  li.textContent = line;
  document.getElementById("log").prepend(li);
};
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/");
ws.onopen = () => log("connected to " + ws.url);
ws.onmessage = (e) => log("echo: " + e.data);
ws.onclose = (e) => log("closed: " + e.code + " " + e.reason);
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
</script>
"#;

#[tokio::main]
async fn main() {
    let arg = std::env::args().nth(1);
    let addr: SocketAddr = match arg.as_deref().unwrap_or(DEFAULT_ADDR).parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("usage: echo_backend [ADDR:PORT]  (default {DEFAULT_ADDR}): {e}");
            std::process::exit(64);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("echo_backend: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    // With port 0 the kernel picks one: print the address actually bound.
    let bound = listener.local_addr().unwrap_or(addr);
    println!("echo_backend listening on ws://{bound} (page at http://{bound}/)");
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                tokio::spawn(serve(tcp, peer));
            }
            // Usually EMFILE: keep serving the connections already open.
            Err(e) => eprintln!("echo_backend: accept: {e}"),
        }
    }
}

/// HTTP/1.1 on one connection, with upgrades.
async fn serve(tcp: TcpStream, peer: SocketAddr) {
    let service = service_fn(move |req| async move { Ok::<_, Infallible>(answer(req, peer)) });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
    if let Err(e) = conn.with_upgrades().await {
        eprintln!("{peer}: {e}");
    }
}

/// A `101` (and an echo session once hyper hands the connection over), the page, or `404`.
fn answer(mut req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let upgrade = (req.headers().get(header::UPGRADE))
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let mut res = Response::new(Full::default());
    match (upgrade, key) {
        (true, Some(key)) => {
            let accept = derive_accept_key(key.as_bytes());
            let upgraded = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                match upgraded.await {
                    Ok(io) => {
                        let io = TokioIo::new(io);
                        echo(
                            WebSocketStream::from_raw_socket(io, Role::Server, None).await,
                            peer,
                        )
                        .await
                    }
                    Err(e) => eprintln!("{peer}: upgrade failed: {e}"),
                }
            });
            *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = res.headers_mut();
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            if let Ok(accept) = HeaderValue::from_str(&accept) {
                h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            }
        }
        (false, _) if req.uri().path() == "/" => {
            *res.body_mut() = Full::new(Bytes::from_static(PAGE.as_bytes()));
            let html = HeaderValue::from_static("text/html; charset=utf-8");
            res.headers_mut().insert(header::CONTENT_TYPE, html);
        }
        _ => *res.status_mut() = StatusCode::NOT_FOUND,
    }
    res
}

async fn echo<S>(mut ws: WebSocketStream<S>, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = 0u64;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(msg) if msg.is_text() || msg.is_binary() => {
                messages += 1;
                if ws.send(msg).await.is_err() {
                    break;
                }
            }
            // Ping, Pong, Close: tungstenite answers pings and closes on its own.
            Ok(_) => {}
            Err(e) => {
                eprintln!("{peer}: {e}");
                break;
            }
        }
    }
    println!("{peer}: closed after {messages} messages");
}
