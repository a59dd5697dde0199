//! Generated frame streams (what a client or a backend may validly send) and the harness that
//! feeds them to a [`Tracker`] the way the splice does, recording what it would forward.

use proptest::prelude::*;
use proptest::sample::Index;
use wsgate::tunnel::frames::build::{self, PING_PAYLOAD};
use wsgate::tunnel::frames::{Action, Control, Rules, Tracker, Violation};

/// One frame of a generated stream.
#[derive(Debug, Clone)]
pub enum Piece {
    Data { first: u8, payload: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    OurPong,
    Close(u16, String),
}

impl Piece {
    fn bytes(&self, mask: Option<[u8; 4]>) -> Vec<u8> {
        match self {
            Piece::Data { first, payload } => build::any(*first, payload, mask),
            Piece::Ping(p) => build::any(0x89, p, mask),
            Piece::Pong(p) => build::any(0x8a, p, mask),
            Piece::OurPong => build::any(0x8a, PING_PAYLOAD, mask),
            Piece::Close(code, reason) => build::any(
                0x88,
                &[&code.to_be_bytes()[..], reason.as_bytes()].concat(),
                mask,
            ),
        }
    }

    fn control(&self) -> Option<Control> {
        match self {
            Piece::Data { .. } => None,
            Piece::Ping(_) => Some(Control::Ping),
            Piece::Pong(_) => Some(Control::Pong { ours: false }),
            Piece::OurPong => Some(Control::Pong { ours: true }),
            Piece::Close(code, _) => Some(Control::Close { code: Some(*code) }),
        }
    }
}

/// A generated stream: its frames, the masking key (client side) and the data messages in it.
#[derive(Debug, Clone)]
pub struct Stream {
    pub pieces: Vec<Piece>,
    pub mask: Option<[u8; 4]>,
    pub messages: u64,
}

impl Stream {
    pub fn frames(&self) -> Vec<Vec<u8>> {
        self.pieces.iter().map(|p| p.bytes(self.mask)).collect()
    }

    /// Masked streams are the client's.
    pub fn client_side(&self) -> bool {
        self.mask.is_some()
    }

    /// What the tracker must report for `pieces[..k]`, read whole and valid.
    pub fn expected(&self, k: usize) -> Trace {
        let frames = self.frames();
        let mut t = Trace::default();
        for (piece, bytes) in self.pieces[..k].iter().zip(&frames) {
            t.controls.extend(piece.control());
            if !matches!(piece, Piece::OurPong) {
                t.out.extend_from_slice(bytes);
            }
        }
        t
    }
}

/// A payload length around each length encoding's edges; long ones are rare to keep runs fast.
fn payload(max_small: usize) -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![
        8 => 0..max_small,
        2 => 120usize..131,
        1 => 65_530usize..65_541,
        1 => 65_536usize..70_000,
    ];
    (len, any::<u8>())
        .prop_map(|(n, seed)| (0..n).map(|i| seed ^ (i as u8).wrapping_mul(31)).collect())
}

fn control() -> impl Strategy<Value = Piece> {
    let small = prop::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        small.clone().prop_map(Piece::Ping),
        small
            .prop_filter("not wsgate's", |p| p != PING_PAYLOAD)
            .prop_map(Piece::Pong),
        Just(Piece::OurPong),
    ]
}

/// A data message: its opcode, then each fragment's payload and the control frame after it.
type Message = (u8, Vec<(Vec<u8>, Option<Piece>)>);

fn message() -> impl Strategy<Value = Message> {
    (
        prop::sample::select(vec![0x1u8, 0x2]),
        prop::collection::vec((payload(40), prop::option::weighted(0.3, control())), 1..4),
    )
}

fn close() -> impl Strategy<Value = Piece> {
    let code = prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999];
    (code, "[a-zé ]{0,20}").prop_map(|(c, r)| Piece::Close(c, r))
}

pub fn stream() -> impl Strategy<Value = Stream> {
    (
        prop::collection::vec(message(), 0..6),
        close(),
        prop::option::of(any::<[u8; 4]>()),
    )
        .prop_map(|(messages, close, mask)| {
            let mut pieces = Vec::new();
            for (opcode, fragments) in &messages {
                let last = fragments.len() - 1;
                for (i, (payload, ctl)) in fragments.iter().enumerate() {
                    let fin = if i == last { 0x80 } else { 0 };
                    let op = if i == 0 { *opcode } else { 0 };
                    let payload = payload.clone();
                    pieces.push(Piece::Data {
                        first: fin | op,
                        payload,
                    });
                    pieces.extend(ctl.clone());
                }
            }
            pieces.push(close);
            Stream {
                pieces,
                mask,
                messages: messages.len() as u64,
            }
        })
}

/// The rules wsgate enforces on a tunnel without limits.
pub fn checked() -> Rules {
    Rules {
        check: true,
        ..Rules::default()
    }
}

/// What the splice would see: forwarded bytes, the frame boundaries of the forwarded stream, the
/// control frames, the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trace {
    pub out: Vec<u8>,
    pub boundaries: Vec<usize>,
    pub controls: Vec<Control>,
    pub bad: Option<Violation>,
}

/// Feeds `chunks` in order, as the splice does; checks on the way that every action other than
/// a verdict consumes input (no stall) and that what the tracker holds stays bounded.
pub fn run(t: &mut Tracker, chunks: &[&[u8]]) -> Result<Trace, TestCaseError> {
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
                    let header = t.take_held();
                    prop_assert!(header.len() <= 14, "a header of {} bytes", header.len());
                    tr.out.extend(header);
                    n
                }
                Action::Control(n, c) => {
                    let held = t.take_held();
                    // 14 header bytes at most (a non-minimal length), 125 of payload.
                    prop_assert!(
                        held.len() <= 14 + 125,
                        "a control frame of {} bytes",
                        held.len()
                    );
                    tr.controls.push(c);
                    if c != (Control::Pong { ours: true }) {
                        tr.out.extend(held);
                    }
                    n
                }
                Action::Bad(v) => {
                    tr.bad = Some(v);
                    break;
                }
            };
            prop_assert!(
                n > 0 && n <= rest.len(),
                "an action took {} of {} bytes",
                n,
                rest.len()
            );
            rest = &rest[n..];
            if t.at_boundary() && tr.boundaries.last() != Some(&tr.out.len()) {
                tr.boundaries.push(tr.out.len());
            }
        }
    }
    Ok(tr)
}

/// `bytes` cut at the given points (sorted, deduplicated, any may be 0 or the end).
pub fn cut(bytes: &[u8], mut at: Vec<usize>) -> Vec<&[u8]> {
    at.retain(|&c| c <= bytes.len());
    at.sort_unstable();
    at.dedup();
    let mut chunks = Vec::new();
    let mut from = 0;
    for c in at {
        chunks.push(&bytes[from..c]);
        from = c;
    }
    chunks.push(&bytes[from..]);
    chunks
}

/// Cut points: anywhere, and a few bytes into some frame (so headers split too).
pub fn cuts() -> impl Strategy<Value = (Vec<Index>, Vec<(Index, usize)>)> {
    (
        prop::collection::vec(any::<Index>(), 0..8),
        prop::collection::vec((any::<Index>(), 0usize..16), 0..12),
    )
}

pub fn cut_points(
    frames: &[Vec<u8>],
    len: usize,
    (anywhere, near): &(Vec<Index>, Vec<(Index, usize)>),
) -> Vec<usize> {
    let starts: Vec<usize> = frames
        .iter()
        .scan(0, |at, f| Some(std::mem::replace(at, *at + f.len())))
        .collect();
    let mut at: Vec<usize> = anywhere.iter().map(|i| i.index(len + 1)).collect();
    at.extend(
        near.iter()
            .map(|(f, off)| (starts[f.index(starts.len())] + off).min(len)),
    );
    at
}
