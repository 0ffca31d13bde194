//! The `validate` payload, read in one pass.
//!
//! Only the fields the decision needs are kept; everything else, `oldObject`
//! included, is skipped by the parser without being built, so an UPDATE or a
//! large object costs no allocation beyond the pod we may edit.

use crate::error::PolicyError;
use crate::settings::Settings;
use serde::Deserialize;
use serde_json::Value;

/// `{"request": <AdmissionRequest>, "settings": <settings>}`, as the host sends it.
#[derive(Debug, Deserialize)]
pub struct ValidatePayload {
    pub request: AdmissionRequest,
    #[serde(default)]
    pub settings: Settings,
}

/// The parts of a Kubernetes AdmissionRequest the policy reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub operation: String,
    pub namespace: String,
    pub sub_resource: String,
    pub object: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl ValidatePayload {
    /// The error names the JSON path that could not be read, for instance
    /// `request.operation: invalid type: integer 1, expected a string`.
    pub fn from_json(payload: &[u8]) -> Result<Self, PolicyError> {
        // The path-tracking parser costs on every field; it only runs again to
        // explain a payload the plain parser refused.
        serde_json::from_slice(payload).map_err(|_| {
            let de = &mut serde_json::Deserializer::from_slice(payload);
            match serde_path_to_error::deserialize::<_, Self>(de) {
                Ok(_) => PolicyError::MalformedRequest("unreadable payload".into()),
                Err(e) => {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    PolicyError::MalformedRequest(if path == "." {
                        inner.to_string()
                    } else {
                        format!("{path}: {inner}")
                    })
                }
            }
        })
    }
}

impl AdmissionRequest {
    /// Pod creation is the one request the policy acts on; everything else
    /// (UPDATE, DELETE, CONNECT, subresources, other kinds) passes untouched.
    pub fn is_pod_create(&self) -> bool {
        self.operation == "CREATE"
            && self.kind.kind == "Pod"
            && self.kind.group.is_empty()
            && self.sub_resource.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn reads_the_fields_the_decision_needs_and_skips_the_rest() {
        let payload = br#"{"settings": {"tokenAudience": "example"}, "request": {
            "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "team-a", "userInfo": {"username": "x"},
            "object": {"kind": "Pod"}, "oldObject": null, "dryRun": false, "futureField": [1]}}"#;
        let parsed = ValidatePayload::from_json(payload).unwrap();
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
        let err = ValidatePayload::from_json(payload).unwrap_err().to_string();
        assert!(err.contains(named), "{err:?} should contain {named:?}");
    }

    #[rstest]
    #[case("UPDATE", "", "Pod", "")]
    #[case("DELETE", "", "Pod", "")]
    #[case("CONNECT", "", "Pod", "")]
    #[case("CREATE", "", "Service", "")]
    #[case("CREATE", "apps", "Deployment", "")]
    #[case("CREATE", "example.com", "Pod", "")]
    #[case("CREATE", "", "Pod", "binding")]
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
}
