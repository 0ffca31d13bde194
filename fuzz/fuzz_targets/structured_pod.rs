//! Generated pods: any mix of containers, init containers, native sidecars,
//! env, envFrom, mounts, volumes, unknown fields and annotations, with a
//! ServiceAccount and one of the setting presets. Beyond never panicking, a
//! mutation must be lossless, idempotent, and add no duplicate to a pod that
//! had none.
#![no_main]

use arbitrary::Arbitrary;
use irsa_policy::invariants::no_duplicates;
use irsa_policy::lookup::{EveryoneHasARole, ServiceAccount};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

#[path = "common.rs"]
mod common;

const NAMES: [&str; 6] = ["app", "worker", "proxy", "init", "", "c5"];
/// Every variable the policy sets, from its own table, and one it never does.
static ENV: LazyLock<Vec<&str>> =
    LazyLock::new(|| irsa_policy::resolve::env::names().chain(["X"]).collect());
const VOLUMES: [&str; 4] = ["data", "aws-iam-token", "eks-pod-identity-token", "cache"];
const PATHS: [&str; 5] = [
    "/data",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/",
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
    "/cache",
];

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn value(&self, depth: usize) -> Value {
        match self {
            _ if depth > 20 => Value::Null,
            Json::Null => Value::Null,
            Json::Bool(b) => Value::from(*b),
            Json::Int(i) => Value::from(*i),
            Json::Str(s) => Value::from(s.as_str()),
            Json::List(items) => items.iter().map(|j| j.value(depth + 1)).collect(),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (format!("future{k}"), v.value(depth + 1)))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Container {
    name: u8,
    env: Vec<(u8, String, bool)>,
    mounts: Vec<(u8, u8)>,
    env_from: bool,
    sidecar: bool,
    extra: Option<(String, Json)>,
}

#[derive(Arbitrary, Debug)]
enum Volume {
    EmptyDir,
    HostPath,
    Token {
        audience: u8,
        path: u8,
        seconds: Option<u32>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    init: Vec<Container>,
    containers: Vec<Container>,
    volumes: Vec<(u8, Volume)>,
    skip: Option<String>,
    inject: Option<String>,
    expiration: Option<String>,
    os: u8,
    name: Option<String>,
    role: Option<String>,
    audience: Option<String>,
    sts: Option<String>,
    region: Option<String>,
    settings: u8,
    extra: Option<(String, Json)>,
}

fn container(c: &Container, in_init: bool) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), NAMES[c.name as usize % NAMES.len()].into());
    let env: Vec<Value> = c
        .env
        .iter()
        .map(|(n, value, from)| {
            let name = ENV[*n as usize % ENV.len()];
            if *from {
                json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": value}}})
            } else {
                json!({"name": name, "value": value})
            }
        })
        .collect();
    if !env.is_empty() {
        object.insert("env".into(), env.into());
    }
    let mounts: Vec<Value> = c
        .mounts
        .iter()
        .map(|(v, p)| json!({"name": VOLUMES[*v as usize % VOLUMES.len()], "mountPath": PATHS[*p as usize % PATHS.len()]}))
        .collect();
    if !mounts.is_empty() {
        object.insert("volumeMounts".into(), mounts.into());
    }
    if c.env_from {
        object.insert("envFrom".into(), json!([{"secretRef": {"name": "aws"}}]));
    }
    if c.sidecar && in_init {
        object.insert("restartPolicy".into(), "Always".into());
    }
    if let Some((key, value)) = &c.extra {
        object.insert(format!("future{key}"), value.value(0));
    }
    Value::Object(object)
}

fn volume(name: u8, v: &Volume) -> Value {
    let name = VOLUMES[name as usize % VOLUMES.len()];
    match v {
        Volume::EmptyDir => json!({"name": name, "emptyDir": {}}),
        Volume::HostPath => json!({"name": name, "hostPath": {"path": "/x"}}),
        Volume::Token {
            audience,
            path,
            seconds,
        } => {
            let audience =
                ["sts.amazonaws.com", "pods.eks.amazonaws.com", "vault"][*audience as usize % 3];
            let path = ["token", "eks-pod-identity-token"][*path as usize % 2];
            json!({"name": name, "projected": {"sources": [{"serviceAccountToken":
                {"audience": audience, "expirationSeconds": seconds, "path": path}}]}})
        }
    }
}

fn settings(preset: u8) -> Value {
    match preset % 6 {
        0 => json!({}),
        1 => {
            json!({"awsDefaultRegion": "eu-west-1", "stsRegionalEndpoints": true, "roleSessionName": true})
        }
        2 => json!({"awsDefaultRegion": "eu-west-1", "skipRegionWithEnvFrom": true}),
        3 => json!({"containerCredentials": {"serviceAccounts": ["team-a/app"]}}),
        4 => {
            json!({"serviceAccounts": {"*/app": {"roleArn": "arn:aws:iam::111122223333:role/app"}},
                     "composeRoleArn": {"accountId": "111122223333"}})
        }
        _ => {
            json!({"allowedRoleArns": [{"namespaces": ["team-*"], "roleArns": ["arn:aws:iam::*:role/*"]}],
                    "ephemeralContainers": true})
        }
    }
}

fuzz_target!(|input: Input| {
    let mut annotations = Map::new();
    for (key, value) in [
        ("eks.amazonaws.com/skip-containers", &input.skip),
        ("irsa-policy.io/inject-containers", &input.inject),
        ("eks.amazonaws.com/token-expiration", &input.expiration),
    ] {
        if let Some(value) = value {
            annotations.insert(key.into(), value.as_str().into());
        }
    }
    let mut spec = Map::new();
    spec.insert("serviceAccountName".into(), "app".into());
    spec.insert(
        "initContainers".into(),
        input
            .init
            .iter()
            .take(8)
            .map(|c| container(c, true))
            .collect(),
    );
    spec.insert(
        "containers".into(),
        input
            .containers
            .iter()
            .take(8)
            .map(|c| container(c, false))
            .collect(),
    );
    spec.insert(
        "volumes".into(),
        input
            .volumes
            .iter()
            .take(6)
            .map(|(n, v)| volume(*n, v))
            .collect(),
    );
    match input.os % 4 {
        1 => {
            spec.insert("os".into(), json!({"name": "windows"}));
        }
        2 => {
            spec.insert(
                "nodeSelector".into(),
                json!({"kubernetes.io/os": "windows"}),
            );
        }
        _ => {}
    }
    if let Some((key, value)) = &input.extra {
        spec.insert(format!("future{key}"), value.value(0));
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": input.name, "generateName": "web-", "namespace": "team-a", "annotations": annotations},
        "spec": spec});

    let account = ServiceAccount::with_annotations(
        [
            ("eks.amazonaws.com/role-arn", &input.role),
            ("eks.amazonaws.com/audience", &input.audience),
            ("eks.amazonaws.com/sts-regional-endpoints", &input.sts),
            ("irsa-policy.io/region", &input.region),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?))),
    );
    let accounts = EveryoneHasARole(account);
    let payload = serde_json::to_vec(&json!({"request": {"uid": "u",
        "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "team-a", "object": pod}, "settings": settings(input.settings)}))
    .unwrap();
    let decision = irsa_policy::review(&payload, &accounts, &common::log());
    if let irsa_policy::decision::Decision::Mutate { pod: mutated, .. } = &decision {
        if no_duplicates(&pod).is_ok() {
            if let Err(duplicate) = no_duplicates(mutated) {
                panic!("the edit made {duplicate}");
            }
        }
    }
    common::check(&payload, decision, &accounts);
});
