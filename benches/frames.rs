//! The frame tracker alone: bytes per second over a recorded mix of frame sizes (64 B text,
//! 1 KiB and 64 KiB binary, fragments with a Ping between them), fed in 16 KiB reads as the
//! splice would, counting the bytes it says to pass.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wsgate::tunnel::frames::{Action, Rules, Tracker, build};

fn frame(first: u8, payload_len: usize) -> Vec<u8> {
    build::any(first, &vec![0x5a; payload_len], Some([9, 8, 7, 6]))
}

fn mix() -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..2000 {
        s.extend(frame(0x81, 64));
        if i % 10 == 0 {
            s.extend(frame(0x82, 1024));
        }
        if i % 100 == 0 {
            s.extend(frame(0x02, 64 * 1024));
            s.extend(frame(0x89, 8));
            s.extend(frame(0x80, 64 * 1024));
        }
    }
    s
}

fn tracker(c: &mut Criterion) {
    let stream = mix();
    let rules = Rules {
        check: true,
        max_message: std::num::NonZeroU64::new(1 << 20),
        ..Rules::default()
    };
    let mut g = c.benchmark_group("frames");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("track mixed frames, 16 KiB reads", |b| {
        b.iter(|| {
            let mut t = Tracker::new(true, rules);
            let mut passed = 0usize;
            for chunk in stream.chunks(16 * 1024) {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let n = match t.next(rest) {
                        Action::Pass(n) => {
                            passed += n;
                            n
                        }
                        Action::Hold(n) => n,
                        Action::Release(n) | Action::Control(n, _) => {
                            passed += t.take_held().len();
                            n
                        }
                        Action::Bad(v) => panic!("recorded stream broke a rule: {v}"),
                    };
                    rest = &rest[n..];
                }
            }
            assert_eq!(passed, stream.len());
            t.messages
        })
    });
    g.finish();
}

criterion_group!(benches, tracker);
criterion_main!(benches);
