//! The RFC 6455 §5 rules a header or a held control frame is judged by.

use super::{Control, Header, MAX_CONTROL_PAYLOAD, Tracker, Violation, build, close_code_valid};
use super::{is_control, parse_header};

impl Tracker {
    /// §5.1–§5.5 on a complete header, then the size limits and the message rate.
    pub(super) fn check(&mut self, h: &Header) -> Result<(), Violation> {
        let control = is_control(h.opcode);
        if self.rules.check {
            if h.mask.is_some() != self.from_client {
                return Err(Violation::Masking);
            }
            if matches!(h.opcode, 3..=7 | 0xb..=0xf) {
                return Err(Violation::Opcode);
            }
            // RSV1 = "compressed" on the first frame of a data message (RFC 7692 §6).
            let allowed = if self.rules.deflate && matches!(h.opcode, 1 | 2) {
                0x40
            } else {
                0
            };
            if h.rsv & !allowed != 0 {
                return Err(Violation::Rsv);
            }
            if control && (h.len > MAX_CONTROL_PAYLOAD || !h.fin) {
                return Err(Violation::Control);
            }
            if !control && (h.opcode == 0) != self.fragmented {
                return Err(Violation::Fragmentation);
            }
        } else if control && h.len > MAX_CONTROL_PAYLOAD {
            // Held whole, so bounded even when the rules are off.
            return Err(Violation::Control);
        }
        if control {
            return Ok(());
        }
        if self.rules.max_frame.is_some_and(|max| h.len > max.get()) {
            return Err(Violation::FrameTooBig);
        }
        let so_far = if h.opcode == 0 { self.message_len } else { 0 };
        if (self.rules.max_message).is_some_and(|max| so_far.saturating_add(h.len) > max.get()) {
            return Err(Violation::MessageTooBig);
        }
        if h.opcode != 0
            && let Some(gate) = self.gate.as_mut()
            && !gate.allow()
        {
            return Err(Violation::Rate);
        }
        Ok(())
    }

    /// A complete control frame is held: what is it, and is it well formed (§5.5.1)?
    pub(super) fn inspect_control(&self) -> Result<Control, Violation> {
        let h = match parse_header(&self.held) {
            Ok(Some(h)) => h,
            _ => return Err(Violation::Control),
        };
        let mut payload = self.held[h.size..].to_vec();
        if let Some(key) = h.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        match h.opcode {
            0x9 => Ok(Control::Ping),
            0xa => Ok(Control::Pong {
                ours: payload == build::PING_PAYLOAD,
            }),
            _ => {
                let code = match payload.len() {
                    0 => None,
                    1 => return Err(Violation::CloseFrame),
                    _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
                };
                if self.rules.check
                    && let Some(c) = code
                    && (!close_code_valid(c) || std::str::from_utf8(&payload[2..]).is_err())
                {
                    return Err(Violation::CloseFrame);
                }
                Ok(Control::Close { code })
            }
        }
    }
}
