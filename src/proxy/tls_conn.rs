//! The client's TLS connection on rustls' unbuffered API: wsgate owns every buffer, so a
//! session that waits keeps none.
//!
//! rustls' buffered `ServerConnection` keeps a 4 KiB receive buffer for as long as a
//! connection lives, and a WebSocket tunnel mostly waits. Here a read first waits until the
//! socket is readable, then reads into a per-worker-thread scratch and runs the records through
//! rustls; only a record the read cut short, and plaintext the reader's buffer could not take,
//! stay on the heap. A write encrypts into a per-thread scratch and writes straight on; only
//! what the socket does not take now is kept, and a write waits while that backlog is large
//! (backpressure).
//!
//! Owns: driving the handshake (the caller bounds its time), records rustls makes by itself
//! (handshake flights, the session ticket, key-update answers, alerts: they go out before the
//! connection waits for the peer, or with the next write — the ticket rides with the first
//! answer), close_notify on shutdown, and TLS errors as `io::Error` (`InvalidData` around the
//! `rustls::Error`, as tokio-rustls reports them).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncryptError, UnbufferedStatus};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

mod session;

use session::{After, Session, append, tls_error};

/// Bytes read from the socket at once: a few full records.
const READ_BYTES: usize = 64 * 1024;
/// Plaintext encrypted per write: four full records.
const WRITE_BYTES: usize = 64 * 1024;
/// Room for the records of one write: their headers and tags (TLS 1.2 AES-GCM: 29 bytes each).
const WRITE_ROOM: usize = WRITE_BYTES + 4 * 64;
/// Encrypted bytes the socket has not taken yet, above which a write waits for them.
const BACKLOG_BYTES: usize = 64 * 1024;
/// Unprocessed bytes held between reads. rustls joins a handshake message of up to 64 KiB
/// across records in the caller's buffer; after the handshake this is less than one record.
const MAX_HELD: usize = 64 * 1024 + 18 * 1024;

thread_local! {
    static READ_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static WRITE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A server-side TLS connection over a TCP socket.
pub struct TlsConn {
    tcp: TcpStream,
    session: Session,
    /// Bytes read but not yet processed: the start of a record the last read cut short.
    held: Vec<u8>,
    /// close_notify was queued (on shutdown).
    close_queued: bool,
}

/// Run the server handshake on `tcp`. Returns the connection and the SNI name the client
/// sent (as rustls saw it when choosing the certificate). The caller bounds the time.
pub async fn accept(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
) -> io::Result<(TlsConn, Option<String>)> {
    let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    let mut tls = TlsConn {
        tcp,
        session: Session {
            conn,
            plain: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            peer_closed: false,
            broken: false,
        },
        held: Vec::new(),
        close_queued: false,
    };
    let mut sni = None;
    std::future::poll_fn(|cx| tls.poll_handshake(cx, &mut sni)).await?;
    Ok((tls, sni))
}

impl TlsConn {
    /// rustls' view of the connection: ALPN, the client's certificate, the version.
    pub fn connection(&self) -> &UnbufferedServerConnection {
        &self.session.conn
    }

    fn poll_handshake(
        &mut self,
        cx: &mut Context<'_>,
        sni: &mut Option<String>,
    ) -> Poll<io::Result<()>> {
        loop {
            // Done: what rustls queued now (the session ticket) goes with the first answer.
            if !self.session.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            // A flight goes out before the peer's answer to it is awaited.
            if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            let result = ready!(self.poll_read_records(cx, None));
            if let Some(name) = crate::runtime::tls::take_resolved_sni() {
                *sni = Some(name);
            }
            match result {
                Ok(After::Input) => {}
                Ok(After::PeerClosed) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection during the TLS handshake",
                    )));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Read into the per-thread scratch and run the records through rustls: plaintext to
    /// `dst` (what does not fit is kept), records rustls answers with to the backlog. Before
    /// waiting for the socket, the backlog goes out (the peer may be waiting for it). A read
    /// that would block costs no buffer; tokio's `poll_read` also notes a short read as the
    /// socket drained, so the next read waits for readiness instead of failing with EAGAIN.
    fn poll_read_records(
        &mut self,
        cx: &mut Context<'_>,
        dst: Option<&mut ReadBuf<'_>>,
    ) -> Poll<io::Result<After>> {
        let step = READ_SCRATCH.with_borrow_mut(|scratch| {
            let held = self.held.len();
            let end = held + READ_BYTES;
            if scratch.len() < end {
                scratch.resize(end, 0);
            }
            let mut buf = ReadBuf::new(&mut scratch[held..end]);
            ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut buf))?;
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(Err(unexpected_eof()));
            }
            scratch[..held].copy_from_slice(&self.held);
            let (used, after) = self.session.process(&mut scratch[..held + n], dst)?;
            let rest = &scratch[used..held + n];
            if rest.len() > MAX_HELD {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS message too large",
                )));
            }
            if rest.is_empty() {
                self.held = Vec::new();
            } else {
                self.held.clear();
                self.held.extend_from_slice(rest);
            }
            Poll::Ready(Ok(after))
        });
        match step {
            Poll::Ready(Ok(after)) => Poll::Ready(Ok(after)),
            Poll::Pending => match self.poll_send(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
            Poll::Ready(Err(e)) => {
                // rustls' alert goes out now if the socket takes it (a last word, as
                // tokio-rustls does): the caller may drop the connection next.
                if self.session.broken {
                    let _ = self.poll_send(cx);
                }
                Poll::Ready(Err(e))
            }
        }
    }

    /// Write the backlog out.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = &mut self.session;
        while s.out_pos < s.out.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &s.out[s.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            s.out_pos += n;
        }
        if !s.out.is_empty() {
            s.out = Vec::new();
            s.out_pos = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Encrypt `data` and send it, or keep what the socket does not take now.
    fn write_records(&mut self, cx: &mut Context<'_>, data: &[u8]) -> io::Result<()> {
        self.settle()?;
        WRITE_SCRATCH.with_borrow_mut(|scratch| {
            if scratch.len() < WRITE_ROOM {
                scratch.resize(WRITE_ROOM, 0);
            }
            let n = loop {
                let UnbufferedStatus { state, .. } =
                    self.session.conn.process_tls_records(&mut self.held);
                let Ok(ConnectionState::WriteTraffic(mut traffic)) = state else {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the TLS connection cannot send",
                    ));
                };
                match traffic.encrypt(data, scratch) {
                    Ok(n) => break n,
                    Err(EncryptError::InsufficientSize(s)) if s.required_size > scratch.len() => {
                        scratch.resize(s.required_size, 0);
                    }
                    Err(e) => return Err(io::Error::other(e)),
                }
            };
            self.send_now(cx, &scratch[..n])
        })
    }

    /// Send `bytes` after the backlog; what the socket does not take joins the backlog.
    fn send_now(&mut self, cx: &mut Context<'_>, mut bytes: &[u8]) -> io::Result<()> {
        if self.session.out_pos < self.session.out.len() {
            self.session.out.extend_from_slice(bytes);
            return match self.poll_send(cx) {
                Poll::Ready(Err(e)) => Err(e),
                _ => Ok(()),
            };
        }
        while !bytes.is_empty() {
            match Pin::new(&mut self.tcp).poll_write(cx, bytes) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => bytes = &bytes[n..],
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        if !bytes.is_empty() {
            self.session.out.clear();
            self.session.out_pos = 0;
            self.session.out.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Let rustls finish what it has pending (records to make, a close_notify seen) so that
    /// the next state is `WriteTraffic`.
    fn settle(&mut self) -> io::Result<()> {
        let (used, _) = self.session.process(&mut self.held, None)?;
        self.held.drain(..used);
        Ok(())
    }

    /// Queue close_notify (once; nothing when rustls cannot send any more).
    fn queue_close_notify(&mut self) {
        self.close_queued = true;
        if self.settle().is_err() {
            return;
        }
        let s = &mut self.session;
        let UnbufferedStatus { state, .. } = s.conn.process_tls_records(&mut self.held);
        if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
            let _ = append(&mut s.out, 64, |buf| {
                traffic.queue_close_notify(buf).map_err(|e| match e {
                    EncryptError::InsufficientSize(s) => Some(s.required_size),
                    EncryptError::EncryptExhausted => None,
                })
            });
        }
    }
}

fn unexpected_eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection without a TLS close_notify",
    )
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 || this.session.take_plain(buf) || this.session.peer_closed {
            return Poll::Ready(Ok(()));
        }
        loop {
            let before = buf.filled().len();
            ready!(this.poll_read_records(cx, Some(&mut *buf)))?;
            if buf.filled().len() > before
                || this.session.take_plain(buf)
                || this.session.peer_closed
            {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.session.out.len() - this.session.out_pos >= BACKLOG_BYTES {
            ready!(this.poll_send(cx))?;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let take = data.len().min(WRITE_BYTES);
        this.write_records(cx, &data[..take])?;
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            this.queue_close_notify();
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
