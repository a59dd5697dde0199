//! wsgate's own frames: Close and Ping, masked towards the backend (wsgate is the client of
//! that leg, §5.3) and unmasked towards the client.

/// The payload of wsgate's keepalive Pings; a Pong carrying it is wsgate's and is absorbed.
pub const PING_PAYLOAD: &[u8] = b"wsgate-keepalive";

/// A Close frame with `code` and `reason` (cut to 123 bytes at a character boundary).
pub fn close(code: u16, reason: &str, masked: bool) -> Vec<u8> {
    let mut cut = reason.len().min(crate::session::reason::MAX_REASON_BYTES);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    frame(0x8, &payload, masked)
}

/// A keepalive Ping.
pub fn ping(masked: bool) -> Vec<u8> {
    frame(0x9, PING_PAYLOAD, masked)
}

/// One final control frame; `payload` is at most 125 bytes.
fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let payload = &payload[..payload.len().min(125)];
    let mut key = None;
    if masked {
        let mut k = [0u8; 4];
        // A mask only has to be unpredictable to the page's script (§10.3); if the system has
        // no randomness left, a fixed key still yields a well-formed frame.
        let _ = aws_lc_rs::rand::fill(&mut k);
        key = Some(k);
    }
    any(0x80 | opcode, payload, key)
}

/// Any frame: `first` is the first byte (FIN, RSV, opcode), `mask` the masking key if any.
/// Also what tests and benches build their streams with.
pub fn any(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut out = Vec::with_capacity(14 + payload.len());
    out.push(first);
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}
