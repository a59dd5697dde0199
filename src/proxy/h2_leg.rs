//! The client leg of an h2 stream's tunnel: the stream hyper hands over once the `200` is
//! sent, resolved inside the tunnel task on first use.
//!
//! hyper gives the upgraded stream through a future (`OnUpgrade`). A task that awaited it and
//! then called `tunnel::run` would keep the tunnel's record and backend leg twice in its state
//! (once while waiting, once moved into the run future): ~600 bytes per stream, for as long as
//! the session lives. With this leg the task is `tunnel::run` alone. The leg also holds the
//! stream's place on its connection (`alive`) until the tunnel ends.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An h2 stream as the client leg of its tunnel.
pub struct StreamLeg {
    state: State,
    /// Counts the stream as open on its connection until the tunnel ends.
    _alive: Option<Arc<()>>,
}

enum State {
    Waiting(OnUpgrade),
    Open(TokioIo<Upgraded>),
    Gone,
}

impl StreamLeg {
    pub fn new(on_upgrade: OnUpgrade, alive: Option<Arc<()>>) -> StreamLeg {
        StreamLeg {
            state: State::Waiting(on_upgrade),
            _alive: alive,
        }
    }

    /// The upgraded stream, once hyper has handed it over.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Pin<&mut TokioIo<Upgraded>>>> {
        if let State::Waiting(on_upgrade) = &mut self.state {
            match ready!(Pin::new(on_upgrade).poll(cx)) {
                Ok(upgraded) => self.state = State::Open(TokioIo::new(upgraded)),
                Err(e) => {
                    tracing::debug!(error = %e, "h2 stream gone before its tunnel began");
                    self.state = State::Gone;
                }
            }
        }
        match &mut self.state {
            State::Open(io) => Poll::Ready(Ok(Pin::new(io))),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the h2 stream ended before its tunnel began",
            ))),
        }
    }
}

impl AsyncRead for StreamLeg {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_open(cx))?.poll_read(cx, buf)
    }
}

impl AsyncWrite for StreamLeg {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.get_mut().poll_open(cx))?.poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_open(cx))?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_open(cx))?.poll_shutdown(cx)
    }
}
