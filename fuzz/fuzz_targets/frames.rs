//! The frame tracker (`tunnel::frames::Tracker`), either direction, fed the same stream whole
//! and cut at fuzzer-chosen points: the forwarded bytes, the frame boundaries of the forwarded
//! stream, the control frames seen, the verdict and the counters must not depend on the cut.
//!
//! Input: `[config] [k] [k piece lengths] [stream]` (see `wsgate_fuzz::Framed`). Config bits:
//! 0 from the client, 1 check §5, 2 permessage-deflate, 3 `max_frame` (1000), 4 `max_message`
//! (5000), 5 a message gate that allows 3 messages.
#![no_main]

use std::num::NonZeroU64;
use libfuzzer_sys::fuzz_target;
use wsgate::tunnel::frames::{Action, Control, MessageGate, Rules, Tracker, Violation};
use wsgate_fuzz::Framed;

/// Allows a fixed number of messages, then refuses: deterministic, unlike a clock.
#[derive(Debug)]
struct Budget(u32);

impl MessageGate for Budget {
    fn allow(&mut self) -> bool {
        let ok = self.0 > 0;
        self.0 = self.0.saturating_sub(1);
        ok
    }
}

/// What a splice would do with the stream.
#[derive(Debug, PartialEq, Eq, Default)]
struct Trace {
    out: Vec<u8>,
    boundaries: Vec<usize>,
    controls: Vec<Control>,
    bad: Option<Violation>,
    frames: u64,
    messages: u64,
    at_boundary: bool,
}

fn tracker(config: u8) -> Tracker {
    let rules = Rules {
        check: config & 2 != 0,
        deflate: config & 4 != 0,
        max_frame: NonZeroU64::new(1000).filter(|_| config & 8 != 0),
        max_message: NonZeroU64::new(5000).filter(|_| config & 16 != 0),
    };
    let mut t = Tracker::new(config & 1 != 0, rules);
    if config & 32 != 0 {
        t.gate = Some(Box::new(Budget(3)));
    }
    t
}

fn run(config: u8, pieces: &[&[u8]]) -> Trace {
    let mut t = tracker(config);
    let mut tr = Trace {
        boundaries: vec![0],
        ..Trace::default()
    };
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() && tr.bad.is_none() {
            let n = match t.next(rest) {
                Action::Pass(n) => {
                    tr.out.extend_from_slice(&rest[..n]);
                    n
                }
                Action::Hold(n) => n,
                Action::Release(n) => {
                    tr.out.extend(t.take_held());
                    n
                }
                Action::Control(n, c) => {
                    tr.controls.push(c);
                    let held = t.take_held();
                    if c != (Control::Pong { ours: true }) {
                        tr.out.extend(held);
                    }
                    n
                }
                Action::Bad(v) => {
                    tr.bad = Some(v);
                    0
                }
            };
            assert!(n <= rest.len(), "an action used more than its input");
            // Every action but a verdict uses input, or the splice would spin.
            assert!(n > 0 || tr.bad.is_some(), "an action without progress");
            rest = &rest[n..];
            if t.at_boundary() && tr.boundaries.last() != Some(&tr.out.len()) {
                tr.boundaries.push(tr.out.len());
            }
        }
    }
    tr.frames = t.frames;
    tr.messages = t.messages;
    tr.at_boundary = t.at_boundary();
    tr
}

fuzz_target!(|data: &[u8]| {
    let input = Framed::parse(data);
    if input.stream.is_empty() {
        return;
    }
    let whole = run(input.config, &[input.stream]);
    let split = run(input.config, &input.pieces());
    assert_eq!(whole, split, "the cut changed what the tracker saw");
    // Byte at a time is the hardest cut; check it too on short streams.
    if input.stream.len() <= 512 {
        let bytes: Vec<&[u8]> = input.stream.chunks(1).collect();
        assert_eq!(whole, run(input.config, &bytes), "byte at a time differs");
    }
    // Nothing is forwarded that was not in the input, in order.
    assert!(whole.out.len() <= input.stream.len());
});
