//! One direction of a tunnel: bytes from a source to a destination, through the frame tracker.
//!
//! Memory is the point of this module. A direction holds no buffer while it is idle: data is
//! read into a per-worker-thread scratch buffer only when the source is readable, run through
//! the [`Tracker`] (headers only) and written straight on; only what the destination would not
//! take right now is kept, on the heap, until it drains (and the source is not read again
//! meanwhile: backpressure). EOF from the source becomes a write shutdown on the destination.
//!
//! wsgate's own frames ([`Half::insert`]) go out only at a frame boundary of what was
//! forwarded. Once wsgate's Close is out on a direction, the source's further bytes are read
//! and tracked (to see the peer's Close reply) but no longer forwarded (`sealed`). What the
//! session does with a violation, a Close, or a Pong is `tunnel::drive`'s business.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frames::{Action, Control, Tracker, Violation};

/// Scratch size: a few TLS records, large enough for bulk throughput.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Reads per direction per poll before yielding, so one busy tunnel cannot starve a worker.
const READS_PER_POLL: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// Time bounds of a tunnel.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// No byte either way for this long: close both legs.
    pub idle: std::time::Duration,
    /// One side finished (EOF) and the other has not for this long: close both legs.
    pub half_close: std::time::Duration,
}

/// Bytes relayed so far, each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub to_backend: u64,
    pub to_client: u64,
}

/// Which end failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Read,
    Write,
}

/// One direction of the tunnel.
#[derive(Debug, Default)]
pub struct Half {
    /// Bytes due to the destination but not yet taken. Empty (no allocation) most of the time.
    pending: Vec<u8>,
    pos: usize,
    needs_flush: bool,
    /// The source reached EOF.
    pub eof: bool,
    /// EOF was passed on as a write shutdown: this direction is over.
    pub done: bool,
    /// Bytes written to the destination.
    pub bytes: u64,
    pub tracker: Tracker,
    /// A frame of wsgate's, written at the next frame boundary.
    pub insert: Option<Box<[u8]>>,
    /// `insert` is wsgate's Close: once it is out, nothing more is forwarded.
    pub insert_is_close: bool,
    /// wsgate's Close went into the output; the source's bytes are no longer forwarded.
    pub sealed: bool,
    /// The source sent a Close (with this code, if any).
    pub peer_close: Option<Option<u16>>,
    /// The source's Close was forwarded to the destination.
    pub close_forwarded: bool,
    /// The source broke a rule; it is not read any more.
    pub bad: Option<Violation>,
    /// The source answered one of wsgate's Pings.
    pub pong: bool,
    /// The source sent something since the driver last looked.
    pub rx: bool,
    /// Bytes read ahead of the tunnel (pipelined by the client, or sent by the backend right
    /// behind its 101): tracked and forwarded first.
    pub first: Vec<u8>,
}

impl Half {
    /// A direction with `tracker`, and bytes already read ahead that go first.
    pub fn new(tracker: Tracker, first: Vec<u8>) -> Half {
        Half {
            tracker,
            first,
            ..Half::default()
        }
    }

    /// Whether wsgate's Close is completely written and flushed to the destination.
    pub fn close_out(&self) -> bool {
        self.sealed && self.pending.is_empty() && !self.needs_flush
    }

    /// Move bytes from `src` to `dst` until either would block. `Ready(Ok)` once done.
    pub fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        dst: &mut W,
    ) -> Poll<Result<(), Fault>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        for _ in 0..READS_PER_POLL {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_drain(cx, dst))?;
            if !self.first.is_empty() {
                let first = std::mem::take(&mut self.first);
                self.forward(cx, dst, &first)?;
                continue;
            }
            if self.insert.is_some() && self.tracker.at_boundary() {
                self.emit_insert(cx, dst)?;
                ready!(self.poll_drain(cx, dst))?;
            }
            if self.eof || self.bad.is_some() {
                if self.bad.is_some() && !self.sealed {
                    // Waiting for the session to queue its Close on this direction.
                    return Poll::Pending;
                }
                // A failed shutdown only means the peer is gone; this direction is over.
                let _ = ready!(Pin::new(&mut *dst).poll_shutdown(cx));
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_read_through(cx, src, dst))?;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Write out what is pending, then flush.
    pub fn poll_drain<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
    ) -> Poll<Result<(), Fault>> {
        while self.pos < self.pending.len() {
            let n = ready!(Pin::new(&mut *dst).poll_write(cx, &self.pending[self.pos..]))
                .map_err(|_| Fault::Write)?;
            if n == 0 {
                return Poll::Ready(Err(Fault::Write));
            }
            self.pos += n;
            self.bytes += n as u64;
            self.needs_flush = true;
        }
        if !self.pending.is_empty() {
            // Give the memory back: an idle tunnel holds no buffer.
            self.pending = Vec::new();
            self.pos = 0;
        }
        if self.needs_flush {
            ready!(Pin::new(&mut *dst).poll_flush(cx)).map_err(|_| Fault::Write)?;
            self.needs_flush = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Write `bytes` on, or keep what the destination does not take now.
    fn emit<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
        mut bytes: &[u8],
    ) -> Result<(), Fault> {
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(bytes);
            return Ok(());
        }
        while !bytes.is_empty() {
            match Pin::new(&mut *dst).poll_write(cx, bytes) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(Fault::Write),
                Poll::Ready(Ok(m)) => {
                    bytes = &bytes[m..];
                    self.bytes += m as u64;
                    self.needs_flush = true;
                }
                Poll::Pending => {
                    self.pending = bytes.to_vec();
                    self.pos = 0;
                    break;
                }
            }
        }
        Ok(())
    }

    /// wsgate's frame, now that the forwarded stream is at a boundary.
    fn emit_insert<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
    ) -> Result<(), Fault> {
        let Some(frame) = self.insert.take() else {
            return Ok(());
        };
        if self.sealed {
            return Ok(());
        }
        self.emit(cx, dst, &frame)?;
        if self.insert_is_close {
            self.sealed = true;
        }
        Ok(())
    }

    /// One read into the scratch buffer, tracked and written on; the remainder becomes `pending`.
    fn poll_read_through<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        dst: &mut W,
    ) -> Poll<Result<(), Fault>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut buf = ReadBuf::new(scratch);
            match ready!(Pin::new(&mut *src).poll_read(cx, &mut buf)) {
                Ok(()) => {}
                // A peer that drops TCP without a TLS close_notify is still just a close.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                Err(_) => return Poll::Ready(Err(Fault::Read)),
            }
            let n = buf.filled().len();
            if n == 0 {
                self.eof = true;
                return Poll::Ready(Ok(()));
            }
            self.rx = true;
            Poll::Ready(self.forward(cx, dst, &scratch[..n]))
        })
    }

    /// Run `chunk` through the tracker: forward what may go (runs of passed bytes in one
    /// write), hold or drop what must, note Closes, Pongs and violations.
    pub fn forward<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
        chunk: &[u8],
    ) -> Result<(), Fault> {
        let mut at = 0;
        // Start of the run of passed bytes not yet written.
        let mut run = 0;
        while at < chunk.len() && self.bad.is_none() {
            let action = self.tracker.next(&chunk[at..]);
            if !matches!(action, Action::Pass(_)) && run < at && !self.sealed {
                self.emit(cx, dst, &chunk[run..at])?;
            }
            let used = match action {
                Action::Pass(n) => n,
                Action::Hold(n) => n,
                Action::Release(n) => {
                    let head = self.tracker.take_held();
                    if !self.sealed {
                        self.emit(cx, dst, &head)?;
                    }
                    n
                }
                Action::Control(n, control) => {
                    self.control(cx, dst, control)?;
                    n
                }
                Action::Bad(v) => {
                    self.bad = Some(v);
                    0
                }
            };
            if !matches!(action, Action::Pass(_)) {
                run = at + used;
            }
            at += used;
            if self.insert.is_some() && self.tracker.at_boundary() {
                if run < at && !self.sealed {
                    self.emit(cx, dst, &chunk[run..at])?;
                }
                run = at;
                self.emit_insert(cx, dst)?;
            }
        }
        if run < at && !self.sealed && self.bad.is_none() {
            self.emit(cx, dst, &chunk[run..at])?;
        }
        Ok(())
    }

    /// A complete control frame from the source.
    fn control<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
        control: Control,
    ) -> Result<(), Fault> {
        let frame = self.tracker.take_held();
        match control {
            // wsgate's own Pong: absorbed, never forwarded.
            Control::Pong { ours: true } => {
                self.pong = true;
                Ok(())
            }
            Control::Close { code } => {
                self.peer_close.get_or_insert(code);
                if self.sealed || self.close_forwarded {
                    return Ok(());
                }
                self.close_forwarded = true;
                // A Close is the last frame on this direction (§5.5.1: no data after it): neither
                // wsgate nor the peer adds anything after it.
                self.insert = None;
                self.emit(cx, dst, &frame)?;
                self.sealed = true;
                Ok(())
            }
            _ if self.sealed => Ok(()),
            _ => self.emit(cx, dst, &frame),
        }
    }
}
