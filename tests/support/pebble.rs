//! A private `pebble` (Let's Encrypt's RFC 8555 test CA) for the ACME tests: its own config in a
//! temp dir, its HTTPS listener certificate made at test time by a [`TestCa`] (the `ca:` wsgate
//! is given), ports picked free on loopback, real validation (`PEBBLE_VA_NOSLEEP=1` only; never
//! `PEBBLE_VA_ALWAYS_VALID`), and `tlsPort` = the wsgate listener that must answer TLS-ALPN-01.
//! Ready once its management endpoint answers over TLS; killed by PID on drop. Its output is
//! kept in `pebble.log` for [`Pebble::log`] (orders are counted from it).

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep};

use super::certs::TestCa;
use super::client::tls_connect;
use super::within;

/// How long a started pebble has to answer on its management port.
const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct Pebble {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ca: TestCa,
    acme: SocketAddr,
    management: SocketAddr,
}

impl Pebble {
    /// Start pebble validating TLS-ALPN-01 against `127.0.0.1:tls_port` (for `localhost`).
    pub async fn start(tls_port: u16) -> Pebble {
        let dir = tempfile::tempdir().expect("pebble temp dir");
        let ca = TestCa::new();
        let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
        std::fs::write(dir.path().join("cert.pem"), &leaf.cert_pem).expect("write pebble cert");
        std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).expect("write pebble key");
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).expect("write pebble CA");
        let (acme, management) = (free_addr(), free_addr());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": acme.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            // http-01 is never answered here; TLS-ALPN-01 goes to wsgate's listener.
            "httpPort": free_addr().port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("pebble log");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Pebble refuses 5 % of nonces by default; the client's retry would log a second
            // `/order-plz` for one order and make [`Pebble::orders`] overcount.
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            // Every order gets fresh authorizations, so each one is really validated.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("run pebble (is it installed? .ci/run installs it)");
        let mut pebble = Pebble {
            child: Some(child),
            dir,
            ca,
            acme,
            management,
        };
        pebble.wait_ready().await;
        pebble
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("pebble exited {status}: {}", self.log());
            }
            if tls_connect(self.management, self.ca.client_config(), "localhost")
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pebble not ready: {}",
                self.log()
            );
            // Process start readiness: poll at a short pace under the deadline above.
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kill pebble now (its files stay): the directory stops answering, as in a CA outage.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://localhost:{}/dir", self.acme.port())
    }

    /// The CA of pebble's own HTTPS listener, as a file (wsgate's `acme.ca`).
    pub fn listener_ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Everything pebble printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// Orders pebble created so far (one `POST /order-plz` log line each).
    pub fn orders(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("/order-plz"))
            .count()
    }

    /// The root that signs pebble's certificates (`/roots/0` on the management endpoint, over
    /// HTTPS verified with pebble's listener CA).
    pub async fn root(&self) -> CertificateDer<'static> {
        let fetch = async {
            let config = self.ca.client_config();
            let mut tls = tls_connect(self.management, config, "localhost").await?;
            let request = "GET /roots/0 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            tls.write_all(request.as_bytes()).await?;
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).await?;
            Ok::<_, io::Error>(answer)
        };
        let answer = within("pebble /roots/0", fetch)
            .await
            .expect("GET /roots/0");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "/roots/0 answered {text}");
        CertificateDer::from_pem_slice(text.as_bytes()).expect("a PEM root in /roots/0")
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback address that was free a moment ago (pebble takes addresses, not sockets).
fn free_addr() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}
