//! Conflicts are refusals (docs/behaviour.md).

use crate::common::*;

#[test]
fn rejects_a_foreign_volume_with_the_token_volume_name() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app"}],
        "volumes": [{"name": "aws-iam-token", "hostPath": {"path": "/var/lib/creds"}}]}),
    );
    assert_eq!(
        rejection(pod, role_account(), json!({})),
        "pod team-a/web: volume \"aws-iam-token\" already exists and is a hostPath volume, not a \
         projected service account token with audience \"sts.amazonaws.com\" and path \"token\"; \
         rename or remove that volume so the policy can add its own, or choose another name with \
         the policy setting tokenVolumeName"
    );
}

#[test]
fn rejects_a_token_volume_for_another_audience() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app"}],
        "volumes": [token_volume("vault", 600)]}),
    );
    let message = rejection(pod, role_account(), json!({}));
    assert!(
        message.contains("is a projected token for audience \"vault\""),
        "{message}"
    );
}

#[test]
fn rejects_another_volume_at_the_token_mount_path() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "istio-proxy",
        "volumeMounts": [{"name": "istio-token", "mountPath": format!("{MOUNT_PATH}/")}]}]}),
    );
    assert_eq!(
        rejection(pod, role_account(), json!({})),
        "pod team-a/web: container \"istio-proxy\" already mounts volume \"istio-token\" at \
         /var/run/secrets/eks.amazonaws.com/serviceaccount, where the policy mounts the AWS web \
         identity token; move that mount, or list the container in the pod annotation \
         eks.amazonaws.com/skip-containers"
    );
}

#[test]
fn skipped_containers_may_use_the_token_mount_path() {
    let mut pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app"}, {"name": "istio-proxy",
        "volumeMounts": [{"name": "istio-token", "mountPath": MOUNT_PATH}]}]}),
    );
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "istio-proxy"});
    let pod = mutated(pod, role_account(), json!({}));
    assert_eq!(
        container(&pod, "istio-proxy")["volumeMounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn rejects_the_token_volume_mounted_at_another_path() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/token"}]}]}),
    );
    let message = rejection(pod, role_account(), json!({}));
    assert!(
        message.contains("container \"app\" mounts volume \"aws-iam-token\" at \"/token\""),
        "{message}"
    );
}

#[test]
fn an_empty_mount_path_is_quoted_in_the_message() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "volumeMounts": [{"name": "aws-iam-token", "mountPath": ""}]}]}),
    );
    let message = rejection(pod, role_account(), json!({}));
    assert!(
        message.contains("mounts volume \"aws-iam-token\" at \"\", but the policy mounts it at"),
        "{message}"
    );
}

#[test]
fn rejects_an_invalid_role_arn() {
    let account = ServiceAccount::with_annotations([(
        "eks.amazonaws.com/role-arn",
        "arn:aws:iam::123456789012:user/bob",
    )]);
    let message = rejection(app_pod(), account, json!({}));
    assert!(
        message.starts_with("ServiceAccount team-a/app: annotation eks.amazonaws.com/role-arn=\"arn:aws:iam::123456789012:user/bob\" is not an IAM role ARN"),
        "{message}"
    );
}

#[rstest]
#[case("eks.amazonaws.com/token-expiration", "tomorrow")]
#[case("eks.amazonaws.com/sts-regional-endpoints", "maybe")]
fn rejects_unparseable_service_account_annotations(#[case] key: &str, #[case] value: &str) {
    let account =
        ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", ROLE), (key, value)]);
    let message = rejection(app_pod(), account, json!({}));
    assert!(
        message.contains(&format!("annotation {key}={value:?}")),
        "{message}"
    );
}
