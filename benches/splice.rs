//! Throughput of a session (frame trackers on both directions) between two in-memory duplex
//! pipes: 4 MiB of client → backend frames (16 KiB payloads, masked) while the backend side
//! drains, and 64-byte message round trips (masked to the backend, plain back).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use wsgate::config::policy::SessionPolicy;
use wsgate::session::{Info, Registry};
use wsgate::tunnel::frames::build;
use wsgate::tunnel::splice::Timeouts;
use wsgate::tunnel::{self, Terms, drive};

const BULK_PAYLOAD: usize = 16 * 1024;
const BULK_FRAMES: usize = 256;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn setup() -> drive::Setup {
    tunnel::setup(&Terms {
        policy: &SessionPolicy::default(),
        timeouts: Timeouts {
            idle: Duration::from_secs(600),
            half_close: Duration::from_secs(600),
        },
        close_timeout: Duration::from_secs(5),
        deflate: false,
        expires_at: None,
    })
}

fn registry_entry(reg: &Arc<Registry>) -> wsgate::session::Entry {
    reg.register(Info {
        subject: None,
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: "bench".into(),
        backend: "bench".into(),
        started: SystemTime::now(),
        expires_at: None,
        key_id: None,
        protocol: wsgate::session::Protocol::H1,
    })
}

/// One binary frame, masked (client) or not (backend).
fn frame(payload: &[u8], masked: bool) -> Vec<u8> {
    build::any(0x82, payload, masked.then_some([1, 2, 3, 4]))
}

fn bulk(c: &mut Criterion) {
    let rt = runtime();
    let reg = Arc::new(Registry::default());
    let one = frame(&[7u8; BULK_PAYLOAD], true);
    let total = one.len() * BULK_FRAMES;
    let mut g = c.benchmark_group("splice");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("bulk 4 MiB one way, 16 KiB frames", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (mut client, mut proxy_client) = duplex(64 * 1024);
                let (mut proxy_backend, mut backend) = duplex(64 * 1024);
                let entry = registry_entry(&reg);
                let tunnel = tokio::spawn(async move {
                    let (mut state, h) = (
                        drive::State::new(setup(), Vec::new(), Vec::new()),
                        &entry.handle,
                    );
                    drive::drive(&mut proxy_client, &mut proxy_backend, &mut state, h).await;
                    entry.handle.counters.read().0
                });
                let bytes = one.clone();
                let writer = tokio::spawn(async move {
                    for _ in 0..BULK_FRAMES {
                        client.write_all(&bytes).await.expect("write");
                    }
                    client.shutdown().await.expect("shutdown");
                    client
                });
                let mut sink = vec![0u8; 64 * 1024];
                let mut got = 0;
                while got < total {
                    got += backend.read(&mut sink).await.expect("read");
                }
                drop(backend);
                let _ = writer.await;
                let to_backend = tunnel.await.expect("tunnel");
                assert_eq!(to_backend, total as u64);
            })
        })
    });
    g.finish();

    c.bench_function("splice 64 B round trip", |b| {
        let entry = registry_entry(&reg);
        let (tx, mut client, mut backend) = rt.block_on(async {
            let (client, mut proxy_client) = duplex(64 * 1024);
            let (mut proxy_backend, backend) = duplex(64 * 1024);
            let tx = tokio::spawn(async move {
                let (mut state, h) = (
                    drive::State::new(setup(), Vec::new(), Vec::new()),
                    &entry.handle,
                );
                drive::drive(&mut proxy_client, &mut proxy_backend, &mut state, h).await
            });
            (tx, client, backend)
        });
        let up = frame(&[1u8; 64], true);
        let down = frame(&[1u8; 64], false);
        let mut up_buf = vec![0u8; up.len()];
        let mut down_buf = vec![0u8; down.len()];
        b.iter(|| {
            rt.block_on(async {
                client.write_all(&up).await.expect("write");
                backend.read_exact(&mut up_buf).await.expect("read");
                backend.write_all(&down).await.expect("write");
                client.read_exact(&mut down_buf).await.expect("read");
            })
        });
        tx.abort();
    });
}

criterion_group!(benches, bulk);
criterion_main!(benches);
