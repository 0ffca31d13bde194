//! When nothing happens (docs/behaviour.md).

use crate::common::*;

#[test]
fn leaves_the_pod_unchanged_when_the_service_account_has_no_role() {
    let account = ServiceAccount::with_annotations([("team", "a")]);
    assert_eq!(
        evaluate(app_pod(), account, json!({})),
        Decision::Accept { warnings: vec![] }
    );
}

#[rstest]
#[case(json!({"containers": [{"name": "app"}]}))]
#[case(json!({"serviceAccountName": "", "containers": [{"name": "app"}]}))]
#[case(json!({"serviceAccountName": null, "serviceAccount": "", "containers": [{"name": "app"}]}))]
fn reads_the_default_service_account_when_the_pod_names_none(#[case] spec: Value) {
    let source = InMemoryServiceAccounts::default().with("team-a", "default", role_account());
    let decision = review(
        &request("CREATE", pod_with(spec), json!({})),
        &source,
        &log(),
    );
    assert!(matches!(decision, Decision::Mutate { .. }), "{decision:?}");
}

#[test]
fn reads_the_deprecated_service_account_field_when_the_name_is_empty() {
    let pod = pod_with(
        json!({"serviceAccountName": "", "serviceAccount": "app", "containers": [{"name": "app"}]}),
    );
    let source = InMemoryServiceAccounts::default().with("team-a", "app", role_account());
    let decision = review(&request("CREATE", pod, json!({})), &source, &log());
    assert!(matches!(decision, Decision::Mutate { .. }), "{decision:?}");
}

#[rstest]
#[case("true")]
#[case("")]
#[case("false")]
fn a_pod_labelled_skip_pod_identity_webhook_is_left_unchanged_without_a_host_call(
    #[case] value: &str,
    #[values(json!({}), json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}}))]
    settings: Value,
) {
    let mut pod = app_pod();
    pod["metadata"]["labels"] =
        json!({"app": "web", "eks.amazonaws.com/skip-pod-identity-webhook": value});
    let source = accounts(role_account());
    let decision = review(&request("CREATE", pod, settings), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn a_pod_opted_out_is_left_unchanged_when_ephemeral_containers_are_added() {
    let (mut pod, mut old) = running_pod(json!([{"name": "debugger"}]));
    for pod in [&mut pod, &mut old] {
        pod["metadata"]["labels"] = json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"});
    }
    let payload = ephemeral_payload(pod, old, json!({"ephemeralContainers": true}));
    let source = accounts(role_account());
    let decision = review(&payload, &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[rstest]
#[case("UPDATE")]
#[case("DELETE")]
#[case("CONNECT")]
fn accepts_other_operations_without_a_host_call(
    #[case] operation: &str,
    #[values(json!({}), json!({"ephemeralContainers": true}))] settings: Value,
) {
    let source = accounts(role_account());
    let decision = review(&request(operation, app_pod(), settings), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn accepts_other_kinds_without_a_host_call() {
    let mut payload: Value =
        serde_json::from_slice(&request("CREATE", app_pod(), json!({}))).unwrap();
    payload["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let source = accounts(role_account());
    let decision = review(&serde_json::to_vec(&payload).unwrap(), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn one_lookup_per_pod_creation() {
    let source = accounts(role_account());
    review(&request("CREATE", app_pod(), json!({})), &source, &log());
    assert_eq!(source.lookups(), 1);
}

#[test]
fn leaves_a_mirror_pod_unchanged_without_a_host_call() {
    // As the kubelet creates it: no ServiceAccount, the mirror annotation, a Node owner.
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "etcd-control-plane", "namespace": "team-a",
        "annotations": {"kubernetes.io/config.mirror": "3b2f0d5c", "kubernetes.io/config.source": "file"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "control-plane", "controller": true}]},
        "spec": {"nodeName": "control-plane", "containers": [{"name": "etcd"}]}});
    let default_account =
        InMemoryServiceAccounts::default().with("team-a", "default", role_account());
    let decision = review(
        &request("CREATE", pod.clone(), json!({})),
        &default_account,
        &log(),
    );
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    pod["status"] = json!({"phase": "Running"});
    assert_eq!(
        review(&audit_request(pod, json!({})), &default_account, &log()),
        Decision::Accept { warnings: vec![] }
    );
    assert_eq!(default_account.lookups(), 0);
}
