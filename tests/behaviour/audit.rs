//! Audit (docs/behaviour.md).

use crate::common::*;

#[test]
fn audit_passes_a_pod_in_step_with_its_service_account() {
    let source = accounts(role_account());
    let decision = audit(injected_pod(role_account(), json!({})), &source, json!({}));
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    // One ServiceAccount read, as for an admission.
    assert_eq!(source.lookups(), 1);
    // A pod without a role, and a ServiceAccount without one: in step too.
    let plain = accounts(ServiceAccount::default());
    let decision = audit(app_pod(), &plain, json!({}));
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
}

#[test]
fn audit_reports_a_pod_created_before_its_role_was_set() {
    let pod = deployment_pod(app_pod());
    let (finding, remedy) = audit_finding(pod.clone(), role_account(), json!({}));
    assert_eq!(finding, Finding::NoCredentials { gives: ROLE.into() });
    assert!(
        remedy.ends_with("rollout restart deployment/web"),
        "{remedy}"
    );
    // The same pod as a real CREATE is injected, as always.
    assert!(matches!(
        evaluate(pod, role_account(), json!({})),
        Decision::Mutate { .. }
    ));
}

#[test]
fn audit_reports_a_pod_whose_role_changed() {
    let pod = injected_pod(role_account(), json!({}));
    let now = "arn:aws:iam::123456789012:role/app-v2";
    let (finding, remedy) = audit_finding(
        pod.clone(),
        ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", now)]),
        json!({}),
    );
    assert_eq!(
        finding,
        Finding::RoleChanged {
            carried: ROLE.into(),
            now: now.into()
        }
    );
    // A bare pod: re-created by hand.
    assert!(remedy.contains("delete pod web"), "{remedy}");
    // As a real CREATE the pod already has its credentials: left as it is.
    assert!(matches!(
        evaluate(pod, role_account(), json!({})),
        Decision::Accept { .. }
    ));
}

#[test]
fn audit_reports_credentials_the_service_account_no_longer_grants() {
    let pod = injected_pod(role_account(), json!({}));
    let (finding, _) = audit_finding(pod.clone(), ServiceAccount::default(), json!({}));
    assert_eq!(
        finding,
        Finding::NoLongerGranted {
            carried: carries_role(ROLE),
            gone: false
        }
    );
    // A ServiceAccount deleted since.
    let gone = InMemoryServiceAccounts::default();
    assert!(matches!(
        audit(pod.clone(), &gone, json!({})),
        Decision::Reject(PolicyError::OutOfStep { finding, .. })
            if matches!(*finding, Finding::NoLongerGranted { gone: true, .. })
    ));
    assert!(matches!(
        evaluate(pod, ServiceAccount::default(), json!({})),
        Decision::Accept { .. }
    ));
}

#[test]
fn audit_reports_credentials_the_guardrails_now_refuse() {
    let pod = injected_pod(role_account(), json!({}));
    let settings = json!({"allowedAccounts": ["444455556666"]});
    let (finding, _) = audit_finding(pod.clone(), role_account(), settings.clone());
    // The refusal is the one a pod created now gets.
    let Decision::Reject(refused) = evaluate(pod, role_account(), settings) else {
        panic!("a pod created now is refused")
    };
    assert!(
        matches!(refused, PolicyError::RoleNotAllowed { .. }),
        "{refused:?}"
    );
    assert_eq!(
        finding,
        Finding::Refused {
            carried: Some(carries_role(ROLE)),
            refusal: Box::new(refused)
        }
    );
}

#[test]
fn audit_reports_a_token_volume_for_another_audience() {
    let pod = injected_pod(role_account(), json!({}));
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/audience", "sts.example.com"),
    ]);
    let (finding, _) = audit_finding(pod, account, json!({}));
    assert_eq!(finding, token_now_for("sts.example.com"));
}

#[test]
fn only_a_request_whose_uid_is_the_pods_own_is_an_audit() {
    // A pod that somehow carries a uid, in a request with the API server's own
    // uid, is a real CREATE: injected, never audited.
    let mut pod = app_pod();
    pod["metadata"]["uid"] = json!(POD_UID);
    assert!(matches!(
        evaluate(pod, role_account(), json!({})),
        Decision::Mutate { .. }
    ));
}

#[test]
fn audit_passes_a_pod_that_opted_out() {
    let mut pod = app_pod();
    pod["metadata"]["labels"] = json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"});
    assert_passes_without_a_lookup(pod);
}

#[test]
fn audit_passes_a_pod_whose_annotations_select_no_container() {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "app"});
    let source = accounts(role_account());
    assert_eq!(
        audit(pod.clone(), &source, json!({})),
        Decision::Accept { warnings: vec![] }
    );
    // At creation it got nothing either.
    assert!(matches!(
        evaluate(pod, role_account(), json!({})),
        Decision::Accept { .. }
    ));
}

#[rstest]
// A container with its own role (and no token file), beside one that got the policy's.
#[case(json!([{"name": "app", "env": [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::999999999999:role/own"}]},
              {"name": "other"}]), json!(null))]
// A native sidecar listed first, with its own pair, pointing at the policy's token.
#[case(json!([{"name": "app"}]), json!([{"name": "proxy", "restartPolicy": "Always", "env": [
    {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::999999999999:role/proxy"},
    {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE},
    {"name": "HTTP_PORT", "value": "8080"}]}]))]
fn audit_passes_a_pod_whose_container_keeps_its_own_role(
    #[case] containers: Value,
    #[case] init_containers: Value,
) {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": containers,
        "initContainers": init_containers}),
    );
    let admitted = mutated(pod, role_account(), json!({}));
    assert_eq!(
        audit(
            deployment_pod(admitted),
            &accounts(role_account()),
            json!({})
        ),
        Decision::Accept { warnings: vec![] }
    );
}

#[rstest]
// A Vault token, mounted where Vault's agent reads it.
#[case(json!({"audience": "vault", "path": "token"}), "/var/run/secrets/vault", json!(null))]
// Another token file in a volume of the policy's name, at the policy's path.
#[case(json!({"audience": "sts.amazonaws.com", "path": "jwt"}), MOUNT_PATH,
       json!([{"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/jwt"}]))]
// The policy's token at another mount path.
#[case(json!({"audience": "sts.amazonaws.com", "path": "token"}), "/aws",
       json!([{"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/aws/token"}]))]
// The pair as the policy writes it, then a variable the policy writes before it.
#[case(json!({"audience": "sts.amazonaws.com", "path": "token"}), MOUNT_PATH,
       json!([{"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}, {"name": "AWS_REGION", "value": "eu-west-1"}]))]
// The policy's volume and mount, but no variables of the policy's.
#[case(json!({"audience": "sts.amazonaws.com", "path": "token"}), MOUNT_PATH, json!(null))]
fn audit_passes_credentials_the_policy_never_wrote(
    #[case] token: Value,
    #[case] mount_path: &str,
    #[case] env: Value,
) {
    let pod = pod_with(json!({"serviceAccountName": "app",
        "containers": [{"name": "app", "env": env,
            "volumeMounts": [{"name": "aws-iam-token", "mountPath": mount_path}]}],
        "volumes": [{"name": "aws-iam-token", "projected": {"defaultMode": 420,
            "sources": [{"serviceAccountToken": token}]}}]}));
    // Admission lets such a pod through as it is; so does the audit.
    assert!(matches!(
        evaluate(pod.clone(), ServiceAccount::default(), json!({})),
        Decision::Accept { .. }
    ));
    assert_eq!(
        audit(
            deployment_pod(pod),
            &accounts(ServiceAccount::default()),
            json!({})
        ),
        Decision::Accept { warnings: vec![] }
    );
}

#[rstest]
#[case("Succeeded")]
#[case("Failed")]
fn audit_passes_a_finished_pod_without_a_lookup(#[case] phase: &str) {
    let mut pod = app_pod();
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "backup-29433000", "controller": true}]);
    pod["status"] = json!({"phase": phase});
    assert_passes_without_a_lookup(pod);
}

#[test]
fn audit_says_to_fix_the_guardrails_before_a_restart() {
    let settings = json!({"allowedAccounts": ["444455556666"]});
    // With credentials for the role now refused, and without any: either way
    // a restart is refused until the role or the guardrails change.
    for (pod, carried) in [
        (
            injected_pod(role_account(), json!({})),
            Some(carries_role(ROLE)),
        ),
        (app_pod(), None),
    ] {
        let (finding, remedy) =
            audit_finding(deployment_pod(pod), role_account(), settings.clone());
        assert!(
            matches!(&finding, Finding::Refused { carried: c, refusal }
                if *c == carried && matches!(**refusal, PolicyError::RoleNotAllowed { .. })),
            "{finding:?}"
        );
        let first = finding.first_step().expect("what to fix first");
        assert!(first.contains("the guardrails"), "{first}");
        assert!(remedy.starts_with(first), "{remedy}");
        assert!(
            remedy.ends_with("rollout restart deployment/web"),
            "{remedy}"
        );
    }
}

#[test]
fn audit_says_to_fix_a_service_account_annotation_that_refuses_new_pods() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/token-expiration", "soon"),
    ]);
    let (finding, remedy) = audit_finding(deployment_pod(app_pod()), account, json!({}));
    assert!(
        matches!(&finding, Finding::Refused { carried: None, refusal }
            if matches!(&**refusal, PolicyError::InvalidAnnotation { key, .. } if key == "eks.amazonaws.com/token-expiration")),
        "{finding:?}"
    );
    let first = finding.first_step().unwrap();
    assert!(first.starts_with("fix the ServiceAccount first"), "{first}");
    assert!(remedy.starts_with(first), "{remedy}");
}

#[rstest]
// Another volume mounted where the token goes.
#[case(json!({"serviceAccountName": "app",
    "containers": [{"name": "app", "volumeMounts": [{"name": "creds", "mountPath": MOUNT_PATH}]}],
    "volumes": [{"name": "creds", "emptyDir": {}}]}))]
// A volume of the token's name that is not a token.
#[case(json!({"serviceAccountName": "app", "containers": [{"name": "app"}],
    "volumes": [{"name": "aws-iam-token", "emptyDir": {}}]}))]
// A projected volume of a token and a ConfigMap at the token path: not one the
// policy ever adds (a single token), so the template has it.
#[case(json!({"serviceAccountName": "app",
    "containers": [{"name": "app", "volumeMounts": [{"name": "creds", "mountPath": MOUNT_PATH}]}],
    "volumes": [{"name": "creds", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "vault", "path": "token"}},
        {"configMap": {"name": "vault-ca"}}]}}]}))]
fn audit_reports_why_a_pod_created_now_would_be_refused(#[case] spec: Value) {
    let pod = deployment_pod(pod_with(spec));
    let (finding, remedy) = audit_finding(pod.clone(), role_account(), json!({}));
    // The refusal is the one a pod created so gets, container and path named.
    let Decision::Reject(refused) = evaluate(pod, role_account(), json!({})) else {
        panic!("a pod created now is refused")
    };
    assert!(
        matches!(
            refused,
            PolicyError::MountPathTaken { .. } | PolicyError::ForeignTokenVolume { .. }
        ),
        "{refused:?}"
    );
    assert_eq!(
        finding,
        Finding::WouldBeRefused {
            refusal: Box::new(refused)
        }
    );
    assert!(
        remedy.starts_with(finding.first_step().unwrap()),
        "{remedy}"
    );
    assert!(
        remedy.ends_with("rollout restart deployment/web"),
        "{remedy}"
    );
}

#[test]
fn audit_reports_web_identity_credentials_where_pod_identity_is_given_now() {
    let pod = injected_pod(role_account(), json!({}));
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let (finding, _) = audit_finding(deployment_pod(pod), role_account(), settings);
    assert_eq!(
        finding,
        Finding::KindChanged {
            carried: carries_role(ROLE),
            now: POD_IDENTITY.into()
        }
    );
}

#[test]
fn audit_reports_pod_identity_credentials_where_a_role_is_given_now() {
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let pod = injected_pod(ServiceAccount::default(), settings);
    let (finding, _) = audit_finding(deployment_pod(pod.clone()), role_account(), json!({}));
    assert_eq!(
        finding,
        Finding::KindChanged {
            carried: POD_IDENTITY.into(),
            now: ROLE.into()
        }
    );
    // Not covered by containerCredentials any more, and no role.
    let (finding, _) = audit_finding(deployment_pod(pod), ServiceAccount::default(), json!({}));
    assert_eq!(
        finding,
        Finding::NoLongerGranted {
            carried: POD_IDENTITY.into(),
            gone: false
        }
    );
}

#[test]
fn audit_reports_what_a_pod_created_now_also_gets() {
    let pod = injected_pod(role_account(), json!({}));
    let (finding, _) = audit_finding(
        deployment_pod(pod),
        role_account(),
        json!({"awsDefaultRegion": "eu-west-1"}),
    );
    assert_eq!(
        finding,
        Finding::Lacks {
            items: vec!["container \"app\": AWS_DEFAULT_REGION, AWS_REGION".into()]
        }
    );
}

#[test]
fn audit_reports_the_mount_and_variables_of_a_pod_that_has_only_the_volume() {
    // The token volume (its author's, identical to the policy's), and nothing in
    // the container: not "no credentials" but what a pod created now also gets.
    let mut pod = app_pod();
    pod["spec"]["volumes"] = json!([token_volume("sts.amazonaws.com", 86_400)]);
    let (finding, _) = audit_finding(deployment_pod(pod), role_account(), json!({}));
    assert_eq!(
        finding,
        Finding::Lacks {
            items: vec![format!(
                "container \"app\": the mount of \"aws-iam-token\", AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE"
            )]
        }
    );
}

#[rstest]
// tokenMountPath changed: the token the policy added is mounted at the old path.
#[case(json!({}), json!({"tokenMountPath": "/var/run/secrets/aws"}), json!([{"name": "app"}]))]
// tokenVolumeName changed: another volume's name at the token path.
#[case(json!({}), json!({"tokenVolumeName": "aws-token"}), json!([{"name": "app"}]))]
fn audit_names_a_restart_not_a_template_change_after_the_token_settings_changed(
    #[case] before: Value,
    #[case] after: Value,
    #[case] containers: Value,
) {
    let pod = mutated(
        pod_with(json!({"serviceAccountName": "app", "containers": containers})),
        role_account(),
        before,
    );
    let (finding, remedy) = audit_finding(deployment_pod(pod), role_account(), after);
    // The template has none of what the policy added then: a restart is enough.
    assert!(matches!(finding, Finding::Lacks { .. }), "{finding:?}");
    assert_eq!(finding.first_step(), None);
    assert!(remedy.starts_with("restart its Deployment"), "{remedy}");
}

#[test]
fn audit_reports_the_audience_of_a_token_the_policy_added_to_a_container_with_its_own_role() {
    let own = json!([{"name": "app", "env": [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::999999999999:role/own"}]}]);
    let pod = mutated(
        pod_with(json!({"serviceAccountName": "app", "containers": own})),
        role_account(),
        json!({}),
    );
    let (finding, _) = audit_finding(
        deployment_pod(pod),
        role_account(),
        json!({"tokenAudience": "sts.example.com"}),
    );
    assert_eq!(finding, token_now_for("sts.example.com"));
}

#[test]
fn audit_reads_only_the_containers_its_annotations_select() {
    // The sidecar is skipped: its own pair, even with today's role, says
    // nothing of what the policy wrote into the app container.
    let old = "arn:aws:iam::123456789012:role/app-v1";
    let mut pod = pod_with(json!({"serviceAccountName": "app", "containers": [
        {"name": "app"},
        {"name": "sidecar", "env": [{"name": "AWS_ROLE_ARN", "value": ROLE},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}],
         "volumeMounts": [token_mount()]}]}));
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "sidecar"});
    pod["spec"]["volumes"] = json!([token_volume("sts.amazonaws.com", 86_400)]);
    let old_account = ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", old)]);
    let injected = mutated(pod, old_account, json!({}));
    let (finding, _) = audit_finding(deployment_pod(injected), role_account(), json!({}));
    assert_eq!(
        finding,
        Finding::RoleChanged {
            carried: old.into(),
            now: ROLE.into()
        }
    );
}

#[test]
fn audit_says_to_fix_the_pods_template_when_its_own_annotation_is_refused() {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": "1h"});
    let (finding, remedy) = audit_finding(deployment_pod(pod), role_account(), json!({}));
    assert!(
        matches!(&finding, Finding::Refused { carried: None, refusal }
            if matches!(&**refusal, PolicyError::InvalidAnnotation { object, .. } if object.starts_with("pod "))),
        "{finding:?}"
    );
    let first = finding.first_step().unwrap();
    assert!(first.contains("the pod's template"), "{first}");
    assert!(remedy.starts_with(first), "{remedy}");
}

/// The finding for a pod carrying the policy's token for STS's default
/// audience when a pod created now gets one for `audience`.
fn token_now_for(audience: &str) -> Finding {
    Finding::AudienceChanged {
        volume: "aws-iam-token".into(),
        carried: "sts.amazonaws.com".into(),
        now: audience.into(),
    }
}

/// The audit accepts `pod` without reading its ServiceAccount (which has a role).
fn assert_passes_without_a_lookup(pod: Value) {
    let source = accounts(role_account());
    assert_eq!(
        audit(pod, &source, json!({})),
        Decision::Accept { warnings: vec![] }
    );
    assert_eq!(source.lookups(), 0);
}

#[test]
fn audit_of_a_pod_with_a_container_that_is_not_an_object_does_not_panic() {
    // The first container's mount conflicts, so the audit looks for the pod's
    // template; the second container is a string, which indexing would panic on.
    let pod = deployment_pod(pod_with(json!({"serviceAccountName": "app",
        "containers": [{"name": "app", "volumeMounts": [{"name": "creds", "mountPath": MOUNT_PATH}]}, "junk"],
        "volumes": [{"name": "creds", "emptyDir": {}}]})));
    let decision = audit(pod, &accounts(role_account()), json!({}));
    let Decision::Reject(refused) = decision else {
        panic!("a pod created so is refused, and so is the audit: {decision:?}")
    };
    assert!(
        matches!(
            refused,
            PolicyError::OutOfStep { .. } | PolicyError::PodShape { .. }
        ),
        "{refused:?}"
    );
}

#[test]
fn audit_reports_what_a_pod_gets_when_only_the_token_file_changed() {
    // The policy's token under another file name, same audience: not an
    // audience change, but a pod created now gets another token.
    let mut pod = injected_pod(role_account(), json!({}));
    pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["path"] =
        json!("jwt");
    let (finding, _) = audit_finding(deployment_pod(pod), role_account(), json!({}));
    assert!(matches!(finding, Finding::Lacks { .. }), "{finding:?}");
}
