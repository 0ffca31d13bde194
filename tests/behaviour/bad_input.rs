//! The bad-input matrix: whatever arrives, the policy answers with a
//! rejection that names the field (or accepts, where Kubernetes itself would
//! accept), never panics, and never returns half an edit. Each case runs
//! through `review` and `encode`, the whole `validate` but the host.

use irsa_policy::decision::Decision;
use irsa_policy::lookup::{InMemoryServiceAccounts, ServiceAccount};
use irsa_policy::settings::Settings;
use irsa_policy::{encode, review};
use kubewarden_policy_sdk::settings::Validatable;
use rstest::rstest;
use serde_json::{json, Value};

use crate::common::{log, ROLE};

fn accounts() -> InMemoryServiceAccounts {
    InMemoryServiceAccounts::default()
        .with(
            "team-a",
            "app",
            ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", ROLE)]),
        )
        .with(
            "team-a",
            "default",
            ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", ROLE)]),
        )
}

fn decide(payload: &[u8]) -> Decision {
    let decision = review(payload, &accounts(), &log());
    // The answer must always encode: this is what the host receives.
    let encoded: Value =
        serde_json::from_slice(&encode(decision.clone(), payload.len()).unwrap()).unwrap();
    if let Decision::Reject(error) = &decision {
        assert_eq!(encoded["accepted"], false);
        assert!(
            encoded["mutated_object"].is_null(),
            "a rejection carries no object"
        );
        let message = encoded["message"].as_str().unwrap();
        assert!(
            message.len() <= irsa_policy::error::MAX_MESSAGE + 32,
            "{} bytes",
            message.len()
        );
        assert_eq!(encoded["code"], error.code());
    }
    decision
}

fn payload(object: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE", "namespace": "team-a", "object": object}, "settings": {}}),
    )
    .unwrap()
}

fn rejection(payload: &[u8]) -> String {
    match decide(payload) {
        Decision::Reject(error) => error.to_string(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[rstest]
#[case(b"".as_slice(), "EOF while parsing")]
#[case(b"{".as_slice(), "EOF while parsing")]
#[case(b"null".as_slice(), "invalid type: null")]
#[case(b"[]".as_slice(), "invalid length 0")]
#[case(b"{\"settings\": {}}".as_slice(), "missing field `request`")]
#[case(b"{\"request\": 5}".as_slice(), "request: must be an object, found number 5")]
#[case(b"{\"request\": {\"operation\": [\"CREATE\"]}}".as_slice(), "request.operation: invalid type: sequence")]
#[case(b"{\"request\": {\"kind\": \"Pod\"}}".as_slice(), "request.kind: invalid type: string \"Pod\"")]
#[case(b"{\"request\": {\"operation\": \"CREATE\", \"operation\": \"DELETE\"}}".as_slice(), "duplicate field `operation`")]
#[case(b"{\"request\": {}, \"settings\": {\"tokenAudience\": 5}}".as_slice(), "settings.tokenAudience: invalid type: integer `5`")]
#[case(b"{\"request\": {}, \"settings\": [\"sts.amazonaws.com\"]}".as_slice(), "settings: must be a JSON object, found a list")]
#[case(b"{\"request\": {\"namespace\": \"\\ud800\"}}".as_slice(), "it is not JSON text: request.namespace holds \\ud800 at offset 27, a lone UTF-16 surrogate")]
#[case(b"{\"request\": {\"namespace\": \"\xff\xfe\"}}".as_slice(), "it is not UTF-8 text: request.namespace holds byte 0xff at offset 27")]
#[case(b"{\"request\": {\"requestKind\": {\"kind\": \"\xffod\"}}}".as_slice(), "it is not UTF-8 text: request.requestKind.kind holds byte 0xff at offset 38")]
#[case(b"{\"request\": {\"userInfo\": {\"extra\": {\"a\\udc00\": []}}}}".as_slice(), "it is not JSON text: a key of request.userInfo.extra holds \\udc00 at offset 38, a lone UTF-16 surrogate")]
#[case(b"{\"request\": {}, \xff: 1}".as_slice(), "it is not UTF-8 text: byte 0xff at offset 16")]
fn a_malformed_payload_is_refused_with_what_is_wrong(#[case] payload: &[u8], #[case] named: &str) {
    let message = rejection(payload);
    assert!(
        message.starts_with("cannot read the admission request: "),
        "{message}"
    );
    assert!(
        message.contains(named),
        "{message:?} should contain {named:?}"
    );
}

#[rstest]
#[case(
    Value::Null,
    "request.object: must be the Pod, a JSON object, found null"
)]
#[case(json!("a pod"), "request.object: must be the Pod, a JSON object, found string \"a pod\"")]
#[case(json!(7), "request.object: must be the Pod, a JSON object, found number 7")]
#[case(json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}), "kind must be \"Pod\", found string \"ConfigMap\"")]
#[case(json!({"metadata": {"name": "w"}, "spec": "nothing"}), "spec must be an object, found string \"nothing\"")]
#[case(json!({"metadata": {"name": "w"}, "spec": []}), "spec must be an object, found a list")]
#[case(json!({"metadata": 1, "spec": {}}), "metadata must be an object, found number 1")]
#[case(json!({"metadata": {"annotations": []}, "spec": {}}), "metadata.annotations must be an object, found a list")]
#[case(json!({"spec": {"serviceAccountName": {"name": "app"}}}), "spec.serviceAccountName must be a string, found an object")]
#[case(json!({"spec": {"containers": "app"}}), "spec.containers must be a list, found string \"app\"")]
#[case(json!({"spec": {"containers": [null]}}), "spec.containers[0] must be an object, found null")]
#[case(json!({"spec": {"initContainers": [{"name": "i", "env": {"A": "1"}}], "containers": []}}), "spec.initContainers[0].env must be a list, found an object")]
#[case(json!({"spec": {"containers": [{"name": "a", "env": [null]}]}}), "spec.containers[0].env[0] must be an object, found null")]
#[case(json!({"spec": {"containers": [{"name": "a", "volumeMounts": [{"name": 1, "mountPath": "/x"}]}]}}), "spec.containers[0].volumeMounts[0].name must be a string, found number 1")]
#[case(json!({"spec": {"containers": [{"name": "a"}], "volumes": [7]}}), "spec.volumes[0] must be an object, found number 7")]
#[case(json!({"spec": {"containers": [{"name": "a"}], "volumes": [{"name": ["x"]}]}}), "spec.volumes[0].name must be a string, found a list")]
// A label map that is not a map cannot say whether the pod opted out.
#[case(json!({"metadata": {"labels": "x"}, "spec": {"containers": [{"name": "a"}]}}), "metadata.labels must be an object, found string \"x\"")]
fn a_malformed_pod_is_refused_naming_the_field(#[case] object: Value, #[case] named: &str) {
    match decide(&payload(object)) {
        Decision::Reject(error) => {
            let message = error.to_string();
            assert!(
                message.contains(named),
                "{message:?} should contain {named:?}"
            );
        }
        other => panic!("expected a rejection naming {named:?}, got {other:?}"),
    }
}

#[test]
fn null_where_kubernetes_allows_absence_is_absence() {
    let object = json!({"metadata": null, "spec": {"serviceAccountName": null, "initContainers": null,
        "containers": [{"name": "a", "env": null, "volumeMounts": null}], "volumes": null}});
    assert!(matches!(decide(&payload(object)), Decision::Mutate { .. }));
}

#[test]
fn duplicate_keys_in_the_pod_keep_the_last_as_kubernetes_does() {
    let raw = br#"{"request": {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "team-a", "object": {"spec": {"serviceAccountName": "nobody", "serviceAccountName": "app",
        "containers": [{"name": "a"}]}}}}"#;
    let Decision::Mutate { pod, .. } = decide(raw) else {
        panic!()
    };
    assert_eq!(pod["spec"]["serviceAccountName"], "app");
}

#[test]
fn a_huge_annotation_value_is_quoted_short() {
    let huge = format!("arn:aws:iam::111122223333:role/{}", "x".repeat(300_000));
    let accounts = InMemoryServiceAccounts::default().with(
        "team-a",
        "app",
        ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", huge.as_str())]),
    );
    let object = json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "a"}]}});
    let decision = review(&payload(object), &accounts, &log());
    let Decision::Reject(error) = decision else {
        panic!()
    };
    let message = error.to_string();
    assert!(message.len() < 1024, "{} bytes", message.len());
    assert!(message.contains("(300031 bytes)"), "{message}");
    assert!(message.contains("role name"), "{message}");
}

#[test]
fn huge_pod_annotations_are_read_without_trouble() {
    let skip = (0..20_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let object = json!({"metadata": {"annotations": {"eks.amazonaws.com/skip-containers": skip,
        "other.example.com/blob": "y".repeat(1_000_000)}},
        "spec": {"serviceAccountName": "app", "containers": [{"name": "a"}]}});
    let Decision::Mutate { warnings, .. } = decide(&payload(object)) else {
        panic!()
    };
    // Every unknown name would be a warning: 20,000 is still an answer, not a crash.
    assert_eq!(warnings.len(), 20_000);
}

#[test]
fn a_thousand_containers_all_get_credentials() {
    let containers: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("c{i}"), "image": "app:1"}))
        .collect();
    let object = json!({"spec": {"serviceAccountName": "app", "containers": containers}});
    let Decision::Mutate { pod, .. } = decide(&payload(object)) else {
        panic!()
    };
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1000);
    assert!(containers
        .iter()
        .all(|c| c["env"][0]["name"] == "AWS_ROLE_ARN" && c["volumeMounts"].is_array()));
    assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
}

#[test]
fn deeply_nested_unknown_fields_are_refused_by_the_parser_not_a_stack_overflow() {
    // serde_json stops at 128 levels: a clear error, where recursion could crash.
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let raw = format!(
        r#"{{"request": {{"operation": "CREATE", "object": {{"spec": {{"future": {deep}}}}}}}}}"#
    );
    assert!(rejection(raw.as_bytes()).contains("recursion limit exceeded"));
}

#[test]
fn numbers_kubernetes_can_send_come_back_exactly() {
    let object = json!({"spec": {"serviceAccountName": "app", "containers": [{"name": "a"}],
        "futureInts": [i64::MIN, i64::MAX, u64::MAX, 0, -1], "futureDecimals": [0.5, 1.25, 3600.125, 1e-3]}});
    let Decision::Mutate { pod, .. } = decide(&payload(object.clone())) else {
        panic!()
    };
    assert_eq!(pod["spec"]["futureInts"], object["spec"]["futureInts"]);
    assert_eq!(
        pod["spec"]["futureDecimals"],
        object["spec"]["futureDecimals"]
    );
}

/// The limit docs/hardening.md (Numbers) states: a decimal of up to 15 significant digits and
/// a power of ten within 22 (magnitudes 1e-8 to 1e37), in a field the policy
/// does not own, reads back as the same number: the exact standard-library
/// parse of what went in and of what came out agree.
#[test]
fn decimals_of_fifteen_digits_come_back_as_the_same_number() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut texts = Vec::new();
    for _ in 0..2_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let digits = state % 900_000_000_000_000 + 100_000_000_000_000;
        let exponent = (state >> 52) as i64 % 45 - 22;
        texts.push(format!("{digits}e{exponent}"));
    }
    // The numbers go in as text, so they reach the policy's parser unparsed.
    let envelope = payload(json!({"spec": {"serviceAccountName": "app",
        "containers": [{"name": "a"}], "futureDecimals": "DECIMALS"}}));
    let raw = String::from_utf8(envelope)
        .unwrap()
        .replace(r#""DECIMALS""#, &format!("[{}]", texts.join(",")));
    let decision = decide(raw.as_bytes());
    let Decision::Mutate { pod, .. } = decision else {
        panic!("expected a mutation, got {decision:?}")
    };
    let back = pod["spec"]["futureDecimals"].as_array().unwrap();
    assert_eq!(back.len(), texts.len());
    for (text, number) in texts.iter().zip(back) {
        let written = serde_json::to_string(number).unwrap();
        assert_eq!(
            text.parse::<f64>().unwrap(),
            written.parse::<f64>().unwrap(),
            "{text} came back as {written}"
        );
    }
}

/// Every setting, given a value of the wrong type, is refused by name.
#[rstest]
#[case("annotationPrefix", json!(1))]
#[case("tokenAudience", json!(true))]
#[case("tokenExpirationSeconds", json!("3600"))]
#[case("tokenExpirationSeconds", json!(1.5))]
#[case("tokenMountPath", json!(["/a"]))]
#[case("tokenVolumeName", json!({}))]
#[case("awsDefaultRegion", json!(1))]
#[case("stsRegionalEndpoints", json!("true"))]
#[case("roleSessionName", json!(null))]
#[case("extensionAnnotationPrefix", json!(1))]
#[case("allowedRoleArns", json!({"namespaces": ["a"]}))]
#[case("allowedAccounts", json!("111122223333"))]
#[case("allowedPartitions", json!([1]))]
#[case("serviceAccounts", json!([]))]
#[case("composeRoleArn", json!("111122223333"))]
#[case("containerCredentials", json!(true))]
#[case("skipRegionWithEnvFrom", json!(1))]
#[case("ephemeralContainers", json!("no"))]
fn each_setting_of_the_wrong_type_is_refused_by_name(#[case] setting: &str, #[case] value: Value) {
    let json = serde_json::to_vec(&json!({ setting: value })).unwrap();
    let message = Settings::from_json(&json).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("cannot read the settings: {setting}: ")),
        "{message}"
    );
}

/// Every setting, given a value of the right type but out of range, is refused by name.
#[rstest]
#[case(json!({"annotationPrefix": "UPPER.case"}), "annotationPrefix")]
#[case(json!({"tokenAudience": " padded "}), "tokenAudience")]
#[case(json!({"tokenExpirationSeconds": 0}), "tokenExpirationSeconds")]
#[case(json!({"tokenMountPath": "/a/../b"}), "tokenMountPath")]
#[case(json!({"tokenVolumeName": "-token"}), "tokenVolumeName")]
#[case(json!({"awsDefaultRegion": "us_east_1"}), "awsDefaultRegion")]
#[case(json!({"extensionAnnotationPrefix": "a..b"}), "extensionAnnotationPrefix")]
#[case(json!({"allowedRoleArns": [{"namespaces": ["a"], "roleArns": []}]}), "allowedRoleArns")]
#[case(json!({"allowedAccounts": ["11112222333x"]}), "allowedAccounts")]
#[case(json!({"allowedPartitions": ["AWS"]}), "allowedPartitions")]
#[case(json!({"serviceAccounts": {"a/b/c": {}}}), "serviceAccounts")]
#[case(json!({"composeRoleArn": {"accountId": "111122223333", "partition": "azure"}}), "composeRoleArn")]
#[case(json!({"containerCredentials": {"tokenPath": "../x"}}), "containerCredentials")]
fn each_setting_out_of_range_is_refused_by_name(#[case] settings: Value, #[case] setting: &str) {
    let settings = Settings::from_json(&serde_json::to_vec(&settings).unwrap()).unwrap();
    let message = settings.validate().unwrap_err();
    assert!(
        message.starts_with(&format!("invalid setting {setting} = ")),
        "{message}"
    );
}
