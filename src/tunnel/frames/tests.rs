use proptest::prelude::*;

use super::*;

/// A frame as a client (masked) or a backend (unmasked) would send it.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    build::any(first, payload, masked.then_some([0x11, 0x22, 0x33, 0x44]))
}

/// What the splice would see: forwarded bytes, with a `|` position list of frame boundaries
/// of the forwarded stream, plus the control frames and the violation.
#[derive(Debug, PartialEq, Eq, Default)]
struct Trace {
    out: Vec<u8>,
    boundaries: Vec<usize>,
    controls: Vec<Control>,
    bad: Option<Violation>,
}

fn run(t: &mut Tracker, chunks: &[&[u8]]) -> Trace {
    let mut tr = Trace {
        boundaries: vec![0],
        ..Trace::default()
    };
    for chunk in chunks {
        let mut rest = *chunk;
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
                    if c != (Control::Pong { ours: true }) {
                        tr.out.extend(t.take_held());
                    } else {
                        t.take_held();
                    }
                    n
                }
                Action::Bad(v) => {
                    tr.bad = Some(v);
                    0
                }
            };
            rest = &rest[n..];
            if t.at_boundary() && tr.boundaries.last() != Some(&tr.out.len()) {
                tr.boundaries.push(tr.out.len());
            }
        }
    }
    tr
}

fn checked() -> Rules {
    Rules {
        check: true,
        ..Rules::default()
    }
}

/// A recorded client stream: text, a fragmented binary message with a Ping and a Pong of
/// wsgate's between its fragments, a 16-bit and a 64-bit length, an empty frame, a Close.
fn client_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(frame(0x81, b"hello", true));
    s.extend(frame(0x02, &[7; 300], true));
    s.extend(frame(0x89, b"ping", true));
    s.extend(frame(0x8a, build::PING_PAYLOAD, true));
    s.extend(frame(0x00, &[8; 70_000], true));
    s.extend(frame(0x80, b"", true));
    s.extend(frame(0x88, &[0x03, 0xe8, b'o', b'k'], true));
    s
}

#[test]
fn whole_stream_in_one_piece() {
    let s = client_stream();
    let mut t = Tracker::new(true, checked());
    let tr = run(&mut t, &[&s]);
    assert_eq!(tr.bad, None);
    assert_eq!(t.frames, 7);
    assert_eq!(t.messages, 2);
    assert_eq!(
        tr.controls,
        [
            Control::Ping,
            Control::Pong { ours: true },
            Control::Close { code: Some(1000) }
        ]
    );
    // Everything but wsgate's Pong is forwarded, byte for byte.
    let pong = frame(0x8a, build::PING_PAYLOAD, true);
    let mut expect = s.clone();
    let at = expect
        .windows(pong.len())
        .position(|w| w == pong)
        .expect("pong present");
    expect.drain(at..at + pong.len());
    assert_eq!(tr.out, expect);
}

#[test]
fn every_two_way_split_gives_the_same_trace() {
    let s = client_stream();
    let whole = run(&mut Tracker::new(true, checked()), &[&s]);
    // Every split point inside the headers and small frames, and a sample of the big payload.
    for at in (0..400).chain((400..s.len()).step_by(997)) {
        let (a, b) = s.split_at(at);
        let tr = run(&mut Tracker::new(true, checked()), &[a, b]);
        assert_eq!(tr, whole, "split at {at}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let mut s = frame(0x81, b"hi", true);
    s.extend(frame(0x82, &[1; 200], true));
    s.extend(frame(0x88, &[0x03, 0xe9], true));
    let whole = run(&mut Tracker::new(true, checked()), &[&s]);
    let bytes: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(run(&mut Tracker::new(true, checked()), &bytes), whole);
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_trace(cuts in proptest::collection::vec(0usize..71_000, 0..12)) {
        let s = client_stream();
        let whole = run(&mut Tracker::new(true, checked()), &[&s]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % s.len()).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for c in cuts {
            chunks.push(&s[from..c]);
            from = c;
        }
        chunks.push(&s[from..]);
        prop_assert_eq!(run(&mut Tracker::new(true, checked()), &chunks), whole);
    }
}

fn verdict(from_client: bool, rules: Rules, stream: &[u8]) -> Option<Violation> {
    run(&mut Tracker::new(from_client, rules), &[stream]).bad
}

#[test]
fn violations() {
    let c = checked();
    let cases: Vec<(bool, Vec<u8>, Violation)> = vec![
        (true, frame(0x81, b"x", false), Violation::Masking),
        (false, frame(0x81, b"x", true), Violation::Masking),
        (true, frame(0xc1, b"x", true), Violation::Rsv),
        (true, frame(0x83, b"x", true), Violation::Opcode),
        (true, frame(0x8b, b"x", true), Violation::Opcode),
        (true, frame(0x89, &[0; 126], true), Violation::Control),
        (true, frame(0x09, b"x", true), Violation::Control),
        (true, frame(0x80, b"x", true), Violation::Fragmentation),
        (
            true,
            [frame(0x01, b"a", true), frame(0x81, b"b", true)].concat(),
            Violation::Fragmentation,
        ),
        (true, frame(0x88, &[3], true), Violation::CloseFrame),
        (
            true,
            frame(0x88, &1005u16.to_be_bytes(), true),
            Violation::CloseFrame,
        ),
        (
            true,
            frame(0x88, &999u16.to_be_bytes(), true),
            Violation::CloseFrame,
        ),
        (
            true,
            frame(0x88, &[0x03, 0xe8, 0xff], true),
            Violation::CloseFrame,
        ),
        (
            false,
            vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0],
            Violation::Length,
        ),
    ];
    for (from_client, stream, want) in cases {
        assert_eq!(
            verdict(from_client, c, &stream),
            Some(want),
            "{stream:02x?}"
        );
    }
    // The bad frame is not forwarded; what came before it is.
    let mut s = frame(0x81, b"ok", true);
    let good = s.len();
    s.extend(frame(0xc1, b"bad", true));
    let tr = run(&mut Tracker::new(true, c), &[&s]);
    assert_eq!((tr.out.len(), tr.bad), (good, Some(Violation::Rsv)));
}

#[test]
fn deflate_allows_rsv1_on_first_frame_only() {
    let d = Rules {
        deflate: true,
        ..checked()
    };
    let ok = [frame(0x41, b"a", true), frame(0x80, b"b", true)].concat();
    assert_eq!(verdict(true, d, &ok), None);
    assert_eq!(
        verdict(true, d, &frame(0xc0, b"x", true)),
        Some(Violation::Rsv)
    );
    let bad = [frame(0x41, b"a", true), frame(0xc0, b"b", true)].concat();
    assert_eq!(verdict(true, d, &bad), Some(Violation::Rsv));
    assert_eq!(
        verdict(true, d, &frame(0xc9, b"", true)),
        Some(Violation::Rsv)
    );
    assert_eq!(
        verdict(true, d, &frame(0xa1, b"", true)),
        Some(Violation::Rsv)
    );
}

#[test]
fn unchecked_lets_protocol_errors_through_but_not_sizes() {
    let off = Rules {
        max_frame: NonZeroU64::new(10),
        ..Rules::default()
    };
    assert_eq!(verdict(true, off, &frame(0xf3, b"x", false)), None);
    assert_eq!(
        verdict(true, off, &frame(0x82, &[0; 11], true)),
        Some(Violation::FrameTooBig)
    );
}

#[test]
fn size_limits_count_payload_across_fragments() {
    let r = Rules {
        max_frame: NonZeroU64::new(100),
        max_message: NonZeroU64::new(150),
        ..checked()
    };
    let ok = [frame(0x02, &[0; 100], true), frame(0x80, &[0; 50], true)].concat();
    assert_eq!(verdict(true, r, &ok), None);
    let big = [frame(0x02, &[0; 100], true), frame(0x80, &[0; 51], true)].concat();
    assert_eq!(verdict(true, r, &big), Some(Violation::MessageTooBig));
    assert_eq!(
        verdict(true, r, &frame(0x82, &[0; 101], true)),
        Some(Violation::FrameTooBig)
    );
    // Control frames do not count towards a message.
    let ctl = [
        frame(0x02, &[0; 100], true),
        frame(0x89, &[0; 100], true),
        frame(0x80, &[0; 50], true),
    ]
    .concat();
    assert_eq!(verdict(true, r, &ctl), None);
}

#[derive(Debug)]
struct Allow(u32);
impl MessageGate for Allow {
    fn allow(&mut self) -> bool {
        self.0 = self.0.saturating_sub(1);
        self.0 > 0
    }
}

#[test]
fn gate_is_asked_once_per_message() {
    let mut t = Tracker::new(true, checked());
    t.gate = Some(Box::new(Allow(3)));
    let s = [
        frame(0x01, b"a", true),
        frame(0x80, b"b", true),
        frame(0x89, b"", true),
        frame(0x81, b"c", true),
        frame(0x81, b"d", true),
    ]
    .concat();
    let tr = run(&mut t, &[&s]);
    assert_eq!((t.messages, tr.bad), (2, Some(Violation::Rate)));
}

#[test]
fn boundary_only_between_frames() {
    let s = frame(0x82, &[0; 10], true);
    let mut t = Tracker::new(true, checked());
    assert!(t.at_boundary());
    assert_eq!(t.next(&s[..1]), Action::Hold(1));
    assert!(t.at_boundary(), "a held partial header was not forwarded");
    assert_eq!(t.next(&s[1..8]), Action::Release(5));
    assert_eq!(t.take_held().len(), 6);
    assert!(!t.at_boundary());
    assert_eq!(t.next(&s[6..]), Action::Pass(10));
    assert!(t.at_boundary());
    assert_eq!(t.held.capacity(), 0, "an idle direction holds no buffer");
}

#[test]
fn built_frames_parse_back() {
    let mut to_backend = Tracker::new(true, checked());
    let close = build::close(1001, "going away", true);
    assert_eq!(
        run(&mut to_backend, &[&close]).controls,
        [Control::Close { code: Some(1001) }]
    );
    let mut to_client = Tracker::new(false, checked());
    let long = "é".repeat(100);
    let mut frames = build::ping(false);
    frames.extend(build::close(1008, &long, false));
    let tr = run(&mut to_client, &[&frames]);
    assert_eq!(
        tr.controls,
        [Control::Ping, Control::Close { code: Some(1008) }]
    );
    assert!(frames.len() <= 2 + 18 + 2 + 125);
}
