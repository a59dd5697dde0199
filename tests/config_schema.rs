//! The generated JSON Schema against a real draft 2020-12 validator (the `jsonschema` crate):
//! it is a valid schema, every shipped YAML config under `config/` and `examples/` passes it
//! (new files there are picked up without touching this test), and it rejects what the loader
//! rejects in shape: an unknown key, a wrong type, a two-key choice mapping.

use std::path::{Path, PathBuf};

use serde_json::Value;
use wsgate::config::schema::config_schema;

fn validator() -> jsonschema::Validator {
    let schema = config_schema();
    jsonschema::draft202012::new(&schema).expect("the generated schema compiles")
}

/// YAML → JSON the way an editor's YAML language server sees the file.
fn yaml_to_json(yaml: &str) -> Value {
    serde_saphyr::from_str::<Value>(yaml).expect("YAML parses into a JSON value")
}

/// Every schema error as `instance path: message`.
fn schema_errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let instance = yaml_to_json(yaml);
    validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Whether `error` is reported at `at` or at a key enclosing it (an optional key's schema is
/// `anyOf: [KEY, null]`, so a validator names the optional key, not the innermost place).
fn at_or_inside(error: &str, at: &str) -> bool {
    let path = error.split_once(": ").map_or(error, |(path, _)| path);
    path == at || at.starts_with(&format!("{path}/"))
}

/// `*.yaml` / `*.yml` anywhere under `dir` (absent dir: none).
fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            found.push(path);
        }
    }
}

fn shipped_configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    yaml_files(&root.join("config"), &mut found);
    yaml_files(&root.join("examples"), &mut found);
    found.sort();
    found
}

const GOOD: &str = r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls: { self_signed: [localhost] }
routes:
  - path: /
    pool: echo
    origins: ["https://app.example.com", null]
    auth:
      jwt: { keys: [ { jwks_url: "https://id.example.com/jwks.json", refresh: 10m } ] }
      token_from: [header, { query: access_token }]
pools:
  echo:
    backends: [ { url: "ws://127.0.0.1:9" } ]
    balance: { hash: { query: room } }
    health: { check: tcp, rise: 2 }
limits:
  max_connections: 100
  drain_spread: 0s
log: { level: off }
"#;

fn loads(yaml: &str) -> bool {
    wsgate::config::load_str(yaml, "wsgate.yaml", Path::new(".")).is_ok()
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = config_schema();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "declares its draft"
    );
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("the schema fails the 2020-12 meta-schema: {e}");
    }
    assert_eq!(
        schema["additionalProperties"],
        Value::Bool(false),
        "the top level denies unknown keys, as the loader does"
    );
    let listener = &schema["$defs"]["RawListener"];
    assert_eq!(listener["additionalProperties"], Value::Bool(false));
    assert_eq!(
        listener["properties"]["bind"]["description"],
        "`IP:PORT`, e.g. `\"127.0.0.1:8443\"` or `\"[::]:443\"`.",
        "descriptions come from the doc comments"
    );
}

/// `config/wsgate.yaml` names `config/wsgate.schema.json` on its first line, for editors; that
/// file must be what `wsgate schema` prints today.
#[test]
fn the_example_config_names_the_committed_schema_and_it_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let yaml = std::fs::read_to_string(root.join("wsgate.yaml")).expect("read example config");
    let first = yaml.lines().next().unwrap_or_default();
    let name = first
        .strip_prefix("# yaml-language-server: $schema=")
        .unwrap_or_else(|| panic!("first line is the editor's schema line: {first:?}"));
    let committed = std::fs::read_to_string(root.join(name)).expect("read the named schema");
    let committed: Value = serde_json::from_str(&committed).expect("the schema file is JSON");
    assert!(
        committed == config_schema(),
        "config/{name} is stale: run `cargo run -- schema > config/{name}`"
    );
}

/// What every raw struct must carry to stay in step with the loader: `deny_unknown_fields`
/// (→ `additionalProperties: false`) and a `///` on each field (→ the editor's hover text).
#[test]
fn every_mapping_denies_unknown_keys_and_describes_each_key() {
    let schema = config_schema();
    let defs = schema["$defs"].as_object().expect("$defs");
    let mappings = std::iter::once(("(top level)", &schema))
        .chain(defs.iter().map(|(name, def)| (name.as_str(), def)))
        .filter(|(_, def)| def.get("properties").is_some());
    let mut count = 0;
    for (name, def) in mappings {
        count += 1;
        assert_eq!(
            def["additionalProperties"],
            Value::Bool(false),
            "{name}: add #[serde(deny_unknown_fields)]"
        );
        for (key, property) in def["properties"].as_object().expect("properties") {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{name}.{key}: add a /// doc comment to the field"
            );
        }
    }
    assert!(count > 20, "the raw structs are all there: {count}");
}

#[test]
fn every_shipped_config_validates() {
    let validator = validator();
    let files = shipped_configs();
    assert!(
        files.iter().any(|f| f.ends_with("config/wsgate.yaml")),
        "the example config is among {files:?}"
    );
    for file in files {
        let yaml = std::fs::read_to_string(&file).expect("read config");
        let errors = schema_errors(&validator, &yaml);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn a_config_using_every_shape_validates_and_loads() {
    let errors = schema_errors(&validator(), GOOD);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(loads(GOOD), "the loader agrees");
}

/// Each bad variant of [`GOOD`] is refused by the schema at the named place, and by the loader.
#[test]
fn the_schema_rejects_unknown_keys_and_wrong_types() {
    let validator = validator();
    let cases = [
        // An unknown key, at the top and deep inside.
        ("routes:", "routez:", ""),
        (
            "    bind: \"127.0.0.1:0\"",
            "    bnd: \"127.0.0.1:0\"",
            "/listeners/0",
        ),
        ("rise: 2", "rise: 2, raise: 3", "/pools/echo/health"),
        // A wrong type: a mapping for a list, a list for text, text for a boolean.
        (
            "routes:\n  - path: /",
            "routes:\n  path: /\n  x:\n  - path: /",
            "/routes",
        ),
        ("bind: \"127.0.0.1:0\"", "bind: [a, b]", "/listeners/0/bind"),
        (
            "pool: echo",
            "pool: echo\n    require_origin: sure",
            "/routes/0/require_origin",
        ),
        // A one-key choice with two keys; a token source that is a number.
        (
            "{ hash: { query: room } }",
            "{ hash: path, x: y }",
            "/pools/echo/balance",
        ),
        ("[header,", "[7,", "/routes/0/auth/token_from/0"),
    ];
    for (from, to, at) in cases {
        assert!(GOOD.contains(from), "{from:?} is in GOOD");
        let bad = GOOD.replacen(from, to, 1);
        let errors = schema_errors(&validator, &bad);
        assert!(
            errors.iter().any(|e| at_or_inside(e, at)),
            "{to:?} is refused at {at:?}: {errors:#?}"
        );
        assert!(!loads(&bad), "the loader refuses {to:?} too");
    }
}
