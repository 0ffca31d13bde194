//! The `validate` payload, read in one pass.
//!
//! Only the fields the decision needs are kept; everything else (all of
//! `oldObject` but its ephemeral container names) is skipped by the parser
//! without being built, so an UPDATE costs no allocation beyond the pod.

use super::diagnose;
use super::fields::describe;
use super::go_json::null_as_default;
use crate::error::PolicyError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::ops::Range;

/// `{"request": <AdmissionRequest>, "settings": <settings>}`, as the host
/// sends it, the settings read into `S` (the policy's `Settings`) in the same
/// pass.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned + Default"))]
pub struct ValidatePayload<S> {
    pub request: AdmissionRequest,
    /// Read as `validate_settings` reads it: an object, or `null` for the defaults.
    #[serde(default, deserialize_with = "super::go_json::object_or_null")]
    pub settings: S,
}

/// The parts of a Kubernetes AdmissionRequest the policy reads.
///
/// The API server never sends `null` for these strings (Go's `omitempty`
/// leaves them out), but a request written by hand for `kwctl run` may, and
/// Go reads that as "": kept, so such fixtures mean what their author meant.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdmissionRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub uid: String,
    #[serde(deserialize_with = "null_as_default")]
    pub kind: GroupVersionKind,
    #[serde(deserialize_with = "null_as_default")]
    pub operation: String,
    #[serde(deserialize_with = "null_as_default")]
    pub namespace: String,
    #[serde(deserialize_with = "null_as_default")]
    pub sub_resource: String,
    pub object: Value,
    /// Only the names of the ephemeral containers the pod had before; the
    /// rest of `oldObject` is skipped unread.
    pub old_object: Option<OldPod>,
}

/// What the policy needs of the pod before an `ephemeralcontainers` update.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OldPod {
    spec: OldSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OldSpec {
    ephemeral_containers: Option<Vec<Named>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    #[serde(deserialize_with = "null_as_default")]
    name: String,
}

impl OldPod {
    pub fn ephemeral_container_names(&self) -> Vec<String> {
        self.spec
            .ephemeral_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GroupVersionKind {
    #[serde(deserialize_with = "null_as_default")]
    pub group: String,
    #[serde(deserialize_with = "null_as_default")]
    pub version: String,
    #[serde(deserialize_with = "null_as_default")]
    pub kind: String,
}

impl<S: DeserializeOwned + Default> ValidatePayload<S> {
    /// The error names the JSON path that could not be read, for instance
    /// `request.operation: invalid type: integer 1, expected a string`.
    pub fn from_json(payload: &[u8]) -> Result<Self, PolicyError> {
        // JSON is UTF-8; serde_json checks only the strings it keeps, so bytes
        // that are not text in a skipped field would otherwise slip through.
        let text = std::str::from_utf8(payload).map_err(|e| {
            let at = e.valid_up_to();
            let end = invalid_run_end(payload, at);
            let byte = payload.get(at).copied().unwrap_or_default();
            let byte = format!("byte {byte:#04x} at offset {at}");
            PolicyError::MalformedRequest(match place_of(payload, at..end) {
                Some(place) => format!("it is not UTF-8 text: {place} holds {byte}"),
                None => format!("it is not UTF-8 text: {byte}"),
            })
        })?;
        // The same for escapes: serde_json skips the strings it does not keep
        // without pairing their `\u` surrogates, so a lone one there would
        // otherwise pass. Judged before the parser, so one in a kept string
        // is named the same way (the parser gives only a line and column).
        if let Some(at) = lone_surrogate(text) {
            let escape = format!("{} at offset {at}", text.get(at..at + 6).unwrap_or("\\u"));
            return Err(PolicyError::MalformedRequest(
                match place_of(payload, at..at + 6) {
                    Some(place) => format!(
                        "it is not JSON text: {place} holds {escape}, a lone UTF-16 surrogate"
                    ),
                    None => format!("it is not JSON text: {escape} is a lone UTF-16 surrogate"),
                },
            ));
        }
        serde_json::from_slice::<Self>(payload)
            .map_err(|e| PolicyError::MalformedRequest(explain_payload::<S>(payload, &e)))
    }
}

/// The offset of the first `\u` escape that is half of a UTF-16 surrogate pair
/// without its other half, which JSON text cannot hold. Outside strings a
/// backslash is no JSON at all, and the parser refuses it there.
///
/// Every request pays for this scan, so it searches with `str::find`, which
/// reads a word at a time rather than a byte (`docs/performance.md` has the
/// figures). It resumes after each escape; should that fall inside a character
/// (a backslash before a non-ASCII one, which is no JSON escape), the scan
/// ends there, and the parser refuses the escape.
fn lone_surrogate(json: &str) -> Option<usize> {
    let bytes = json.as_bytes();
    let hex = |at: usize| -> Option<u16> { u16::from_str_radix(json.get(at..at + 4)?, 16).ok() };
    let mut at = 0;
    while let Some(found) = json.get(at..)?.find('\\') {
        let escape = at + found;
        match bytes.get(escape + 1) {
            Some(b'u') => {
                let Some(unit) = hex(escape + 2) else {
                    // Not four hex digits: the parser says so.
                    return None;
                };
                match unit {
                    0xD800..=0xDBFF => {
                        let low = (bytes.get(escape + 6..escape + 8) == Some(b"\\u"))
                            .then(|| hex(escape + 8))
                            .flatten();
                        if !low.is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) {
                            return Some(escape);
                        }
                        at = escape + 12;
                    }
                    0xDC00..=0xDFFF => return Some(escape),
                    _ => at = escape + 6,
                }
            }
            // Any other escape is two bytes (`\\` included).
            _ => at = escape + 2,
        }
    }
    None
}

/// Where the bytes that are not UTF-8 from `at` on end, so that a marker
/// can take the place of the whole run (`\xff\xfe`), not only of its first.
fn invalid_run_end(payload: &[u8], mut at: usize) -> usize {
    while let Some(Err(e)) = payload.get(at..).map(std::str::from_utf8) {
        match (e.valid_up_to(), e.error_len()) {
            (0, Some(len)) => at += len,
            (0, None) => return payload.len(),
            _ => break,
        }
    }
    at
}

/// Where the bytes at `range` sit in the payload, as a path
/// (`request.userInfo.groups[0]`, or `a key of request.userInfo.extra`): a
/// marker takes their place and the document is read again. `None` when it
/// does not read even so (the bytes were not inside a string, or more is
/// wrong) or already holds the marker.
#[cold]
fn place_of(payload: &[u8], range: Range<usize>) -> Option<String> {
    const WORDS: &str = "irsa-policy: here";
    const MARKER: &str = "\u{0}irsa-policy: here\u{0}";
    const ESCAPED: &[u8] = br"\u0000irsa-policy: here\u0000";
    if payload.windows(WORDS.len()).any(|w| w == WORDS.as_bytes()) {
        return None;
    }
    let marked = [
        payload.get(..range.start)?,
        ESCAPED,
        payload.get(range.end..)?,
    ]
    .concat();
    let document = serde_json::from_slice::<Value>(&marked).ok()?;
    holding(&document, MARKER, String::new())
}

/// The path below `path` of the string or key in `value` that holds `marker`.
fn holding(value: &Value, marker: &str, path: String) -> Option<String> {
    let named = |path: String| match path.is_empty() {
        true => "the payload".to_owned(),
        false => path,
    };
    match value {
        Value::String(text) => text.contains(marker).then(|| named(path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| holding(item, marker, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains(marker) {
                return Some(format!("a key of {}", named(path.clone())));
            }
            let below = match path.is_empty() {
                true => key.clone(),
                false => format!("{path}.{key}"),
            };
            holding(item, marker, below)
        }),
        _ => None,
    }
}

/// Names the part of the payload that did not read: `request.operation: ...`.
fn explain_payload<S: DeserializeOwned>(payload: &[u8], error: &serde_json::Error) -> String {
    let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(payload) else {
        return error.to_string();
    };
    let explained = match top.get("request") {
        None => Some("missing field `request`".to_owned()),
        Some(Value::Object(request)) => diagnose::first_refused::<AdmissionRequest>(request)
            .map(|field| format!("request.{field}"))
            .or_else(|| match top.get("settings") {
                Some(Value::Object(settings)) => {
                    diagnose::first_refused::<S>(settings).map(|field| format!("settings.{field}"))
                }
                None | Some(Value::Null) => None,
                Some(other) => Some(format!(
                    "settings: must be a JSON object, found {}",
                    describe(other)
                )),
            }),
        Some(other) => Some(format!(
            "request: must be an object, found {}",
            describe(other)
        )),
    };
    explained.unwrap_or_else(|| error.to_string())
}

impl AdmissionRequest {
    fn is_pod(&self) -> bool {
        self.kind.kind == "Pod" && self.kind.group.is_empty()
    }

    /// Pod creation is the request the policy acts on; everything else but
    /// ephemeral containers (UPDATE, DELETE, CONNECT, other subresources,
    /// other kinds) passes untouched.
    pub fn is_pod_create(&self) -> bool {
        self.operation == "CREATE" && self.is_pod() && self.sub_resource.is_empty()
    }

    /// Ephemeral containers being added to a running pod (`kubectl debug`).
    pub fn is_ephemeral_containers_update(&self) -> bool {
        self.operation == "UPDATE" && self.is_pod() && self.sub_resource == "ephemeralcontainers"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    /// Settings of the payload's own kind: this stage reads them into any type.
    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", default, deny_unknown_fields)]
    struct Sample {
        token_audience: String,
        token_expiration_seconds: i64,
    }

    type Payload = ValidatePayload<Sample>;

    #[test]
    fn reads_the_fields_the_decision_needs_and_skips_the_rest() {
        let payload = br#"{"settings": {"tokenAudience": "example"}, "request": {
            "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "team-a", "userInfo": {"username": "x"},
            "object": {"kind": "Pod"}, "oldObject": null, "dryRun": false, "futureField": [1]}}"#;
        let parsed = Payload::from_json(payload).unwrap();
        assert!(parsed.request.is_pod_create());
        assert_eq!(parsed.request.namespace, "team-a");
        assert_eq!(parsed.request.object["kind"], "Pod");
        assert_eq!(parsed.settings.token_audience, "example");
    }

    #[rstest]
    #[case(br#"not json"#.as_slice(), "at line 1 column 2")]
    #[case(br#"{"settings": {}}"#.as_slice(), "missing field `request`")]
    #[case(br#"{"request": {"operation": 1}}"#.as_slice(), "request.operation: invalid type: integer `1`")]
    #[case(br#"{"request": {}, "settings": {"tokenExpirationSeconds": "x"}}"#.as_slice(), "settings.tokenExpirationSeconds")]
    fn malformed_payloads_name_the_path(#[case] payload: &[u8], #[case] named: &str) {
        let err = Payload::from_json(payload).unwrap_err().to_string();
        assert!(err.contains(named), "{err:?} should contain {named:?}");
    }

    #[rstest]
    #[case(r#"{"a": "\uD916x"}"#, Some(7))]
    #[case(r#"{"a": "\uDC00"}"#, Some(7))]
    #[case(r#"{"a": "\uD83D\u0041"}"#, Some(7))]
    #[case(r#"{"a": "\uD83D\uDE00 \u00e9 \\uD800"}"#, None)]
    #[case(r#"{"a": "\\\\", "b": "\n\uD83D\uDE00"}"#, None)]
    #[case(r#"{"a": "\"#, None)]
    #[case(r#"\u"#, None)]
    // Past multi-byte text, offsets still count bytes.
    #[case(r#"{"é€": "\uD916"}"#, Some(11))]
    fn finds_lone_surrogates_wherever_they_are(#[case] json: &str, #[case] offset: Option<usize>) {
        assert_eq!(lone_surrogate(json), offset);
    }

    #[test]
    fn a_lone_surrogate_in_a_skipped_field_is_refused() {
        let payload = br#"{"request": {"userInfo": {"groups": ["a\uD916b"]}}}"#;
        let err = Payload::from_json(payload).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "it is not JSON text: request.userInfo.groups[0] holds \\uD916 at offset 39, a lone UTF-16 surrogate"
            ),
            "{err}"
        );
    }

    #[rstest]
    #[case(br#"{"a": ["x", {"b": "HERE"}]}"#.as_slice(), Some("a[1].b"))]
    #[case(br#"{"a": {"HERE": 1}}"#.as_slice(), Some("a key of a"))]
    #[case(br#"{"HERE": 1}"#.as_slice(), Some("a key of the payload"))]
    #[case(br#""HERE""#.as_slice(), Some("the payload"))]
    // Not inside a string, or the rest does not read: no place to name.
    #[case(br#"{"a": HERE}"#.as_slice(), None)]
    #[case(br#"{"a": "HERE", "#.as_slice(), None)]
    // A payload that already holds the marker cannot be searched for it.
    #[case(br#"{"irsa-policy: here": "HERE"}"#.as_slice(), None)]
    fn names_the_place_of_bytes_in_the_payload(#[case] json: &[u8], #[case] place: Option<&str>) {
        let at = json.windows(4).position(|w| w == b"HERE").unwrap();
        assert_eq!(place_of(json, at..at + 4).as_deref(), place);
    }

    #[rstest]
    #[case("UPDATE", "", "Pod", "")]
    #[case("DELETE", "", "Pod", "")]
    #[case("CONNECT", "", "Pod", "")]
    #[case("CREATE", "", "Service", "")]
    #[case("CREATE", "apps", "Deployment", "")]
    #[case("CREATE", "example.com", "Pod", "")]
    #[case("CREATE", "", "Pod", "binding")]
    #[case("UPDATE", "", "Pod", "ephemeralcontainers")]
    fn only_pod_create_is_acted_on(
        #[case] operation: &str,
        #[case] group: &str,
        #[case] kind: &str,
        #[case] sub_resource: &str,
    ) {
        let request = AdmissionRequest {
            operation: operation.into(),
            kind: GroupVersionKind {
                group: group.into(),
                version: "v1".into(),
                kind: kind.into(),
            },
            sub_resource: sub_resource.into(),
            ..Default::default()
        };
        assert!(!request.is_pod_create());
    }

    #[test]
    fn null_settings_are_the_defaults() {
        let payload = br#"{"request": {}, "settings": null}"#;
        assert_eq!(
            Payload::from_json(payload).unwrap().settings,
            Sample::default()
        );
    }

    #[test]
    fn null_strings_read_as_empty_as_in_go() {
        let payload =
            br#"{"request": {"uid": null, "kind": {"group": null, "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": null, "subResource": null, "object": {}}}"#;
        let request = Payload::from_json(payload).unwrap().request;
        assert!(request.is_pod_create());
        assert_eq!(request.namespace, "");
    }

    #[rstest]
    #[case("UPDATE", "", "Pod", "ephemeralcontainers", true)]
    #[case("CREATE", "", "Pod", "ephemeralcontainers", false)]
    #[case("UPDATE", "", "Pod", "", false)]
    #[case("UPDATE", "", "Pod", "status", false)]
    #[case("UPDATE", "", "Node", "ephemeralcontainers", false)]
    #[case("UPDATE", "example.com", "Pod", "ephemeralcontainers", false)]
    fn only_a_pods_ephemeralcontainers_update_adds_ephemeral_containers(
        #[case] operation: &str,
        #[case] group: &str,
        #[case] kind: &str,
        #[case] sub_resource: &str,
        #[case] expected: bool,
    ) {
        let payload = json!({"request": {"operation": operation, "subResource": sub_resource,
            "kind": {"group": group, "version": "v1", "kind": kind}}});
        let request = Payload::from_json(&serde_json::to_vec(&payload).unwrap())
            .unwrap()
            .request;
        assert_eq!(request.is_ephemeral_containers_update(), expected);
    }

    #[test]
    fn reads_only_the_old_ephemeral_container_names() {
        let payload = br#"{"request": {"kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "UPDATE", "subResource": "ephemeralcontainers", "object": {},
            "oldObject": {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app"}],
                "ephemeralContainers": [{"name": "debugger-1", "image": "busybox"}]}}}}"#;
        let request = Payload::from_json(payload).unwrap().request;
        assert!(request.is_ephemeral_containers_update());
        assert_eq!(
            request.old_object.unwrap().ephemeral_container_names(),
            ["debugger-1"]
        );
    }
}
