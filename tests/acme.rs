//! Automatic certificates against a real ACME CA: a private pebble validates TLS-ALPN-01 on
//! wsgate's own listener (no `PEBBLE_VA_ALWAYS_VALID`). wsgate obtains a certificate for
//! `localhost`, a restart with the same `state_dir` serves the stored one without a new order,
//! a `renew_before` longer than the certificate's lifetime forces a renewal, a reload that
//! keeps the `acme` block starts no order (even one that a fresh start would), a renewal
//! that fails because the CA is down keeps the current certificate in service, and a renewed
//! certificate that the state directory cannot take is served anyway, not ordered again.

mod support;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wsgate::{BoundListener, Gateway, Reloader, Shutdown, Stats};

use support::client::tls_connect;
use support::pebble::Pebble;

/// An order (account, validation, issuance) on a shared 2-core machine.
const ISSUE_WITHIN: Duration = Duration::from_secs(60);

struct Running {
    stats: Arc<Stats>,
    reloader: Reloader,
    stop: Option<oneshot::Sender<Shutdown>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(Shutdown::Immediate);
        }
        support::within("the gateway to stop", self.task)
            .await
            .expect("serve did not panic");
    }
}

/// wsgate with one TLS listener whose only certificate source is `acme`, served on a clone of
/// `listener` (so each restart answers on the port pebble validates).
fn start(pebble: &Pebble, dir: &Path, renew_before: &str, listener: &StdListener) -> Running {
    support::init_tracing();
    let yaml = format!(
        r#"listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls:
      acme:
        domains: [localhost]
        email: ops@example.com
        directory: "{}"
        ca: "{}"
        state_dir: state
        renew_before: {renew_before}
routes:
  - {{ path: "/", pool: p }}
pools:
  p: {{ backends: [ {{ url: "ws://127.0.0.1:9" }} ] }}
"#,
        pebble.directory(),
        pebble.listener_ca_file().display(),
    );
    // From a file, so that the reloader can read it again.
    let path = dir.join("wsgate.yaml");
    std::fs::write(&path, &yaml).expect("write config");
    let config = wsgate::config::load_file(&path)
        .unwrap_or_else(|e| panic!("test config rejected:\n{e}\n---\n{yaml}"));
    let gateway = Gateway::new(config).unwrap_or_else(|e| panic!("gateway refused: {e}"));
    let stats = gateway.stats();
    let reloader = gateway.reloader();
    let socket = listener.try_clone().expect("clone the listener");
    let bound = BoundListener::from_std("public", socket).expect("hand the listener in");
    let (tx, rx) = oneshot::channel();
    let stop = async move { rx.await.unwrap_or(Shutdown::Immediate) };
    let task = tokio::spawn(gateway.serve(vec![bound], stop));
    Running {
        stats,
        reloader,
        stop: Some(tx),
        task,
    }
}

fn trusting(root: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(root.clone())
        .expect("pebble root is a trust anchor");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The leaf a client trusting only pebble's root is served for SNI `localhost`, or the error.
async fn served(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
) -> Result<CertificateDer<'static>, String> {
    let tls = tls_connect(addr, Arc::clone(client), "localhost")
        .await
        .map_err(|e| e.to_string())?;
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificate")?;
    Ok(certs[0].clone().into_owned())
}

/// Handshake until the served leaf passes `accept` (verified against pebble's root for
/// `localhost` by the client itself), or fail after [`ISSUE_WITHIN`].
async fn served_when(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
    pebble: &Pebble,
    accept: impl Fn(&CertificateDer<'static>) -> bool,
) -> CertificateDer<'static> {
    let deadline = tokio::time::Instant::now() + ISSUE_WITHIN;
    loop {
        let last = served(addr, client).await;
        if let Ok(cert) = &last
            && accept(cert)
        {
            return cert.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no acceptable certificate within {ISSUE_WITHIN:?}; last: {last:?}\npebble:\n{}",
            pebble.log()
        );
        // Issuance runs in the background: poll the listener at a short pace under the deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obtains_reuses_and_renews_a_certificate_from_a_real_acme_ca() {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let mut pebble = Pebble::start(addr.port()).await;
    let client = trusting(&pebble.root().await);
    let dir = tempfile::tempdir().expect("temp dir");

    // 1. No certificate yet: one order, validated by pebble over TLS-ALPN-01 on our listener.
    let run = start(&pebble, dir.path(), "30d", &listener);
    let first = served_when(addr, &client, &pebble, |_| true).await;
    assert_eq!(pebble.orders(), 1, "one order:\n{}", pebble.log());
    let expiry = run.stats.metrics.acme().expiry_of("localhost");
    assert!(expiry.is_some_and(|d| d > 30.0), "expiry gauge: {expiry:?}");
    assert_eq!(run.stats.metrics.acme().orders("ok"), 1);
    let state = dir.path().join("state");
    assert_eq!(mode(&state), 0o700);
    for file in ["account.json", "localhost.crt.pem", "localhost.key.pem"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    run.stop().await;

    // 2. Restart with the same state_dir: the stored certificate at once, no new order.
    let run = start(&pebble, dir.path(), "30d", &listener);
    let again = served(addr, &client)
        .await
        .expect("stored certificate served at start");
    assert_eq!(again, first, "the stored certificate is reused");
    run.stop().await;
    assert_eq!(pebble.orders(), 1, "no order on restart:\n{}", pebble.log());

    // 3. renew_before longer than the lifetime: due at start, renewed while the old one serves.
    let run = start(&pebble, dir.path(), "100000d", &listener);
    let renewed = served_when(addr, &client, &pebble, |c| *c != first).await;
    assert_ne!(renewed, first);
    assert_eq!(pebble.orders(), 2, "one renewal order:\n{}", pebble.log());
    support::eventually("the renewal counted", || {
        run.stats.metrics.acme().orders("ok") == 1
    })
    .await;

    // 4. Reload with the block unchanged: the manager (and its hold after that renewal) is
    // kept. A new manager would find the stored certificate due and order at once.
    run.reloader.reload().await.expect("reload");
    // Nothing must happen: give a wrongly started order the time the ones above took.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pebble.orders(), 2, "no order on reload:\n{}", pebble.log());
    let after = served(addr, &client).await.expect("served after reload");
    assert_eq!(after, renewed);
    run.stop().await;

    // 5. The CA is down when a renewal is due: the order fails, is counted and logged, and the
    // current certificate stays in service with its expiry gauge.
    pebble.kill();
    let run = start(&pebble, dir.path(), "100000d", &listener);
    support::eventually("the failed renewal counted", || {
        run.stats.metrics.acme().orders("error") == 1
    })
    .await;
    let kept = served(addr, &client)
        .await
        .expect("served after a failed renewal");
    assert_eq!(kept, renewed, "the current certificate stays in service");
    let expiry = run.stats.metrics.acme().expiry_of("localhost");
    assert!(expiry.is_some_and(|d| d > 0.0), "expiry gauge: {expiry:?}");
    assert_eq!(run.stats.metrics.acme().orders("ok"), 0);
    run.stop().await;
}

/// Issue #13 (faults under load): with the state directory full or read-only, a renewal was
/// issued by the CA, then thrown away because it could not be written, and ordered again at
/// every retry (each a new certificate against the CA's rate limits). It is served from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_the_state_directory_cannot_take_is_served_not_ordered_again() {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let pebble = Pebble::start(addr.port()).await;
    let client = trusting(&pebble.root().await);
    let dir = tempfile::tempdir().expect("temp dir");
    let run = start(&pebble, dir.path(), "30d", &listener);
    let first = served_when(addr, &client, &pebble, |_| true).await;
    run.stop().await;
    // The key cannot be written: a directory sits where its temporary file goes (this holds
    // for root too, unlike file modes).
    let state = dir.path().join("state");
    std::fs::create_dir(state.join("localhost.key.tmp")).expect("block the key's temp file");

    let run = start(&pebble, dir.path(), "100000d", &listener);
    let renewed = served_when(addr, &client, &pebble, |c| *c != first).await;
    assert_ne!(renewed, first);
    assert_eq!(pebble.orders(), 2, "one renewal order:\n{}", pebble.log());
    assert_eq!(run.stats.metrics.acme().orders("ok"), 1);
    assert_eq!(run.stats.metrics.acme().orders("error"), 0);
    let kept = std::fs::read_to_string(state.join("localhost.crt.pem")).expect("stored chain");
    assert!(!kept.is_empty(), "the stored files are left as they were");
    run.stop().await;
}

/// `certificates` beside `acme` win for their own names; an ACME name has no certificate until
/// one is issued, so its handshake fails (no placeholder is served). The directory here never
/// answers: the first order fails and is counted, and the file's name is served all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_win_beside_acme_and_acme_names_wait_for_theirs() {
    support::init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = support::certs::TestCa::new();
    let leaf = ca.leaf(&["files.test"]);
    std::fs::write(dir.path().join("files.pem"), &leaf.cert_pem).expect("write cert");
    std::fs::write(dir.path().join("files.key"), &leaf.key_pem).expect("write key");
    // A closed loopback port: the order fails at once.
    let closed = StdListener::bind("127.0.0.1:0").expect("bind");
    let directory = format!(
        "https://127.0.0.1:{}/dir",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let yaml = format!(
        r#"listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls:
      certificates:
        - {{ cert: files.pem, key: files.key }}
      acme:
        domains: [localhost]
        directory: "{directory}"
        state_dir: state
routes:
  - {{ path: "/", pool: p }}
pools:
  p: {{ backends: [ {{ url: "ws://127.0.0.1:9" }} ] }}
"#
    );
    let config = wsgate::config::load_str(&yaml, "wsgate.yaml", dir.path())
        .unwrap_or_else(|e| panic!("test config rejected:\n{e}"));
    let gateway = Gateway::new(config).unwrap_or_else(|e| panic!("gateway refused: {e}"));
    let (stats, reloader) = (gateway.stats(), gateway.reloader());
    let listeners = gateway.bind().expect("bind");
    let addr = listeners[0].local_addr().expect("addr");
    let (tx, rx) = oneshot::channel();
    let stop = async move { rx.await.unwrap_or(Shutdown::Immediate) };
    let task = tokio::spawn(gateway.serve(listeners, stop));
    let run = Running {
        stats,
        reloader,
        stop: Some(tx),
        task,
    };

    support::eventually("the failed first order counted", || {
        run.stats.metrics.acme().orders("error") == 1
    })
    .await;
    let files = tls_connect(addr, ca.client_config(), "files.test").await;
    let served = files
        .expect("the file's name is served")
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c[0].clone().into_owned());
    assert_eq!(served, Some(leaf.der.clone()));
    // The server has nothing to offer and sends an alert; a wrong certificate (the file's)
    // would fail on the client side instead, as not valid for the name.
    let pending = tls_connect(addr, ca.client_config(), "localhost").await;
    let error = pending.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.contains("alert"),
        "expected a server alert, got: {error:?}"
    );
    // No expiry series while there is no certificate.
    assert_eq!(run.stats.metrics.acme().expiry_of("localhost"), None);
    run.stop().await;
}
