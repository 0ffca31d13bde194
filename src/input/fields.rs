//! The one reader of pod fields whose JSON type could be wrong: it names the
//! field, what it must be and what it found, for a person to act on. The
//! API server never sends such a pod; a request written by hand may.

use crate::error::{shorten, PolicyError};
use serde_json::Value;

/// Reads fields of one pod, named in errors as messages name the pod
/// (`namespace/name`). A field's path is only written out when something is
/// wrong, so a well-formed pod costs no path strings; paths are `&dyn Fn`, not
/// generics, so one copy of each method serves every call site.
pub struct Fields<'a> {
    pod: &'a str,
}

impl<'a> Fields<'a> {
    pub fn of(pod: &'a str) -> Self {
        Fields { pod }
    }

    /// The error for a field that is not what it must be.
    #[cold]
    #[inline(never)]
    pub fn wrong(
        &self,
        field: &dyn Fn() -> String,
        expected: &'static str,
        found: &Value,
    ) -> PolicyError {
        PolicyError::PodShape {
            pod: self.pod.to_owned(),
            field: field(),
            expected,
            found: describe(found),
        }
    }

    /// An optional list field: absent or null is empty, anything else but a
    /// list is an error.
    pub fn list<'v>(
        &self,
        object: &'v Value,
        field: &str,
        path: &dyn Fn() -> String,
    ) -> Result<&'v [Value], PolicyError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.wrong(path, "a list", other)),
        }
    }

    /// A required string field of `item` (at `path`), which must be an object.
    pub fn string<'v>(
        &self,
        item: &'v Value,
        field: &str,
        path: &dyn Fn() -> String,
    ) -> Result<&'v str, PolicyError> {
        match (item.get(field), item.is_object()) {
            (Some(Value::String(value)), _) => Ok(value),
            // Absent is said to be missing, not "found null", which would read
            // as if the pod had a null there.
            (None, true) => Err(PolicyError::MissingPodField {
                pod: self.pod.to_owned(),
                field: format!("{}.{field}", path()),
                expected: "a string",
            }),
            (Some(other), true) => {
                Err(self.wrong(&|| format!("{}.{field}", path()), "a string", other))
            }
            _ => Err(self.wrong(path, "an object", item)),
        }
    }
}

/// A JSON value, shortened for an error message.
pub fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => return "a list".into(),
        Value::Object(_) => return "an object".into(),
    };
    format!("{kind} {}", shorten(value.to_string(), 64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_string_is_said_missing_and_a_wrong_one_named() {
        let fields = Fields::of("team-a/web");
        let path = || "spec.containers[0].volumeMounts[0]".to_owned();
        let mount = json!({"name": "x"});
        assert_eq!(
            fields.string(&mount, "mountPath", &path).unwrap_err().to_string(),
            "pod team-a/web: spec.containers[0].volumeMounts[0].mountPath is missing; it must be a string"
        );
        let mount = json!({"mountPath": 7});
        assert_eq!(
            fields.string(&mount, "mountPath", &path).unwrap_err().to_string(),
            "pod team-a/web: spec.containers[0].volumeMounts[0].mountPath must be a string, found number 7"
        );
        assert!(fields
            .list(&json!({"env": null}), "env", &path)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn describes_values_short() {
        assert_eq!(describe(&json!(null)), "null");
        assert_eq!(describe(&json!([1])), "a list");
        assert!(describe(&json!("x".repeat(200))).ends_with("(202 bytes)"));
    }
}
