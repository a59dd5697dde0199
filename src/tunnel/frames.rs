//! The frame tracker: follows RFC 6455 §5 framing of one direction of a tunnel, reading frame
//! *headers* only, incrementally, across any split of the byte stream.
//!
//! Data payload bytes pass through as they come ([`Action::Pass`]); nothing of a data frame is
//! buffered. Only two things are held, and only while they are incomplete: a frame header split
//! across reads (at most 14 bytes) and a control frame (at most 139 bytes: a 125-byte payload
//! behind a header that may spell its length in a longer form than needed), so that wsgate can
//! judge a Close code, absorb the Pongs that answer its own Pings, and refuse a bad frame before
//! any byte of it was forwarded. An idle direction holds no allocation.
//!
//! The tracker knows where each frame ends ([`Tracker::at_boundary`]), which is where the splice
//! may insert wsgate's own frames ([`build`]); control frames may sit between the fragments of a
//! message, as §5.4 allows. Does not own what happens on a violation (the splice stops the
//! direction and `tunnel::close` ends the session) nor the rate limiter it is handed.

pub mod build;
#[cfg(test)]
mod tests;

use std::fmt;
use std::num::NonZeroU64;

/// Longest frame header: 2 + 8 (64-bit length) + 4 (mask key).
const MAX_HEADER: usize = 14;
/// Longest control payload (§5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// How the tracker judges one direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Enforce §5 (masking, RSV, opcodes, control frames, fragmentation, Close codes).
    pub check: bool,
    /// permessage-deflate was negotiated: RSV1 on the first frame of a data message is legal.
    pub deflate: bool,
    /// Largest frame payload.
    pub max_frame: Option<NonZeroU64>,
    /// Largest message (sum of its frames' payloads).
    pub max_message: Option<NonZeroU64>,
}

/// A rule a frame broke. The frame is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A client frame without a mask, or a backend frame with one (§5.1).
    Masking,
    /// An RSV bit no extension negotiated (§5.2).
    Rsv,
    /// A reserved opcode (§5.2).
    Opcode,
    /// A control frame with more than 125 payload bytes, or fragmented (§5.5).
    Control,
    /// A continuation frame with no message to continue, or a new message inside one (§5.4).
    Fragmentation,
    /// A Close with a 1-byte payload, a code that may not be sent, or a reason that is not UTF-8
    /// (§5.5.1, §7.4).
    CloseFrame,
    /// A 64-bit length with its most significant bit set (§5.2).
    Length,
    /// A frame over `max_frame`.
    FrameTooBig,
    /// A message over `max_message`.
    MessageTooBig,
    /// A data message over the session's message rate.
    Rate,
}

impl Violation {
    /// Label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Violation::Masking => "masking",
            Violation::Rsv => "rsv",
            Violation::Opcode => "opcode",
            Violation::Control => "control",
            Violation::Fragmentation => "fragmentation",
            Violation::CloseFrame => "close_frame",
            Violation::Length => "length",
            Violation::FrameTooBig => "frame_too_big",
            Violation::MessageTooBig => "message_too_big",
            Violation::Rate => "rate",
        }
    }

    /// Over a size limit (1009), as opposed to a protocol error (1002) or the rate (1008).
    pub fn is_size(self) -> bool {
        matches!(self, Violation::FrameTooBig | Violation::MessageTooBig)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A complete control frame, held in the tracker (see [`Tracker::take_held`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Ping,
    /// `ours`: it answers one of wsgate's Pings ([`build::PING_PAYLOAD`]); absorb it.
    Pong {
        ours: bool,
    },
    /// A Close; `code` absent when the payload is empty.
    Close {
        code: Option<u16>,
    },
}

/// What to do with the next bytes of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forward this many bytes of input as they are.
    Pass(usize),
    /// This many bytes went into the tracker's held buffer; nothing to write yet.
    Hold(usize),
    /// This many bytes completed a data frame's header that was split across reads: write
    /// [`Tracker::take_held`] now, before anything else.
    Release(usize),
    /// This many bytes completed a control frame, now held: write it ([`Tracker::take_held`]),
    /// or drop it when it is one of wsgate's Pongs.
    Control(usize, Control),
    /// The frame starting at the current boundary breaks a rule: forward nothing more.
    Bad(Violation),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Between frames (a split header may be held).
    #[default]
    Header,
    /// Inside a data frame's payload.
    Payload,
    /// Inside a control frame, held whole.
    Control,
}

/// A message rate check, asked at the first frame of each data message.
pub trait MessageGate: Send + Sync + fmt::Debug {
    /// Whether one more message may start now.
    fn allow(&mut self) -> bool;
}

/// The tracker of one direction.
#[derive(Debug, Default)]
pub struct Tracker {
    from_client: bool,
    rules: Rules,
    state: State,
    /// A split header, or a control frame being collected. Empty (no allocation) otherwise.
    held: Vec<u8>,
    /// Payload bytes left in the current frame.
    remaining: u64,
    /// The current data frame ends its message.
    fin: bool,
    /// Inside a fragmented data message.
    fragmented: bool,
    /// Payload bytes of the current message so far.
    message_len: u64,
    /// Frames seen (complete headers).
    pub frames: u64,
    /// Data messages completed.
    pub messages: u64,
    /// Asked at the start of every data message (the client's message rate).
    pub gate: Option<Box<dyn MessageGate>>,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    /// Header bytes.
    size: usize,
}

/// Parse a header at the start of `b`; `Ok(None)` while incomplete.
fn parse_header(b: &[u8]) -> Result<Option<Header>, Violation> {
    let Some(need) = header_size(b) else {
        return Ok(None);
    };
    if b.len() < need {
        return Ok(None);
    }
    let masked = b[1] & 0x80 != 0;
    let len = match b[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([b[2], b[3]])),
        127 => {
            let mut n = [0; 8];
            n.copy_from_slice(&b[2..10]);
            let len = u64::from_be_bytes(n);
            if len >> 63 != 0 {
                return Err(Violation::Length);
            }
            len
        }
        small => u64::from(small),
    };
    let mask = masked.then(|| {
        let k = &b[need - 4..need];
        [k[0], k[1], k[2], k[3]]
    });
    Ok(Some(Header {
        fin: b[0] & 0x80 != 0,
        rsv: b[0] & 0x70,
        opcode: b[0] & 0x0f,
        mask,
        len,
        size: need,
    }))
}

/// How many bytes the header starting `b` has, once its first two bytes are known.
fn header_size(b: &[u8]) -> Option<usize> {
    let second = *b.get(1)?;
    let ext = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + ext + mask)
}

fn is_control(opcode: u8) -> bool {
    opcode & 0x08 != 0
}

/// Close codes a peer may send (§7.4.1, §7.4.2; 1004–1006 and 1015 never on the wire).
pub fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Tracker {
    /// A tracker for the direction from the client (`from_client`) or from the backend.
    pub fn new(from_client: bool, rules: Rules) -> Tracker {
        Tracker {
            from_client,
            rules,
            ..Tracker::default()
        }
    }

    /// At a frame boundary of the *forwarded* stream: wsgate may insert a frame of its own now.
    /// (A split header or a control frame being collected has not been forwarded yet.)
    pub fn at_boundary(&self) -> bool {
        self.state != State::Payload
    }

    /// The held bytes (a completed split header, or a control frame); leaves nothing held.
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// Decide what to do with the start of `input` (non-empty). Call again with the rest until
    /// `input` is used up.
    pub fn next(&mut self, input: &[u8]) -> Action {
        match self.state {
            State::Payload => {
                let n = self.remaining.min(input.len() as u64);
                self.remaining -= n;
                if self.remaining == 0 {
                    self.end_data_frame();
                }
                // n ≤ input.len(), so it fits a usize.
                Action::Pass(n as usize)
            }
            State::Control => {
                let n = self.remaining.min(input.len() as u64) as usize;
                self.held.extend_from_slice(&input[..n]);
                self.remaining -= n as u64;
                if self.remaining > 0 {
                    return Action::Hold(n);
                }
                self.state = State::Header;
                match self.inspect_control() {
                    Ok(c) => Action::Control(n, c),
                    Err(v) => Action::Bad(v),
                }
            }
            State::Header if self.held.is_empty() => match parse_header(input) {
                Err(v) => Action::Bad(v),
                Ok(Some(h)) => self.begin(h, input, 0),
                Ok(None) => {
                    let n = input.len().min(MAX_HEADER);
                    self.held.extend_from_slice(&input[..n]);
                    self.complete_held_header(n)
                }
            },
            State::Header => {
                // First the two bytes that give the header's size, then the rest of it.
                let mut taken = 0;
                while taken < input.len() {
                    let want = header_size(&self.held).unwrap_or(2);
                    let n = want.saturating_sub(self.held.len());
                    if n == 0 {
                        break;
                    }
                    let n = n.min(input.len() - taken);
                    self.held.extend_from_slice(&input[taken..taken + n]);
                    taken += n;
                }
                self.complete_held_header(taken)
            }
        }
    }

    /// After `taken` bytes of `input` went into `held`: a complete header starts the frame
    /// (giving back what belongs to the payload), else keep holding.
    fn complete_held_header(&mut self, taken: usize) -> Action {
        let h = match parse_header(&self.held) {
            Err(v) => return Action::Bad(v),
            Ok(None) => return Action::Hold(taken),
            Ok(Some(h)) => h,
        };
        // Bytes past the header are the payload's: not held, left in the input.
        let extra = self.held.len() - h.size;
        self.held.truncate(h.size);
        let used = taken - extra;
        match self.begin(h, &[], used) {
            Action::Pass(_) => Action::Release(used),
            other => other,
        }
    }

    /// A complete header: check it, then enter the frame. `input` holds the header and what
    /// follows when the header was read in one piece (`held` empty); `taken` is what the held
    /// path already consumed of this call's input.
    fn begin(&mut self, h: Header, input: &[u8], taken: usize) -> Action {
        if let Err(v) = self.check(&h) {
            return Action::Bad(v);
        }
        self.frames += 1;
        let from_input = self.held.is_empty();
        if is_control(h.opcode) {
            self.state = State::Control;
            self.remaining = h.len;
            if from_input {
                self.held.extend_from_slice(&input[..h.size]);
                if h.len == 0 {
                    return self.next_control_done(h.size);
                }
                return Action::Hold(h.size);
            }
            if h.len == 0 {
                return self.next_control_done(taken);
            }
            return Action::Hold(taken);
        }
        if h.opcode != 0 {
            self.message_len = 0;
        }
        self.fragmented = !h.fin;
        self.fin = h.fin;
        self.message_len = self.message_len.saturating_add(h.len);
        self.remaining = h.len;
        self.state = State::Payload;
        if h.len == 0 {
            self.end_data_frame();
        }
        if !from_input {
            return Action::Pass(0);
        }
        let body = self.remaining.min((input.len() - h.size) as u64);
        self.remaining -= body;
        if self.state == State::Payload && self.remaining == 0 {
            self.end_data_frame();
        }
        Action::Pass(h.size + body as usize)
    }

    fn next_control_done(&mut self, n: usize) -> Action {
        self.state = State::Header;
        match self.inspect_control() {
            Ok(c) => Action::Control(n, c),
            Err(v) => Action::Bad(v),
        }
    }

    fn end_data_frame(&mut self) {
        self.state = State::Header;
        if self.fin {
            self.messages += 1;
            self.fragmented = false;
            self.message_len = 0;
        }
    }
}

mod rules;
