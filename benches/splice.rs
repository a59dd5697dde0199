//! Throughput of the byte tunnel between two in-memory duplex pipes: 4 MiB client → backend in
//! 16 KiB writes while the backend side drains, and 64-byte ping-pong round trips.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use wsgate::tunnel::splice::{Counts, Timeouts, splice};

const TIMEOUTS: Timeouts = Timeouts {
    idle: Duration::from_secs(600),
    half_close: Duration::from_secs(600),
};

const BULK: usize = 4 * 1024 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn bulk(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("splice");
    g.throughput(Throughput::Bytes(BULK as u64));
    g.bench_function("bulk 4 MiB one way", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (mut client, mut proxy_client) = duplex(64 * 1024);
                let (mut proxy_backend, mut backend) = duplex(64 * 1024);
                let tunnel = tokio::spawn(async move {
                    let mut counts = Counts::default();
                    splice(
                        &mut proxy_client,
                        &mut proxy_backend,
                        Vec::new(),
                        Vec::new(),
                        TIMEOUTS,
                        &mut counts,
                    )
                    .await;
                    counts
                });
                let writer = tokio::spawn(async move {
                    let chunk = vec![7u8; 16 * 1024];
                    for _ in 0..BULK / chunk.len() {
                        client.write_all(&chunk).await.unwrap();
                    }
                    client.shutdown().await.unwrap();
                    client
                });
                let mut sink = vec![0u8; 64 * 1024];
                let mut got = 0;
                while got < BULK {
                    got += backend.read(&mut sink).await.unwrap();
                }
                drop(backend);
                let _ = writer.await;
                let counts = tunnel.await.unwrap();
                assert_eq!(counts.to_backend, BULK as u64);
            })
        })
    });
    g.finish();

    c.bench_function("splice 64 B round trip", |b| {
        let (tx, mut client, mut backend) = rt.block_on(async {
            let (client, mut proxy_client) = duplex(64 * 1024);
            let (mut proxy_backend, backend) = duplex(64 * 1024);
            let tx = tokio::spawn(async move {
                let mut counts = Counts::default();
                splice(
                    &mut proxy_client,
                    &mut proxy_backend,
                    Vec::new(),
                    Vec::new(),
                    TIMEOUTS,
                    &mut counts,
                )
                .await
            });
            (tx, client, backend)
        });
        let msg = [1u8; 64];
        let mut buf = [0u8; 64];
        b.iter(|| {
            rt.block_on(async {
                client.write_all(&msg).await.unwrap();
                backend.read_exact(&mut buf).await.unwrap();
                backend.write_all(&buf).await.unwrap();
                client.read_exact(&mut buf).await.unwrap();
            })
        });
        tx.abort();
    });
}

criterion_group!(benches, bulk);
criterion_main!(benches);
