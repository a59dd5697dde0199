//! Configuration: the YAML file an operator writes, turned into typed values.
//!
//! Three steps, each in its own module:
//! - [`raw`]: serde structs mirroring the YAML one to one (`deny_unknown_fields`, spans kept);
//! - [`validate`]: raw → [`Config`] (durations, sizes, URLs, cross references), collecting every
//!   error with its `file:line:col` and field path;
//! - [`load`]: read a file (or a string, for tests) and run both.
//!
//! [`schema`] derives the JSON Schema of the file from [`raw`] and renders `check` errors as
//! JSON. [`files::watched_files`] lists the files a loaded config names (what a reload would read).
//!
//! What the config *means* at run time (certificates loaded, routes indexed, pools built) lives in
//! `crate::runtime`. Nothing here opens a socket.

pub mod cluster;
pub mod files;
pub mod load;
pub mod policy;
pub mod raw;
pub mod schema;
pub mod units;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use cluster::{ClusterConfig, OnError, OnExceed, PerSubject, Scope};
pub use load::{ConfigError, ConfigErrors, load_file, load_str};
pub use policy::{Cidr, PerIp, Policy};

/// A validated configuration. Every value here is already in range; nothing is optional that has a
/// safe default.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages); `None` when parsed from a string.
    pub source: Option<PathBuf>,
    pub listeners: Vec<ListenerConfig>,
    pub limits: Limits,
    /// In file order; `runtime::RouteTable` orders them by specificity.
    pub routes: Vec<RouteConfig>,
    /// Sorted by name.
    pub pools: Vec<PoolConfig>,
    /// Peers whose PROXY header or `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    pub log: LogConfig,
    /// The admin listener, if any.
    pub admin: Option<AdminBind>,
    /// `admin.token_env`: the environment variable holding the bearer token `/sessions*` need.
    pub admin_token_env: Option<String>,
    /// `cluster:`: the Redis/Valkey this instance shares fleet state through; `None` = alone.
    pub cluster: Option<ClusterConfig>,
}

/// `log:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive string, already checked to parse. Changeable by reload.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub bind: Bind,
    /// `None`: plain `ws://` listener (TLS terminated in front of wsgate by an L4 balancer).
    pub tls: Option<TlsConfig>,
    /// Expect a PROXY protocol v1/v2 header first (honoured only from `trusted_proxies`).
    pub proxy_protocol: bool,
    /// Offer `h2` before `http/1.1` in ALPN (RFC 8441 WebSockets over HTTP/2); TLS listeners only.
    pub http2: bool,
}

/// Where a listener's socket comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// Bind this address.
    Addr(SocketAddr),
    /// `systemd:NAME`: inherit the socket named NAME (`FileDescriptorName=`) from the socket unit.
    Systemd(String),
}

impl std::fmt::Display for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bind::Addr(a) => write!(f, "{a}"),
            Bind::Systemd(n) => write!(f, "systemd:{n}"),
        }
    }
}

/// Where the admin endpoint listens (`admin.bind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBind {
    /// `IP:PORT`: plain HTTP over TCP.
    Tcp(SocketAddr),
    /// `unix:/ABSOLUTE/PATH`: a Unix socket, mode 0660, replaced at start when stale, removed on
    /// exit; access is whoever can open the file.
    Unix(PathBuf),
}

impl std::fmt::Display for AdminBind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminBind::Tcp(a) => write!(f, "{a}"),
            AdminBind::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// With `acme` set, `Files` may be empty (every name is ACME's).
    pub certificates: CertSource,
    pub min_version: TlsVersion,
    /// `client_auth`: ask clients for a certificate; `None` = never ask.
    pub client_auth: Option<ClientAuth>,
    /// Certificates obtained automatically; files in `certificates` win for their own names.
    pub acme: Option<AcmeConfig>,
}

/// `listeners[i].tls.client_auth`: client certificates (mTLS) verified against `ca`.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// PEM bundle of the CAs that issue client certificates (at least one certificate).
    pub ca: PathBuf,
    /// True: no valid certificate, no handshake. False: a client may send none.
    pub required: bool,
    /// Revocation list file (PEM, one or more lists, or one DER list).
    pub crl: Option<PathBuf>,
}

/// `tls.acme`: one certificate for `domains`, obtained with TLS-ALPN-01 on the listener itself.
/// Equal blocks share one long-lived manager across reloads (`crate::acme`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcmeConfig {
    /// Lower-case DNS names, in config order; the first is the certificate's main name.
    pub domains: Vec<String>,
    /// Contact e-mail address (sent as `mailto:`).
    pub email: Option<String>,
    /// Directory URL (https).
    pub directory: String,
    /// CA certificate(s) trusted for the directory's HTTPS, instead of the system roots.
    pub ca: Option<PathBuf>,
    /// Account key and certificates live here (created 0700, files 0600).
    pub state_dir: PathBuf,
    /// Renew once the certificate expires within this.
    pub renew_before: Duration,
}

#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files, paths already resolved against the config file's directory. First = default.
    Files(Vec<CertFiles>),
    /// Generate one self-signed certificate in memory at start for these names (DNS names or IPs).
    SelfSigned(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Where in the YAML this pair was named, e.g. `wsgate.yaml:7:11`, for load errors.
    pub origin: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// Time and size bounds for every stage. Defaults are safe for the open internet.
#[derive(Debug, Clone)]
pub struct Limits {
    pub tls_handshake_timeout: Duration,
    pub request_header_timeout: Duration,
    pub max_request_header_bytes: usize,
    pub max_request_headers: usize,
    pub backend_connect_timeout: Duration,
    pub backend_handshake_timeout: Duration,
    /// Bound on a non-101 answer body relayed to the client.
    pub max_relayed_body_bytes: usize,
    /// Bound on the body of a request proxied by `http: proxy` (read whole before the backend
    /// is contacted; over it: 413).
    pub max_request_body_bytes: usize,
    /// Bound on the answer body of a proxied request (over it: 502).
    pub max_response_body_bytes: usize,
    /// The whole exchange of a proxied request: its body, the backend's answer head (which a
    /// long-polling backend holds back until it has news) and the answer body.
    pub http_request_timeout: Duration,
    pub tunnel_idle_timeout: Duration,
    /// After one side of a tunnel ended (EOF), how long the other may stay open.
    pub tunnel_half_close_timeout: Duration,
    pub drain_timeout: Duration,
    /// How long wsgate waits for a frame in flight to finish before its own Close, and then for
    /// each peer's Close reply.
    pub close_timeout: Duration,
    /// Close 1001 goes to the open sessions spread evenly over this window during a drain.
    pub drain_spread: Duration,
    /// Open client connections in all, checked at accept before any TLS work.
    pub max_connections: u32,
    /// Per client address (IPv6 keyed by /64).
    pub per_ip: PerIp,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tls_handshake_timeout: Duration::from_secs(10),
            request_header_timeout: Duration::from_secs(10),
            max_request_header_bytes: 16 * 1024,
            max_request_headers: 100,
            backend_connect_timeout: Duration::from_secs(5),
            backend_handshake_timeout: Duration::from_secs(10),
            max_relayed_body_bytes: 64 * 1024,
            max_request_body_bytes: 1024 * 1024,
            max_response_body_bytes: 1024 * 1024,
            http_request_timeout: Duration::from_secs(60),
            tunnel_idle_timeout: Duration::from_secs(3600),
            tunnel_half_close_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            drain_spread: Duration::ZERO,
            max_connections: 100_000,
            per_ip: PerIp::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Lower-case host without port; `None` matches any host.
    pub host: Option<String>,
    /// Normalised path prefix starting with `/`.
    pub path: String,
    pub pool: String,
    /// Admission policy (route keys over `defaults:`).
    pub policy: Policy,
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub name: String,
    pub backends: Vec<BackendConfig>,
    /// How a backend is picked (default round robin).
    pub balance: Balance,
    /// TLS towards `wss://` backends of this pool (CA, SNI override, client certificate).
    pub tls: Option<BackendTls>,
    /// Send a PROXY header with the client address first.
    pub proxy_protocol: Option<ProxyVersion>,
    /// Active health checks; `None` = none (backends are up until passive checks say otherwise).
    pub health: Option<HealthCheck>,
    /// Passive ejection after consecutive failures.
    pub passive: Passive,
    /// Other backends tried after a connect failure, timeout or reset before an answer head.
    pub retries: u32,
}

#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// As written, for logs and as the key of its health state across reloads.
    pub url: String,
    /// `host:port` to connect to (host may be a name, resolved at connect time).
    pub authority: String,
    /// `wss://`: speak TLS to this backend.
    pub tls: bool,
    /// Host name for SNI and certificate verification (the URL host, unless `tls.server_name`).
    pub host: String,
    /// Relative weight (default 1, 1..=1000).
    pub weight: u32,
}

/// `balance:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    /// Smooth weighted round robin.
    #[default]
    RoundRobin,
    /// Fewest live tunnels, weighted.
    LeastConnections,
    /// Power of two random choices by live tunnels.
    RandomTwo,
    /// Weighted rendezvous hashing on a request key; a missing key falls back to least connections.
    Hash(HashKey),
}

/// What `balance: { hash: ... }` hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Header(String),
    Cookie(String),
    Query(String),
    Path,
    ClientIp,
    Subprotocol,
}

/// `pools.NAME.tls`.
#[derive(Debug, Clone, Default)]
pub struct BackendTls {
    /// PEM CA bundle; `None` = the system roots.
    pub ca: Option<PathBuf>,
    /// SNI and verification name instead of the URL host.
    pub server_name: Option<String>,
    /// Client certificate and key (mTLS), PEM.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    V1,
    V2,
}

/// `pools.NAME.health`.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes before a down backend is up again.
    pub rise: u32,
    /// Consecutive failures before an up backend is down.
    pub fall: u32,
    pub kind: HealthKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthKind {
    /// A TCP connect.
    Tcp,
    /// A WebSocket handshake to this path (Accept verified), then a clean Close 1000.
    WebSocket(String),
}

/// `pools.NAME.passive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passive {
    /// Consecutive connect failures or bad handshakes before ejection (0 = never).
    pub failures: u32,
    pub cooldown: Duration,
}

impl Default for Passive {
    fn default() -> Self {
        Passive {
            failures: 3,
            cooldown: Duration::from_secs(10),
        }
    }
}
