//! Reload under load: tunnels keep echoing while the config file is reloaded again and again
//! (routes added and removed, the certificate swapped, one broken file), none is dropped, new
//! routes answer, and a broken file is refused with its line while the old config keeps serving.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

use support::certs::TestCa;
use support::echo::EchoBackend;
use support::within;
use wsgate::{Gateway, Shutdown};

const TUNNELS: usize = 200;
const RELOADS: usize = 20;

fn config(port: u16, backend: std::net::SocketAddr, extra_routes: &[String]) -> String {
    let mut routes = String::from("  - { path: /echo, pool: echo }\n");
    for r in extra_routes {
        routes.push_str(&format!("  - {{ path: {r}, pool: echo }}\n"));
    }
    format!(
        "listeners:\n  - name: public\n    bind: \"127.0.0.1:{port}\"\n    tls: {{ certificates: [ {{ cert: cert.pem, key: key.pem }} ] }}\n\
         routes:\n{routes}pools:\n  echo:\n    backends: [ {{ url: \"ws://{backend}\" }} ]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_never_touch_open_tunnels() {
    let backend = EchoBackend::start().await;
    let ca = TestCa::new();
    let certs = [ca.leaf(&["localhost"]), ca.leaf(&["localhost"])];
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("cert.pem", &certs[0].cert_pem);
    write("key.pem", &certs[0].key_pem);
    // Port 0 for the first bind; reloads keep the listener, so the file names the real port after.
    write("wsgate.yaml", &config(0, backend.addr(), &[]));
    let path = dir.path().join("wsgate.yaml");
    let gateway = Gateway::new(wsgate::config::load_file(&path).expect("config")).expect("gateway");
    let stats = gateway.stats();
    let reloader = gateway.reloader();
    let listeners = gateway.bind().expect("bind");
    let port = listeners[0].local_addr().expect("addr").port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(gateway.serve(listeners, async move {
        stop_rx.await.unwrap_or(Shutdown::Immediate)
    }));
    let connector = Connector::Rustls(ca.client_config());
    let connect = |route: String| {
        let connector = connector.clone();
        async move {
            let url = format!("wss://localhost:{port}{route}");
            connect_async_tls_with_config(url, None, false, Some(connector)).await
        }
    };

    // Open every tunnel, then keep each one echoing until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let echoes = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..TUNNELS {
        let (mut ws, _) = within("open tunnel", connect("/echo".into()))
            .await
            .expect("tunnel");
        let (stop, echoes) = (Arc::clone(&stop), Arc::clone(&echoes));
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = format!("{i}:{n}");
                ws.send(Message::text(text.clone()))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                    Ok(Some(Ok(Message::Text(got)))) if got.as_str() == text => {}
                    other => return Err(format!("tunnel {i} echo {n}: {other:?}")),
                }
                n += 1;
                echoes.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<u64, String>(n)
        }));
    }

    let mut routes: Vec<String> = Vec::new();
    for round in 0..RELOADS {
        let before = echoes.load(Ordering::Relaxed);
        if round == RELOADS / 2 {
            // A broken file: refused with its line, the running config stays.
            write(
                "wsgate.yaml",
                "listeners:\n  - name: public\n    bindd: oops\n",
            );
            let err = reloader
                .reload()
                .await
                .expect_err("broken config must be refused");
            let text = err.to_string();
            assert!(text.contains("wsgate.yaml:3:"), "line of the error: {text}");
            let (mut ws, _) = within("old config serves", connect("/echo".into()))
                .await
                .expect("old route");
            ws.close(None).await.ok();
            continue;
        }
        // Add a route every round, drop the oldest every third round, swap the certificate.
        routes.push(format!("/r{round}"));
        if round % 3 == 2 {
            routes.remove(0);
        }
        let cert = &certs[round % 2];
        write("cert.pem", &cert.cert_pem);
        write("key.pem", &cert.key_pem);
        write("wsgate.yaml", &config(port, backend.addr(), &routes));
        let generation = reloader.reload().await.expect("reload");
        assert_eq!(generation, reloader.generation());
        let newest = routes.last().cloned().unwrap_or_default();
        let (mut ws, _) = within("new route", connect(newest))
            .await
            .expect("new route reachable");
        ws.send(Message::text("new"))
            .await
            .expect("send on new route");
        ws.close(None).await.ok();
        // Traffic kept flowing across the swap.
        support::eventually("echoes continue", || {
            echoes.load(Ordering::Relaxed) > before + TUNNELS as u64
        })
        .await;
    }
    assert!(reloader.generation() >= (RELOADS - 1) as u64);
    // Every tunnel opened before the first reload is still open (the probes above are closed).
    support::eventually("probe tunnels closed", || {
        stats.open_tunnels() as usize == TUNNELS
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let n = within("client finishes", c)
            .await
            .expect("join")
            .expect("no echo error");
        assert!(n > 0);
    }
    let _ = stop_tx.send(Shutdown::Immediate);
    within("server stops", server).await.expect("join");
}

fn plain_config(listeners: &[(&str, u16)], backend: std::net::SocketAddr) -> String {
    let mut y = String::from("listeners:\n");
    for (name, port) in listeners {
        y.push_str(&format!(
            "  - {{ name: {name}, bind: \"127.0.0.1:{port}\" }}\n"
        ));
    }
    y.push_str(&format!(
        "routes:\n  - {{ path: /echo, pool: echo }}\npools:\n  echo:\n    backends: [ {{ url: \"ws://{backend}\" }} ]\n"
    ));
    y
}

/// Listeners added by a reload accept at once; removed ones stop accepting while the tunnels
/// they accepted live on.
#[tokio::test]
async fn reload_adds_and_removes_listeners() {
    let backend = EchoBackend::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wsgate.yaml");
    std::fs::write(&path, plain_config(&[("a", 0)], backend.addr())).expect("write");
    let gateway = Gateway::new(wsgate::config::load_file(&path).expect("config")).expect("gateway");
    let stats = gateway.stats();
    let reloader = gateway.reloader();
    let listeners = gateway.bind().expect("bind");
    let a = listeners[0].local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(gateway.serve(listeners, async move {
        stop_rx.await.unwrap_or(Shutdown::Immediate)
    }));
    support::eventually("a accepting", || reloader.listener_addrs().len() == 1).await;

    // Add listener b (port 0: the reloader reports where it landed).
    std::fs::write(
        &path,
        plain_config(&[("a", a.port()), ("b", 0)], backend.addr()),
    )
    .expect("write");
    reloader.reload().await.expect("reload adds b");
    let b = reloader
        .listener_addrs()
        .into_iter()
        .find(|(n, _)| n == "b")
        .map(|(_, addr)| addr)
        .expect("b is listening");
    let url = format!("ws://{b}/echo");
    let (mut ws, _) = within("tunnel via b", tokio_tungstenite::connect_async(url))
        .await
        .expect("b serves");
    ws.send(Message::text("via b")).await.expect("send");
    let echoed = within("echo via b", ws.next()).await;
    assert!(matches!(echoed, Some(Ok(Message::Text(t))) if t.as_str() == "via b"));

    // Remove b: new connections to it are refused, the tunnel it accepted keeps working.
    std::fs::write(&path, plain_config(&[("a", a.port())], backend.addr())).expect("write");
    reloader.reload().await.expect("reload removes b");
    support::eventually("b stopped", || reloader.listener_addrs().len() == 1).await;
    let refused = within("connect to removed b", tokio::net::TcpStream::connect(b)).await;
    assert!(refused.is_err(), "removed listener still accepts");
    ws.send(Message::text("still"))
        .await
        .expect("send after removal");
    let echoed = within("echo after removal", ws.next()).await;
    assert!(matches!(echoed, Some(Ok(Message::Text(t))) if t.as_str() == "still"));
    assert_eq!(stats.open_tunnels(), 1);
    ws.close(None).await.ok();

    let _ = stop_tx.send(Shutdown::Immediate);
    within("server stops", server).await.expect("join");
}
