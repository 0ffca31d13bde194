//! Lossless (docs/behaviour.md).

use crate::common::*;

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
fn a_conflict_in_one_container_refuses_the_whole_pod() {
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
