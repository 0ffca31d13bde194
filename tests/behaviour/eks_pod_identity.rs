//! EKS Pod Identity (docs/behaviour.md).

use crate::common::*;

#[test]
fn container_credentials_for_listed_service_accounts() {
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}, "awsDefaultRegion": "eu-west-1"});
    let pod = mutated(app_pod(), ServiceAccount::default(), settings);
    let app = container(&pod, "app");
    assert_eq!(
        app["env"],
        json!([
            {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"},
            {"name": "AWS_REGION", "value": "eu-west-1"},
            {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"},
            {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": format!("{POD_IDENTITY_PATH}/eks-pod-identity-token")},
        ])
    );
    assert_eq!(
        app["volumeMounts"],
        json!([{"name": "eks-pod-identity-token", "mountPath": POD_IDENTITY_PATH, "readOnly": true}])
    );
    // The default lifetime, spread over 22 to 24 hours (see below).
    let seconds = pod_identity_lifetime(&pod);
    assert!((79_200..=86_400).contains(&seconds), "{seconds}");
    assert_eq!(
        pod["spec"]["volumes"][0],
        json!({"name": "eks-pod-identity-token", "projected": {"sources": [{"serviceAccountToken":
            {"audience": "pods.eks.amazonaws.com", "expirationSeconds": seconds, "path": "eks-pod-identity-token"}}]}})
    );
    assert_eq!(
        pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "enabled"
    );
}

#[test]
fn spreads_the_default_lifetime_of_pod_identity_tokens_over_22_to_24_hours() {
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let lifetime = |uid: &str, settings: &Value| match review(
        &replica_request(uid, settings.clone()),
        &accounts(ServiceAccount::default()),
        &log(),
    ) {
        Decision::Mutate { pod, .. } => pod_identity_lifetime(&pod),
        other => panic!("expected a mutation, got {other:?}"),
    };
    let replicas: Vec<u64> = (0..200)
        .map(|i| lifetime(&format!("6f1c2a90-0000-4000-8000-{i:012}"), &settings))
        .collect();
    assert!(replicas.iter().all(|s| (79_200..=86_400).contains(s)));
    // Replicas of one workload share their generateName: the request's uid
    // tells them apart, so they do not all refresh together.
    let mut distinct = replicas.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 190, "{} distinct of 200", distinct.len());
    // The same request always gets the same lifetime.
    assert_eq!(
        lifetime("6f1c2a90-0000-4000-8000-000000000007", &settings),
        replicas[7]
    );
    // `tokenExpirationSeconds: 86400` written out is the default: the settings
    // cannot tell the two apart.
    let written = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}, "tokenExpirationSeconds": 86400});
    assert_eq!(
        lifetime("6f1c2a90-0000-4000-8000-000000000007", &written),
        replicas[7]
    );
}

#[rstest]
#[case::pod_annotation(json!({"eks.amazonaws.com/token-expiration": "86400"}), &[], json!({}), 86400)]
#[case::service_account_annotation(json!({}), &[("eks.amazonaws.com/token-expiration", "86400")], json!({}), 86400)]
#[case::service_accounts_entry(json!({}), &[], json!({"serviceAccounts": {"team-a/app": {"tokenExpirationSeconds": 86400}}}), 86400)]
#[case::setting(json!({}), &[], json!({"tokenExpirationSeconds": 43200}), 43200)]
#[case::clamped_annotation(json!({"eks.amazonaws.com/token-expiration": "604800"}), &[], json!({}), 86400)]
fn keeps_a_chosen_lifetime_of_pod_identity_tokens(
    #[case] pod_annotations: Value,
    #[case] account_annotations: &[(&str, &str)],
    #[case] mut settings: Value,
    #[case] seconds: u64,
) {
    settings["containerCredentials"] = json!({"serviceAccounts": ["team-a/app"]});
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = pod_annotations;
    let account = ServiceAccount::with_annotations(account_annotations.iter().copied());
    assert_eq!(
        pod_identity_lifetime(&mutated(pod, account, settings)),
        seconds
    );
}

#[test]
fn web_identity_tokens_keep_the_default_lifetime_unspread() {
    for i in 0..20 {
        let decision = review(
            &replica_request(&format!("6f1c2a90-0000-4000-8000-{i:012}"), json!({})),
            &accounts(role_account()),
            &log(),
        );
        let Decision::Mutate { pod, .. } = decision else {
            panic!("expected a mutation, got {decision:?}");
        };
        assert_eq!(
            pod["spec"]["volumes"][0],
            token_volume("sts.amazonaws.com", 86400)
        );
    }
}

#[test]
fn container_credentials_take_precedence_over_the_role() {
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"], "fullUri": "http://127.0.0.1:2703/creds"},
        "roleSessionName": true});
    let pod = mutated(app_pod(), role_account(), settings);
    let names = env_names(container(&pod, "app"));
    assert_eq!(
        names,
        [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
        ]
    );
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_CONTAINER_CREDENTIALS_FULL_URI").unwrap()["value"],
        "http://127.0.0.1:2703/creds"
    );
}

#[test]
fn the_pod_identity_label_goes_in_even_without_metadata() {
    let pod = json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "app"}]}});
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let mutated = mutated(pod, ServiceAccount::default(), settings.clone());
    assert_eq!(
        mutated["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "enabled"
    );
    assert_eq!(
        evaluate(mutated, ServiceAccount::default(), settings),
        Decision::Accept { warnings: vec![] }
    );
}

#[test]
fn unlisted_service_accounts_keep_web_identity() {
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-b/app"]}});
    let pod = mutated(app_pod(), role_account(), settings);
    assert_eq!(
        env_names(container(&pod, "app")),
        ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert!(pod["metadata"].get("labels").is_none());
}

#[test]
fn keeps_the_users_container_credentials_pair_and_pod_identity_label() {
    let mut pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "env": [{"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://mine"}]}]}),
    );
    pod["metadata"]["labels"] = json!({"eks.amazonaws.com/pod-identity": "disabled"});
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let pod = mutated(pod, ServiceAccount::default(), settings);
    assert_eq!(
        container(&pod, "app")["env"],
        json!([{"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://mine"}])
    );
    assert_eq!(
        pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "disabled"
    );
}
