//! A small WebSocket echo server for the README demo and manual testing.
//!
//! ```text
//! cargo run --example echo_backend -- 127.0.0.1:9501
//! ```
//!
//! Echoes text and binary messages, answers pings and closes (tungstenite does both), and logs
//! one line per connection. Plain `ws://` only: wsgate terminates TLS in front of it.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:9501";

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
    println!("echo_backend listening on ws://{bound}");
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                tokio::spawn(echo(tcp, peer));
            }
            // Usually EMFILE: keep serving the connections already open.
            Err(e) => eprintln!("echo_backend: accept: {e}"),
        }
    }
}

async fn echo(tcp: TcpStream, peer: SocketAddr) {
    let mut ws = match tokio_tungstenite::accept_async(tcp).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("{peer}: handshake failed: {e}");
            return;
        }
    };
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
