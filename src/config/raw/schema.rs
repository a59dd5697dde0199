//! JSON Schema of the two raw types whose `Deserialize` is written by hand in [`super`]: a
//! `token_from` entry and a word-or-mapping choice (`balance`, `check`). Every other raw type
//! derives its schema next to its `Deserialize`; `crate::config::schema` puts them together.
//!
//! Each schema admits what the hand-written visitor accepts and what validation then lets pass
//! in shape (a mapping has exactly one key); which words and keys are allowed stays with
//! validation, so it is described here, not listed.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{RawChoice, RawTokenSource, Spanned};

impl JsonSchema for RawTokenSource {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "TokenSource".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        // The visitor takes only text for a word: `token_from: [1]` is a parse error.
        json_schema!({
            "description": "Where the token is read: `header` (Authorization: Bearer), \
                `subprotocol` (Sec-WebSocket-Protocol: bearer, TOKEN), or a one-key mapping \
                `{ query: NAME }`, `{ cookie: NAME }`, `{ subprotocol: MARKER }`.",
            "oneOf": [
                { "type": "string" },
                one_key_mapping(generator.subschema_for::<Spanned<String>>()),
            ]
        })
    }
}

impl<V: JsonSchema> JsonSchema for RawChoice<V> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Choice_of_{}", V::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("RawChoice<{}>", V::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        // The visitor keeps a number or boolean written where a word goes as its text.
        json_schema!({
            "description": "A word, or a mapping with exactly one key.",
            "oneOf": [
                { "type": ["string", "number", "boolean"] },
                one_key_mapping(generator.subschema_for::<V>()),
            ]
        })
    }
}

fn one_key_mapping(value: Schema) -> Schema {
    json_schema!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": value,
    })
}
