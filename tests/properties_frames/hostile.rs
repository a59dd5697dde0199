//! Hostile input: valid streams flipped, cut, spliced with junk or with a bad header, and plain
//! random bytes, under any rules; each must get the same verdict in every chunking, no panic.

use proptest::prelude::*;
use proptest::sample::Index;
use wsgate::tunnel::frames::{Rules, Tracker};

use crate::stream::{cut, cut_points, cuts, run, stream};

/// A change to a valid stream.
#[derive(Debug, Clone)]
enum Corruption {
    Flip(Index, Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Header(Index, Vec<u8>),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (any::<Index>(), any::<Index>(), 1u8..).prop_map(|(f, i, x)| Corruption::Flip(f, i, x)),
        any::<Index>().prop_map(Corruption::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..20))
            .prop_map(|(i, b)| Corruption::Insert(i, b)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 2..14))
            .prop_map(|(i, b)| Corruption::Header(i, b)),
    ]
}

fn rules() -> impl Strategy<Value = Rules> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u64..200_000),
        prop::option::of(1u64..300_000),
    )
        .prop_map(|(check, deflate, max_frame, max_message)| Rules {
            check,
            deflate,
            max_frame: max_frame.and_then(std::num::NonZeroU64::new),
            max_message: max_message.and_then(std::num::NonZeroU64::new),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_corrupted_stream_gets_a_verdict_in_any_chunking(
        s in stream(),
        changes in prop::collection::vec(corruption(), 1..4),
        rules in rules(),
        cuts in cuts(),
    ) {
        let mut frames = s.frames();
        let mut truncated = false;
        for change in &changes {
            match change {
                Corruption::Flip(f, i, x) => {
                    let n = frames.len();
                    let f = &mut frames[f.index(n)];
                    if !f.is_empty() {
                        let at = i.index(f.len());
                        f[at] ^= x;
                    }
                }
                Corruption::Truncate(i) => {
                    let bytes = frames.concat();
                    frames = vec![bytes[..i.index(bytes.len() + 1)].to_vec()];
                    truncated = true;
                }
                Corruption::Insert(i, junk) => {
                    frames.insert(i.index(frames.len() + 1), junk.clone());
                }
                Corruption::Header(i, junk) => {
                    let f = i.index(frames.len());
                    let n = junk.len().min(frames[f].len());
                    frames[f][..n].copy_from_slice(&junk[..n]);
                }
            }
        }
        let bytes = frames.concat();
        let from_client = s.client_side();
        let whole = run(&mut Tracker::new(from_client, rules), &[&bytes])?;
        let chunks = cut(&bytes, cut_points(&frames, bytes.len(), &cuts));
        prop_assert_eq!(run(&mut Tracker::new(from_client, rules), &chunks)?, whole.clone());
        let limits = rules.max_frame.is_some() || rules.max_message.is_some();
        if truncated && changes.len() == 1 && rules.check && !limits {
            // A cut valid stream is only incomplete: what came is forwarded, nothing is refused.
            prop_assert_eq!(whole.bad, None);
            let full = s.expected(s.pieces.len()).out;
            prop_assert!(full.starts_with(&whole.out));
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_bytes_get_a_verdict_in_any_chunking(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        from_client in any::<bool>(),
        rules in rules(),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let whole = run(&mut Tracker::new(from_client, rules), &[&bytes])?;
        let at = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        let chunked = run(&mut Tracker::new(from_client, rules), &cut(&bytes, at))?;
        prop_assert_eq!(chunked, whole.clone());
        let ones: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(run(&mut Tracker::new(from_client, rules), &ones)?, whole);
    }
}
