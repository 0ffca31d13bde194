//! Region, envFrom and STS endpoint (docs/behaviour.md).

use crate::common::*;

#[test]
fn service_account_region_annotation_wins_over_the_setting() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("irsa-policy.io/region", "ap-south-1"),
    ]);
    let pod = mutated(app_pod(), account, json!({"awsDefaultRegion": "eu-west-1"}));
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_REGION").unwrap()["value"],
        "ap-south-1"
    );
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_DEFAULT_REGION").unwrap()["value"],
        "ap-south-1"
    );
}

#[rstest]
#[case("")]
#[case("  ")]
fn an_empty_region_annotation_leaves_the_setting(#[case] value: &str) {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("irsa-policy.io/region", value),
    ]);
    let pod = mutated(app_pod(), account, json!({"awsDefaultRegion": "eu-west-1"}));
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_REGION").unwrap()["value"],
        "eu-west-1"
    );
}

#[test]
fn rejects_a_region_annotation_that_is_not_a_region() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("irsa-policy.io/region", "Mumbai"),
    ]);
    let message = rejection(app_pod(), account, json!({}));
    assert!(
        message.contains("annotation irsa-policy.io/region=\"Mumbai\" is not an AWS region"),
        "{message}"
    );
}

#[test]
fn leaves_the_region_to_containers_with_env_from_when_asked() {
    let pod = pod_with(json!({"serviceAccountName": "app", "containers": [
        {"name": "app", "envFrom": [{"configMapRef": {"name": "aws"}}]}, {"name": "worker"}]}));
    let settings = json!({"awsDefaultRegion": "eu-west-1", "skipRegionWithEnvFrom": true});
    let pod = mutated(pod, role_account(), settings.clone());
    assert_eq!(
        env_names(container(&pod, "app")),
        ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert_eq!(
        env_names(container(&pod, "worker"))[..2],
        ["AWS_DEFAULT_REGION", "AWS_REGION"]
    );
}

#[test]
fn env_from_does_not_stop_the_region_by_default() {
    let pod = pod_with(json!({"serviceAccountName": "app", "containers": [
        {"name": "app", "envFrom": [{"configMapRef": {"name": "aws"}}]}]}));
    let pod = mutated(
        pod,
        role_account(),
        json!({"awsDefaultRegion": "eu-west-1"}),
    );
    assert_eq!(env_names(container(&pod, "app"))[0], "AWS_DEFAULT_REGION");
}

#[test]
fn sts_endpoint_is_injected_from_the_setting_or_the_service_account() {
    let settings = json!({"stsEndpointUrl": "https://sts.us-east-1.amazonaws.com"});
    let pod = mutated(app_pod(), role_account(), settings.clone());
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_ENDPOINT_URL_STS").unwrap()["value"],
        "https://sts.us-east-1.amazonaws.com"
    );
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("irsa-policy.io/sts-endpoint", VPC_ENDPOINT),
    ]);
    let pod = mutated(app_pod(), account, settings);
    assert_eq!(
        env_names(container(&pod, "app")),
        [
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ENDPOINT_URL_STS"
        ]
    );
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_ENDPOINT_URL_STS").unwrap()["value"],
        VPC_ENDPOINT
    );
    // Nothing set: nothing injected.
    let pod = mutated(app_pod(), role_account(), json!({}));
    assert!(env_value(container(&pod, "app"), "AWS_ENDPOINT_URL_STS").is_none());
}

#[test]
fn a_containers_own_sts_endpoint_is_kept() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "env": [{"name": "AWS_ENDPOINT_URL_STS", "value": "https://own.example.com"}]}]}),
    );
    let pod = mutated(
        pod,
        role_account(),
        json!({"stsEndpointUrl": "https://sts.us-east-1.amazonaws.com"}),
    );
    let app = container(&pod, "app");
    assert_eq!(
        env_value(app, "AWS_ENDPOINT_URL_STS").unwrap()["value"],
        "https://own.example.com"
    );
    assert_eq!(
        env_names(app)
            .iter()
            .filter(|n| **n == "AWS_ENDPOINT_URL_STS")
            .count(),
        1
    );
}

#[test]
fn rejects_an_sts_endpoint_that_is_not_an_https_url() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        (
            "irsa-policy.io/sts-endpoint",
            "http://sts.us-east-1.amazonaws.com",
        ),
    ]);
    assert_eq!(
        rejection(app_pod(), account, json!({})),
        "ServiceAccount team-a/app: annotation irsa-policy.io/sts-endpoint=\"http://sts.us-east-1.amazonaws.com\" \
         is not an https:// URL with a host, such as https://sts.us-east-1.amazonaws.com"
    );
    let decision = evaluate(
        app_pod(),
        role_account(),
        json!({"stsEndpointUrl": "sts.amazonaws.com"}),
    );
    let Decision::Reject(error) = decision else {
        panic!("{decision:?}")
    };
    assert!(error.to_string().starts_with(
        "invalid setting stsEndpointUrl = \"sts.amazonaws.com\": must be an https:// URL"
    ));
}

#[test]
fn container_credentials_pods_do_not_read_the_sts_endpoint() {
    let account = ServiceAccount::with_annotations([("irsa-policy.io/sts-endpoint", "not a url")]);
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let pod = mutated(app_pod(), account, settings);
    assert!(env_value(container(&pod, "app"), "AWS_ENDPOINT_URL_STS").is_none());
}
