//! A wsgate started from a real YAML config on `127.0.0.1:0`, with the handles a test needs:
//! its address, its counters, the CA its certificates chain to, and the shutdown switch.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::MaybeTlsStream;
use wsgate::{Gateway, Shutdown, Stats};

use super::certs::{TestCa, TestCert};
use super::client::{
    Answer, ClientStream, TlsClient, Ws, WsRequest, exchange, tls_connect, ws_config,
};
use super::head::Head;
use super::{init_tracing, within};

/// Names on the default certificate: what the tests send as SNI and Host.
pub const DEFAULT_NAMES: &[&str] = &["localhost", "ws.test", "127.0.0.1"];

struct RouteSpec {
    host: Option<String>,
    path: String,
    /// Backend entries in YAML flow syntax, e.g. `{ url: "ws://127.0.0.1:9000", weight: 2 }`.
    backends: Vec<String>,
    /// Extra flow-mapping keys for this route, e.g. `origins: ["https://a.test"]`.
    extra: Option<String>,
    /// Extra flow-mapping keys for this route's pool, e.g. `balance: least_connections`.
    pool_keys: Option<String>,
}

enum TlsSpec {
    /// One certificate per entry, first = default.
    Certs(Vec<Vec<String>>),
    /// A plain `ws://` listener.
    Plain,
}

pub struct TestProxyBuilder {
    routes: Vec<RouteSpec>,
    limits: Vec<(String, String)>,
    tls: TlsSpec,
    min_version: Option<String>,
    top: Vec<String>,
    listener_extra: Vec<String>,
    tls_extra: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
}

impl TestProxyBuilder {
    /// Route `host` (None = any) + `path` prefix to a pool holding only `backend`.
    pub fn route(self, host: Option<&str>, path: &str, backend: SocketAddr) -> Self {
        self.route_url(host, path, &format!("ws://{backend}"))
    }

    /// Like [`Self::route`] with the backend URL written out.
    pub fn route_url(self, host: Option<&str>, path: &str, url: &str) -> Self {
        self.pool_route(host, path, &[url.to_string()], "")
    }

    /// Route `host` + `path` to a pool of several backends with pool keys in YAML flow syntax:
    /// `.pool_route(None, "/echo/", &[a.url(), b.url()], "balance: least_connections, retries: 1")`.
    /// A backend is a URL, or a whole flow-mapping entry such as
    /// `{ url: "ws://127.0.0.1:9000", weight: 2 }`; `pool_keys` may be empty.
    pub fn pool_route<S: AsRef<str>>(
        mut self,
        host: Option<&str>,
        path: &str,
        backends: &[S],
        pool_keys: &str,
    ) -> Self {
        let entry = |b: &S| {
            let b = b.as_ref().trim();
            if b.starts_with('{') {
                b.to_string()
            } else {
                format!("{{ url: \"{b}\" }}")
            }
        };
        self.routes.push(RouteSpec {
            host: host.map(str::to_string),
            path: path.into(),
            backends: backends.iter().map(entry).collect(),
            extra: None,
            pool_keys: (!pool_keys.trim().is_empty()).then(|| pool_keys.into()),
        });
        self
    }

    /// Add policy keys to the last route, in YAML flow syntax:
    /// `.policy(r#"origins: ["https://a.test"], rate: { handshakes: "2/s" }"#)`.
    pub fn policy(mut self, keys: &str) -> Self {
        if let Some(r) = self.routes.last_mut() {
            r.extra = Some(keys.into());
        }
        self
    }

    /// A top-level YAML block, written as is (e.g. `trusted_proxies: ["127.0.0.1/32"]`).
    pub fn top(mut self, block: &str) -> Self {
        self.top.push(block.into());
        self
    }

    /// A key of the listener, e.g. `proxy_protocol: true`.
    pub fn listener_option(mut self, line: &str) -> Self {
        self.listener_extra.push(line.into());
        self
    }

    /// A key of the listener's `tls:` section, e.g. `client_auth: { ca: ca.pem }`.
    pub fn tls_option(mut self, line: &str) -> Self {
        self.tls_extra.push(line.into());
        self
    }

    /// A file written next to the config before it is loaded (keys, JWKS documents).
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// Set one key under `limits:` exactly as an operator would write it (`300ms`, `1KiB`).
    pub fn limit(mut self, key: &str, value: &str) -> Self {
        self.limits.push((key.into(), value.into()));
        self
    }

    /// Serve one certificate per entry (SAN names), the first being the default.
    pub fn tls_certs(mut self, certs: &[&[&str]]) -> Self {
        let certs = certs
            .iter()
            .map(|names| names.iter().map(|n| n.to_string()).collect())
            .collect();
        self.tls = TlsSpec::Certs(certs);
        self
    }

    /// `min_version:` of the listener (`"1.2"` or `"1.3"`).
    pub fn min_tls_version(mut self, version: &str) -> Self {
        self.min_version = Some(version.into());
        self
    }

    /// A plain `ws://` listener (no `tls:` section).
    pub fn plain(mut self) -> Self {
        self.tls = TlsSpec::Plain;
        self
    }

    fn yaml(&self, cert_count: usize) -> String {
        let mut y = String::new();
        for block in &self.top {
            let _ = writeln!(y, "{block}");
        }
        y.push_str("listeners:\n  - name: test\n    bind: \"127.0.0.1:0\"\n");
        for line in &self.listener_extra {
            let _ = writeln!(y, "    {line}");
        }
        if cert_count > 0 {
            y.push_str("    tls:\n      certificates:\n");
            for i in 0..cert_count {
                let _ = writeln!(y, "        - {{ cert: cert{i}.pem, key: key{i}.pem }}");
            }
            if let Some(v) = &self.min_version {
                let _ = writeln!(y, "      min_version: \"{v}\"");
            }
            for line in &self.tls_extra {
                let _ = writeln!(y, "      {line}");
            }
        }
        if !self.limits.is_empty() {
            y.push_str("limits:\n");
            for (k, v) in &self.limits {
                let _ = writeln!(y, "  {k}: {v}");
            }
        }
        y.push_str("routes:\n");
        for (i, r) in self.routes.iter().enumerate() {
            let host = r
                .host
                .as_ref()
                .map(|h| format!("host: {h}, "))
                .unwrap_or_default();
            let extra = r
                .extra
                .as_ref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default();
            let _ = writeln!(y, "  - {{ {host}path: \"{}\", pool: p{i}{extra} }}", r.path);
        }
        y.push_str("pools:\n");
        for (i, r) in self.routes.iter().enumerate() {
            let keys = r
                .pool_keys
                .as_ref()
                .map(|k| format!(", {k}"))
                .unwrap_or_default();
            let backends = r.backends.join(", ");
            let _ = writeln!(y, "  p{i}: {{ backends: [ {backends} ]{keys} }}");
        }
        y
    }

    /// Write the config and certificates to a temp dir, load and validate it, bind, serve.
    pub async fn start(self) -> TestProxy {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new();
        let certs: Vec<TestCert> = match &self.tls {
            TlsSpec::Certs(all) => all
                .iter()
                .map(|names| ca.leaf(&names.iter().map(String::as_str).collect::<Vec<_>>()))
                .collect(),
            TlsSpec::Plain => Vec::new(),
        };
        for (i, cert) in certs.iter().enumerate() {
            let write = |name: String, text: &str| {
                std::fs::write(dir.path().join(name), text).expect("write cert file")
            };
            write(format!("cert{i}.pem"), &cert.cert_pem);
            write(format!("key{i}.pem"), &cert.key_pem);
        }
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), contents).expect("write test file");
        }
        let yaml = self.yaml(certs.len());
        std::fs::write(dir.path().join("wsgate.yaml"), &yaml).expect("write config");
        let config = wsgate::config::load_str(&yaml, "wsgate.yaml", dir.path())
            .unwrap_or_else(|e| panic!("test config rejected:\n{e}\n---\n{yaml}"));
        let gateway =
            Gateway::new(config).unwrap_or_else(|e| panic!("gateway refused config:\n{e}"));
        let stats = gateway.stats();
        let listeners = gateway.bind().expect("bind 127.0.0.1:0");
        let addr = listeners[0].local_addr().expect("bound address");
        let (tx, rx) = oneshot::channel();
        // Dropping the TestProxy drops `tx`, which stops the gateway at once.
        let stop = async move { rx.await.unwrap_or(Shutdown::Immediate) };
        let task = tokio::spawn(gateway.serve(listeners, stop));
        let client_config = ca.client_config();
        TestProxy {
            addr,
            stats,
            tls: !certs.is_empty(),
            ca,
            certs,
            client_config,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }
}

pub struct TestProxy {
    addr: SocketAddr,
    stats: Arc<Stats>,
    tls: bool,
    ca: TestCa,
    certs: Vec<TestCert>,
    client_config: Arc<ClientConfig>,
    shutdown: Option<oneshot::Sender<Shutdown>>,
    task: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestProxy {
    /// A TLS listener with one certificate for [`DEFAULT_NAMES`], no routes yet.
    pub fn builder() -> TestProxyBuilder {
        TestProxyBuilder {
            routes: Vec::new(),
            limits: Vec::new(),
            tls: TlsSpec::Certs(vec![DEFAULT_NAMES.iter().map(|n| n.to_string()).collect()]),
            min_version: None,
            top: Vec::new(),
            listener_extra: Vec::new(),
            tls_extra: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The served certificates, in config order.
    pub fn certs(&self) -> &[TestCert] {
        &self.certs
    }

    /// A TLS connection sending `sni` (an IP address sends none); panics if the handshake fails.
    pub async fn raw_tls(&self, sni: &str) -> TlsClient {
        tls_connect(self.addr, self.client_config.clone(), sni)
            .await
            .unwrap_or_else(|e| panic!("TLS to the proxy with SNI {sni}: {e}"))
    }

    /// A connection as the listener expects it: TLS with SNI `localhost`, or plain TCP.
    pub async fn connect(&self) -> ClientStream {
        if self.tls {
            MaybeTlsStream::Rustls(self.raw_tls("localhost").await)
        } else {
            let tcp = within("TCP connect", TcpStream::connect(self.addr)).await;
            MaybeTlsStream::Plain(tcp.expect("TCP connect to the proxy"))
        }
    }

    /// Send `head` on a fresh connection and read the whole answer until the proxy closes.
    pub async fn exchange(&self, head: &Head) -> Answer {
        exchange(&mut self.connect().await, &head.bytes()).await
    }

    /// A WebSocket handshake to `path` (SNI and Host `localhost` unless changed).
    pub fn ws(&self, path: &str) -> WsRequest {
        WsRequest {
            addr: self.addr,
            tls: self.tls.then(|| self.client_config.clone()),
            sni: "localhost".into(),
            host: None,
            path: path.into(),
            headers: Vec::new(),
            config: ws_config(),
        }
    }

    /// A WebSocket through the proxy to `path`; panics if the handshake fails.
    pub async fn ws_connect(&self, path: &str) -> Ws {
        match self.ws(path).connect().await {
            Ok((ws, _)) => ws,
            Err(e) => panic!("WebSocket handshake to {path} through the proxy: {e}"),
        }
    }

    /// Signal the gateway to stop accepting and drain (returns at once; see [`Self::stopped`]).
    pub fn drain(&mut self) {
        self.signal(Shutdown::Drain);
    }

    /// Stop with [`Shutdown::Immediate`] and wait until `serve` returned.
    pub async fn shutdown(&mut self) {
        self.signal(Shutdown::Immediate);
        self.stopped().await;
    }

    fn signal(&mut self, mode: Shutdown) {
        let tx = self.shutdown.take().expect("shutdown signalled once");
        tx.send(mode).expect("gateway still serving");
    }

    /// Wait until `serve` returned (after [`Self::drain`] or [`Self::shutdown`]).
    pub async fn stopped(&mut self) {
        let task = self.task.take().expect("stopped awaited once");
        within("the gateway to stop", task)
            .await
            .expect("serve did not panic");
    }
}
