//! The YAML config loader, `config::load::load_str`: text → YAML (serde-saphyr under wsgate's
//! parser budget) → raw config → the validated `Config`, or errors with a place and a field
//! path. Never a panic, and bounded in time and memory: billion-laughs aliases, deep nesting
//! and huge scalars must fail on the budget (run with `-timeout=` and `-rss_limit_mb=`, so a
//! slow or greedy input counts as a failure). Relative file paths resolve against an empty
//! directory, made once; nothing in it is ever written.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tempfile::TempDir;
use wsgate::config::load::load_str;

static BASE: LazyLock<TempDir> = LazyLock::new(|| tempfile::tempdir().expect("a temp dir"));

fuzz_target!(|data: &[u8]| {
    // The file loader refuses invalid UTF-8 before parsing; lossy text keeps every input useful.
    let yaml = String::from_utf8_lossy(data);
    if let Err(errors) = load_str(&yaml, "fuzz.yaml", BASE.path()) {
        assert!(!errors.0.is_empty(), "an error without a problem");
        // One problem, one line: control characters from the YAML are escaped.
        for e in &errors.0 {
            assert!(!e.to_string().contains('\n'), "a multi-line error: {e:?}");
        }
    }
});
