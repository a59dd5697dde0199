//! [`Spanned`]: a value read from the YAML together with where it was written, so that
//! validation can point at `FILE:LINE:COL`.
//!
//! It is `serde_saphyr::Spanned` (which does the location capture) moved into a local type, for
//! one reason: `wsgate schema` derives the JSON Schema from the raw structs themselves, and a
//! local type can implement [`JsonSchema`] where the foreign one cannot (orphan rule). Its schema
//! is the schema of the value: the location is invisible in the file. What it does not do: check
//! anything (that is `crate::config::validate`).

use std::any::TypeId;
use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_saphyr::Location;

/// A value and its place in the file; the fields match `serde_saphyr::Spanned`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    pub value: T,
    /// Where the value was used (for an alias `*a`: the alias).
    pub referenced: Location,
    /// Where the value was written (for an alias: its anchor).
    pub defined: Location,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Spanned {
            value: spanned.value,
            referenced: spanned.referenced,
            defined: spanned.defined,
        })
    }
}

impl<T: JsonSchema + 'static> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("Spanned<{}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = generator.subschema_for::<T>();
        let id = TypeId::of::<T>();
        if id == TypeId::of::<String>() || id == TypeId::of::<Option<String>>() {
            widen_text(&mut schema);
        }
        schema
    }
}

/// The loader reads a `String` from any YAML scalar but null: `max_connections: 100000`,
/// `min_version: 1.2` and `level: off` are text to it, and the value is checked in validation.
/// An editor's YAML language server sees a number or a boolean there, so the schema says so.
fn widen_text(schema: &mut Schema) {
    let mut types = match schema.get("type") {
        Some(Value::String(one)) => vec![Value::String(one.clone())],
        Some(Value::Array(many)) => many.clone(),
        _ => return,
    };
    if !types.iter().any(|t| t == "string") {
        return;
    }
    for extra in ["number", "boolean"] {
        if !types.iter().any(|t| t == extra) {
            types.push(extra.into());
        }
    }
    schema.insert("type".to_owned(), Value::Array(types));
}
