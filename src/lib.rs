//! irsa-policy: EKS-style IAM Roles for Service Accounts on any Kubernetes
//! cluster, as a Kubewarden policy.
//!
//! This file only speaks waPC: it decodes the host's payload, hands it to
//! [`decision::decide`], and encodes the answer.
//!
//! # The flow
//!
//! A `validate` call goes one way through the stages, each a folder or file
//! of `src/`:
//!
//! 1. [`input`]: the payload, its admission request and the facts of its pod;
//! 2. [`settings`]: the settings, checked once into a [`settings::Config`];
//! 3. [`lookup`]: the pod's ServiceAccount, through the host;
//! 4. [`resolve`]: what the pod gets, an [`resolve::Injection`];
//! 5. [`edit`]: the JSON edit of the pod, planned, then applied;
//! 6. [`audit`]: a running pod from the audit scanner, compared, never edited;
//! 7. [`decision`]: one admission decision, with the log;
//!
//! then the answer is encoded here. [`error`] holds every refusal, under them all.
//!
//! # The dependency rule
//!
//! A stage uses only the stages before it, and [`error`]; nothing reaches back
//! up, and no two files use each other. `tests/layout.rs` reads every
//! `crate::` path under `src/` and fails on one that goes against this.

// The stages' docs are for contributors (`cargo doc --document-private-items`),
// so the flow above links to the private ones too.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod audit;
pub mod decision;
pub(crate) mod edit;
pub mod error;
pub mod input;
#[cfg(any(test, feature = "test-support"))]
pub mod invariants;
pub mod lookup;
pub mod resolve;
pub mod settings;

use decision::Decision;
use input::payload::ValidatePayload;
use kubewarden_policy_sdk::logging::KubewardenDrain;
use kubewarden_policy_sdk::response::ValidationResponse;
use kubewarden_policy_sdk::settings::{SettingsValidationResponse, Validatable};
use kubewarden_policy_sdk::{protocol_version_guest, wapc_guest};
use lookup::{HostServiceAccounts, ServiceAccountSource};
use settings::{Config, Settings};
use wapc_guest::prelude::*;

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
}

fn validate(payload: &[u8]) -> CallResult {
    let log = slog::Logger::root(KubewardenDrain::new(), slog::o!("policy" => "irsa-policy"));
    encode(review(payload, &HostServiceAccounts, &log), payload.len())
}

/// The whole `validate` call short of encoding, for the native benchmark and tests.
pub fn review(payload: &[u8], accounts: &dyn ServiceAccountSource, log: &slog::Logger) -> Decision {
    // Malformed input is answered with a rejection that says what is wrong,
    // never with a guest error, which the host reports as an opaque 500.
    let parsed = ValidatePayload::<Settings>::from_json(payload)
        .and_then(|p| Config::from_settings(&p.settings).map(|config| (p.request, config)));
    match parsed {
        Ok((request, config)) => decision::decide(request, &config, accounts, log),
        Err(error) => Decision::Reject(error),
    }
}

/// Room beyond the request's size for what a mutation adds (a volume, and a
/// mount and a few variables per container) and the response's own fields.
const RESPONSE_SLACK: usize = 1024;

/// The `ValidationResponse` JSON the host expects. Takes the decision by
/// value so the mutated pod is serialised where it lies, not copied.
/// `request_len` sizes the buffer: the usual answer is the pod that came in,
/// a little larger.
pub fn encode(decision: Decision, request_len: usize) -> CallResult {
    let warnings = |w: Vec<String>| (!w.is_empty()).then_some(w);
    let response = match decision {
        Decision::Accept { warnings: w } => ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: None,
            audit_annotations: None,
            warnings: warnings(w),
        },
        Decision::Mutate { pod, warnings: w } => ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: Some(pod),
            audit_annotations: None,
            warnings: warnings(w),
        },
        Decision::Reject(error) => ValidationResponse {
            accepted: false,
            message: Some(error::shorten(error.to_string(), error::MAX_MESSAGE)),
            code: Some(error.code()),
            mutated_object: None,
            audit_annotations: None,
            warnings: None,
        },
    };
    // Sized once, so the buffer is not regrown and copied several times over.
    let mut out = Vec::with_capacity(request_len + RESPONSE_SLACK);
    serde_json::to_writer(&mut out, &response)?;
    Ok(out)
}

/// Like the SDK's `validate_settings`, but unreadable settings get
/// `valid: false` with the field named, instead of a guest error.
fn validate_settings(payload: &[u8]) -> CallResult {
    let outcome = Settings::from_json(payload)
        .map_err(|e| e.to_string())
        .and_then(|settings| settings.validate());
    let response = SettingsValidationResponse {
        valid: outcome.is_ok(),
        message: outcome.err(),
    };
    Ok(serde_json::to_vec(&response)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PolicyError;
    use serde_json::{json, Value};

    fn encoded(decision: Decision) -> Value {
        serde_json::from_slice(&encode(decision, 0).unwrap()).unwrap()
    }

    #[test]
    fn an_acceptance_carries_its_warnings_and_nothing_else() {
        let plain = encoded(Decision::Accept { warnings: vec![] });
        assert_eq!(
            plain,
            json!({"accepted": true, "message": null, "code": null, "mutated_object": null,
                   "audit_annotations": null, "warnings": null})
        );
        let warned = encoded(Decision::Accept {
            warnings: vec!["careful".into()],
        });
        assert_eq!(warned["warnings"], json!(["careful"]));
    }

    #[test]
    fn a_mutation_carries_the_whole_pod_and_its_warnings() {
        let pod = json!({"kind": "Pod", "spec": {"containers": []}});
        let answer = encoded(Decision::Mutate {
            pod: pod.clone(),
            warnings: vec!["w".into()],
        });
        assert_eq!(answer["accepted"], true);
        assert_eq!(answer["mutated_object"], pod);
        assert_eq!(answer["warnings"], json!(["w"]));
        let quiet = encoded(Decision::Mutate {
            pod,
            warnings: vec![],
        });
        assert!(quiet["warnings"].is_null());
    }

    #[test]
    fn a_rejection_carries_its_message_and_code() {
        let answer = encoded(Decision::Reject(PolicyError::MalformedRequest(
            "bad".into(),
        )));
        assert_eq!(answer["accepted"], false);
        assert_eq!(answer["message"], "cannot read the admission request: bad");
        assert_eq!(answer["code"], 400);
    }

    #[test]
    fn a_very_long_rejection_message_is_cut() {
        let answer = encoded(Decision::Reject(PolicyError::MalformedRequest(
            "x".repeat(10_000),
        )));
        let message = answer["message"].as_str().unwrap();
        assert!(message.len() < error::MAX_MESSAGE + 32, "{}", message.len());
        assert!(message.ends_with("bytes)"), "{message}");
    }

    #[test]
    fn validate_settings_answers_valid_or_why_not() {
        let answer = |json: &str| -> Value {
            serde_json::from_slice(&validate_settings(json.as_bytes()).unwrap()).unwrap()
        };
        assert_eq!(answer("{}"), json!({"valid": true, "message": null}));
        let refused = answer(r#"{"tokenExpirationSeconds": 1}"#);
        assert_eq!(refused["valid"], false);
        assert!(refused["message"]
            .as_str()
            .unwrap()
            .contains("tokenExpirationSeconds = 1"));
        let unreadable = answer("[1]");
        assert_eq!(unreadable["valid"], false);
        assert!(unreadable["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot read the settings"));
    }
}
