//! Ephemeral containers (docs/behaviour.md).

use crate::common::*;

#[test]
fn ephemeral_containers_are_left_alone_unless_enabled() {
    let (pod, old) = running_pod(json!([{"name": "debugger", "image": "busybox"}]));
    let source = accounts(role_account());
    let decision = review(&ephemeral_payload(pod, old, json!({})), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn injects_only_the_new_ephemeral_containers_when_enabled() {
    let (pod, mut old) =
        running_pod(json!([{"name": "old-debugger"}, {"name": "debugger", "image": "busybox"}]));
    old["spec"]["ephemeralContainers"] = json!([{"name": "old-debugger"}]);
    let source = accounts(role_account());
    let payload = ephemeral_payload(pod, old, json!({"ephemeralContainers": true}));
    let Decision::Mutate { pod, .. } = review(&payload, &source, &log()) else {
        panic!()
    };
    let ephemeral = &pod["spec"]["ephemeralContainers"];
    assert_eq!(ephemeral[0], json!({"name": "old-debugger"}));
    assert_eq!(ephemeral[1]["volumeMounts"], json!([token_mount()]));
    assert_eq!(
        ephemeral[1]["env"][0],
        json!({"name": "AWS_ROLE_ARN", "value": ROLE})
    );
    assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(source.lookups(), 1);
}

#[test]
fn ephemeral_containers_of_a_pod_without_the_token_volume_get_a_warning() {
    let old = pod_with(json!({"serviceAccountName": "app", "containers": [{"name": "app"}]}));
    let mut pod = old.clone();
    pod["spec"]["ephemeralContainers"] = json!([{"name": "debugger"}]);
    let payload = ephemeral_payload(pod, old, json!({"ephemeralContainers": true}));
    let decision = review(&payload, &accounts(role_account()), &log());
    let Decision::Accept { warnings } = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("the new ephemeral containers get no AWS credentials: the pod has no volume \"aws-iam-token\""), "{warnings:?}");
}
