//! Idempotence and reuse (docs/behaviour.md).

use crate::common::*;

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
