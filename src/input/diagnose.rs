//! Explaining a JSON document that did not deserialize, by naming the field
//! that refused.
//!
//! serde_json's own errors give a line and column, not the field. A path
//! tracking deserializer would name it but doubles the generated code for
//! every type it wraps. Failures are rare
//! (the policy-server validates settings first; requests come from the API
//! server), so they are explained after the fact instead: each field is
//! tried alone, through the same deserializer the policy already has.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why `json` is not a `T`: `"field: reason"` for the first field that does
/// not deserialize on its own, else serde_json's message. `T` must accept an
/// object with any subset of its fields (`#[serde(default)]`).
pub fn explain<T: DeserializeOwned>(json: &[u8], error: &serde_json::Error) -> String {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(json) else {
        return error.to_string();
    };
    first_refused::<T>(&fields).unwrap_or_else(|| error.to_string())
}

/// The first field of `fields` that `T` refuses, as `"field: reason"`.
pub fn first_refused<T: DeserializeOwned>(fields: &Map<String, Value>) -> Option<String> {
    fields.iter().find_map(|(key, value)| {
        let alone = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
        let bytes = serde_json::to_vec(&alone).ok()?;
        serde_json::from_slice::<T>(&bytes)
            .err()
            .map(|e| format!("{key}: {}", without_position(&e)))
    })
}

/// serde_json appends " at line L column C", which points into the one-field
/// document made up here, not into what the user wrote.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        name: String,
        count: u32,
        tags: Vec<String>,
    }

    fn explained(json: &str) -> String {
        let error = serde_json::from_str::<Example>(json).unwrap_err();
        explain::<Example>(json.as_bytes(), &error)
    }

    #[test]
    fn names_the_field_of_the_wrong_type() {
        assert_eq!(
            explained(r#"{"name": "a", "count": "3"}"#),
            "count: invalid type: string \"3\", expected u32"
        );
        assert_eq!(
            explained(r#"{"tags": ["a", 1]}"#),
            "tags: invalid type: integer `1`, expected a string"
        );
    }

    #[test]
    fn names_an_unknown_field() {
        assert!(explained(r#"{"nmae": "a"}"#).starts_with("nmae: unknown field `nmae`"));
    }

    #[test]
    fn falls_back_to_the_parser_message_for_broken_json() {
        assert_eq!(
            explained(r#"{"name": "#),
            "EOF while parsing a value at line 1 column 9"
        );
    }
}
