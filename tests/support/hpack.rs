//! The little of HPACK (RFC 7541) a raw h2 test client needs: request fields as literals
//! without indexing, never Huffman-coded, so no table is shared with the server; and the
//! `:status` of an answer, the first field of its block.

/// An HPACK string literal, not Huffman-coded (RFC 7541 §5.2), its length a 7-bit-prefix
/// integer (§5.1).
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(s);
}

/// `:status` from the first field of a response block: an indexed static entry (RFC 7541
/// Appendix A, 8–14), or a literal with the static name `:status` (index 8), its value plain or
/// Huffman-coded digits. `None` for any other encoding.
pub fn status(block: &[u8]) -> Option<u16> {
    const STATIC: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    let first = *block.first()?;
    if first & 0x80 != 0 {
        return STATIC
            .get(usize::from(first & 0x7f).checked_sub(8)?)
            .copied();
    }
    // Literal with incremental indexing (01xxxxxx), without (0000xxxx), never indexed (0001xxxx).
    let index = if first & 0x40 != 0 {
        first & 0x3f
    } else {
        first & 0x0f
    };
    if index != 8 {
        return None;
    }
    let len = usize::from(*block.get(1)? & 0x7f);
    let value = block.get(2..2 + len)?;
    let digits = if block[1] & 0x80 != 0 {
        huffman_digits(value)?
    } else {
        String::from_utf8(value.to_vec()).ok()?
    };
    digits.parse().ok()
}

/// Decode a Huffman string of ASCII digits (RFC 7541 Appendix B: `0`–`2` are 5 bits 0–2,
/// `3`–`9` are 6 bits 0x19–0x1f); the padding is the EOS prefix, all ones.
fn huffman_digits(bytes: &[u8]) -> Option<String> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let take = |at: usize, n: usize| -> Option<u8> {
        bits.get(at..at + n)
            .map(|b| b.iter().fold(0, |v, bit| (v << 1) | bit))
    };
    let (mut at, mut out) = (0, String::new());
    loop {
        match take(at, 5) {
            Some(v @ 0..=2) => {
                out.push(char::from(b'0' + v));
                at += 5;
            }
            _ => match take(at, 6) {
                Some(v @ 0x19..=0x1f) => {
                    out.push(char::from(b'3' + v - 0x19));
                    at += 6;
                }
                _ => break,
            },
        }
    }
    (bits.len() - at < 8 && bits[at..].iter().all(|b| *b == 1)).then_some(out)
}
