//! What the fuzz targets share: reading a few configuration bytes off the front of an input,
//! cutting a stream into fuzzer-chosen pieces, a reader that hands those pieces out one read at
//! a time, and one current-thread runtime per process for the targets that drive async code.
//!
//! The input layout every split-aware target uses (so seeds can be written by hand):
//! `[config byte] [k] [k piece lengths] [stream...]`. The stream is cut into pieces of those
//! lengths, repeated until it ends (a length of 0 counts as 1); `k = 0` means one piece.

use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::runtime::Runtime;

/// Most piece lengths an input may give.
const MAX_PIECES: usize = 16;

/// Bound on one async drive: nothing a target drives waits on a real peer, so anything this
/// slow is a hang, reported as a crash.
pub const HANG: Duration = Duration::from_secs(5);

/// One runtime for the whole process (building one per input would dominate the run).
pub fn runtime() -> &'static Runtime {
    static RT: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    });
    &RT
}

/// An input with its configuration prefix read off.
pub struct Framed<'a> {
    /// The configuration byte (0 when the input is empty).
    pub config: u8,
    /// Piece lengths, each at least 1; empty for "one piece".
    pub lengths: Vec<usize>,
    /// The bytes to feed.
    pub stream: &'a [u8],
}

impl<'a> Framed<'a> {
    /// Read `[config] [k] [k lengths]` off the front of `data`; what is missing counts as 0.
    pub fn parse(data: &'a [u8]) -> Framed<'a> {
        let config = data.first().copied().unwrap_or(0);
        let k = usize::from(data.get(1).copied().unwrap_or(0)).min(MAX_PIECES);
        let start = (2 + k).min(data.len());
        let lengths = data
            .get(2..start)
            .unwrap_or_default()
            .iter()
            .map(|&b| usize::from(b).max(1))
            .collect();
        Framed {
            config,
            lengths,
            stream: &data[start..],
        }
    }

    /// The stream cut into pieces (never an empty piece; none for an empty stream).
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        split(self.stream, &self.lengths)
    }
}

/// `stream` cut into pieces of `lengths`, cycled; one piece when `lengths` is empty.
pub fn split<'a>(stream: &'a [u8], lengths: &[usize]) -> Vec<&'a [u8]> {
    if stream.is_empty() {
        return Vec::new();
    }
    if lengths.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &n in lengths.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}

/// An in-memory reader that returns at most one piece per read (less when the caller's buffer
/// is smaller), then end of stream: a peer whose bytes arrive in those pieces.
pub struct Pieces<'a> {
    pieces: Vec<&'a [u8]>,
    /// Index of the piece being read, and how much of it is read.
    at: usize,
    offset: usize,
    /// Bytes handed out so far.
    pub consumed: usize,
}

impl<'a> Pieces<'a> {
    pub fn new(pieces: Vec<&'a [u8]>) -> Pieces<'a> {
        Pieces {
            pieces,
            at: 0,
            offset: 0,
            consumed: 0,
        }
    }
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(piece) = this.pieces.get(this.at) else {
            return Poll::Ready(Ok(()));
        };
        let left = &piece[this.offset..];
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        this.offset += n;
        this.consumed += n;
        if this.offset == piece.len() {
            this.at += 1;
            this.offset = 0;
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cycles_lengths_and_keeps_every_byte() {
        let s = b"abcdefg";
        assert_eq!(split(s, &[]), vec![&s[..]]);
        assert_eq!(split(s, &[2, 1]), vec![&b"ab"[..], b"c", b"de", b"f", b"g"]);
        let f = Framed::parse(&[7, 2, 0, 3, b'x', b'y', b'z', b'w']);
        assert_eq!(f.config, 7);
        assert_eq!(f.lengths, [1, 3]);
        assert_eq!(f.pieces(), vec![&b"x"[..], b"yzw"]);
        assert_eq!(Framed::parse(&[1, 200]).stream, b"");
    }
}
