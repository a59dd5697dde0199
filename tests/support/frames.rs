//! WebSocket frames by hand (RFC 6455 §5.2), for tests that speak raw bytes on either leg:
//! masked as a client sends them, unmasked as a backend does, and a reader that splits a byte
//! stream back into frames.

/// The masking key test clients use.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One frame with `first` as its first byte (FIN, RSV, opcode), masked or not.
pub fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    wsgate::tunnel::frames::build::any(first, payload, masked.then_some(KEY))
}

/// A final text frame as a client sends it (masked).
pub fn client_text(text: &str) -> Vec<u8> {
    frame(0x81, text.as_bytes(), true)
}

/// A final text frame as a backend sends it.
pub fn server_text(text: &str) -> Vec<u8> {
    frame(0x81, text.as_bytes(), false)
}

/// A Close frame with `code` and `reason`.
pub fn close(code: u16, reason: &str, masked: bool) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    frame(0x88, &payload, masked)
}

/// A frame read back: first byte, whether it was masked, and its (unmasked) payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub first: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn opcode(&self) -> u8 {
        self.first & 0x0f
    }

    /// `(code, reason)` of a Close frame.
    pub fn close(&self) -> Option<(u16, String)> {
        if self.opcode() != 0x8 || self.payload.len() < 2 {
            return None;
        }
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        Some((
            code,
            String::from_utf8_lossy(&self.payload[2..]).into_owned(),
        ))
    }
}

/// Split `bytes` into frames; a trailing partial frame is returned as the remainder.
pub fn parse(mut bytes: &[u8]) -> (Vec<Frame>, Vec<u8>) {
    let mut frames = Vec::new();
    loop {
        if bytes.len() < 2 {
            break;
        }
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut at) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => {
                let mut n = [0; 8];
                n.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => break,
            n => (n as usize, 2),
        };
        let key_at = at;
        if masked {
            at += 4;
        }
        if bytes.len() < at + len {
            break;
        }
        let mut payload = bytes[at..at + len].to_vec();
        if masked {
            let key = &bytes[key_at..key_at + 4];
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        frames.push(Frame {
            first: bytes[0],
            masked,
            payload,
        });
        bytes = &bytes[at + len..];
    }
    (frames, bytes.to_vec())
}
