//! Properties of the frame tracker (`tunnel::frames`) over generated streams, in both
//! directions: a valid stream (text and binary messages, fragmented or not, Pings and Pongs
//! between fragments, 7-, 16- and 64-bit lengths, masked from the client and unmasked from the
//! backend, a Close at the end) gives the same forwarded bytes, frame boundaries, control frames
//! and verdict whatever the chunking; a frame that breaks one §5 rule is refused with that rule,
//! and nothing of it or after it is forwarded; and any bytes at all (flipped, cut, inserted,
//! random), under any rules, give a verdict in every chunking, without a panic, a stall or an
//! unbounded hold. Extends the fixed-stream chunking property of `src/tunnel/frames/tests.rs`.
//!
//! `stream` generates the streams and runs the tracker as the splice does; `hostile` breaks them.

mod hostile;
mod stream;

use proptest::prelude::*;
use proptest::sample::Index;
use wsgate::tunnel::frames::build;
use wsgate::tunnel::frames::{Tracker, Violation};

use stream::{Piece, checked, cut, cut_points, cuts, run, stream};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_valid_stream_reads_the_same_in_any_chunking(s in stream(), cuts in cuts()) {
        let frames = s.frames();
        let bytes = frames.concat();
        let mut t = Tracker::new(s.client_side(), checked());
        let whole = run(&mut t, &[&bytes])?;
        let want = s.expected(s.pieces.len());
        prop_assert_eq!(whole.bad, None);
        prop_assert_eq!((t.frames, t.messages), (s.pieces.len() as u64, s.messages));
        prop_assert_eq!(&whole.controls, &want.controls);
        prop_assert!(whole.out == want.out, "forwarded bytes are not the stream less our Pongs");
        let chunks = cut(&bytes, cut_points(&frames, bytes.len(), &cuts));
        let mut t = Tracker::new(s.client_side(), checked());
        prop_assert_eq!(run(&mut t, &chunks)?, whole);
        prop_assert!(t.at_boundary());
    }

    #[test]
    fn a_frame_that_breaks_a_rule_is_refused_and_nothing_from_it_on_is_forwarded(
        s in stream(),
        at in any::<Index>(),
        breach in 0usize..10,
        junk in any::<u8>(),
        cuts in cuts(),
    ) {
        let k = at.index(s.pieces.len());
        let mut frames = s.frames();
        let masked = s.mask;
        let wrong_mask = if masked.is_some() { None } else { Some([1, 2, 3, 4]) };
        let open = matches!(s.pieces[..k].iter().rev().find(|p| matches!(p, Piece::Data { .. })),
            Some(Piece::Data { first, .. }) if first & 0x80 == 0);
        let (bad, want) = match breach {
            0 => (build::any(0x83 + junk % 5, b"x", masked), Violation::Opcode),
            1 => (build::any(0x8b + junk % 5, b"", masked), Violation::Opcode),
            2 => {
                let rsv = [0x40, 0x20, 0x10][junk as usize % 3];
                (build::any(0x81 | rsv, b"x", masked), Violation::Rsv)
            }
            3 => (build::any(0x89, &vec![junk; 126 + junk as usize], masked), Violation::Control),
            4 => (build::any(0x09 + junk % 2, b"", masked), Violation::Control),
            5 => (build::any(0x82, b"x", wrong_mask), Violation::Masking),
            6 if open => (build::any(0x81, b"x", masked), Violation::Fragmentation),
            6 => (build::any(0x80, b"x", masked), Violation::Fragmentation),
            7 => (build::any(0x88, &[0x03], masked), Violation::CloseFrame),
            8 => {
                let code = [999u16, 1004, 1005, 1006, 1015, 1016, 2999, 5000][junk as usize % 8];
                (build::any(0x88, &code.to_be_bytes(), masked), Violation::CloseFrame)
            }
            _ => {
                let mut h = vec![0x82, 127 | if masked.is_some() { 0x80 } else { 0 }, 0x80 | junk];
                h.extend([0; 7]);
                (h, Violation::Length)
            }
        };
        frames.insert(k, bad);
        let bytes = frames.concat();
        let mut want_trace = s.expected(k);
        want_trace.bad = Some(want);
        for chunks in [vec![&bytes[..]], cut(&bytes, cut_points(&frames, bytes.len(), &cuts))] {
            let mut tr = run(&mut Tracker::new(s.client_side(), checked()), &chunks)?;
            tr.boundaries.clear();
            prop_assert_eq!(&tr, &want_trace, "frame {} of {:?}", k, s.pieces.get(k));
        }
    }
}
