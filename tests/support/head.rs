//! Hand-written request heads: a valid WebSocket upgrade to start from, and small edits to break
//! exactly one rule per test.

/// The sample key of RFC 6455 §1.3 ...
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// ... and the `Sec-WebSocket-Accept` a correct server derives from it.
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A request head under construction. Field lines are kept verbatim, so a test can add lines
/// that no HTTP library would produce.
#[derive(Debug, Clone)]
pub struct Head {
    method: String,
    target: String,
    version: String,
    lines: Vec<String>,
}

impl Head {
    /// A valid RFC 6455 §4.1 opening handshake for `target` with `Host: localhost`.
    pub fn upgrade(target: &str) -> Head {
        Head::get(target)
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", KEY)
            .header("Sec-WebSocket-Version", "13")
    }

    /// A plain `GET` with only `Host: localhost`.
    pub fn get(target: &str) -> Head {
        Head {
            method: "GET".into(),
            target: target.into(),
            version: "HTTP/1.1".into(),
            lines: vec!["Host: localhost".into()],
        }
    }

    pub fn method(mut self, method: &str) -> Head {
        self.method = method.into();
        self
    }

    pub fn target(mut self, target: &str) -> Head {
        self.target = target.into();
        self
    }

    pub fn version(mut self, version: &str) -> Head {
        self.version = version.into();
        self
    }

    /// Append `name: value`.
    pub fn header(mut self, name: &str, value: &str) -> Head {
        self.lines.push(format!("{name}: {value}"));
        self
    }

    /// Replace every `name` line with one `name: value` (appended at the end).
    pub fn set(self, name: &str, value: &str) -> Head {
        self.remove(name).header(name, value)
    }

    /// Remove every line whose field name is `name` (case-insensitive).
    pub fn remove(mut self, name: &str) -> Head {
        self.lines.retain(|line| {
            let field = line.split(':').next().unwrap_or_default();
            !field.eq_ignore_ascii_case(name)
        });
        self
    }

    /// Append a raw line, exactly as given (without the CRLF).
    pub fn line(mut self, raw: &str) -> Head {
        self.lines.push(raw.into());
        self
    }

    /// The head on the wire, ending with the blank line.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        for line in &self.lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// A masked client text frame.
pub fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    super::frames::frame(0x81, payload, true)
}

/// An unmasked server text frame.
pub fn server_text_frame(payload: &[u8]) -> Vec<u8> {
    super::frames::frame(0x81, payload, false)
}
