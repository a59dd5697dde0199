//! rustls' side of a [`TlsConn`](super::TlsConn): running records through the unbuffered
//! connection, and the bytes it produced that have not gone anywhere yet (plaintext the reader
//! has not taken, records the socket has not taken).

use std::io;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};
use tokio::io::ReadBuf;

/// What the records processed so far leave the connection waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// More bytes from the peer.
    Input,
    /// Nothing more: the peer sent close_notify.
    PeerClosed,
}

/// rustls' state and the bytes it produced that have not gone anywhere yet.
pub(super) struct Session {
    pub(super) conn: UnbufferedServerConnection,
    /// Plaintext decrypted but not yet taken by the reader.
    pub(super) plain: Vec<u8>,
    /// Records not yet taken by the socket, from `out_pos` on.
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    /// The peer's close_notify arrived: reads return EOF from now on.
    pub(super) peer_closed: bool,
    /// rustls failed (its alert is in `out`): it is not asked anything again.
    pub(super) broken: bool,
}

impl Session {
    /// Run rustls over `input` until it needs more bytes. Plaintext goes to `dst`, what does
    /// not fit (or everything, without `dst`) to `plain`; records rustls makes go to `out`.
    /// Returns how many bytes of `input` are used up.
    pub(super) fn process(
        &mut self,
        input: &mut [u8],
        mut dst: Option<&mut ReadBuf<'_>>,
    ) -> io::Result<(usize, After)> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS connection failed earlier",
            ));
        }
        let mut used = 0;
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut input[used..]);
            let after = match state {
                Err(e) => {
                    self.queue_alert(&mut input[used + discard..]);
                    return Err(tls_error(e));
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(|e| {
                            self.broken = true;
                            tls_error(e)
                        })?;
                        deliver(record.payload, dst.as_deref_mut(), &mut self.plain);
                    }
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    append(&mut self.out, 0, |buf| {
                        encode.encode(buf).map_err(|e| match e {
                            EncodeError::InsufficientSize(s) => Some(s.required_size),
                            EncodeError::AlreadyEncoded => None,
                        })
                    })?;
                    None
                }
                // The backlog goes out before anything queued after it: "transmitted".
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    None
                }
                Ok(ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_)) => {
                    Some(After::Input)
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Some(After::PeerClosed)
                }
                // Early data is off (`max_early_data_size` 0), so rustls never offers it.
                Ok(other) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected TLS state {other:?}"),
                    ));
                }
            };
            used += discard;
            if let Some(after) = after {
                return Ok((used, after));
            }
        }
    }

    /// After an error rustls has an alert for the peer queued (first, before anything else it
    /// would do): encode it into the backlog. `rest` is what the failed step left of the input
    /// (rustls may still point into it). rustls is not asked anything after this.
    fn queue_alert(&mut self, rest: &mut [u8]) {
        self.broken = true;
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(rest);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = state {
            let _ = append(&mut self.out, 0, |buf| {
                encode.encode(buf).map_err(|e| match e {
                    EncodeError::InsufficientSize(s) => Some(s.required_size),
                    EncodeError::AlreadyEncoded => None,
                })
            });
        }
    }

    /// Hand kept plaintext to `buf`. False when there is none.
    pub(super) fn take_plain(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.plain.is_empty() {
            return false;
        }
        let n = self.plain.len().min(buf.remaining());
        buf.put_slice(&self.plain[..n]);
        self.plain.drain(..n);
        if self.plain.is_empty() {
            self.plain = Vec::new();
        }
        true
    }
}

/// Plaintext to the reader's buffer while it has room and nothing is kept before it.
fn deliver(payload: &[u8], dst: Option<&mut ReadBuf<'_>>, plain: &mut Vec<u8>) {
    let mut rest = payload;
    if plain.is_empty()
        && let Some(buf) = dst
    {
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        rest = &rest[n..];
    }
    plain.extend_from_slice(rest);
}

/// Let `put` write at the end of `out`, with the room it asks for (`Err(Some(size))`).
pub(super) fn append(
    out: &mut Vec<u8>,
    guess: usize,
    mut put: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> io::Result<()> {
    let start = out.len();
    let mut room = guess;
    loop {
        out.resize(start + room, 0);
        match put(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(required)) if required > room => room = required,
            Err(_) => {
                out.truncate(start);
                return Err(io::Error::other("TLS record encoding failed"));
            }
        }
    }
}

pub(super) fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
