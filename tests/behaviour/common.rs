//! What every behaviour test shares: the requests, pods, ServiceAccounts
//! and readers of a decision, in one place.

#![allow(dead_code, unused_imports)]

pub use irsa_policy::decision::Decision;
pub use irsa_policy::error::{FailureKind, Finding, PolicyError};
pub use irsa_policy::lookup::{InMemoryServiceAccounts, ServiceAccount};
pub use irsa_policy::review;
pub use rstest::rstest;
pub use serde_json::{json, Value};

pub const ROLE: &str = "arn:aws:iam::123456789012:role/app";
pub const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
pub const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

pub fn log() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

pub fn request(operation: &str, pod: Value, settings: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation,
            "namespace": "team-a",
            "userInfo": {"username": "alice"},
            "object": pod,
        },
        "settings": settings,
    }))
    .unwrap()
}

pub fn pod_with(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team-a"}, "spec": spec})
}

pub fn app_pod() -> Value {
    pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app", "image": "app:1"}]}),
    )
}

pub fn role_account() -> ServiceAccount {
    ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", ROLE)])
}

pub fn accounts(account: ServiceAccount) -> InMemoryServiceAccounts {
    InMemoryServiceAccounts::default().with("team-a", "app", account)
}

pub fn evaluate(pod: Value, account: ServiceAccount, settings: Value) -> Decision {
    review(
        &request("CREATE", pod, settings),
        &accounts(account),
        &log(),
    )
}

pub fn mutated(pod: Value, account: ServiceAccount, settings: Value) -> Value {
    match evaluate(pod, account, settings) {
        Decision::Mutate { pod, .. } => pod,
        other => panic!("expected a mutation, got {other:?}"),
    }
}

pub fn rejection(pod: Value, account: ServiceAccount, settings: Value) -> String {
    match evaluate(pod, account, settings) {
        Decision::Reject(error) => error.to_string(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| pod["spec"][list].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

pub fn env_names(container: &Value) -> Vec<&str> {
    container["env"]
        .as_array()
        .map(|env| env.iter().map(|v| v["name"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

pub fn token_mount() -> Value {
    json!({"name": "aws-iam-token", "mountPath": MOUNT_PATH, "readOnly": true})
}

pub fn token_volume(audience: &str, seconds: u32) -> Value {
    json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken":
        {"audience": audience, "expirationSeconds": seconds, "path": "token"}}]}})
}

/// The error text of an e2e case's host session, as the policy receives it
/// through the SDK and waPC: the shapes policy-server really sends.
pub fn host_error_of_case(case: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("e2e-tests/cases")
        .join(case)
        .join("session.yml");
    let session: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let text = session[0]["response"]["message"].as_str().unwrap();
    format!("error invoking host capability kubernetes.get_resource: Host error: {text}")
}

/// The rejection of a pod whose ServiceAccount lookup fails with `host_text`:
/// its kind of failure, and its message, which must start with the advice
/// for that kind (the texts themselves are pinned where they are written,
/// `lookup::host_error`, and in one e2e case each).
pub fn lookup_rejection(host_text: &str) -> (FailureKind, String) {
    let source = InMemoryServiceAccounts::default().failing("team-a", "app", host_text);
    let decision = review(&request("CREATE", app_pod(), json!({})), &source, &log());
    let Decision::Reject(error) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(error.code(), 500);
    let message = error.to_string();
    let PolicyError::ServiceAccountLookup { failure, .. } = error else {
        panic!("{message}")
    };
    // The advice first, then the host's text: a 2 KB cut can only shorten the latter.
    let advice = format!(
        "cannot read ServiceAccount team-a/app: {}. Host error: ",
        failure.advice()
    );
    assert!(message.starts_with(&advice), "{message}");
    // Whole, so the API server shows the advice and the host's reason uncut.
    assert!(
        message.len() <= irsa_policy::error::MAX_MESSAGE,
        "{} bytes: {message}",
        message.len()
    );
    (failure.kind, message)
}

pub const POD_IDENTITY_PATH: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";

pub fn pod_identity_lifetime(pod: &Value) -> u64 {
    pod.pointer("/spec/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no token volume in {pod}"))
}

/// A replica of a Deployment as the API server sends it: only a
/// `generateName`, and the request's own uid.
pub fn replica_request(uid: &str, settings: Value) -> Vec<u8> {
    let mut pod = app_pod();
    pod["metadata"] = json!({"generateName": "web-7d9f5c-", "namespace": "team-a"});
    let mut payload: Value = serde_json::from_slice(&request("CREATE", pod, settings)).unwrap();
    payload["request"]["uid"] = json!(uid);
    serde_json::to_vec(&payload).unwrap()
}

pub fn ephemeral_payload(pod: Value, old: Value, settings: Value) -> Vec<u8> {
    let mut payload: Value = serde_json::from_slice(&request("UPDATE", pod, settings)).unwrap();
    payload["request"]["subResource"] = json!("ephemeralcontainers");
    payload["request"]["oldObject"] = old;
    serde_json::to_vec(&payload).unwrap()
}

/// A pod created with credentials, and the same pod with ephemeral containers.
pub fn running_pod(ephemeral: Value) -> (Value, Value) {
    let old = pod_with(json!({"serviceAccountName": "app",
        "containers": [{"name": "app", "env": [
            {"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}],
            "volumeMounts": [token_mount()]}],
        "volumes": [token_volume("sts.amazonaws.com", 86400)]}));
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] = ephemeral;
    (new, old)
}

pub const POD_UID: &str = "9b2d8c3e-4f7a-4b1c-8e2d-6a5f3c1b0e9d";

/// The pod as Kubewarden's audit scanner sends it: a CREATE whose request
/// `uid` is the running pod's own `metadata.uid`.
pub fn audit_request(mut pod: Value, settings: Value) -> Vec<u8> {
    pod["metadata"]["uid"] = json!(POD_UID);
    pod["metadata"]["creationTimestamp"] = json!("2026-11-30T09:00:00Z");
    serde_json::to_vec(&json!({
        "request": {
            "uid": POD_UID,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "Pod"},
            "operation": "CREATE",
            "namespace": "team-a",
            "object": pod,
        },
        "settings": settings,
    }))
    .unwrap()
}

/// A pod as the policy injected it when its ServiceAccount had `account`.
pub fn injected_pod(account: ServiceAccount, settings: Value) -> Value {
    mutated(app_pod(), account, settings)
}

pub fn audit(pod: Value, source: &InMemoryServiceAccounts, settings: Value) -> Decision {
    review(&audit_request(pod, settings), source, &log())
}

/// The audit's finding for a pod out of step with `account`, and the remedy
/// it names. Findings are matched as values here: their wording is pinned
/// where it is written (`error.rs`) and by the e2e cases.
pub fn audit_finding(pod: Value, account: ServiceAccount, settings: Value) -> (Finding, String) {
    match audit(pod, &accounts(account), settings) {
        Decision::Reject(PolicyError::OutOfStep {
            finding, remedy, ..
        }) => (*finding, remedy),
        other => panic!("expected a finding, got {other:?}"),
    }
}

/// What the audit says a pod carries or gets, as `Finding` holds it.
pub fn carries_role(role: &str) -> String {
    format!("AWS credentials for {role}")
}

/// The policy's pod for `app_pod`, stored by the API server and owned by the
/// Deployment `web`, as the scanner sends it.
pub fn deployment_pod(pod: Value) -> Value {
    let mut pod = pod;
    pod["metadata"]["name"] = json!("web-7d9f5c6b8-x2x4z");
    pod["metadata"]["labels"] = json!({"pod-template-hash": "7d9f5c6b8"});
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-7d9f5c6b8", "controller": true}]);
    pod["status"] = json!({"phase": "Running"});
    pod
}

pub const POD_IDENTITY: &str =
    "EKS Pod Identity container credentials from http://169.254.170.23/v1/credentials";

pub const VPC_ENDPOINT: &str =
    "https://vpce-0a1b2c3d4e5f6a7b8-abcdefgh.sts.us-east-1.vpce.amazonaws.com";
