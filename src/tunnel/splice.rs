//! The byte tunnel: copy both ways until both sides are done, an error, or the idle timeout.
//!
//! Memory is the point of this module. A tunnel holds no buffer while it is idle: data is read
//! into a per-worker-thread scratch buffer only when a side is readable and written straight on;
//! only what the other side would not take right now is kept, on the heap, until it drains (and
//! that side is not read again meanwhile: backpressure). Half-close is propagated: EOF from one
//! side becomes a write shutdown on the other, and the other direction keeps flowing.
//! Parses nothing (invariant 6).

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Scratch size: a few TLS records, large enough for bulk throughput.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Reads per direction per poll before yielding, so one busy tunnel cannot starve a worker.
const READS_PER_POLL: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// Why a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both directions finished; the client's side ended first.
    Client,
    /// Both directions finished; the backend's side ended first.
    Backend,
    /// Reading from or writing to the client failed.
    ClientError,
    /// Reading from or writing to the backend failed.
    BackendError,
    /// No byte either way for the idle timeout.
    IdleTimeout,
    /// One side ended and the other did not follow within the half-close timeout.
    HalfCloseTimeout,
}

impl End {
    /// Label for the session record.
    pub fn label(self) -> &'static str {
        match self {
            End::Client => "client",
            End::Backend => "backend",
            End::ClientError => "client_error",
            End::BackendError => "backend_error",
            End::IdleTimeout => "idle_timeout",
            End::HalfCloseTimeout => "half_close_timeout",
        }
    }
}

/// Time bounds of a tunnel.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// No byte either way for this long: close both legs.
    pub idle: Duration,
    /// One side finished (EOF) and the other has not for this long: close both legs.
    pub half_close: Duration,
}

/// Bytes relayed so far, each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub to_backend: u64,
    pub to_client: u64,
}

/// One direction of the tunnel.
#[derive(Debug, Default)]
struct Half {
    /// Bytes read but not yet taken by the writer. Empty (no allocation) most of the time.
    pending: Vec<u8>,
    pos: usize,
    needs_flush: bool,
    eof: bool,
    done: bool,
    bytes: u64,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Read,
    Write,
}

impl Half {
    fn with_pending(bytes: Vec<u8>) -> Half {
        Half {
            pending: bytes,
            ..Half::default()
        }
    }

    /// Move bytes from `src` to `dst` until either would block. `Ready(Ok)` once done.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        dst: &mut W,
        active: &mut bool,
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
            if self.eof {
                // A failed shutdown only means the peer is gone; this direction is over either way.
                let _ = ready!(Pin::new(&mut *dst).poll_shutdown(cx));
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_read_through(cx, src, dst, active))?;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Write out what is pending and flush it.
    fn poll_drain<W: AsyncWrite + Unpin>(
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

    /// One read into the scratch buffer, written on at once; the remainder becomes `pending`.
    fn poll_read_through<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        dst: &mut W,
        active: &mut bool,
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
            *active = true;
            let mut off = 0;
            while off < n {
                match Pin::new(&mut *dst).poll_write(cx, &scratch[off..n]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        return Poll::Ready(Err(Fault::Write));
                    }
                    Poll::Ready(Ok(m)) => {
                        off += m;
                        self.bytes += m as u64;
                        self.needs_flush = true;
                    }
                    Poll::Pending => break,
                }
            }
            if off < n {
                self.pending = scratch[off..n].to_vec();
                self.pos = 0;
            }
            Poll::Ready(Ok(()))
        })
    }
}

/// Copy both ways. `to_backend_first` / `to_client_first` are bytes already read ahead on either
/// side (pipelined by the client, or sent by the backend right behind its 101); they go first.
pub async fn splice<C, B>(
    client: &mut C,
    backend: &mut B,
    to_backend_first: Vec<u8>,
    to_client_first: Vec<u8>,
    timeouts: Timeouts,
    counts: &mut Counts,
) -> End
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut up = Half::with_pending(to_backend_first);
    let mut down = Half::with_pending(to_client_first);
    let mut first_done: Option<End> = None;
    let mut last_active = Instant::now();
    let mut half_closed_at: Option<Instant> = None;
    let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(timeouts.idle));
    poll_fn(|cx| {
        let mut active = false;
        let result = poll_both(
            cx,
            client,
            backend,
            &mut up,
            &mut down,
            &mut first_done,
            &mut active,
        );
        counts.to_backend = up.bytes;
        counts.to_client = down.bytes;
        if let Poll::Ready(end) = result {
            return Poll::Ready(end);
        }
        if active {
            last_active = Instant::now();
        }
        if first_done.is_some() && half_closed_at.is_none() {
            let now = Instant::now();
            half_closed_at = Some(now);
            // Wake the timer now so it re-arms for the (usually nearer) half-close deadline.
            timer.as_mut().reset(now);
        }
        while timer.as_mut().poll(cx).is_ready() {
            let idle_at = last_active + timeouts.idle;
            let half_at = half_closed_at.map(|t| t + timeouts.half_close);
            let now = Instant::now();
            if idle_at <= now {
                return Poll::Ready(End::IdleTimeout);
            }
            if half_at.is_some_and(|t| t <= now) {
                return Poll::Ready(End::HalfCloseTimeout);
            }
            timer
                .as_mut()
                .reset(half_at.map_or(idle_at, |h| h.min(idle_at)));
        }
        Poll::Pending
    })
    .await
}

fn poll_both<C, B>(
    cx: &mut Context<'_>,
    client: &mut C,
    backend: &mut B,
    up: &mut Half,
    down: &mut Half,
    first_done: &mut Option<End>,
    active: &mut bool,
) -> Poll<End>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    if !up.done {
        match up.poll_copy(cx, client, backend, active) {
            Poll::Ready(Ok(())) => {
                first_done.get_or_insert(End::Client);
            }
            Poll::Ready(Err(Fault::Read)) => return Poll::Ready(End::ClientError),
            Poll::Ready(Err(Fault::Write)) => return Poll::Ready(End::BackendError),
            Poll::Pending => {}
        }
    }
    if !down.done {
        match down.poll_copy(cx, backend, client, active) {
            Poll::Ready(Ok(())) => {
                first_done.get_or_insert(End::Backend);
            }
            Poll::Ready(Err(Fault::Read)) => return Poll::Ready(End::BackendError),
            Poll::Ready(Err(Fault::Write)) => return Poll::Ready(End::ClientError),
            Poll::Pending => {}
        }
    }
    match (up.done && down.done, *first_done) {
        (true, Some(end)) => Poll::Ready(end),
        _ => Poll::Pending,
    }
}
