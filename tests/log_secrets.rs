//! Credentials never reach the logs: `wsgate run` at `debug`, tokens sent every way a route can
//! take them (Authorization, query, cookie, subprotocol), admitted and refused (bad signature,
//! expired, two Authorization fields), other cookies and query parameters beside them. The whole stderr of
//! the process is searched for every secret after it has exited, and must hold the session
//! records and refusals (so the search looked at real records).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::SinkExt;
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::client::WsRequest;
use support::tokens::{SigningKey, bearer, claims, jwt_policy, now};
use support::{EchoBackend, TestCa, next_message};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// The child's stderr, line by line, as it comes.
struct Logs {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Logs {
    fn until(&mut self, what: &str) -> String {
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line.clone());
            if line.contains(what) {
                return line;
            }
        }
        panic!("no log line with {what:?}; got:\n{}", self.seen.join("\n"));
    }

    /// Everything, up to the end of the stream (the process has exited).
    fn rest(mut self) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        self.seen
    }
}

fn listening_addr(line: &str) -> SocketAddr {
    let at = line.find("addr=").expect("addr field") + "addr=".len();
    let addr = line[at..].split_whitespace().next().expect("an address");
    addr.parse().expect("a socket address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_cookies_and_query_strings_never_reach_the_logs() {
    let backend = EchoBackend::start().await;
    let ca = TestCa::new();
    let leaf = ca.leaf(&["localhost"]);
    let key = SigningKey::new(Algorithm::ES256);
    let dir = tempfile::tempdir().expect("tempdir");
    let (key_file, key_pem) = key.pem_file();
    for (name, text) in [
        ("cert.pem", leaf.cert_pem.as_str()),
        ("key.pem", leaf.key_pem.as_str()),
        (key_file, key_pem),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write file");
    }
    let from = "token_from: [ header, { query: access_token }, { cookie: session }, subprotocol ]";
    let policy = jwt_policy(&key.pem_entry(), "", from);
    let yaml = format!(
        "listeners:\n  - name: public\n    bind: \"127.0.0.1:0\"\n    tls:\n      certificates:\n        \
         - {{ cert: cert.pem, key: key.pem }}\nroutes:\n  - {{ path: /chat, pool: echo, {policy} }}\n\
         pools:\n  echo:\n    backends: [ {{ url: \"ws://{}\" }} ]\n",
        backend.addr()
    );
    let config = dir.path().join("wsgate.yaml");
    std::fs::File::create(&config)
        .and_then(|mut f| f.write_all(yaml.as_bytes()))
        .expect("write config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["run", "--config"])
        .arg(&config)
        .env("WSGATE_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsgate run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut logs = Logs {
        lines,
        seen: Vec::new(),
    };
    let addr = listening_addr(&logs.until("listening"));
    let tls = ca.client_config();
    let chat = |path: &str| WsRequest::to(addr, tls.clone(), path);

    // One distinct token per way in, each admitted and echoing.
    let sign = |n: u32| key.sign(&claims(json!({ "jti": format!("secret-{n}") })));
    let tokens: Vec<String> = (0..4).map(sign).collect();
    let admitted = [
        chat("/chat?room=lobby").header("Authorization", &bearer(&tokens[0])),
        chat(&format!("/chat?access_token={}&room=lobby", tokens[1])),
        chat("/chat").header("Cookie", &format!("theme=dark; session={}", tokens[2])),
        chat("/chat").header("Sec-WebSocket-Protocol", &format!("bearer, {}", tokens[3])),
    ];
    for attempt in admitted {
        let (mut ws, _) = attempt.connect().await.expect("admitted");
        ws.send(Message::text("hello")).await.expect("send");
        assert_eq!(next_message(&mut ws).await, Message::text("hello"));
        ws.close(None).await.expect("close");
    }
    // Refused: a forged signature, an expired token, two tokens at once.
    let genuine = key.sign(&claims(json!({ "jti": "forged" })));
    let (signed, signature) = genuine.rsplit_once('.').expect("three parts");
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{flipped}{}", &signature[1..]);
    let expired = key.sign(&claims(json!({ "exp": now() - 600, "jti": "expired" })));
    let refused = [
        chat("/chat").header("Authorization", &bearer(&forged)),
        chat(&format!("/chat?access_token={expired}")),
        chat("/chat")
            .header("Authorization", &bearer(&tokens[0]))
            .header("Authorization", &bearer(&tokens[1])),
    ];
    for attempt in refused {
        attempt.connect().await.expect_err("refused");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let exit = done_rx
        .recv_timeout(WAIT)
        .expect("wsgate exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    let all = logs.rest().join("\n");

    // The search looked at real records: four sessions and three refusals.
    assert_eq!(all.matches("wsgate::session").count(), 4, "{all}");
    for reason in ["token_invalid", "duplicate_token"] {
        assert!(all.contains(reason), "no refusal {reason} in:\n{all}");
    }
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.extend([forged.as_str(), expired.as_str()]);
    for secret in &secrets {
        // Any part of a token: the signature alone is the secret that matters most.
        for part in secret.split('.').filter(|p| p.len() > 8) {
            assert!(!all.contains(part), "a token part reached the logs:\n{all}");
        }
    }
    for marker in [
        "access_token",
        "session=",
        "theme=dark",
        "room=lobby",
        "Bearer",
    ] {
        assert!(!all.contains(marker), "{marker:?} reached the logs:\n{all}");
    }
}
