//! Reload with client certificates: a new revocation list (or CA bundle) is read by the
//! normal reload path, and refuses the revoked client from then on, while the session it opened
//! before stays (invariant 4).

mod support;

use futures_util::SinkExt;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// A listener config on `port` with `client_auth` and a CRL, files next to it.
fn reload_config(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        "listeners:\n  - name: public\n    bind: \"127.0.0.1:{port}\"\n    tls:\n      certificates: [ {{ cert: cert.pem, key: key.pem }} ]\n\
         \x20     client_auth: {{ ca: clients-ca.pem, crl: clients.crl }}\n\
         routes:\n  - {{ path: /echo/, pool: echo }}\npools:\n  echo:\n    backends: [ {{ url: \"ws://{backend}\" }} ]\n"
    )
}

#[tokio::test]
async fn a_reload_reads_a_new_crl_and_open_sessions_stay() {
    let clients_ca = TestCa::named("wsgate clients CA");
    let alice_cert = clients_ca.client_leaf("alice", &["alice.example.org"]);
    let backend = EchoBackend::start().await;
    let server_ca = TestCa::new();
    let server = server_ca.leaf(&["localhost"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("cert.pem", &server.cert_pem);
    write("key.pem", &server.key_pem);
    write("clients-ca.pem", &clients_ca.cert_pem());
    write("clients.crl", &clients_ca.crl_pem(&[]));
    write("wsgate.yaml", &reload_config(0, backend.addr()));
    let path = dir.path().join("wsgate.yaml");
    let config = wsgate::config::load_file(&path).expect("config");
    let gateway = wsgate::Gateway::new(config).expect("gateway");
    let (stats, reloader) = (gateway.stats(), gateway.reloader());
    let listeners = gateway.bind().expect("bind");
    let addr = listeners[0].local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<wsgate::Shutdown>();
    let stop = async move { stop_rx.await.unwrap_or(wsgate::Shutdown::Immediate) };
    let serving = tokio::spawn(gateway.serve(listeners, stop));
    let alice = server_ca.client_config_presenting(&alice_cert);
    let connect = || async {
        let tls = support::client::tls_connect(addr, alice.clone(), "localhost").await?;
        let request = "ws://localhost/echo/";
        let handshake = tokio_tungstenite::client_async(request, tls);
        within("the WebSocket handshake", handshake)
            .await
            .map_err(std::io::Error::other)
    };
    let (mut open, _) = connect().await.expect("alice before the reload");
    // The CA revokes alice; the reload reads the new list (the file names the bound port now).
    write("clients.crl", &clients_ca.crl_pem(&[&alice_cert]));
    write("wsgate.yaml", &reload_config(addr.port(), backend.addr()));
    reloader.reload().await.expect("reload");
    let refused = connect().await.expect_err("alice is revoked");
    assert!(
        format!("{refused:?}").contains("CertificateRevoked"),
        "{refused:?}"
    );
    eventually("TLS failure counted", || stats.tls_failures() == 1).await;
    // The session opened before the reload is untouched (invariant 4).
    within("send", open.send(Message::text("still here")))
        .await
        .expect("send");
    let echoed = within("echo", futures_util::StreamExt::next(&mut open)).await;
    assert_eq!(
        echoed.expect("a message").expect("no error"),
        Message::text("still here")
    );
    // The client leaves first, so that stopping has no session to close.
    drop(open);
    eventually("the session ended", || stats.sessions.is_empty()).await;
    drop(stop_tx);
    within("the gateway to stop", serving)
        .await
        .expect("serve did not panic");
}
