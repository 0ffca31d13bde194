//! Role guardrails (docs/behaviour.md).

use crate::common::*;

#[test]
fn refuses_a_role_the_namespace_may_not_assume() {
    let settings = json!({"allowedRoleArns": [
        {"namespaces": ["team-b"], "roleArns": ["arn:aws:iam::123456789012:role/*"]}]});
    let decision = evaluate(app_pod(), role_account(), settings);
    let Decision::Reject(error) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(error.code(), 403);
    assert_eq!(
        error.to_string(),
        "ServiceAccount team-a/app may not assume role arn:aws:iam::123456789012:role/app: no rule \
         allows namespace team-a to assume this role; the policy setting allowedRoleArns decides \
         which roles each namespace may assume: use a role it allows, or ask the platform team to \
         change the setting"
    );
}

#[test]
fn allows_a_role_a_rule_matches() {
    let settings = json!({"allowedRoleArns": [
        {"namespaces": ["team-*"], "roleArns": ["arn:aws:iam::123456789012:role/ap?"]}]});
    assert!(matches!(
        evaluate(app_pod(), role_account(), settings),
        Decision::Mutate { .. }
    ));
}

#[rstest]
#[case(json!({"allowedAccounts": ["111122223333"]}), "account 123456789012 is not one of 111122223333")]
#[case(json!({"allowedPartitions": ["aws-us-gov"]}), "partition aws is not one of aws-us-gov")]
fn refuses_roles_of_other_accounts_and_partitions(#[case] settings: Value, #[case] reason: &str) {
    let message = rejection(app_pod(), role_account(), settings);
    assert!(message.contains(reason), "{message}");
}

#[test]
fn the_guardrails_judge_the_role_before_other_annotations() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/token-expiration", "soon"),
    ]);
    let message = rejection(
        app_pod(),
        account,
        json!({"allowedAccounts": ["444455556666"]}),
    );
    assert!(
        message.starts_with("ServiceAccount team-a/app may not assume role"),
        "{message}"
    );
}
