//! The client's TLS connection at the record level (wsgate runs rustls' unbuffered API with
//! buffers of its own): records cut anywhere, one byte per record, messages of many records,
//! key updates in the middle of a tunnel, the session ticket reaching the client, and a
//! corrupt record after the handshake.

mod support;

use std::sync::Arc;

use futures_util::SinkExt;
use rustls::client::Resumption;
use rustls::{ClientConfig, HandshakeKind};
use support::client::TlsClient;
use support::head::Head;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Send the upgrade over `tls`, one write (and so one TLS record) per `chunk` bytes, and
/// return the WebSocket once the 101 is read.
async fn upgrade_in_records(mut tls: TlsClient, chunk: usize) -> WebSocketStream<TlsClient> {
    let head = Head::upgrade("/echo/").bytes();
    for piece in head.chunks(chunk) {
        within("write", tls.write_all(piece)).await.expect("write");
        within("flush", tls.flush()).await.expect("flush");
    }
    let (answer, rest) = within("101", read_head_bytes(&mut tls))
        .await
        .expect("read")
        .expect("a head");
    assert!(answer.starts_with(b"HTTP/1.1 101"), "{answer:?}");
    assert!(rest.is_empty(), "nothing behind the 101: {rest:?}");
    WebSocketStream::from_raw_socket(tls, Role::Client, Some(client::ws_config())).await
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn echo(ws: &mut WebSocketStream<TlsClient>, len: usize) {
    let sent = payload(len);
    within("send", ws.send(Message::binary(sent.clone())))
        .await
        .expect("send");
    let got = within("echo", futures_util::StreamExt::next(ws))
        .await
        .expect("a message")
        .expect("no error");
    assert_eq!(got.into_data().as_ref(), &sent[..], "echo of {len} bytes");
}

#[tokio::test]
async fn a_request_in_one_byte_records_then_messages_of_many_records() {
    let (proxy, backend) = echo_proxy().await;
    let tls = proxy.raw_tls("localhost").await;
    let mut ws = upgrade_in_records(tls, 1).await;
    // 1 B, one record, four records and 1 MiB (64 records) each way: the proxy's reads end
    // inside records and its writes outrun the socket.
    for len in [1, 16 * 1024, 64 * 1024 + 3, 1024 * 1024] {
        echo(&mut ws, len).await;
    }
    assert_eq!(backend.only_request().one("Host"), Some("localhost"));
}

#[tokio::test]
async fn key_updates_in_the_middle_of_a_tunnel_keep_it_working() {
    let (proxy, _backend) = echo_proxy().await;
    let tls = proxy.raw_tls("localhost").await;
    let mut ws = upgrade_in_records(tls, 4096).await;
    echo(&mut ws, 100).await;
    for round in 0..3 {
        // A KeyUpdate that asks the proxy to update too: its answers are only readable if it
        // switched keys at the right record.
        ws.get_mut()
            .get_mut()
            .1
            .refresh_traffic_keys()
            .unwrap_or_else(|e| panic!("key update {round}: {e}"));
        echo(&mut ws, 100 + round).await;
        echo(&mut ws, 200 * 1024).await;
    }
}

/// A TLS connection to the proxy with `config`, whose handshake was of `kind`.
async fn handshake(
    proxy: &TestProxy,
    config: &Arc<ClientConfig>,
    kind: HandshakeKind,
    which: &str,
) -> TlsClient {
    let tls = client::tls_connect(proxy.addr(), Arc::clone(config), "localhost")
        .await
        .unwrap_or_else(|e| panic!("{which} handshake: {e}"));
    assert_eq!(tls.get_ref().1.handshake_kind(), Some(kind), "{which}");
    tls
}

#[tokio::test]
async fn the_session_ticket_reaches_the_client_and_resumes() {
    let (proxy, _backend) = echo_proxy().await;
    let mut config = ClientConfig::clone(&proxy.ca().client_config());
    config.resumption = Resumption::in_memory_sessions(4);
    let config = Arc::new(config);
    let first = handshake(&proxy, &config, HandshakeKind::Full, "first").await;
    // The ticket rides with the first answer: read it (with the 101) before reconnecting.
    let mut ws = upgrade_in_records(first, 4096).await;
    echo(&mut ws, 10).await;
    let second = handshake(&proxy, &config, HandshakeKind::Resumed, "second").await;
    let mut ws = upgrade_in_records(second, 4096).await;
    echo(&mut ws, 10).await;
    // A resumed handshake still names its SNI: a Host other than it is misdirected.
    let mut third = handshake(&proxy, &config, HandshakeKind::Resumed, "third").await;
    let head = Head::upgrade("/echo/").set("Host", "ws.test").bytes();
    let answer = within("421", client::exchange(&mut third, &head)).await;
    assert_eq!(answer.status, 421, "{answer:?}");
}

#[tokio::test]
async fn a_corrupt_record_after_the_handshake_ends_the_connection_with_an_alert() {
    let (proxy, backend) = echo_proxy().await;
    let tls = proxy.raw_tls("localhost").await;
    let mut ws = upgrade_in_records(tls, 4096).await;
    echo(&mut ws, 10).await;
    // An application-data record of 32 bytes no key made, written under rustls on the TCP
    // socket: the proxy cannot decrypt it.
    let mut tls = ws.into_inner();
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    record.extend_from_slice(&[0x5a; 32]);
    let tcp = tls.get_mut().0;
    within("raw write", tcp.write_all(&record))
        .await
        .expect("raw write");
    // The client sees the proxy's alert (an error), then the end; never a hang.
    let mut sink = Vec::new();
    let end = within("the end", tls.read_to_end(&mut sink)).await;
    let err = end.expect_err("the proxy answers with an alert");
    assert!(
        err.to_string().contains("BadRecordMac") || err.to_string().contains("alert"),
        "{err}"
    );
    // The backend's side of the tunnel ends too, and the proxy goes on serving.
    eventually("the tunnel closed", || proxy.stats().open_tunnels() == 0).await;
    let tls = proxy.raw_tls("localhost").await;
    let mut ws = upgrade_in_records(tls, 4096).await;
    echo(&mut ws, 10).await;
    assert_eq!(backend.requests().len(), 2);
}
