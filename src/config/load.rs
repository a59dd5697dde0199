//! Reading a config: file (or string) → YAML → [`RawConfig`] → [`Config`], with every failure
//! turned into a [`ConfigError`] that says `file:line:col: field.path: what is wrong`.
//!
//! This module owns the error type, the parser's resource budget (a hostile file — billion laughs,
//! 10,000 nested lists, a 1 GB scalar — fails with an error instead of eating the process), and
//! the mapping of serde-saphyr errors (syntax, unknown key, wrong type) onto a field path. The
//! semantic rules themselves live in [`crate::config::validate`].

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{
    Budget, DefaultMessageFormatter, Error as YamlError, MessageFormatter, Options,
};

use super::Config;
use super::raw::RawConfig;
use super::validate;

/// Larger than any real config by orders of magnitude; bigger input is refused unread.
const MAX_CONFIG_BYTES: usize = 1 << 20;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given to [`load_file`] / [`load_str`].
    pub file: String,
    /// 1-based; 0 when the problem has no single place (missing section, unreadable file).
    pub line: u64,
    /// 1-based column (in characters); 0 when unknown.
    pub col: u64,
    /// Field path such as `routes[1].pool`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole (no location, no field).
    fn whole_file(file: &str, message: String) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: 0,
            col: 0,
            path: String::new(),
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE:COL: PATH: MESSAGE`, leaving out the unknown parts. Control characters from the
    /// YAML are escaped so that one error is always one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.file)?;
        if self.line != 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write_escaped(f, &self.path)?;
            f.write_str(": ")?;
        }
        write_escaped(f, &self.message)
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// Every problem found in one config, in file order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates the config at `path`. Relative certificate paths are resolved against the
/// file's directory, and [`Config::source`] is set to `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file_name = path.display().to_string();
    let text = read_capped(path)
        .map_err(|message| ConfigErrors(vec![ConfigError::whole_file(&file_name, message)]))?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let mut config = load_str(&text, &file_name, base_dir)?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Parses and validates `yaml`; `file_name` is used in messages only, `base_dir` resolves
/// relative certificate paths.
pub fn load_str(yaml: &str, file_name: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    if yaml.len() > MAX_CONFIG_BYTES {
        return Err(ConfigErrors(vec![ConfigError::whole_file(
            file_name,
            too_large_message(),
        )]));
    }
    let raw: RawConfig = serde_saphyr::from_str_with_options(yaml, parse_options())
        .map_err(|err| ConfigErrors(vec![from_yaml_error(&err, yaml, file_name)]))?;
    validate::validate(raw, file_name, base_dir).map_err(ConfigErrors)
}

fn too_large_message() -> String {
    format!("config is larger than {MAX_CONFIG_BYTES} bytes")
}

fn read_capped(path: &Path) -> Result<String, String> {
    let read_error = |e: std::io::Error| format!("cannot read config file: {e}");
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // usize → u64 is lossless on every supported target.
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(too_large_message());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "config file is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Parser settings: one document, no snippet rendering (we print our own one-line errors), and a
/// budget sized for config files, far below serde-saphyr's general-purpose defaults.
fn parse_options() -> Options {
    let mut budget = Budget::default();
    budget.max_documents = 1;
    budget.max_depth = 32;
    budget.max_events = 200_000;
    budget.max_nodes = 100_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_merge_keys = 1_000;
    budget.max_total_scalar_bytes = MAX_CONFIG_BYTES;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = MAX_CONFIG_BYTES;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 16;
    options
}

/// Maps a serde-saphyr error onto a [`ConfigError`] with a best-effort field path.
fn from_yaml_error(err: &YamlError, yaml: &str, file: &str) -> ConfigError {
    let (line, col) = err
        .location()
        .map_or((0, 0), |loc| (loc.line(), loc.column()));
    let inner = innermost(err);
    let path = match inner {
        // The location is the mapping that lacks the field: name the field under it.
        YamlError::SerdeMissingField { field, .. } => {
            let parent = field_path(yaml, (line, col), Pick::Outermost);
            if parent.is_empty() {
                (*field).to_owned()
            } else {
                format!("{parent}.{field}")
            }
        }
        _ => field_path(yaml, (line, col), Pick::Innermost),
    };
    ConfigError {
        file: file.to_owned(),
        line,
        col,
        path,
        message: yaml_message(inner),
    }
}

fn innermost(err: &YamlError) -> &YamlError {
    match err {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
            innermost(error)
        }
        other => other,
    }
}

/// The message without serde-saphyr's `at line X, column Y` suffix (we print our own), reworded
/// where the library's text speaks to a Rust developer rather than an operator.
fn yaml_message(err: &YamlError) -> String {
    match err {
        YamlError::Unexpected { expected, .. } => match *expected {
            "string scalar" => "expected a single value, not a list or mapping".to_owned(),
            "sequence start" => "expected a list (`- item` or `[a, b]`)".to_owned(),
            "mapping start" => "expected a mapping (`key: value`)".to_owned(),
            other => format!("expected {other}"),
        },
        YamlError::InvalidScalar { ty, .. } => match *ty {
            "u64" | "u32" | "u16" | "usize" => "expected a whole number (0 or more)".to_owned(),
            other => format!("expected a value of type {other}"),
        },
        YamlError::DuplicateMappingKey { key: Some(key), .. } => {
            format!("duplicate key `{key}`")
        }
        YamlError::DuplicateMappingKey { key: None, .. } => "duplicate key".to_owned(),
        YamlError::MultipleDocuments { .. } => {
            "only one YAML document is allowed (remove the second `---`)".to_owned()
        }
        YamlError::Budget { breach, .. } => {
            format!("YAML document too large or too deeply nested ({breach:?})")
        }
        YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => {
            "YAML aliases expand to too much data".to_owned()
        }
        other => DefaultMessageFormatter.format_message(other).into_owned(),
    }
}

/// Which node to name when several start at the error's position (a block mapping starts where
/// its first key does).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    Innermost,
    Outermost,
}

enum Frame {
    Map {
        key: Option<String>,
        expecting_key: bool,
    },
    Seq {
        next: usize,
        current: usize,
    },
}

/// Best-effort path (`routes[1].pool`) of the YAML node at `target` (1-based line, column), or of
/// the last node before it. Walks parser events only up to `target`, without expanding aliases,
/// so it costs at most one linear pass over input the parser has already accepted.
fn field_path(yaml: &str, target: (u64, u64), pick: Pick) -> String {
    if target.0 == 0 {
        return String::new();
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut best = String::new();
    let mut found_at_target = false;
    for item in Parser::new_from_str(yaml) {
        let Ok((event, span)) = item else { break };
        let pos = (
            u64::try_from(span.start.line()).unwrap_or(u64::MAX),
            u64::try_from(span.start.col()).map_or(u64::MAX, |c| c.saturating_add(1)),
        );
        if pos > target {
            break;
        }
        let key = match &event {
            Event::Scalar(value, ..) => Some(value.to_string()),
            Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(..) => None,
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                continue;
            }
            _ => continue,
        };
        // The key itself when this event is a mapping key.
        let mut is_key = None;
        match stack.last_mut() {
            Some(Frame::Map {
                key: current,
                expecting_key,
            }) => {
                if *expecting_key {
                    let key = key.unwrap_or_else(|| "?".to_owned());
                    is_key = Some(key.len());
                    *current = Some(key);
                }
                *expecting_key = !*expecting_key;
            }
            Some(Frame::Seq { next, current }) => {
                *current = *next;
                *next += 1;
            }
            None => {}
        }
        if pos < target || pick == Pick::Innermost || !found_at_target {
            best = render_path(&stack);
            // A flow mapping (`{ a: 1 }`) is located at its first key, not at its `{`: the
            // outermost node there is the mapping, so leave the key off.
            if let (true, Pick::Outermost, Some(len)) = (pos == target, pick, is_key) {
                best.truncate(best.len().saturating_sub(len));
                if best.ends_with('.') {
                    best.pop();
                }
            }
            found_at_target |= pos == target;
        }
        match event {
            Event::MappingStart(..) => stack.push(Frame::Map {
                key: None,
                expecting_key: true,
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq {
                next: 0,
                current: 0,
            }),
            _ => {}
        }
    }
    best
}

fn render_path(stack: &[Frame]) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Map { key: Some(key), .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Frame::Map { key: None, .. } => {}
            Frame::Seq { current, .. } => out.push_str(&format!("[{current}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_maps_and_lists() {
        let yaml = "a:\n  b:\n    - x: 1\n    - x: 2\n      y: 3\nc: [1, {d: 4}]\n";
        assert_eq!(field_path(yaml, (5, 7), Pick::Innermost), "a.b[1].y");
        assert_eq!(field_path(yaml, (5, 10), Pick::Innermost), "a.b[1].y");
        assert_eq!(field_path(yaml, (4, 7), Pick::Outermost), "a.b[1]");
        assert_eq!(
            field_path("a: { b: { c: 1 } }\n", (1, 11), Pick::Outermost),
            "a.b"
        );
        assert_eq!(
            field_path("a: { b: { c: 1 } }\n", (1, 11), Pick::Innermost),
            "a.b.c"
        );
        assert_eq!(field_path("{ a: 1 }\n", (1, 3), Pick::Outermost), "");
        assert_eq!(field_path(yaml, (4, 7), Pick::Innermost), "a.b[1].x");
        assert_eq!(field_path(yaml, (6, 12), Pick::Innermost), "c[1].d");
        assert_eq!(field_path(yaml, (0, 0), Pick::Innermost), "");
    }

    #[test]
    fn display_omits_unknown_parts_and_escapes_controls() {
        let mut e = ConfigError::whole_file("f.yaml", "bad\nthing".to_owned());
        assert_eq!(e.to_string(), "f.yaml: bad\\nthing");
        e.line = 3;
        e.col = 7;
        e.path = "routes[1].pool".to_owned();
        assert_eq!(e.to_string(), "f.yaml:3:7: routes[1].pool: bad\\nthing");
    }
}
