//! Turning the guest's `ValidationResponse` into the `AdmissionResponse` the
//! API server receives, as policy-evaluator does: `mutated_object` becomes an
//! RFC 6902 patch against the original object (json-patch's `diff`).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
pub struct ValidationResponse {
    pub accepted: bool,
    pub message: Option<String>,
    pub code: Option<u16>,
    pub mutated_object: Option<Value>,
    pub audit_annotations: Option<HashMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

/// Field names and order as `kwctl run` prints them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    pub audit_annotations: Option<HashMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

impl AdmissionResponse {
    /// From the guest's answer to `validate` (or its error).
    pub fn from_guest(uid: &str, original: &Value, guest: Result<Vec<u8>, String>) -> Self {
        let response = guest
            .map_err(|e| format!("Guest call failure: {e}"))
            .and_then(|bytes| {
                serde_json::from_slice::<ValidationResponse>(&bytes)
                    .map_err(|e| format!("invalid response from policy: {e}"))
            });
        let response = match response {
            Ok(response) => response,
            Err(e) => return Self::rejected(uid, format!("internal server error: {e}"), Some(500)),
        };
        let patch = match (&response.mutated_object, original) {
            (Some(_), Value::Null) => {
                return Self::rejected(
                    uid,
                    "Incoming object is null, which happens only with DELETE operations, but the policy is attempting a mutation. This is not allowed".into(),
                    None,
                )
            }
            (Some(mutated), original) => {
                let diff = json_patch::diff(original, mutated);
                (!diff.0.is_empty()).then(|| {
                    base64::engine::general_purpose::STANDARD
                        .encode(serde_json::to_string(&diff).expect("a patch serialises"))
                })
            }
            (None, _) => None,
        };
        let status = (response.message.is_some() || response.code.is_some()).then(|| Status {
            message: response.message.clone(),
            code: response.code,
        });
        Self {
            uid: uid.to_owned(),
            allowed: response.accepted,
            patch_type: patch.as_ref().map(|_| "JSONPatch".to_owned()),
            patch,
            status,
            audit_annotations: response.audit_annotations,
            warnings: response.warnings,
        }
    }

    fn rejected(uid: &str, message: String, code: Option<u16>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: false,
            patch_type: None,
            patch: None,
            status: Some(Status {
                message: Some(message),
                code,
            }),
            audit_annotations: None,
            warnings: None,
        }
    }

    /// The decoded RFC 6902 patch, if any.
    pub fn json_patch(&self) -> anyhow::Result<Option<json_patch::Patch>> {
        let Some(patch) = &self.patch else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD.decode(patch)?;
        Ok(Some(serde_json::from_slice(&bytes)?))
    }

    /// The object as the API server would store it: the original with the patch applied.
    pub fn patched(&self, original: &Value) -> anyhow::Result<Value> {
        let mut object = original.clone();
        if let Some(patch) = self.json_patch()? {
            json_patch::patch(&mut object, &patch)?;
        }
        Ok(object)
    }
}
