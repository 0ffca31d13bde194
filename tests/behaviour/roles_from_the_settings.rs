//! Roles from the settings (docs/behaviour.md).

use crate::common::*;

#[test]
fn role_from_the_service_accounts_setting_when_the_annotation_is_missing() {
    let settings = json!({"serviceAccounts": {"team-a/app": {"roleArn": ROLE, "audience": "sts.example.com",
        "stsRegionalEndpoints": true, "tokenExpirationSeconds": 3600}}});
    let pod = mutated(app_pod(), ServiceAccount::default(), settings);
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_ROLE_ARN").unwrap()["value"],
        ROLE
    );
    assert_eq!(
        env_names(container(&pod, "app"))[0],
        "AWS_STS_REGIONAL_ENDPOINTS"
    );
    assert_eq!(
        pod["spec"]["volumes"][0],
        token_volume("sts.example.com", 3600)
    );
}

#[test]
fn any_namespace_entry_applies_when_no_exact_one_does() {
    let other = "arn:aws:iam::123456789012:role/other";
    let settings =
        json!({"serviceAccounts": {"*/app": {"roleArn": ROLE}, "team-b/app": {"roleArn": other}}});
    let pod = mutated(app_pod(), ServiceAccount::default(), settings);
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_ROLE_ARN").unwrap()["value"],
        ROLE
    );
}

#[test]
fn the_service_accounts_own_annotations_win_over_the_setting() {
    let other = "arn:aws:iam::123456789012:role/other";
    let settings = json!({"serviceAccounts": {"team-a/app": {"roleArn": other, "audience": "from-setting",
        "stsRegionalEndpoints": true}}});
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/audience", "from-annotation"),
        ("eks.amazonaws.com/sts-regional-endpoints", "false"),
    ]);
    let pod = mutated(app_pod(), account, settings);
    let app = container(&pod, "app");
    assert_eq!(env_value(app, "AWS_ROLE_ARN").unwrap()["value"], ROLE);
    assert!(env_value(app, "AWS_STS_REGIONAL_ENDPOINTS").is_none());
    assert_eq!(
        pod["spec"]["volumes"][0],
        token_volume("from-annotation", 86400)
    );
}

#[test]
fn guardrails_apply_to_roles_from_the_setting_too() {
    let settings = json!({"serviceAccounts": {"team-a/app": {"roleArn": ROLE}},
        "allowedAccounts": ["111122223333"]});
    let message = rejection(app_pod(), ServiceAccount::default(), settings);
    assert!(message.contains("may not assume role"), "{message}");
}

#[rstest]
#[case("s3-reader", "arn:aws:iam::111122223333:role/s3-reader")]
#[case("team-a/s3-reader", "arn:aws:iam::111122223333:role/team-a/s3-reader")]
#[case(
    "arn:aws:iam::444455556666:role/full",
    "arn:aws:iam::444455556666:role/full"
)]
fn composes_a_role_name_into_an_arn(#[case] annotation: &str, #[case] arn: &str) {
    let settings = json!({"composeRoleArn": {"accountId": "111122223333"}});
    let account = ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", annotation)]);
    let pod = mutated(app_pod(), account, settings);
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_ROLE_ARN").unwrap()["value"],
        arn
    );
}

#[test]
fn a_bare_role_name_without_composition_is_refused_with_the_hint() {
    let account = ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", "s3-reader")]);
    let message = rejection(app_pod(), account, json!({}));
    assert!(
        message.ends_with("(bare role names need the composeRoleArn setting)"),
        "{message}"
    );
}
