//! The behaviour table of docs/behaviour.md, one test per row, run natively against the
//! same `review` that `policy.wasm` runs, with ServiceAccounts held in
//! memory instead of read through the host.

use irsa_policy::decision::Decision;
use irsa_policy::lookup::{InMemoryServiceAccounts, ServiceAccount};
use irsa_policy::review;
use rstest::rstest;
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/app";
const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

fn log() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn request(operation: &str, pod: Value, settings: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation,
            "namespace": "team-a",
            "userInfo": {"username": "alice"},
            "object": pod,
        },
        "settings": settings,
    }))
    .unwrap()
}

fn pod_with(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team-a"}, "spec": spec})
}

fn app_pod() -> Value {
    pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app", "image": "app:1"}]}),
    )
}

fn role_account() -> ServiceAccount {
    ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", ROLE)])
}

fn accounts(account: ServiceAccount) -> InMemoryServiceAccounts {
    InMemoryServiceAccounts::default().with("team-a", "app", account)
}

fn evaluate(pod: Value, account: ServiceAccount, settings: Value) -> Decision {
    review(
        &request("CREATE", pod, settings),
        &accounts(account),
        &log(),
    )
}

fn mutated(pod: Value, account: ServiceAccount, settings: Value) -> Value {
    match evaluate(pod, account, settings) {
        Decision::Mutate { pod, .. } => pod,
        other => panic!("expected a mutation, got {other:?}"),
    }
}

fn rejection(pod: Value, account: ServiceAccount, settings: Value) -> String {
    match evaluate(pod, account, settings) {
        Decision::Reject(error) => error.to_string(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| pod["spec"][list].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn env_names(container: &Value) -> Vec<&str> {
    container["env"]
        .as_array()
        .map(|env| env.iter().map(|v| v["name"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

fn token_mount() -> Value {
    json!({"name": "aws-iam-token", "mountPath": MOUNT_PATH, "readOnly": true})
}

fn token_volume(audience: &str, seconds: u32) -> Value {
    json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken":
        {"audience": audience, "expirationSeconds": seconds, "path": "token"}}]}})
}

// -- What a pod gets ---------------------------------------------------------

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

// -- User values win ---------------------------------------------------------

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

// -- Which containers --------------------------------------------------------

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

// -- When nothing happens ----------------------------------------------------

#[test]
fn leaves_the_pod_unchanged_when_the_service_account_has_no_role() {
    let account = ServiceAccount::with_annotations([("team", "a")]);
    assert_eq!(
        evaluate(app_pod(), account, json!({})),
        Decision::Accept { warnings: vec![] }
    );
}

#[test]
fn leaves_the_pod_unchanged_when_the_service_account_is_not_found() {
    let source = InMemoryServiceAccounts::default();
    let decision = review(&request("CREATE", app_pod(), json!({})), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 1);
}

#[rstest]
#[case(json!({"containers": [{"name": "app"}]}))]
#[case(json!({"serviceAccountName": "", "containers": [{"name": "app"}]}))]
#[case(json!({"serviceAccountName": null, "serviceAccount": "", "containers": [{"name": "app"}]}))]
fn reads_the_default_service_account_when_the_pod_names_none(#[case] spec: Value) {
    let source = InMemoryServiceAccounts::default().with("team-a", "default", role_account());
    let decision = review(
        &request("CREATE", pod_with(spec), json!({})),
        &source,
        &log(),
    );
    assert!(matches!(decision, Decision::Mutate { .. }), "{decision:?}");
}

#[test]
fn reads_the_deprecated_service_account_field_when_the_name_is_empty() {
    let pod = pod_with(
        json!({"serviceAccountName": "", "serviceAccount": "app", "containers": [{"name": "app"}]}),
    );
    let source = InMemoryServiceAccounts::default().with("team-a", "app", role_account());
    let decision = review(&request("CREATE", pod, json!({})), &source, &log());
    assert!(matches!(decision, Decision::Mutate { .. }), "{decision:?}");
}

#[test]
fn a_volume_without_a_name_is_left_for_the_api_server_to_judge() {
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app"}],
        "volumes": [{"emptyDir": {}}]}),
    );
    let pod = mutated(pod, role_account(), json!({}));
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    assert_eq!(volumes[0], json!({"emptyDir": {}}));
    assert_eq!(volumes[1]["name"], "aws-iam-token");
}

#[rstest]
#[case("true")]
#[case("")]
#[case("false")]
fn a_pod_labelled_skip_pod_identity_webhook_is_left_unchanged_without_a_host_call(
    #[case] value: &str,
    #[values(json!({}), json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}}))]
    settings: Value,
) {
    let mut pod = app_pod();
    pod["metadata"]["labels"] =
        json!({"app": "web", "eks.amazonaws.com/skip-pod-identity-webhook": value});
    let source = accounts(role_account());
    let decision = review(&request("CREATE", pod, settings), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn a_pod_opted_out_is_left_unchanged_when_ephemeral_containers_are_added() {
    let (mut pod, mut old) = running_pod(json!([{"name": "debugger"}]));
    for pod in [&mut pod, &mut old] {
        pod["metadata"]["labels"] = json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"});
    }
    let payload = ephemeral_payload(pod, old, json!({"ephemeralContainers": true}));
    let source = accounts(role_account());
    let decision = review(&payload, &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[rstest]
#[case("UPDATE")]
#[case("DELETE")]
#[case("CONNECT")]
fn accepts_other_operations_without_a_host_call(
    #[case] operation: &str,
    #[values(json!({}), json!({"ephemeralContainers": true}))] settings: Value,
) {
    let source = accounts(role_account());
    let decision = review(&request(operation, app_pod(), settings), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn accepts_other_kinds_without_a_host_call() {
    let mut payload: Value =
        serde_json::from_slice(&request("CREATE", app_pod(), json!({}))).unwrap();
    payload["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let source = accounts(role_account());
    let decision = review(&serde_json::to_vec(&payload).unwrap(), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn one_lookup_per_pod_creation() {
    let source = accounts(role_account());
    review(&request("CREATE", app_pod(), json!({})), &source, &log());
    assert_eq!(source.lookups(), 1);
}

// -- Idempotence and reuse ---------------------------------------------------

#[test]
fn running_on_its_own_output_changes_nothing() {
    let settings = json!({"awsDefaultRegion": "eu-west-1", "stsRegionalEndpoints": true, "roleSessionName": true});
    let pod = pod_with(json!({"serviceAccountName": "app",
        "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
        "containers": [{"name": "app"}, {"name": "worker", "env": [{"name": "A", "value": "1"}]}]}));
    let once = mutated(pod, role_account(), settings.clone());
    assert_eq!(
        evaluate(once, role_account(), settings),
        Decision::Accept { warnings: vec![] }
    );
}

#[test]
fn reuses_an_identical_volume_and_mount() {
    let pod = pod_with(json!({"serviceAccountName": "app",
        "containers": [{"name": "app", "volumeMounts": [token_mount()]}, {"name": "worker"}],
        "volumes": [token_volume("sts.amazonaws.com", 3600)]}));
    let pod = mutated(pod, role_account(), json!({}));
    assert_eq!(
        pod["spec"]["volumes"],
        json!([token_volume("sts.amazonaws.com", 3600)])
    );
    assert_eq!(
        container(&pod, "app")["volumeMounts"],
        json!([token_mount()])
    );
    assert_eq!(
        container(&pod, "worker")["volumeMounts"],
        json!([token_mount()])
    );
}

// -- Conflicts are errors ----------------------------------------------------

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

// -- Lossless ----------------------------------------------------------------

#[test]
fn keeps_every_field_it_does_not_touch_including_unknown_ones() {
    let original = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}, "futureMeta": {"x": [1, 2.5, null]}},
        "spec": {"serviceAccountName": "app", "futureField": {"nested": true},
            "initContainers": [{"name": "proxy", "restartPolicy": "Always", "resizePolicy": [{"resourceName": "cpu"}]}],
            "containers": [{"name": "app", "image": "app:1", "futureContainerField": "kept",
                "env": [{"name": "A", "value": "1"}], "volumeMounts": [{"name": "data", "mountPath": "/data", "recursiveReadOnly": "Enabled"}]}],
            "volumes": [{"name": "data", "image": {"reference": "data:1"}}]},
        "status": {}});
    let pod = mutated(original.clone(), role_account(), json!({}));
    assert_eq!(pod["spec"]["futureField"], original["spec"]["futureField"]);
    assert_eq!(pod["metadata"], original["metadata"]);
    assert_eq!(pod["status"], original["status"]);
    let proxy = container(&pod, "proxy");
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(
        proxy["resizePolicy"],
        original["spec"]["initContainers"][0]["resizePolicy"]
    );
    let app = container(&pod, "app");
    assert_eq!(app["futureContainerField"], "kept");
    assert_eq!(
        app["volumeMounts"][0],
        original["spec"]["containers"][0]["volumeMounts"][0]
    );
    assert_eq!(pod["spec"]["volumes"][0], original["spec"]["volumes"][0]);
    // Remove what the policy appended: what is left is the original.
    let mut stripped = pod.clone();
    for list in ["initContainers", "containers"] {
        for c in stripped["spec"][list].as_array_mut().unwrap() {
            let c = c.as_object_mut().unwrap();
            for field in ["env", "volumeMounts"] {
                let items = c[field].as_array_mut().unwrap();
                items.retain(|item| {
                    !item["name"].as_str().unwrap().starts_with("AWS_")
                        && item["name"] != "aws-iam-token"
                });
                if items.is_empty() {
                    c.remove(field);
                }
            }
        }
    }
    stripped["spec"]["volumes"].as_array_mut().unwrap().pop();
    assert_eq!(stripped, original);
}

#[test]
fn a_rejection_carries_no_mutated_pod() {
    // The first container could be mutated; the second conflicts: nothing is changed.
    let pod = pod_with(
        json!({"serviceAccountName": "app", "containers": [{"name": "app"},
        {"name": "istio-proxy", "volumeMounts": [{"name": "istio-token", "mountPath": MOUNT_PATH}]}]}),
    );
    assert!(matches!(
        evaluate(pod, role_account(), json!({})),
        Decision::Reject(_)
    ));
}

// -- Host outcomes and bad input ---------------------------------------------

/// The error text of an e2e case's host session, as the policy receives it
/// through the SDK and waPC: the shapes policy-server really sends.
fn host_error_of_case(case: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("e2e-tests/cases")
        .join(case)
        .join("session.yml");
    let session: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let text = session[0]["response"]["message"].as_str().unwrap();
    format!("error invoking host capability kubernetes.get_resource: Host error: {text}")
}

/// The rejection of a pod whose ServiceAccount lookup fails with `host_text`.
fn lookup_rejection(host_text: &str) -> String {
    let source = InMemoryServiceAccounts::default().failing("team-a", "app", host_text);
    let decision = review(&request("CREATE", app_pod(), json!({})), &source, &log());
    let Decision::Reject(error) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(error.code(), 500);
    let message = error.to_string();
    // Whole, so the API server shows the advice and the host's reason uncut.
    assert!(
        message.len() <= irsa_policy::error::MAX_MESSAGE,
        "{} bytes: {message}",
        message.len()
    );
    message
}

#[test]
fn a_forbidden_lookup_is_refused_with_the_rbac_grant_first() {
    let message = lookup_rejection(&host_error_of_case("reject-host-forbidden"));
    assert!(
        message.starts_with(
            "cannot read ServiceAccount team-a/app: the API server refused the policy-server: \
             grant the policy-server's ServiceAccount get on serviceaccounts (deploy/rbac.yaml). \
             Host error: ApiError: serviceaccounts \"app\" is forbidden: User"
        ),
        "{message}"
    );
    // The chain repeats the API server's message three times; it is said once.
    assert_eq!(message.matches("is forbidden").count(), 1, "{message}");
}

#[test]
fn an_unreachable_api_server_is_refused_as_retryable_without_rbac_advice() {
    let message = lookup_rejection(&host_error_of_case("reject-api-server-unreachable"));
    assert!(
        message.starts_with(
            "cannot read ServiceAccount team-a/app: the policy-server could not reach the \
             Kubernetes API server; nothing needs changing in the policy, create the pod again"
        ),
        "{message}"
    );
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
    let message = lookup_rejection(&host_text);
    assert_eq!(
        message,
        lookup_rejection(&host_error_of_case("reject-host-forbidden"))
    );
    assert!(!message.contains("backtrace"), "{message}");
}

#[test]
fn rejects_with_what_to_declare_when_the_host_refuses_service_accounts() {
    let message = lookup_rejection(&host_error_of_case("reject-context-aware-not-declared"));
    assert_eq!(
        message,
        "cannot read ServiceAccount team-a/app: the policy may not read ServiceAccounts: declare \
         contextAwareResources [{apiVersion: v1, kind: ServiceAccount}] in the policy \
         (deploy/policy.yaml). Host error: Policy has not been granted access to Kubernetes \
         v1/ServiceAccount resources. The violation has been reported"
    );
}

#[test]
fn any_other_lookup_failure_is_refused_with_its_first_line() {
    let message = lookup_rejection(
        "Host error: Callback evaluation failure: ApiError: Unauthorized: Unauthorized \
         (ErrorResponse { status: \"Failure\", message: \"Unauthorized\", reason: \
         \"Unauthorized\", code: 401 })\n\nCaused by:\n    Unauthorized: Unauthorized",
    );
    assert_eq!(
        message,
        "cannot read ServiceAccount team-a/app: the lookup failed. Host error: ApiError: \
         Unauthorized: Unauthorized"
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

// -- Role guardrails ---------------------------------------------------------

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

// -- Roles from the settings -------------------------------------------------

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

// -- EKS Pod Identity (container credentials) --------------------------------

const POD_IDENTITY_PATH: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";

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

fn pod_identity_lifetime(pod: &Value) -> u64 {
    pod.pointer("/spec/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no token volume in {pod}"))
}

/// A replica of a Deployment as the API server sends it: only a
/// `generateName`, and the request's own uid.
fn replica_request(uid: &str, settings: Value) -> Vec<u8> {
    let mut pod = app_pod();
    pod["metadata"] = json!({"generateName": "web-7d9f5c-", "namespace": "team-a"});
    let mut payload: Value = serde_json::from_slice(&request("CREATE", pod, settings)).unwrap();
    payload["request"]["uid"] = json!(uid);
    serde_json::to_vec(&payload).unwrap()
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

// -- Container selection, region, envFrom ------------------------------------

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

// -- Ephemeral containers ----------------------------------------------------

fn ephemeral_payload(pod: Value, old: Value, settings: Value) -> Vec<u8> {
    let mut payload: Value = serde_json::from_slice(&request("UPDATE", pod, settings)).unwrap();
    payload["request"]["subResource"] = json!("ephemeralcontainers");
    payload["request"]["oldObject"] = old;
    serde_json::to_vec(&payload).unwrap()
}

/// A pod created with credentials, and the same pod with ephemeral containers.
fn running_pod(ephemeral: Value) -> (Value, Value) {
    let old = pod_with(json!({"serviceAccountName": "app",
        "containers": [{"name": "app", "env": [
            {"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}],
            "volumeMounts": [token_mount()]}],
        "volumes": [token_volume("sts.amazonaws.com", 86400)]}));
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] = ephemeral;
    (new, old)
}

#[test]
fn ephemeral_containers_are_left_alone_unless_enabled() {
    let (pod, old) = running_pod(json!([{"name": "debugger", "image": "busybox"}]));
    let source = accounts(role_account());
    let decision = review(&ephemeral_payload(pod, old, json!({})), &source, &log());
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    assert_eq!(source.lookups(), 0);
}

#[test]
fn injects_only_the_new_ephemeral_containers_when_enabled() {
    let (pod, mut old) =
        running_pod(json!([{"name": "old-debugger"}, {"name": "debugger", "image": "busybox"}]));
    old["spec"]["ephemeralContainers"] = json!([{"name": "old-debugger"}]);
    let source = accounts(role_account());
    let payload = ephemeral_payload(pod, old, json!({"ephemeralContainers": true}));
    let Decision::Mutate { pod, .. } = review(&payload, &source, &log()) else {
        panic!()
    };
    let ephemeral = &pod["spec"]["ephemeralContainers"];
    assert_eq!(ephemeral[0], json!({"name": "old-debugger"}));
    assert_eq!(ephemeral[1]["volumeMounts"], json!([token_mount()]));
    assert_eq!(
        ephemeral[1]["env"][0],
        json!({"name": "AWS_ROLE_ARN", "value": ROLE})
    );
    assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(source.lookups(), 1);
}

#[test]
fn ephemeral_containers_of_a_pod_without_the_token_volume_get_a_warning() {
    let old = pod_with(json!({"serviceAccountName": "app", "containers": [{"name": "app"}]}));
    let mut pod = old.clone();
    pod["spec"]["ephemeralContainers"] = json!([{"name": "debugger"}]);
    let payload = ephemeral_payload(pod, old, json!({"ephemeralContainers": true}));
    let decision = review(&payload, &accounts(role_account()), &log());
    let Decision::Accept { warnings } = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("the new ephemeral containers get no AWS credentials: the pod has no volume \"aws-iam-token\""), "{warnings:?}");
}

// -- Audit: running pods out of step with their ServiceAccount ----------------

const POD_UID: &str = "9b2d8c3e-4f7a-4b1c-8e2d-6a5f3c1b0e9d";

/// The pod as Kubewarden's audit scanner sends it: a CREATE whose request
/// `uid` is the running pod's own `metadata.uid`.
fn audit_request(mut pod: Value, settings: Value) -> Vec<u8> {
    pod["metadata"]["uid"] = json!(POD_UID);
    pod["metadata"]["creationTimestamp"] = json!("2026-11-30T09:00:00Z");
    serde_json::to_vec(&json!({
        "request": {
            "uid": POD_UID,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "Pod"},
            "operation": "CREATE",
            "namespace": "team-a",
            "object": pod,
        },
        "settings": settings,
    }))
    .unwrap()
}

/// A pod as the policy injected it when its ServiceAccount had `account`.
fn injected_pod(account: ServiceAccount, settings: Value) -> Value {
    mutated(app_pod(), account, settings)
}

fn audit(pod: Value, source: &InMemoryServiceAccounts, settings: Value) -> Decision {
    review(&audit_request(pod, settings), source, &log())
}

fn audit_finding(pod: Value, account: ServiceAccount, settings: Value) -> String {
    match audit(pod, &accounts(account), settings) {
        Decision::Reject(error) => error.to_string(),
        other => panic!("expected a finding, got {other:?}"),
    }
}

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
    let mut pod = app_pod();
    pod["metadata"]["name"] = json!("web-7d9f5c6b8-x2x4z");
    pod["metadata"]["labels"] = json!({"pod-template-hash": "7d9f5c6b8"});
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f5c6b8", "controller": true}]);
    let finding = audit_finding(pod.clone(), role_account(), json!({}));
    assert_eq!(
        finding,
        format!(
            "pod team-a/web-7d9f5c6b8-x2x4z is out of step with ServiceAccount team-a/app: it has \
             no AWS credentials, but its ServiceAccount now gives {ROLE}: the pod was created \
             before that (or while the policy was not active); restart its Deployment: kubectl \
             -n team-a rollout restart deployment/web"
        )
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
    let finding = audit_finding(
        pod.clone(),
        ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", now)]),
        json!({}),
    );
    assert!(
        finding.contains(&format!(
            "it runs with AWS_ROLE_ARN {ROLE}, but its ServiceAccount now names {now}"
        )),
        "{finding}"
    );
    assert!(finding.ends_with("kubectl -n team-a delete pod web, then apply it again)"));
    // As a real CREATE the pod already has its credentials: left as it is.
    assert!(matches!(
        evaluate(pod, role_account(), json!({})),
        Decision::Accept { .. }
    ));
}

#[test]
fn audit_reports_credentials_the_service_account_no_longer_grants() {
    let pod = injected_pod(role_account(), json!({}));
    let finding = audit_finding(pod.clone(), ServiceAccount::default(), json!({}));
    assert!(
        finding.contains(&format!(
            "it carries AWS credentials for {ROLE} although its ServiceAccount no longer grants any"
        )),
        "{finding}"
    );
    // A ServiceAccount deleted since.
    let gone = InMemoryServiceAccounts::default();
    assert!(matches!(
        audit(pod.clone(), &gone, json!({})),
        Decision::Reject(error) if error.to_string().contains("although its ServiceAccount no longer exists")
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
    let finding = audit_finding(pod.clone(), role_account(), settings.clone());
    assert!(
        finding.contains(&format!(
            "it carries AWS credentials for {ROLE} that the guardrails now refuse (ServiceAccount \
             team-a/app may not assume role {ROLE}"
        )),
        "{finding}"
    );
    // A pod created now is refused with the guardrail's own message.
    assert!(rejection(pod, role_account(), settings)
        .starts_with("ServiceAccount team-a/app may not assume"));
}

#[test]
fn audit_reports_a_token_volume_for_another_audience() {
    let pod = injected_pod(role_account(), json!({}));
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/audience", "sts.example.com"),
    ]);
    let finding = audit_finding(pod, account, json!({}));
    assert!(
        finding.contains(
            "its token volume \"aws-iam-token\" has audience \"sts.amazonaws.com\", but a pod \
             created now gets \"sts.example.com\""
        ),
        "{finding}"
    );
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
    let source = accounts(role_account());
    assert_eq!(
        audit(pod, &source, json!({})),
        Decision::Accept { warnings: vec![] }
    );
    assert_eq!(source.lookups(), 0);
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

/// The policy's pod for `app_pod`, stored by the API server and owned by the
/// Deployment `web`, as the scanner sends it.
fn deployment_pod(pod: Value) -> Value {
    let mut pod = pod;
    pod["metadata"]["name"] = json!("web-7d9f5c6b8-x2x4z");
    pod["metadata"]["labels"] = json!({"pod-template-hash": "7d9f5c6b8"});
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-7d9f5c6b8", "controller": true}]);
    pod["status"] = json!({"phase": "Running"});
    pod
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
    let source = accounts(role_account());
    assert_eq!(
        audit(pod, &source, json!({})),
        Decision::Accept { warnings: vec![] }
    );
    assert_eq!(source.lookups(), 0);
}

#[test]
fn audit_says_to_fix_the_guardrails_before_a_restart() {
    let settings = json!({"allowedAccounts": ["444455556666"]});
    // With credentials for the role now refused, and without any: either way
    // a restart is refused until the role or the guardrails change.
    for pod in [injected_pod(role_account(), json!({})), app_pod()] {
        let finding = audit_finding(deployment_pod(pod), role_account(), settings.clone());
        assert!(
            finding.ends_with(
                "; fix the ServiceAccount's role or the guardrails first (until then every new \
                 pod of this ServiceAccount is refused), then restart its Deployment: kubectl -n \
                 team-a rollout restart deployment/web"
            ),
            "{finding}"
        );
    }
    let finding = audit_finding(deployment_pod(app_pod()), role_account(), settings);
    assert!(
        finding.contains(
            ": a pod created now is refused (ServiceAccount team-a/app may not assume role"
        ),
        "{finding}"
    );
}

#[test]
fn audit_says_to_fix_a_service_account_annotation_that_refuses_new_pods() {
    let account = ServiceAccount::with_annotations([
        ("eks.amazonaws.com/role-arn", ROLE),
        ("eks.amazonaws.com/token-expiration", "soon"),
    ]);
    let finding = audit_finding(deployment_pod(app_pod()), account, json!({}));
    assert!(
        finding.contains(
            "a pod created now is refused (ServiceAccount team-a/app: annotation \
             eks.amazonaws.com/token-expiration=\"soon\" is not a whole number"
        ),
        "{finding}"
    );
    assert!(
        finding.contains("; fix the ServiceAccount first"),
        "{finding}"
    );
}

#[rstest]
// Another volume mounted where the token goes.
#[case(json!({"serviceAccountName": "app",
    "containers": [{"name": "app", "volumeMounts": [{"name": "creds", "mountPath": MOUNT_PATH}]}],
    "volumes": [{"name": "creds", "emptyDir": {}}]}),
    "a pod created now would be refused: pod team-a/web-7d9f5c6b8-x2x4z: container \"app\" already mounts volume \"creds\" at /var/run/secrets/eks.amazonaws.com/serviceaccount")]
// A volume of the token's name that is not a token.
#[case(json!({"serviceAccountName": "app", "containers": [{"name": "app"}],
    "volumes": [{"name": "aws-iam-token", "emptyDir": {}}]}),
    "a pod created now would be refused: pod team-a/web-7d9f5c6b8-x2x4z: volume \"aws-iam-token\" already exists and is an emptyDir volume")]
fn audit_reports_why_a_pod_created_now_would_be_refused(#[case] spec: Value, #[case] reason: &str) {
    let finding = audit_finding(deployment_pod(pod_with(spec)), role_account(), json!({}));
    assert!(finding.contains(reason), "{finding}");
    assert!(
        finding.ends_with(
            "; change the pod's template as that says first (until then a pod created from it is \
             refused), then restart its Deployment: kubectl -n team-a rollout restart deployment/web"
        ),
        "{finding}"
    );
}

const POD_IDENTITY: &str =
    "EKS Pod Identity container credentials from http://169.254.170.23/v1/credentials";

#[test]
fn audit_reports_web_identity_credentials_where_pod_identity_is_given_now() {
    let pod = injected_pod(role_account(), json!({}));
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let finding = audit_finding(deployment_pod(pod), role_account(), settings);
    assert!(
        finding.contains(&format!(
            "it carries AWS credentials for {ROLE}, but its ServiceAccount now gives {POD_IDENTITY} instead"
        )),
        "{finding}"
    );
}

#[test]
fn audit_reports_pod_identity_credentials_where_a_role_is_given_now() {
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let pod = injected_pod(ServiceAccount::default(), settings);
    let finding = audit_finding(deployment_pod(pod.clone()), role_account(), json!({}));
    assert!(
        finding.contains(&format!(
            "it carries {POD_IDENTITY}, but its ServiceAccount now gives {ROLE} instead"
        )),
        "{finding}"
    );
    // Not covered by containerCredentials any more, and no role.
    let finding = audit_finding(deployment_pod(pod), ServiceAccount::default(), json!({}));
    assert!(
        finding.contains(&format!(
            "it carries {POD_IDENTITY} although its ServiceAccount no longer grants any"
        )),
        "{finding}"
    );
}

#[test]
fn audit_reports_what_a_pod_created_now_also_gets() {
    let pod = injected_pod(role_account(), json!({}));
    let finding = audit_finding(
        deployment_pod(pod),
        role_account(),
        json!({"awsDefaultRegion": "eu-west-1"}),
    );
    assert!(
        finding.contains(
            "a pod created now also gets container \"app\": AWS_DEFAULT_REGION, AWS_REGION, which \
             this pod lacks"
        ),
        "{finding}"
    );
}

#[test]
fn leaves_a_mirror_pod_unchanged_without_a_host_call() {
    // As the kubelet creates it: no ServiceAccount, the mirror annotation, a Node owner.
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "etcd-control-plane", "namespace": "team-a",
        "annotations": {"kubernetes.io/config.mirror": "3b2f0d5c", "kubernetes.io/config.source": "file"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "control-plane", "controller": true}]},
        "spec": {"nodeName": "control-plane", "containers": [{"name": "etcd"}]}});
    let default_account =
        InMemoryServiceAccounts::default().with("team-a", "default", role_account());
    let decision = review(
        &request("CREATE", pod.clone(), json!({})),
        &default_account,
        &log(),
    );
    assert_eq!(decision, Decision::Accept { warnings: vec![] });
    pod["status"] = json!({"phase": "Running"});
    assert_eq!(
        review(&audit_request(pod, json!({})), &default_account, &log()),
        Decision::Accept { warnings: vec![] }
    );
    assert_eq!(default_account.lookups(), 0);
}

// -- STS endpoint (VPC endpoints, official #52) --------------------------------

const VPC_ENDPOINT: &str =
    "https://vpce-0a1b2c3d4e5f6a7b8-abcdefgh.sts.us-east-1.vpce.amazonaws.com";

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

#[test]
fn container_credentials_pods_do_not_read_the_sts_endpoint() {
    let account = ServiceAccount::with_annotations([("irsa-policy.io/sts-endpoint", "not a url")]);
    let settings = json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}});
    let pod = mutated(app_pod(), account, settings);
    assert!(env_value(container(&pod, "app"), "AWS_ENDPOINT_URL_STS").is_none());
}
