//! User values win (docs/behaviour.md).

use crate::common::*;

#[rstest]
#[case("AWS_ROLE_ARN")]
#[case("AWS_WEB_IDENTITY_TOKEN_FILE")]
fn keeps_the_users_identity_pair_and_still_mounts_the_token(#[case] preset: &str) {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "env": [{"name": preset, "value": "mine"}]}]}),
    );
    let pod = mutated(pod, role_account(), json!({}));
    let app = container(&pod, "app");
    assert_eq!(app["env"], json!([{"name": preset, "value": "mine"}]));
    assert_eq!(app["volumeMounts"], json!([token_mount()]));
}

#[rstest]
#[case("AWS_REGION")]
#[case("AWS_DEFAULT_REGION")]
fn keeps_the_users_aws_region(#[case] preset: &str) {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "env": [{"name": preset, "value": "ap-south-1"}]}]}),
    );
    let pod = mutated(
        pod,
        role_account(),
        json!({"awsDefaultRegion": "eu-west-1"}),
    );
    let app = container(&pod, "app");
    assert_eq!(
        env_names(app),
        [preset, "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert_eq!(env_value(app, preset).unwrap()["value"], "ap-south-1");
}

#[rstest]
#[case("AWS_STS_REGIONAL_ENDPOINTS", json!({"stsRegionalEndpoints": true}))]
#[case("AWS_ROLE_SESSION_NAME", json!({"roleSessionName": true}))]
fn keeps_the_users_single_variables(#[case] preset: &str, #[case] settings: Value) {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "env": [{"name": preset, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}),
    );
    let pod = mutated(pod, role_account(), settings);
    let app = container(&pod, "app");
    assert_eq!(
        env_names(app),
        [preset, "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert_eq!(app["env"][0]["valueFrom"]["secretKeyRef"]["name"], "s");
}
