//! What a pod gets (docs/behaviour.md).

use crate::common::*;

#[test]
fn injects_token_volume_mount_and_identity_env() {
    let pod = mutated(app_pod(), role_account(), json!({}));
    assert_eq!(
        pod["spec"]["volumes"],
        json!([token_volume("sts.amazonaws.com", 86400)])
    );
    let app = container(&pod, "app");
    assert_eq!(app["volumeMounts"], json!([token_mount()]));
    assert_eq!(
        app["env"],
        json!([{"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}])
    );
}

#[test]
fn injects_into_every_container_init_container_and_native_sidecar() {
    let pod = pod_with(json!({"serviceAccountName": "app",
        "initContainers": [{"name": "migrate"}, {"name": "proxy", "restartPolicy": "Always"}],
        "containers": [{"name": "app"}, {"name": "worker"}]}));
    let pod = mutated(pod, role_account(), json!({}));
    for name in ["migrate", "proxy", "app", "worker"] {
        let c = container(&pod, name);
        assert_eq!(c["volumeMounts"], json!([token_mount()]), "{name}");
        assert_eq!(
            env_names(c),
            ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"],
            "{name}"
        );
    }
    assert_eq!(container(&pod, "proxy")["restartPolicy"], "Always");
}

#[test]
fn appends_env_and_mounts_after_the_users_own() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app",
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "emptyDir": {}}]}),
    );
    let pod = mutated(pod, role_account(), json!({}));
    let app = container(&pod, "app");
    assert_eq!(
        env_names(app),
        ["LOG_LEVEL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert_eq!(app["volumeMounts"][0]["name"], "data");
    assert_eq!(app["volumeMounts"][1], token_mount());
    assert_eq!(pod["spec"]["volumes"][0]["name"], "data");
    assert_eq!(
        pod["spec"]["volumes"][1],
        token_volume("sts.amazonaws.com", 86400)
    );
}

#[test]
fn env_order_follows_the_official_webhook() {
    let settings = json!({"awsDefaultRegion": "eu-west-1", "stsRegionalEndpoints": true, "roleSessionName": true});
    let pod = mutated(app_pod(), role_account(), settings);
    let app = container(&pod, "app");
    assert_eq!(
        env_names(app),
        [
            "AWS_STS_REGIONAL_ENDPOINTS",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_SESSION_NAME"
        ]
    );
    assert_eq!(
        env_value(app, "AWS_STS_REGIONAL_ENDPOINTS").unwrap()["value"],
        "regional"
    );
    assert_eq!(
        env_value(app, "AWS_DEFAULT_REGION").unwrap()["value"],
        "eu-west-1"
    );
    assert_eq!(env_value(app, "AWS_REGION").unwrap()["value"], "eu-west-1");
}

#[test]
fn no_region_env_without_a_region_setting() {
    let pod = mutated(app_pod(), role_account(), json!({}));
    let names = env_names(container(&pod, "app"));
    assert!(!names.contains(&"AWS_REGION") && !names.contains(&"AWS_DEFAULT_REGION"));
    assert!(!names.contains(&"AWS_STS_REGIONAL_ENDPOINTS"));
    assert!(!names.contains(&"AWS_ROLE_SESSION_NAME"));
}

#[test]
fn role_session_name_comes_from_the_downward_api() {
    let pod = pod_with(json!({"serviceAccountName": "app", "containers": [{"name": "app"}]}));
    let mut pod = pod;
    pod["metadata"] = json!({"generateName": "web-7d9f5c-", "namespace": "team-a"});
    let pod = mutated(pod, role_account(), json!({"roleSessionName": true}));
    assert_eq!(
        env_value(container(&pod, "app"), "AWS_ROLE_SESSION_NAME").unwrap(),
        &json!({"name": "AWS_ROLE_SESSION_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    );
}

#[test]
fn role_session_name_skipped_when_the_pod_name_is_too_long_for_sts() {
    let mut pod = app_pod();
    pod["metadata"]["name"] = json!("w".repeat(65));
    match evaluate(pod, role_account(), json!({"roleSessionName": true})) {
        Decision::Mutate { pod, warnings } => {
            assert!(env_value(container(&pod, "app"), "AWS_ROLE_SESSION_NAME").is_none());
            assert_eq!(
                warnings,
                ["AWS_ROLE_SESSION_NAME not set: pod name is longer than 64 characters"]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn service_account_audience_sets_the_token_audience() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/audience", "sts.example.com"),
    ]);
    let pod = mutated(
        app_pod(),
        account,
        json!({"tokenAudience": "ignored.example.com"}),
    );
    assert_eq!(
        pod["spec"]["volumes"][0],
        token_volume("sts.example.com", 86400)
    );
}

#[test]
fn token_expiration_pod_annotation_wins_over_service_account_and_settings() {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": "3600"});
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/token-expiration", "7200"),
    ]);
    let pod = mutated(pod, account, json!({"tokenExpirationSeconds": 43200}));
    assert_eq!(
        pod["spec"]["volumes"][0],
        token_volume("sts.amazonaws.com", 3600)
    );
}

#[test]
fn service_account_regional_sts_annotation_wins_over_settings() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/sts-regional-endpoints", "True"),
    ]);
    let pod = mutated(app_pod(), account, json!({"stsRegionalEndpoints": false}));
    assert_eq!(
        env_names(container(&pod, "app"))[0],
        "AWS_STS_REGIONAL_ENDPOINTS"
    );
}

// Go's strconv.ParseBool, as the official webhook reads the annotation
// (its whole set: `reads_booleans_as_go_parse_bool`).
#[rstest]
#[case("t", true)]
#[case("F", false)]
#[case("TRUE", true)]
#[case("0", false)]
fn reads_regional_sts_values_as_go_parse_bool(#[case] value: &str, #[case] regional: bool) {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/sts-regional-endpoints", value),
    ]);
    let pod = mutated(
        app_pod(),
        account,
        json!({"stsRegionalEndpoints": !regional}),
    );
    assert_eq!(
        env_names(container(&pod, "app")).contains(&"AWS_STS_REGIONAL_ENDPOINTS"),
        regional,
        "{value:?}"
    );
}

// Values Go's strconv.ParseBool refuses: the official webhook ignores them,
// the policy refuses them by name.
#[rstest]
#[case("tRuE")]
#[case(" true")]
#[case("true ")]
#[case("yes")]
#[case("")]
fn refuses_regional_sts_values_go_does_not_read(#[case] value: &str) {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/sts-regional-endpoints", value),
    ]);
    let message = rejection(app_pod(), account, json!({}));
    assert!(
        message.contains(&format!(
            "annotation eks.amazonaws.com/sts-regional-endpoints={value:?} is not a boolean"
        )),
        "{message}"
    );
}

// Go's strconv.ParseInt(value, 10, 64), then clamped into 600..86400.
#[rstest]
#[case("+3600", 3600, false)]
#[case("0003600", 3600, false)]
#[case("-60", 600, true)]
#[case("9223372036854775807", 86400, true)]
fn reads_token_expiration_as_go_parse_int(
    #[case] value: &str,
    #[case] seconds: u32,
    #[case] warned: bool,
) {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": value});
    let Decision::Mutate { pod, warnings } = evaluate(pod, role_account(), json!({})) else {
        panic!("expected a mutation for {value:?}");
    };
    assert_eq!(
        pod["spec"]["volumes"][0],
        token_volume("sts.amazonaws.com", seconds)
    );
    assert_eq!(!warnings.is_empty(), warned, "{warnings:?}");
}

#[rstest]
#[case(" 3600")]
#[case("3600 ")]
#[case("1_000")]
#[case("9223372036854775808")]
fn refuses_token_expiration_values_go_does_not_read(#[case] value: &str) {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": value});
    let message = rejection(pod, role_account(), json!({}));
    assert!(
        message.contains(&format!(
            "pod team-a/web: annotation eks.amazonaws.com/token-expiration={value:?} is"
        )),
        "{message}"
    );
}

#[rstest]
#[case("")]
#[case(" ")]
fn an_empty_token_expiration_annotation_means_unset(#[case] empty: &str) {
    let mut pod = app_pod();
    pod["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": empty});
    let account = |expiration: &str| {
        ServiceAccount::with_annotations([
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/token-expiration", expiration),
        ])
    };
    let settings = json!({"tokenExpirationSeconds": 43200});
    // The pod's is empty: the ServiceAccount's applies.
    let with_sa = mutated(pod.clone(), account("7200"), settings.clone());
    assert_eq!(
        with_sa["spec"]["volumes"][0],
        token_volume("sts.amazonaws.com", 7200)
    );
    // Both empty: the setting applies.
    let with_setting = mutated(pod, account(empty), settings);
    assert_eq!(
        with_setting["spec"]["volumes"][0],
        token_volume("sts.amazonaws.com", 43200)
    );
}

#[test]
fn windows_pods_get_the_windows_token_path_and_the_same_mount() {
    for marker in [
        json!({"nodeSelector": {"kubernetes.io/os": "windows"}}),
        json!({"nodeSelector": {"beta.kubernetes.io/os": "windows"}}),
        json!({"os": {"name": "windows"}}),
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms":
            [{"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]}]}}}}),
    ] {
        let mut pod = app_pod();
        pod["spec"]
            .as_object_mut()
            .unwrap()
            .extend(marker.as_object().unwrap().clone());
        let pod = mutated(pod, role_account(), json!({}));
        let app = container(&pod, "app");
        assert_eq!(
            env_value(app, "AWS_WEB_IDENTITY_TOKEN_FILE").unwrap()["value"],
            r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token",
            "{marker}"
        );
        assert_eq!(app["volumeMounts"][0]["mountPath"], MOUNT_PATH);
    }
}

#[test]
fn custom_mount_path_volume_name_and_prefix_from_settings() {
    let settings = json!({"annotationPrefix": "irsa.example.com", "tokenMountPath": "/aws/token-dir",
        "tokenVolumeName": "aws-token", "tokenAudience": "sts.example.com", "tokenExpirationSeconds": 3600});
    let account = ServiceAccount::with_annotations([("irsa.example.com/role-arn", ROLE)]);
    let pod = mutated(app_pod(), account, settings);
    let app = container(&pod, "app");
    assert_eq!(
        app["volumeMounts"][0],
        json!({"name": "aws-token", "mountPath": "/aws/token-dir", "readOnly": true})
    );
    assert_eq!(
        env_value(app, "AWS_WEB_IDENTITY_TOKEN_FILE").unwrap()["value"],
        "/aws/token-dir/token"
    );
    assert_eq!(pod["spec"]["volumes"][0]["name"], "aws-token");
    assert_eq!(
        pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
            ["expirationSeconds"],
        3600
    );
}
