//! Assertions shared by the refusal tests: what the client got, what was counted, and that the
//! backend never saw the request.

use tokio::io::AsyncWriteExt;

use super::client::{Answer, ClientStream, exchange, read_head};
use super::echo::EchoBackend;
use super::head::{ACCEPT, Head};
use super::proxy::TestProxy;
use super::scripted::ScriptedBackend;
use super::{eventually, within};

/// Anything that counts the connections the proxy opened to it.
pub trait Backend {
    fn accepted(&self) -> usize;
}

impl Backend for EchoBackend {
    fn accepted(&self) -> usize {
        EchoBackend::accepted(self)
    }
}

impl Backend for ScriptedBackend {
    fn accepted(&self) -> usize {
        ScriptedBackend::accepted(self)
    }
}

impl From<Head> for Vec<u8> {
    fn from(head: Head) -> Vec<u8> {
        head.bytes()
    }
}

/// Send `request` on a fresh connection and check the refusal: `status`, `Connection: close`,
/// a body matching its `Content-Length`, the connection closed, `reason` counted once, and no
/// connection to `backend`.
pub async fn assert_refused(
    proxy: &TestProxy,
    backend: &impl Backend,
    request: impl Into<Vec<u8>>,
    status: u16,
    reason: &str,
) -> Answer {
    let stats = proxy.stats();
    let before = stats.refusals(reason);
    let answer = exchange(&mut proxy.connect().await, &request.into()).await;
    assert_eq!(
        answer.status, status,
        "expected {status} {reason}, got {answer:#?}"
    );
    assert_closing(&answer);
    eventually(&format!("refusal {reason} to be counted"), || {
        stats.refusals(reason) == before + 1
    })
    .await;
    assert_eq!(
        backend.accepted(),
        0,
        "the backend was contacted for a {reason} refusal"
    );
    answer
}

/// `Connection: close` and a body exactly as long as `Content-Length` says.
pub fn assert_closing(answer: &Answer) {
    assert!(
        answer.has_token("Connection", "close"),
        "a closing answer says Connection: close: {answer:#?}"
    );
    if let Some(len) = answer.header("Content-Length") {
        assert_eq!(
            len.parse::<usize>().ok(),
            Some(answer.body.len()),
            "body length matches Content-Length, nothing after it: {answer:#?}"
        );
    }
}

/// Send `request` on a fresh connection and expect the backend's 101 for the sample key.
/// The connection stays open.
pub async fn assert_upgraded(proxy: &TestProxy, request: impl Into<Vec<u8>>) -> ClientStream {
    let mut conn = proxy.connect().await;
    within("writing the request", conn.write_all(&request.into()))
        .await
        .expect("write request");
    let answer = read_head(&mut conn).await;
    assert_eq!(answer.status, 101, "expected a tunnel, got {answer:#?}");
    assert_eq!(answer.header("Sec-WebSocket-Accept"), Some(ACCEPT));
    conn
}
