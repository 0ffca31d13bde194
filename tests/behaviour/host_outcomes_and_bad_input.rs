//! Host outcomes and bad input (docs/behaviour.md).

use crate::common::*;

#[test]
fn leaves_the_pod_unchanged_when_the_service_account_is_not_found() {
    let source = InMemoryServiceAccounts::default();
    let decision = review(&request("CREATE", app_pod(), json!({})), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 1);
}

#[test]
fn a_forbidden_lookup_is_refused_with_the_rbac_grant_first() {
    let (kind, message) = lookup_rejection(&host_error_of_case("reject-host-forbidden"));
    assert_eq!(kind, FailureKind::Forbidden);
    assert!(
        message.ends_with("Host error: ApiError: serviceaccounts \"app\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\": Forbidden"),
        "{message}"
    );
    // The chain repeats the API server's message three times; it is said once.
    assert_eq!(message.matches("is forbidden").count(), 1, "{message}");
}

#[test]
fn an_unreachable_api_server_is_refused_as_retryable_without_rbac_advice() {
    let (kind, message) = lookup_rejection(&host_error_of_case("reject-api-server-unreachable"));
    assert_eq!(kind, FailureKind::Unreachable);
    assert!(
        message.ends_with(
            "Host error: ServiceError: client error (Connect): tcp connect error: Connection \
             refused (os error 111)"
        ),
        "{message}"
    );
    assert!(!message.contains("grant"), "{message}");
}

#[test]
fn a_host_backtrace_is_dropped_and_the_advice_kept() {
    let host_text = host_error_of_case("reject-host-error-with-backtrace");
    assert!(host_text.len() > 2 * irsa_policy::error::MAX_MESSAGE);
    let (kind, message) = lookup_rejection(&host_text);
    assert_eq!(kind, FailureKind::Forbidden);
    assert_eq!(
        message,
        lookup_rejection(&host_error_of_case("reject-host-forbidden")).1
    );
    assert!(!message.contains("backtrace"), "{message}");
}

#[test]
fn rejects_with_what_to_declare_when_the_host_refuses_service_accounts() {
    let (kind, message) =
        lookup_rejection(&host_error_of_case("reject-context-aware-not-declared"));
    assert_eq!(kind, FailureKind::NotDeclared);
    assert!(
        message.ends_with(
            "Host error: Policy has not been granted access to Kubernetes v1/ServiceAccount \
             resources. The violation has been reported"
        ),
        "{message}"
    );
}

#[test]
fn any_other_lookup_failure_is_refused_with_its_first_line() {
    let (kind, message) = lookup_rejection(
        "Host error: Callback evaluation failure: ApiError: Unauthorized: Unauthorized \
         (ErrorResponse { status: \"Failure\", message: \"Unauthorized\", reason: \
         \"Unauthorized\", code: 401 })\n\nCaused by:\n    Unauthorized: Unauthorized",
    );
    assert_eq!(kind, FailureKind::Other);
    assert!(
        message.ends_with("Host error: ApiError: Unauthorized: Unauthorized"),
        "{message}"
    );
}

#[rstest]
#[case(json!({"spec": {"serviceAccountName": "app", "containers": {"name": "app"}}}), "spec.containers must be a list, found an object")]
#[case(json!({"spec": {"serviceAccountName": "app", "containers": ["app"]}}), "spec.containers[0] must be an object, found string \"app\"")]
#[case(json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "app", "env": "A=1"}]}}), "spec.containers[0].env must be a list")]
#[case(json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "app", "env": [{"value": "x"}]}]}}), "spec.containers[0].env[0].name is missing; it must be a string")]
#[case(json!({"spec": {"serviceAccountName": "app", "initContainers": [{"name": "i", "volumeMounts": [{"name": "x"}]}]}}), "spec.initContainers[0].volumeMounts[0].mountPath is missing; it must be a string")]
#[case(json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": null}]}]}}), "spec.containers[0].volumeMounts[0].mountPath must be a string, found null")]
#[case(json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "app"}], "volumes": {}}}), "spec.volumes must be a list")]
#[case(json!({"spec": {"serviceAccountName": "app", "containers": [{"name": 5}]}}), "spec.containers[0].name must be a string, found number 5")]
fn rejects_a_malformed_pod_naming_the_field(#[case] pod: Value, #[case] message: &str) {
    let actual = rejection(pod, role_account(), json!({}));
    assert!(
        actual.contains(message),
        "{actual:?} should contain {message:?}"
    );
}

#[test]
fn rejects_invalid_settings_naming_the_setting() {
    let message = rejection(
        app_pod(),
        role_account(),
        json!({"tokenExpirationSeconds": 60}),
    );
    assert_eq!(
        message,
        "invalid setting tokenExpirationSeconds = 60: must be between 600 and 86400 seconds"
    );
}

#[test]
fn rejects_a_malformed_request_naming_the_path() {
    let decision = review(
        br#"{"request": {"operation": ["CREATE"]}, "settings": {}}"#,
        &accounts(role_account()),
        &log(),
    );
    let Decision::Reject(error) = decision else {
        panic!("{decision:?}")
    };
    assert!(
        error.to_string().starts_with(
            "cannot read the admission request: request.operation: invalid type: sequence"
        ),
        "{error}"
    );
}

#[test]
fn null_lists_are_treated_as_empty() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "volumes": null, "initContainers": null,
        "containers": [{"name": "app", "env": null, "volumeMounts": null}]}),
    );
    let pod = mutated(pod, role_account(), json!({}));
    assert_eq!(
        container(&pod, "app")["volumeMounts"],
        json!([token_mount()])
    );
    assert_eq!(pod["spec"]["volumes"][0]["name"], "aws-iam-token");
}
