//! Loopback backends for the `plain` tests, on raw TCP so that the bytes on the wire are exactly
//! what a test says: each connection's request (head, then a `Content-Length` body) is recorded,
//! then the backend writes its answer and closes, or holds the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Upper bound on any single wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Await `fut`, failing the test if it takes longer than [`TIMEOUT`].
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// What the backend does once it read a request.
#[derive(Clone)]
pub enum Reply {
    /// Write these bytes, then close.
    Close(Vec<u8>),
    /// Write these bytes (maybe none), then keep the connection until the proxy closes it.
    Hold(Vec<u8>),
}

pub struct Backend {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    seen: mpsc::UnboundedReceiver<Got>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(reply: Reply) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("backend address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, seen) = mpsc::unbounded_channel();
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(tcp, reply.clone(), tx.clone()));
            }
        });
        Backend {
            addr,
            accepted,
            seen,
            task,
        }
    }

    /// An answer with this status line tail, fields and body, then close.
    pub async fn answering(answer: &str) -> Backend {
        Backend::start(Reply::Close(answer.as_bytes().to_vec())).await
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next request the backend read whole.
    pub async fn request(&mut self) -> Got {
        within("a request at the backend", self.seen.recv())
            .await
            .expect("backend still running")
    }
}

async fn serve(mut tcp: TcpStream, reply: Reply, seen: mpsc::UnboundedSender<Got>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let got = loop {
        if let Some(got) = Got::parse(&buf) {
            break got;
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let _ = seen.send(got);
    match reply {
        Reply::Close(bytes) => {
            let _ = tcp.write_all(&bytes).await;
            let _ = tcp.shutdown().await;
        }
        Reply::Hold(bytes) => {
            let _ = tcp.write_all(&bytes).await;
            while matches!(tcp.read(&mut chunk).await, Ok(n) if n > 0) {}
        }
    }
}

/// One request as the backend read it.
#[derive(Debug)]
pub struct Got {
    /// A PROXY v1 line that came first, if any.
    pub proxy: Option<String>,
    /// The request line.
    pub line: String,
    /// Field lines as sent (names in the case they had on the wire).
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Got {
    /// A whole request (head and `Content-Length` body) at the start of `buf`, if there is one.
    fn parse(buf: &[u8]) -> Option<Got> {
        let text = String::from_utf8_lossy(buf);
        let (proxy, rest) = match text.strip_prefix("PROXY ") {
            Some(_) => {
                let (line, rest) = text.split_once("\r\n")?;
                (Some(line.to_owned()), rest)
            }
            None => (None, &text[..]),
        };
        let (head, body) = rest.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let line = lines.next()?.to_owned();
        let fields: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
            .collect();
        let got = Got {
            proxy,
            line,
            fields,
            body: body.as_bytes().to_vec(),
        };
        let length: usize = got
            .field("content-length")
            .map_or(0, |v| v.parse().unwrap_or(0));
        (got.body.len() >= length).then_some(got)
    }

    /// Every value of `name` (case-insensitive).
    pub fn all(&self, name: &str) -> Vec<&str> {
        (self.fields.iter())
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }
}
