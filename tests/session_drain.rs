//! Drain with a large message in flight (#9): wsgate's Close 1001 to the client waits for the
//! frame boundary, so a 16 MiB message the backend is halfway through writing when the drain
//! starts reaches the client whole, and the Close comes right after its last byte.

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
