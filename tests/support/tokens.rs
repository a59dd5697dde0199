//! Credentials made at test time and the HTTP services that vouch for them.
//!
//! [`SigningKey`] is a key pair made by rcgen (ES256, RS256, EdDSA): its public half goes into
//! the proxy's config as a PEM file or a JWK, its private half signs tokens with jsonwebtoken.
//! [`claims`] are claims the test policy ([`jwt_policy`]) accepts; [`unsigned`] and [`hs256`]
//! forge the tokens an attacker would try. [`guarded`] starts a proxy with a policy in front of
//! an echo backend and [`connect_with`] opens a tunnel with a bearer token. [`HttpStub`] is an
//! HTTP/1.1 server on `127.0.0.1:0` standing in for an identity provider (JWKS) or an
//! `auth.request` service; it records every request head and counts connections, and its answer
//! can be changed while it runs (one answer per connection, or keep-alive).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::SinkExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::client::{Ws, next_message};
use super::echo::EchoBackend;
use super::proxy::TestProxy;
use super::{read_head_bytes, within};

/// The issuer and audience the test policies pin (see [`jwt_policy`]).
pub const ISSUER: &str = "https://id.test";
pub const AUDIENCE: &str = "chat";

/// A key pair for one algorithm, with an optional `kid` put in every token it signs.
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: Option<String>,
    signing: EncodingKey,
    /// SubjectPublicKeyInfo PEM: what a `file:` key is.
    pub public_pem: String,
    /// The raw public key (EC point, Ed25519 bytes) a JWK is made of.
    public_raw: Vec<u8>,
}

impl SigningKey {
    /// A fresh key pair for `alg` (ES256, RS256 or EdDSA).
    pub fn new(alg: Algorithm) -> SigningKey {
        let rcgen_alg = match alg {
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::RS256 => &rcgen::PKCS_RSA_SHA256,
            Algorithm::EdDSA => &rcgen::PKCS_ED25519,
            other => panic!("no test key for {other:?}"),
        };
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).expect("generate a key pair");
        let private = pair.serialize_pem();
        let signing = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()),
            Algorithm::RS256 => EncodingKey::from_rsa_pem(private.as_bytes()),
            _ => EncodingKey::from_ed_pem(private.as_bytes()),
        }
        .expect("rcgen's PEM is a valid private key");
        SigningKey {
            alg,
            kid: None,
            signing,
            public_pem: pair.public_key_pem(),
            public_raw: pair.public_key_raw().to_vec(),
        }
    }

    /// The same key, naming itself `kid` (in its JWK and in the tokens it signs).
    pub fn with_kid(mut self, kid: &str) -> SigningKey {
        self.kid = Some(kid.into());
        self
    }

    /// This key as a `keys:` entry reading its PEM from `issuer.pem` (see [`Self::pem_file`]).
    pub fn pem_entry(&self) -> String {
        format!("{{ file: issuer.pem, alg: {:?} }}", self.alg)
    }

    /// The file [`Self::pem_entry`] names, for [`guarded`].
    pub fn pem_file(&self) -> (&'static str, &str) {
        ("issuer.pem", &self.public_pem)
    }

    /// A compact JWS of `claims`, header `{alg, kid}`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid.as_deref(), claims)
    }

    /// The same, with another `kid` in the header (or none).
    pub fn sign_as(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.signing).expect("sign test claims")
    }

    /// The public key as a JWK (RFC 7517 / RFC 8037), `use: sig`, with `alg` and `kid`.
    pub fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match self.alg {
            // Uncompressed point: 0x04 || x || y.
            Algorithm::ES256 => json!({
                "kty": "EC", "crv": "P-256",
                "x": b64(&self.public_raw[1..33]), "y": b64(&self.public_raw[33..65]),
            }),
            Algorithm::EdDSA => {
                json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&self.public_raw) })
            }
            other => panic!("no JWK for {other:?} test keys"),
        };
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(format!("{:?}", self.alg));
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }
}

/// A JWKS document holding these keys.
pub fn jwks(keys: &[&SigningKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Claims the policy of [`jwt_policy`] accepts (`sub: alice`, valid for a minute), with `extra`
/// merged over them (`json!({ "exp": now() - 600 })`, `json!({ "iss": null })`...).
pub fn claims(extra: Value) -> Value {
    let mut c = json!({
        "sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 60,
    });
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    c
}

/// A route policy: `auth.jwt` over `keys` (flow YAML list entries) with the test issuer and
/// audience and 5 s leeway, then `jwt_more` inside `jwt` (`require: { scope: chat }`) and `more`
/// inside `auth` (`forward_token: true`, `token_from: [...]`).
pub fn jwt_policy(keys: &str, jwt_more: &str, more: &str) -> String {
    let comma = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!(", {s}")
        }
    };
    format!(
        "auth: {{ jwt: {{ keys: [ {keys} ], issuer: \"{ISSUER}\", audience: {AUDIENCE}, \
         leeway: 5s{} }}{} }}",
        comma(jwt_more),
        comma(more)
    )
}

/// An `alg: none` token (RFC 7519 §6): no signature at all.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// An HS256 token with `secret` as the HMAC key (with a public key's PEM bytes: the algorithm
/// confusion attack).
pub fn hs256(secret: &[u8], claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("HS256 sign")
}

/// `Bearer <token>` for `Authorization`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A proxy whose `/chat` route goes to a new [`EchoBackend`] under `policy`, with `files` next
/// to its config.
pub async fn guarded(policy: &str, files: &[(&str, &str)]) -> (TestProxy, EchoBackend) {
    let backend = EchoBackend::start().await;
    let mut builder = TestProxy::builder()
        .route(None, "/chat", backend.addr())
        .policy(policy);
    for (name, contents) in files {
        builder = builder.file(name, contents.as_bytes());
    }
    (builder.start().await, backend)
}

/// One message there and back through `ws`.
pub async fn assert_echoes(ws: &mut Ws) {
    let msg = Message::text("through an authenticated tunnel");
    within("send", ws.send(msg.clone())).await.expect("send");
    assert_eq!(next_message(ws).await, msg);
}

/// A WebSocket to `/chat` with `Authorization: Bearer token`; panics unless admitted and echoing.
pub async fn connect_with(proxy: &TestProxy, token: &str) -> Ws {
    let attempt = proxy.ws("/chat").header("Authorization", &bearer(token));
    let (mut ws, _) = attempt.connect().await.expect("admitted");
    assert_echoes(&mut ws).await;
    ws
}

/// What an [`HttpStub`] does with a request.
#[derive(Clone)]
pub enum Reply {
    /// Write these bytes and close.
    Bytes(Vec<u8>),
    /// Write these bytes and keep the connection for the next request (HTTP/1.1 keep-alive).
    KeepAlive(Vec<u8>),
    /// Read the head, never answer; hold the connection until the peer closes it.
    Silent,
}

/// A whole HTTP/1.1 answer with `Content-Length` and `Connection: close`.
pub fn http_answer(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut out = format!("HTTP/1.1 {status} Test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    Reply::Bytes(out.into_bytes())
}

/// The same answer without `Connection: close`, the connection kept for the next request.
pub fn keep_alive_answer(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut out = format!("HTTP/1.1 {status} Test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Reply::KeepAlive(out.into_bytes())
}

/// `200` with a JSON body.
pub fn json_answer(body: &str) -> Reply {
    http_answer(200, &[("Content-Type", "application/json")], body)
}

/// An HTTP service on 127.0.0.1 answering each connection with the current [`Reply`].
pub struct HttpStub {
    addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    heads: Arc<Mutex<Vec<String>>>,
    connects: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl HttpStub {
    /// Serve on a fresh port.
    pub async fn start(reply: Reply) -> HttpStub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stub");
        HttpStub::serve(listener, reply)
    }

    /// Serve on `addr` (a port the test reserved and released: a service that comes up late).
    pub async fn start_at(addr: SocketAddr, reply: Reply) -> HttpStub {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("rebind the reserved port {addr}: {e}"));
        HttpStub::serve(listener, reply)
    }

    fn serve(listener: TcpListener, reply: Reply) -> HttpStub {
        let addr = listener.local_addr().expect("stub address");
        let reply = Arc::new(Mutex::new(reply));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let connects = Arc::new(AtomicUsize::new(0));
        let (r, h, c) = (reply.clone(), heads.clone(), connects.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(tcp, r.clone(), h.clone()));
            }
        });
        HttpStub {
            addr,
            reply,
            heads,
            connects,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer later connections with `reply`.
    pub fn set(&self, reply: Reply) {
        *self.reply.lock().expect("no panics while locked") = reply;
    }

    /// TCP connections accepted so far.
    pub fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }

    /// Every request head received so far, in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("no panics while locked").clone()
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut tcp: TcpStream, reply: Arc<Mutex<Reply>>, heads: Arc<Mutex<Vec<String>>>) {
    // The proxy bounds its own requests; a stub connection lives at most as long as the test.
    // Requests have no body, and the proxy waits for each answer (no pipelining).
    while let Ok(Some((head, _))) = read_head_bytes(&mut tcp).await {
        let head = String::from_utf8_lossy(&head).into_owned();
        heads.lock().expect("no panics while locked").push(head);
        let reply = reply.lock().expect("no panics while locked").clone();
        match reply {
            Reply::Bytes(bytes) => {
                let _ = tcp.write_all(&bytes).await;
                let _ = tcp.shutdown().await;
                return;
            }
            Reply::KeepAlive(bytes) => {
                if tcp.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::Silent => {
                let mut sink = [0u8; 1024];
                while let Ok(1..) = tcp.read(&mut sink).await {}
                return;
            }
        }
    }
}

/// A `200` whose chunked body has one ordinary 32-byte chunk, then declares a chunk of
/// `fffffffffffffff0` bytes (near 2^64) and ends: the size plus what was read overflows, which
/// once panicked a hand-written chunk decoder.
pub fn huge_chunk_answer() -> Reply {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    let first = format!("20\r\n{}\r\n", " ".repeat(32));
    Reply::Bytes(format!("{head}{first}fffffffffffffff0\r\n{{\"keys\": [").into_bytes())
}

/// The value of field `name` in a raw request head (case-insensitive), if present once or more.
pub fn head_field<'h>(head: &'h str, name: &str) -> Vec<&'h str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}
