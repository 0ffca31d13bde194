//! The edit of the pod, as JSON, planned in full before anything changes.
//!
//! [`plan`] reads the pod and the [`Injection`] and returns either every edit
//! to make or the conflict that forbids them; [`PodEdit::apply`] then only
//! appends. Nothing is decoded into typed structs and re-encoded, so fields
//! this policy does not know (an init container's `restartPolicy: Always`, a
//! field newer than `k8s-openapi`) come back exactly as they came in: the
//! official webhook rewrote whole container lists and dropped them (its #208).

use crate::error::PolicyError;
use crate::injection::Injection;
use crate::pod::describe;
use crate::token::{classify_volume, token_volume, ExistingVolume};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, VolumeMount};
use serde_json::{Map, Value};

pub const AWS_STS_REGIONAL_ENDPOINTS: &str = "AWS_STS_REGIONAL_ENDPOINTS";
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
pub const AWS_REGION: &str = "AWS_REGION";
pub const AWS_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const AWS_WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const AWS_ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";

/// Init containers (native sidecars among them) and app containers both run
/// AWS code; ephemeral containers are not part of a pod's creation.
const CONTAINER_LISTS: [&str; 2] = ["initContainers", "containers"];

/// Every change to make to one pod. Empty when the pod already has it all.
#[derive(Debug, Default, PartialEq)]
pub struct PodEdit {
    volume: Option<Value>,
    containers: Vec<ContainerEdit>,
}

#[derive(Debug, PartialEq)]
struct ContainerEdit {
    list: &'static str,
    index: usize,
    mount: Option<Value>,
    env: Vec<Value>,
}

/// The edit, and which containers it covers, for the decision log.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub edit: PodEdit,
    /// Containers that get (or already have) the credentials.
    pub injected: Vec<String>,
    /// Containers left alone because the skip annotation lists them.
    pub skipped: Vec<String>,
    /// `container: VARIABLE` for each variable the policy would have set but
    /// the container already sets itself.
    pub kept: Vec<String>,
}

impl PodEdit {
    pub fn is_empty(&self) -> bool {
        self.volume.is_none() && self.containers.is_empty()
    }

    /// Appends the planned volume, mounts and variables. The plan has checked
    /// every path it touches, so nothing here can fail or stop half way.
    pub fn apply(self, pod: &mut Value) {
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(volume) = self.volume {
            push_all(spec, "volumes", [volume]);
        }
        for edit in self.containers {
            let container = spec
                .get_mut(edit.list)
                .and_then(|list| list.get_mut(edit.index))
                .and_then(Value::as_object_mut);
            if let Some(container) = container {
                if let Some(mount) = edit.mount {
                    push_all(container, "volumeMounts", [mount]);
                }
                if !edit.env.is_empty() {
                    push_all(container, "env", edit.env);
                }
            }
        }
    }
}

/// Appends to an array field, creating it when absent or null.
fn push_all(object: &mut Map<String, Value>, field: &str, items: impl IntoIterator<Item = Value>) {
    let slot = object.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    if let Value::Array(array) = slot {
        array.extend(items);
    }
}

/// Works out the whole edit, or the reason the pod cannot get credentials.
pub fn plan(pod: &Value, pod_label: &str, injection: &Injection) -> Result<Plan, PolicyError> {
    let shape = |field: String, expected, found: &Value| PolicyError::PodShape {
        pod: pod_label.to_owned(),
        field,
        expected,
        found: describe(found),
    };
    let spec = &pod["spec"];
    let mut result = Plan::default();
    let mut env_to_add = Vec::new();

    for list in CONTAINER_LISTS {
        for (index, container) in array_field(spec, list, &format!("spec.{list}"), &shape)?
            .iter()
            .enumerate()
        {
            let path = format!("spec.{list}[{index}]");
            if !container.is_object() {
                return Err(shape(path, "an object", container));
            }
            let name = match &container["name"] {
                Value::String(name) => name.as_str(),
                Value::Null => "",
                other => return Err(shape(format!("{path}.name"), "a string", other)),
            };
            if injection.skip_containers.iter().any(|skip| skip == name) {
                result.skipped.push(name.to_owned());
                continue;
            }
            let has_mount = token_mount(container, name, &path, pod_label, injection, &shape)?;
            env_to_add.clear();
            for kept in missing_env(container, &path, injection, &shape, &mut env_to_add)? {
                result.kept.push(format!("{name}: {kept}"));
            }
            if !has_mount || !env_to_add.is_empty() {
                result.edit.containers.push(ContainerEdit {
                    list,
                    index,
                    mount: (!has_mount).then(|| mount(injection)),
                    env: std::mem::take(&mut env_to_add),
                });
            }
            result.injected.push(name.to_owned());
        }
    }

    // The volume is only worth adding for a container that mounts it.
    if result.injected.is_empty() {
        result.edit = PodEdit::default();
        return Ok(result);
    }
    let mut has_volume = false;
    for (index, volume) in array_field(spec, "volumes", "spec.volumes", &shape)?
        .iter()
        .enumerate()
    {
        let name = match &volume["name"] {
            Value::String(name) => name.as_str(),
            Value::Null if volume.is_object() => continue,
            Value::Null => {
                return Err(shape(format!("spec.volumes[{index}]"), "an object", volume))
            }
            other => {
                return Err(shape(
                    format!("spec.volumes[{index}].name"),
                    "a string",
                    other,
                ))
            }
        };
        if name != injection.volume_name {
            continue;
        }
        match classify_volume(volume, &injection.audience) {
            ExistingVolume::Reusable => has_volume = true,
            ExistingVolume::Foreign(found) => {
                return Err(PolicyError::ForeignTokenVolume {
                    pod: pod_label.to_owned(),
                    volume: name.to_owned(),
                    found,
                    audience: injection.audience.clone(),
                })
            }
        }
    }
    if !has_volume {
        result.edit.volume = Some(token_volume(
            &injection.volume_name,
            &injection.audience,
            injection.expiration,
        ));
    }
    Ok(result)
}

type ShapeError<'a> = dyn Fn(String, &'static str, &Value) -> PolicyError + 'a;

/// An optional list field: absent or null is empty, anything but a list is a shape error.
fn array_field<'v>(
    object: &'v Value,
    field: &str,
    path: &str,
    shape: &ShapeError,
) -> Result<&'v [Value], PolicyError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(shape(path.to_owned(), "a list", other)),
    }
}

/// Whether the container already mounts the token volume where it belongs,
/// or the conflict that stops us from mounting it there.
fn token_mount(
    container: &Value,
    container_name: &str,
    path: &str,
    pod_label: &str,
    injection: &Injection,
    shape: &ShapeError,
) -> Result<bool, PolicyError> {
    let mut has_mount = false;
    let mounts_path = format!("{path}.volumeMounts");
    for (index, mount) in array_field(container, "volumeMounts", &mounts_path, shape)?
        .iter()
        .enumerate()
    {
        let field = |name: &str| match &mount[name] {
            Value::String(value) => Ok(value.as_str()),
            other if mount.is_object() => Err(shape(
                format!("{mounts_path}[{index}].{name}"),
                "a string",
                other,
            )),
            _ => Err(shape(format!("{mounts_path}[{index}]"), "an object", mount)),
        };
        let (volume, mount_path) = (field("name")?, field("mountPath")?);
        // The API server compares mount paths as strings; a trailing slash
        // still shadows the same directory at run time.
        let same_path = mount_path.trim_end_matches('/') == injection.mount_path;
        let ours = volume == injection.volume_name;
        match (ours, same_path) {
            (true, true) => has_mount = true,
            (false, false) => {}
            (false, true) => {
                return Err(PolicyError::MountPathTaken {
                    pod: pod_label.to_owned(),
                    container: container_name.to_owned(),
                    volume: volume.to_owned(),
                    path: injection.mount_path.clone(),
                    skip_annotation: injection.skip_annotation.clone(),
                })
            }
            (true, false) => {
                return Err(PolicyError::TokenVolumeMountedElsewhere {
                    pod: pod_label.to_owned(),
                    container: container_name.to_owned(),
                    found: format!("volume {volume:?} at {mount_path}"),
                    path: injection.mount_path.clone(),
                    skip_annotation: injection.skip_annotation.clone(),
                })
            }
        }
    }
    Ok(has_mount)
}

/// The variables this container lacks, in the official webhook's order, and
/// the names of those it sets itself. The identity pair and the region pair
/// are set together or not at all: half of a pair from the user and half from
/// us would mix two configurations.
fn missing_env(
    container: &Value,
    path: &str,
    injection: &Injection,
    shape: &ShapeError,
    out: &mut Vec<Value>,
) -> Result<Vec<&'static str>, PolicyError> {
    let env_path = format!("{path}.env");
    let mut names = Vec::new();
    for (index, var) in array_field(container, "env", &env_path, shape)?
        .iter()
        .enumerate()
    {
        match &var["name"] {
            Value::String(name) => names.push(name.as_str()),
            other if var.is_object() => {
                return Err(shape(
                    format!("{env_path}[{index}].name"),
                    "a string",
                    other,
                ))
            }
            _ => return Err(shape(format!("{env_path}[{index}]"), "an object", var)),
        }
    }
    let has = |name: &str| names.contains(&name);
    let wanted = [
        (injection.sts_regional_endpoints, AWS_STS_REGIONAL_ENDPOINTS),
        (injection.region.is_some(), AWS_DEFAULT_REGION),
        (injection.region.is_some(), AWS_REGION),
        (true, AWS_ROLE_ARN),
        (true, AWS_WEB_IDENTITY_TOKEN_FILE),
        (injection.session_name, AWS_ROLE_SESSION_NAME),
    ];
    let kept = wanted
        .into_iter()
        .filter(|(wanted, name)| *wanted && has(name))
        .map(|(_, name)| name)
        .collect();
    if injection.sts_regional_endpoints && !has(AWS_STS_REGIONAL_ENDPOINTS) {
        out.push(env_value(AWS_STS_REGIONAL_ENDPOINTS, "regional"));
    }
    if let Some(region) = &injection.region {
        if !has(AWS_DEFAULT_REGION) && !has(AWS_REGION) {
            out.push(env_value(AWS_DEFAULT_REGION, region));
            out.push(env_value(AWS_REGION, region));
        }
    }
    if !has(AWS_ROLE_ARN) && !has(AWS_WEB_IDENTITY_TOKEN_FILE) {
        out.push(env_value(AWS_ROLE_ARN, injection.role_arn.as_str()));
        out.push(env_value(
            AWS_WEB_IDENTITY_TOKEN_FILE,
            &injection.token_file,
        ));
    }
    if injection.session_name && !has(AWS_ROLE_SESSION_NAME) {
        out.push(to_json(EnvVar {
            name: AWS_ROLE_SESSION_NAME.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }));
    }
    Ok(kept)
}

fn env_value(name: &str, value: &str) -> Value {
    to_json(EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    })
}

fn mount(injection: &Injection) -> Value {
    to_json(VolumeMount {
        name: injection.volume_name.clone(),
        mount_path: injection.mount_path.clone(),
        read_only: Some(true),
        ..Default::default()
    })
}

/// Serialising these k8s-openapi values cannot fail: they hold only strings
/// and booleans.
fn to_json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
