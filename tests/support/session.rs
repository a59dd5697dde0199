//! One session through a proxy between two raw [`Peer`]s, and the checks every row of the close
//! matrix makes: the exact Close each leg got (masked towards the backend, unmasked towards the
//! client) as the last frame of that leg, nothing of a later frame after it, the
//! `wsgate_session_closes_total` series, and the registry and tunnel gauge back to empty.

use super::eventually;
use super::frames::Frame;
use super::head::Head;
use super::peer::{LATE, Manners, Peer, RawBackend, raw_client};
use super::proxy::TestProxy;
use super::tokens::{AUDIENCE, ISSUER, SigningKey};

/// The route label of the session route `/s`.
pub const ROUTE: &str = "*/s";

/// A session to set up: the route policy, the proxy limits, both peers' manners.
pub struct Spec {
    policy: String,
    limits: Vec<(String, String)>,
    files: Vec<(String, String)>,
    head: Head,
    answer: Vec<String>,
    pub client: Manners,
    pub backend: Manners,
}

/// A peer that answers Pings, and answers a Close after sending a [`LATE`] text first.
pub fn late(masked: bool) -> Manners {
    Manners {
        late: true,
        ..Manners::polite(masked)
    }
}

impl Spec {
    /// Route `/s` under `policy` (flow-YAML route keys; may be empty), `close_timeout: 1s`.
    pub fn new(policy: &str) -> Spec {
        Spec {
            policy: policy.into(),
            limits: vec![("close_timeout".into(), "1s".into())],
            files: Vec::new(),
            head: Head::upgrade("/s"),
            answer: Vec::new(),
            client: late(true),
            backend: late(false),
        }
    }

    /// Set a `limits:` key (replacing the default `close_timeout`).
    pub fn limit(mut self, key: &str, value: &str) -> Spec {
        self.limits.retain(|(k, _)| k != key);
        self.limits.push((key.into(), value.into()));
        self
    }

    pub fn file(mut self, name: &str, contents: &str) -> Spec {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// Add a field line to the client's upgrade request.
    pub fn header(mut self, name: &str, value: &str) -> Spec {
        self.head = self.head.header(name, value);
        self
    }

    /// Add a field line to the backend's 101.
    pub fn answer_line(mut self, line: &str) -> Spec {
        self.answer.push(line.into());
        self
    }

    pub fn client(mut self, m: Manners) -> Spec {
        self.client = m;
        self
    }

    pub fn backend(mut self, m: Manners) -> Spec {
        self.backend = m;
        self
    }

    /// Start a backend and a proxy, and open the session.
    pub async fn start(self) -> Rig {
        let lines: Vec<&str> = self.answer.iter().map(String::as_str).collect();
        let backend = RawBackend::start(&lines, self.backend).await;
        let mut b = TestProxy::builder().route(None, "/s", backend.addr());
        if !self.policy.is_empty() {
            b = b.policy(&self.policy);
        }
        for (k, v) in &self.limits {
            b = b.limit(k, v);
        }
        for (name, contents) in &self.files {
            b = b.file(name, contents.as_bytes());
        }
        let proxy = b.start().await;
        let (_, client) = raw_client(&proxy, &self.head, self.client).await;
        let (head, server) = backend.next().await;
        Rig {
            proxy,
            backend,
            client,
            server,
            head,
        }
    }
}

/// A route policy accepting tokens from `key` (its PEM in [`SigningKey::pem_file`]) with this
/// `leeway`: the session ends `leeway` after the token's `exp`.
pub fn jwt_route(key: &SigningKey, leeway: &str) -> String {
    format!(
        "auth: {{ jwt: {{ keys: [ {} ], issuer: \"{ISSUER}\", audience: {AUDIENCE}, \
         leeway: {leeway} }} }}",
        key.pem_entry()
    )
}

/// A live session between two raw peers.
pub struct Rig {
    pub proxy: TestProxy,
    pub backend: RawBackend,
    pub client: Peer,
    pub server: Peer,
    /// The request head the backend received.
    pub head: String,
}

/// What a leg is expected to get from wsgate: a Close with this code and reason, or none.
pub type Farewell = Option<(u16, &'static str)>;

impl Rig {
    /// Both legs end with exactly these farewells, nothing after them.
    pub async fn ends(&self, to_client: Farewell, to_backend: Farewell) -> [Vec<Frame>; 2] {
        let c = self.client.closed("client").await;
        let b = self.server.closed("backend").await;
        assert_farewell("client", &c, to_client, false);
        assert_farewell("backend", &b, to_backend, true);
        [c, b]
    }

    /// `wsgate_session_closes_total` counts this session with `code` (`none` for no Close) and
    /// `closed_by`; the registry is empty and no tunnel is open.
    pub async fn counted(&self, code: &str, closed_by: &str) -> String {
        let stats = self.proxy.stats();
        let series = closes(code, closed_by);
        eventually(&format!("{series} to read 1"), || {
            sample(&stats.metrics().encode(), &series) == Some(1.0)
        })
        .await;
        eventually("the session to leave the registry", || {
            stats.sessions.is_empty() && stats.open_tunnels() == 0
        })
        .await;
        let text = stats.metrics().encode();
        assert_eq!(
            sum(&text, "wsgate_session_closes_total{"),
            1.0,
            "one session, one close:\n{text}"
        );
        text
    }
}

/// `frames` (everything a leg got) hold no [`LATE`] text and end with `expect`, the only Close.
pub fn assert_farewell(leg: &str, frames: &[Frame], expect: Farewell, masked: bool) {
    assert!(
        !frames.iter().any(|f| f.payload == LATE.as_bytes()),
        "{leg} leg got a frame sent after wsgate's Close: {frames:?}"
    );
    let closes: Vec<&Frame> = frames.iter().filter(|f| f.opcode() == 8).collect();
    let Some((code, reason)) = expect else {
        assert!(
            closes.is_empty(),
            "{leg} leg: no Close expected, got {closes:?}"
        );
        return;
    };
    assert_eq!(closes.len(), 1, "{leg} leg: one Close expected: {frames:?}");
    let last = frames.last().expect("a Close was found");
    assert_eq!(
        last.opcode(),
        8,
        "{leg} leg: something after the Close: {frames:?}"
    );
    assert_eq!(last.close(), Some((code, reason.to_string())), "{leg} leg");
    assert_eq!(last.masked, masked, "{leg} leg: masking of wsgate's Close");
}

/// The series name of one session close.
pub fn closes(code: &str, closed_by: &str) -> String {
    format!(
        r#"wsgate_session_closes_total{{route="{ROUTE}",code="{code}",closed_by="{closed_by}"}}"#
    )
}

/// The value of the sample line `series` (name and labels exactly as exposed), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

/// The sum of every sample whose series starts with `prefix`.
pub fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Data frames (text, binary, continuation) a leg got, as text.
pub fn texts(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.opcode() < 8)
        .map(|f| String::from_utf8_lossy(&f.payload).into_owned())
        .collect()
}
