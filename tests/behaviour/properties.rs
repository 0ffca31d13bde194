//! Properties over generated pods and ServiceAccounts: whatever mix of
//! containers, init containers, native sidecars, env, envFrom, mounts,
//! volumes, unknown fields and annotations a pod has, the policy
//!
//! - never loses or changes what it does not own (lossless),
//! - never produces a pod the API server would refuse for duplicates (valid),
//! - changes nothing when run on its own output (idempotent),
//! - mutates every container it selects and no other (no partial mutation),
//! - leaves every variable the user set at the user's value,
//! - lets through only pods that then pass the audit (`admitted_passes_audit`).
//!
//! `PROPTEST_CASES` sets how many pods are tried (256 by default in CI).

use irsa_policy::decision::Decision;
use irsa_policy::invariants::{admitted_passes_audit, lossless, no_duplicates};
use irsa_policy::lookup::{InMemoryServiceAccounts, ServiceAccount};
use irsa_policy::resolve::env;
use irsa_policy::review;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
const PI_PATH: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
use crate::common::{log, ROLE};

const NAMES: [&str; 8] = [
    "app",
    "worker",
    "proxy",
    "init",
    "sidecar",
    "istio-proxy",
    "debug",
    "c7",
];
/// Every variable the policy sets (from its own table) and two it never does.
fn env_names() -> Vec<&'static str> {
    env::names().chain(["LOG_LEVEL", "DB_URL"]).collect()
}

/// The variables that give a container credentials, ours or the user's.
fn credentials_names() -> Vec<&'static str> {
    env::GROUPS
        .iter()
        .filter(|group| group.is_credentials())
        .flat_map(|group| group.variables.iter().map(|v| v.name))
        .collect()
}
const VOLUME_NAMES: [&str; 5] = [
    "data",
    "cache",
    "aws-iam-token",
    "eks-pod-identity-token",
    "config",
];
const MOUNT_PATHS: [&str; 6] = [
    "/data",
    "/cache",
    MOUNT_PATH,
    "/var/run/secrets/eks.amazonaws.com",
    PI_PATH,
    "/etc/app",
];

/// Any JSON a client might put in a field the policy does not know.
fn unknown_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Kubernetes' API conventions forbid floats in specs, so none arrive from
        // the API server; decimals of up to 15 significant digits, as a
        // hand-written fixture may hold, read and write back exactly (longer ones
        // can come back one unit in the last place off: docs/hardening.md, Numbers).
        (-1_000_000_000i64..1_000_000_000).prop_map(|n| Value::from(n as f64 / 1000.0)),
        "[a-zA-Z0-9 /:._-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Fields of an object: unknown ones, under keys no Kubernetes type uses.
fn unknown_fields() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("future[A-Z][a-z]{0,5}", unknown_value(), 0..2)
        .prop_map(|m| m.into_iter().collect())
}

/// Token files as the policy writes them, so that a container's own pair can
/// look exactly like the policy's.
const TOKEN_FILES: [&str; 2] = [
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
];

fn env_var() -> impl Strategy<Value = (usize, Value)> {
    let names = env_names();
    let value = prop_oneof![
        4 => "[a-z0-9:/.-]{0,20}",
        1 => prop::sample::select(TOKEN_FILES.to_vec()).prop_map(str::to_owned),
    ];
    (0..names.len(), any::<bool>(), value).prop_map(move |(i, from_secret, value)| {
        let var = if from_secret {
            json!({"name": names[i], "valueFrom": {"secretKeyRef": {"name": "s", "key": value}}})
        } else {
            json!({"name": names[i], "value": value})
        };
        (i, var)
    })
}

fn mount() -> impl Strategy<Value = (usize, usize, Value)> {
    // Mostly the user's own paths; now and then the token paths, which conflict.
    let path = prop_oneof![6 => Just(0usize), 6 => Just(1), 1 => Just(2), 1 => Just(3), 1 => Just(4), 6 => Just(5)];
    let volume =
        prop_oneof![6 => Just(0usize), 6 => Just(1), 1 => Just(2), 1 => Just(3), 6 => Just(4)];
    (volume, path, any::<bool>()).prop_map(|(v, p, ro)| {
        (
            v,
            p,
            json!({"name": VOLUME_NAMES[v], "mountPath": MOUNT_PATHS[p], "readOnly": ro}),
        )
    })
}

fn container(name: &'static str, sidecar: bool) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(env_var(), 0..4),
        prop::collection::vec(mount(), 0..3),
        any::<bool>(),
        unknown_fields(),
    )
        .prop_map(move |(env, mounts, env_from, extra)| {
            let mut c = extra;
            c.insert("name".into(), name.into());
            c.insert("image".into(), "registry.example.com/app:1".into());
            if sidecar {
                c.insert("restartPolicy".into(), "Always".into());
            }
            // The API server refuses duplicate variables' values being
            // ambiguous only by warning, and duplicate mounts outright: keep
            // the generated pods ones it accepts.
            let mut seen = Vec::new();
            let env: Vec<Value> = env
                .into_iter()
                .filter(|(i, _)| {
                    !seen.contains(i) && {
                        seen.push(*i);
                        true
                    }
                })
                .map(|(_, v)| v)
                .collect();
            let (mut names, mut paths) = (Vec::new(), Vec::new());
            let mounts: Vec<Value> = mounts
                .into_iter()
                .filter(|(v, p, _)| {
                    let fresh = !names.contains(v) && !paths.contains(p);
                    if fresh {
                        names.push(*v);
                        paths.push(*p);
                    }
                    fresh
                })
                .map(|(_, _, m)| m)
                .collect();
            if !env.is_empty() {
                c.insert("env".into(), env.into());
            }
            if !mounts.is_empty() {
                c.insert("volumeMounts".into(), mounts.into());
            }
            if env_from {
                c.insert("envFrom".into(), json!([{"configMapRef": {"name": "aws"}}]));
            }
            Value::Object(c)
        })
}

fn volume(name: &'static str) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!({"name": name, "emptyDir": {}})),
        1 => Just(json!({"name": name, "hostPath": {"path": "/var/lib/x"}})),
        3 => Just(json!({"name": name, "projected": {"sources": [{"serviceAccountToken":
            {"audience": "sts.amazonaws.com", "expirationSeconds": 3600, "path": "token"}}]}})),
        2 => Just(json!({"name": name, "projected": {"sources": [{"serviceAccountToken":
            {"audience": "pods.eks.amazonaws.com", "path": "eks-pod-identity-token"}}]}})),
        1 => Just(json!({"name": name, "projected": {"sources": [{"serviceAccountToken":
            {"audience": "vault", "path": "token"}}]}})),
    ]
}

/// A pod: unique container names across init and app containers, unique volumes.
fn pod() -> impl Strategy<Value = Value> {
    (
        prop::sample::subsequence(NAMES.to_vec(), 1..5),
        0usize..3,
        prop::sample::subsequence(VOLUME_NAMES.to_vec(), 0..4),
        prop::option::of(prop::sample::subsequence(NAMES.to_vec(), 0..3)),
        prop::option::of(prop::sample::subsequence(NAMES.to_vec(), 1..4)),
        prop::option::of(prop_oneof![4 => Just("3600"), 2 => Just("60"), 2 => Just("999999"), 1 => Just("1h")]),
        any::<bool>(),
        unknown_fields(),
    )
        .prop_flat_map(|(names, init_count, volumes, skip, only, expiration, windows, extra)| {
            let init_count = init_count.min(names.len() - 1);
            let (init, app) = names.split_at(init_count);
            let init: Vec<_> = init
                .iter()
                .enumerate()
                .map(|(i, n)| container(n, i % 2 == 1).boxed())
                .collect();
            let app: Vec<_> = app.iter().map(|n| container(n, false).boxed()).collect();
            let volumes: Vec<_> = volumes.iter().map(|n| volume(n).boxed()).collect();
            (init, app, volumes, Just((skip, only, expiration, windows, extra)))
        })
        .prop_map(|(init, app, volumes, (skip, only, expiration, windows, extra))| {
            let mut annotations = Map::new();
            if let Some(skip) = skip {
                annotations.insert("eks.amazonaws.com/skip-containers".into(), skip.join(", ").into());
            }
            if let Some(only) = only {
                annotations.insert("irsa-policy.io/inject-containers".into(), only.join(",").into());
            }
            if let Some(expiration) = expiration {
                annotations.insert("eks.amazonaws.com/token-expiration".into(), expiration.into());
            }
            let mut spec = extra;
            spec.insert("serviceAccountName".into(), "app".into());
            spec.insert("containers".into(), app.into());
            if !init.is_empty() {
                spec.insert("initContainers".into(), init.into());
            }
            if !volumes.is_empty() {
                spec.insert("volumes".into(), volumes.into());
            }
            if windows {
                spec.insert("nodeSelector".into(), json!({"kubernetes.io/os": "windows"}));
            }
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"generateName": "web-", "namespace": "team-a", "annotations": annotations},
                   "spec": spec})
        })
}

fn service_account() -> impl Strategy<Value = ServiceAccount> {
    (
        prop_oneof![
            16 => Just(Some(ROLE)),
            1 => Just(Some("arn:aws:iam::1:role/bad")),
            2 => Just(None),
        ],
        prop::option::of(
            prop_oneof![4 => Just("sts.amazonaws.com"), 2 => Just(""), 1 => Just("vault")],
        ),
        prop::option::of(prop_oneof![4 => Just("true"), 4 => Just("0"), 1 => Just("maybe")]),
        prop::option::of(prop_oneof![8 => Just("ap-south-1"), 1 => Just("nowhere")]),
    )
        .prop_map(|(role, audience, sts, region)| {
            let pairs = [
                ("eks.amazonaws.com/role-arn", role),
                ("eks.amazonaws.com/audience", audience),
                ("eks.amazonaws.com/sts-regional-endpoints", sts),
                ("irsa-policy.io/region", region),
            ];
            ServiceAccount::with_annotations(pairs.into_iter().filter_map(|(k, v)| Some((k, v?))))
        })
}

fn settings() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        Just(
            json!({"awsDefaultRegion": "eu-west-1", "stsRegionalEndpoints": true, "roleSessionName": true})
        ),
        Just(json!({"awsDefaultRegion": "eu-west-1", "skipRegionWithEnvFrom": true})),
        Just(
            json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}, "awsDefaultRegion": "us-east-1"})
        ),
        Just(
            json!({"serviceAccounts": {"*/app": {"roleArn": ROLE, "tokenExpirationSeconds": 7200}}})
        ),
        Just(
            json!({"allowedRoleArns": [{"namespaces": ["team-*"], "roleArns": ["arn:aws:iam::123456789012:role/*"]}]})
        ),
    ]
}

fn payload(pod: &Value, settings: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE", "namespace": "team-a", "object": pod}, "settings": settings}))
    .unwrap()
}

fn accounts(account: &ServiceAccount) -> InMemoryServiceAccounts {
    InMemoryServiceAccounts::default().with("team-a", "app", account.clone())
}

fn decide(pod: &Value, account: &ServiceAccount, settings: &Value) -> Decision {
    review(&payload(pod, settings), &accounts(account), &log())
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |list| pod["spec"][list].as_array().into_iter().flatten())
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutations_are_lossless_valid_idempotent_and_complete(
        pod in pod(),
        account in service_account(),
        settings in settings(),
    ) {
        match decide(&pod, &account, &settings) {
            Decision::Mutate { pod: mutated, .. } => {
                // Lossless: every original value at its pointer, lists only grown.
                prop_assert_eq!(lossless(&pod, &mutated), Ok(()));
                // Valid: nothing the API server refuses as a duplicate.
                prop_assert_eq!(no_duplicates(&mutated), Ok(()));
                // Idempotent: the policy run again on its own output changes nothing.
                let again = decide(&mutated, &account, &settings);
                prop_assert!(matches!(again, Decision::Accept { .. }), "second run: {:?}", again);
                // No half-injected container: each one the policy changed has the
                // token mount and a credentials pair (its own or ours).
                for (before, after) in containers(&pod).zip(containers(&mutated)) {
                    if before == after {
                        continue;
                    }
                    let mounts = names(&after["volumeMounts"]);
                    let env = names(&after["env"]);
                    prop_assert!(mounts.iter().any(|m| *m == "aws-iam-token" || *m == "eks-pod-identity-token"),
                        "container {} was changed but has no token mount", after["name"]);
                    prop_assert!(env.iter().any(|e| credentials_names().contains(e)),
                        "container {} was changed but has no credentials", after["name"]);
                }
                // User values win: every variable of the input keeps its value
                // (lossless already pins them to their index; this says it plainly).
                for (before, after) in containers(&pod).zip(containers(&mutated)) {
                    for var in before["env"].as_array().into_iter().flatten() {
                        let kept = after["env"].as_array().into_iter().flatten()
                            .find(|v| v["name"] == var["name"]);
                        prop_assert_eq!(kept, Some(var));
                    }
                }
            }
            Decision::Accept { .. } => {}
            Decision::Reject(error) => {
                // No partial mutation: a refusal carries no pod, only a reason.
                prop_assert!(!error.to_string().is_empty());
                prop_assert!([400, 403, 500].contains(&error.code()));
            }
        }
    }

    #[test]
    fn a_pod_admitted_now_passes_the_audit_now(
        pod in pod(),
        account in service_account(),
        settings in settings(),
    ) {
        let decision = decide(&pod, &account, &settings);
        prop_assert_eq!(
            admitted_passes_audit(&payload(&pod, &settings), &decision, &accounts(&account)),
            Ok(())
        );
    }

    #[test]
    fn selected_containers_all_get_credentials_and_skipped_ones_none(
        pod in pod(),
        settings in settings(),
    ) {
        let account = ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", ROLE)]);
        if let Decision::Mutate { pod: mutated, .. } = decide(&pod, &account, &settings) {
            let annotation = |key: &str| -> Option<Vec<String>> {
                pod["metadata"]["annotations"][key].as_str()
                    .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            };
            let skip = annotation("eks.amazonaws.com/skip-containers").unwrap_or_default();
            let only = annotation("irsa-policy.io/inject-containers");
            for (before, after) in containers(&pod).zip(containers(&mutated)) {
                let name = before["name"].as_str().unwrap().to_owned();
                let selected = !skip.contains(&name) && only.as_ref().is_none_or(|o| o.contains(&name));
                if selected {
                    prop_assert!(names(&after["volumeMounts"]).iter().any(|m| m.ends_with("token")),
                        "selected container {} got no token mount", name);
                } else {
                    prop_assert_eq!(before, after, "skipped container {} was changed", name);
                }
            }
        }
    }
}
