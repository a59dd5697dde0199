//! Frames in flight when wsgate closes (#9): its Close waits for the frame boundary, so a 16 MiB
//! message the backend is halfway through writing when the drain starts reaches the client
//! whole and the Close comes right after its last byte (the same towards the backend, masked).
//! A peer gets `close_timeout` to answer the Close; a frame that never finishes within it costs
//! that leg its Close rather than cutting the frame.

mod support;

use support::frames::{close, frame};
use support::peer::{LATE, Manners};
use support::session::Spec;
use support::*;

const SIZE: usize = 16 * 1024 * 1024;

#[tokio::test]
async fn a_16mib_message_in_flight_at_drain_arrives_whole_before_the_close() {
    // The backend plays its own close handshake (an automatic reply would land inside the
    // message it is still writing). 16 MiB through TLS in a debug build: a generous bound.
    let mut rig = Spec::new("")
        .backend(Manners::default())
        .limit("close_timeout", "8s")
        .start()
        .await;
    let message: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let whole = frame(0x82, &message, false);
    let (first, rest) = whole.split_at(10 + SIZE / 2);
    rig.server.send(first.to_vec());
    eventually("the first MiB to reach the client", || {
        rig.client.received_len() > 1024 * 1024
    })
    .await;

    rig.proxy.drain();
    let stats = rig.proxy.stats();
    eventually("the session to be asked to close", || {
        stats
            .sessions
            .snapshot()
            .iter()
            .all(|h| h.requested().is_some())
    })
    .await;
    let away = (1001, "going away");
    // Nothing flows towards the backend: its Close goes out at once.
    rig.server.until_close("backend").await;
    rig.server.send(rest.to_vec());
    rig.server.send(frame(0x81, LATE.as_bytes(), false));
    rig.server.send(close(1001, "", false));

    let [c, _] = rig.ends(Some(away), Some(away)).await;
    assert_eq!(c.len(), 2, "the message, then the Close");
    assert_eq!(c[0].first, 0x82);
    assert!(
        c[0].payload == message,
        "the message arrived whole and unchanged"
    );
    rig.counted("1001", "wsgate").await;
    rig.proxy.stopped().await;
}

#[tokio::test]
async fn a_client_frame_in_flight_at_lifetime_end_reaches_the_backend_whole_before_the_close() {
    let rig = Spec::new("session: { max_lifetime: 300ms }")
        .client(Manners::default())
        .start()
        .await;
    let message = vec![b'c'; 256 * 1024];
    let whole = frame(0x82, &message, true);
    let (first, rest) = whole.split_at(whole.len() / 2);
    rig.client.send(first.to_vec());
    // The lifetime passes while the frame is half sent; its Close waits for the boundary.
    let c = rig.client.until_close("client").await;
    assert_eq!(c.len(), 1, "{c:?}");
    rig.client.send(rest.to_vec());
    rig.client.send(frame(0x81, LATE.as_bytes(), true));
    rig.client.send(close(1001, "", true));
    let lifetime = (1001, "session lifetime");
    let [_, b] = rig.ends(Some(lifetime), Some(lifetime)).await;
    assert_eq!(b.len(), 2, "the frame, then the Close");
    assert!(
        b[0].payload == message,
        "the frame arrived whole and unchanged"
    );
    rig.counted("1001", "wsgate").await;
}

#[tokio::test]
async fn a_peer_that_never_answers_the_close_is_cut_after_close_timeout() {
    let rig = Spec::new("session: { max_lifetime: 100ms }")
        .backend(Manners::default())
        .limit("close_timeout", "600ms")
        .start()
        .await;
    rig.server.until_close("backend").await;
    let asked = tokio::time::Instant::now();
    let lifetime = (1001, "session lifetime");
    rig.ends(Some(lifetime), Some(lifetime)).await;
    let waited = asked.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(500),
        "the backend had close_timeout to answer, got {waited:?}"
    );
    rig.counted("1001", "wsgate").await;
}

#[tokio::test]
async fn a_frame_that_never_finishes_costs_its_leg_the_close() {
    let mut rig = Spec::new("")
        .backend(Manners::default())
        .limit("close_timeout", "300ms")
        .start()
        .await;
    let whole = frame(0x82, &vec![b'b'; 64 * 1024], false);
    rig.server.send(whole[..1024].to_vec());
    eventually("the frame to start at the client", || {
        rig.client.received_len() > 0
    })
    .await;
    rig.proxy.drain();
    // The backend's Close (a reply would be payload of its own unfinished frame) and no more.
    rig.server.until_close("backend").await;
    eventually("the proxy to cut the client leg", || rig.client.ended()).await;
    let (c, rest) = rig.client.frames();
    assert!(c.is_empty(), "no Close inside a frame: {c:?}");
    assert_eq!(rest.len(), 1024, "only the part the backend sent");
    let stats = rig.proxy.stats();
    eventually("the session to leave the registry", || {
        stats.sessions.is_empty() && stats.open_tunnels() == 0
    })
    .await;
    // The client got no Close, so the close series names none.
    rig.counted("none", "wsgate").await;
    rig.proxy.stopped().await;
}
