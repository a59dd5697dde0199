//! The one DER reader wsgate needs of its own: a tag-length-value split, for the few certificate
//! fields rustls-webpki does not expose (a client certificate's subject CN, an ACME
//! certificate's notAfter). Bounded and total: malformed input is `None`, never a panic.

/// One DER TLV: (tag, contents, what follows). Single-byte tags only (all that a Name or a
/// Validity uses); lengths in short form or long form up to 4 bytes.
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::tlv;

    #[test]
    fn splits_short_and_long_forms_and_refuses_truncation() {
        assert_eq!(
            tlv(&[0x30, 2, 1, 2, 9]),
            Some((0x30, &[1u8, 2][..], &[9u8][..]))
        );
        let mut long = vec![0x04, 0x81, 200];
        long.extend([7u8; 200]);
        assert_eq!(tlv(&long).map(|(_, c, _)| c.len()), Some(200));
        assert_eq!(tlv(&[0x30, 5, 1]), None);
        assert_eq!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(tlv(&[0x30]), None);
    }
}
