//! Which containers (docs/behaviour.md).

use crate::common::*;

#[test]
fn skip_containers_annotation_is_trimmed_and_covers_init_containers() {
    let mut pod = pod_with(json!({"serviceAccountName": "app",
        "initContainers": [{"name": "istio-init"}],
        "containers": [{"name": "app"}, {"name": "istio-proxy"}]}));
    pod["metadata"]["annotations"] =
        json!({"eks.amazonaws.com/skip-containers": "istio-proxy, istio-init"});
    let pod = mutated(pod, role_account(), json!({}));
    assert!(container(&pod, "istio-init").get("env").is_none());
    assert!(container(&pod, "istio-proxy").get("volumeMounts").is_none());
    assert_eq!(
        env_names(container(&pod, "app")),
        ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
}

#[test]
fn leaves_the_pod_unchanged_when_every_container_is_skipped() {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "app"});
    assert_eq!(
        evaluate(pod, role_account(), json!({})),
        Decision::Accept { warnings: vec![] }
    );
}

#[test]
fn inject_containers_annotation_limits_injection_to_the_listed_containers() {
    let mut pod = pod_with(json!({"serviceAccountName": "app",
        "initContainers": [{"name": "init"}], "containers": [{"name": "app"}, {"name": "proxy"}]}));
    pod["metadata"]["annotations"] = json!({"irsa-policy.io/inject-containers": "app, init"});
    let pod = mutated(pod, role_account(), json!({}));
    assert_eq!(
        env_names(container(&pod, "app")),
        ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert_eq!(
        env_names(container(&pod, "init")),
        ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert!(container(&pod, "proxy").get("env").is_none());
}

#[test]
fn skip_containers_wins_over_inject_containers() {
    let mut pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app"}, {"name": "proxy"}]}),
    );
    pod["metadata"]["annotations"] = json!({"irsa-policy.io/inject-containers": "app,proxy",
        "eks.amazonaws.com/skip-containers": "proxy"});
    let pod = mutated(pod, role_account(), json!({}));
    assert!(container(&pod, "proxy").get("env").is_none());
}

#[test]
fn warns_about_container_names_the_pod_does_not_have() {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "sidecar"});
    let Decision::Mutate { warnings, .. } = evaluate(pod, role_account(), json!({})) else {
        panic!()
    };
    assert_eq!(
        warnings,
        ["pod annotation eks.amazonaws.com/skip-containers or irsa-policy.io/inject-containers names container \"sidecar\", which the pod does not have"]
    );
}

#[test]
fn extension_annotations_follow_their_prefix_setting() {
    let mut pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app"}, {"name": "proxy"}]}),
    );
    pod["metadata"]["annotations"] = json!({"platform.example.com/inject-containers": "app"});
    let pod = mutated(
        pod,
        role_account(),
        json!({"extensionAnnotationPrefix": "platform.example.com"}),
    );
    assert!(container(&pod, "proxy").get("env").is_none());
}
