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
    let mut out = Vec::with_capacity(6 + payload.len());
    out.push(0x80 | opcode);
    let len = payload.len().min(125) as u8;
    if !masked {
        out.push(len);
        out.extend_from_slice(&payload[..len as usize]);
        return out;
    }
    out.push(0x80 | len);
    let mut key = [0u8; 4];
    // A mask only has to be unpredictable to the page's script (§10.3); if the system has no
    // randomness left, a fixed key still yields a well-formed frame.
    let _ = aws_lc_rs::rand::fill(&mut key);
    out.extend_from_slice(&key);
    out.extend(
        payload[..len as usize]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4]),
    );
    out
}
