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
use serde::Serialize;
use serde_json::{Map, Value};

pub const AWS_STS_REGIONAL_ENDPOINTS: &str = "AWS_STS_REGIONAL_ENDPOINTS";
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
pub const AWS_REGION: &str = "AWS_REGION";
pub const AWS_ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";

/// Which containers of the pod the edit is for.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A pod being created: its init containers (native sidecars among them)
    /// and containers; the token volume is added when missing.
    Creation,
    /// Ephemeral containers added to a running pod (`kubectl debug`): only
    /// those not in `existing`, which Kubernetes forbids changing; a running
    /// pod's volumes cannot change, so the token volume must already be there.
    NewEphemeralContainers { existing: &'a [String] },
}

impl Scope<'_> {
    fn lists(&self) -> &'static [&'static str] {
        match self {
            Scope::Creation => &["initContainers", "containers"],
            Scope::NewEphemeralContainers { .. } => &["ephemeralContainers"],
        }
    }
}

/// Every change to make to one pod. Empty when the pod already has it all.
#[derive(Debug, Default, PartialEq)]
pub struct PodEdit {
    volume: Option<Value>,
    label: Option<(&'static str, &'static str)>,
    containers: Vec<ContainerEdit>,
}

#[derive(Debug, PartialEq)]
struct ContainerEdit {
    list: &'static str,
    index: usize,
    mount: Option<Value>,
    env: Vec<Value>,
}

/// The edit, and what it covers, for the decision log and the warnings.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub edit: PodEdit,
    /// Containers that get (or already have) the credentials.
    pub injected: Vec<String>,
    /// Containers left alone because of the container annotations.
    pub skipped: Vec<String>,
    /// `container: VARIABLE` for each variable the policy would have set but
    /// the container sets itself (or leaves to `envFrom`).
    pub kept: Vec<String>,
    /// Names in the container annotations that match no container of the pod.
    pub unknown_names: Vec<String>,
    /// Why new ephemeral containers get nothing, when their pod has no usable
    /// token volume.
    pub no_volume: Option<String>,
}

impl PodEdit {
    pub fn is_empty(&self) -> bool {
        self.volume.is_none() && self.label.is_none() && self.containers.is_empty()
    }

    /// Appends the planned volume, label, mounts and variables. The plan has
    /// checked every path it touches, so nothing here can fail or stop half way.
    pub fn apply(self, pod: &mut Value) {
        if let Some((key, value)) = self.label {
            // The plan has checked that metadata and its labels are objects or absent.
            let labels = pod
                .as_object_mut()
                .and_then(|pod| object_field(pod, "metadata"))
                .and_then(|metadata| object_field(metadata, "labels"));
            if let Some(labels) = labels {
                labels.insert(key.to_owned(), Value::from(value));
            }
        }
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

/// An object field, created when absent or null.
fn object_field<'m>(
    object: &'m mut Map<String, Value>,
    field: &str,
) -> Option<&'m mut Map<String, Value>> {
    let slot = object.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
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

/// Builds a shape error for the field at a path that is only written out
/// when something is wrong, so a well-formed pod costs no path strings.
struct Shapes<'a> {
    pod: &'a str,
}

// Paths are passed as `&dyn Fn`, not generics: one copy of each of these
// functions serves every call site, which keeps the module small.
impl Shapes<'_> {
    #[cold]
    fn error(
        &self,
        field: &dyn Fn() -> String,
        expected: &'static str,
        found: &Value,
    ) -> PolicyError {
        PolicyError::PodShape {
            pod: self.pod.to_owned(),
            field: field(),
            expected,
            found: describe(found),
        }
    }

    /// An optional list field: absent or null is empty, anything else but a list is an error.
    fn list<'v>(
        &self,
        object: &'v Value,
        field: &str,
        path: &dyn Fn() -> String,
    ) -> Result<&'v [Value], PolicyError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.error(path, "a list", other)),
        }
    }

    /// A string field of a list element that must be an object.
    fn string<'v>(
        &self,
        item: &'v Value,
        field: &str,
        path: &dyn Fn() -> String,
    ) -> Result<&'v str, PolicyError> {
        match (item.get(field), item.is_object()) {
            (Some(Value::String(value)), _) => Ok(value),
            (None, true) => Err(PolicyError::MissingPodField {
                pod: self.pod.to_owned(),
                field: format!("{}.{field}", path()),
                expected: "a string",
            }),
            (Some(other), true) => {
                Err(self.error(&|| format!("{}.{field}", path()), "a string", other))
            }
            _ => Err(self.error(path, "an object", item)),
        }
    }
}

/// Works out the whole edit, or the reason the pod cannot get credentials.
pub fn plan(
    pod: &Value,
    pod_label: &str,
    injection: &Injection,
    scope: Scope,
) -> Result<Plan, PolicyError> {
    let shapes = Shapes { pod: pod_label };
    let spec = &pod["spec"];
    let selection = &injection.containers;
    let mut result = Plan::default();
    let mut seen: Vec<&str> = Vec::new();

    for &list in scope.lists() {
        let containers = shapes.list(spec, list, &|| format!("spec.{list}"))?;
        for (index, container) in containers.iter().enumerate() {
            let path = || format!("spec.{list}[{index}]");
            if !container.is_object() {
                return Err(shapes.error(&path, "an object", container));
            }
            let name = match &container["name"] {
                Value::String(name) => name.as_str(),
                Value::Null => "",
                other => {
                    return Err(shapes.error(&|| format!("{}.name", path()), "a string", other))
                }
            };
            seen.push(name);
            if let Scope::NewEphemeralContainers { existing } = scope {
                if existing.iter().any(|e| e == name) {
                    continue;
                }
            }
            if !selection.selects(name) {
                result.skipped.push(name.to_owned());
                continue;
            }
            let has_mount = token_mount(container, name, pod_label, injection, &shapes, &path)?;
            let mut env = Vec::new();
            for kept in missing_env(container, injection, &shapes, &path, &mut env)? {
                result.kept.push(format!("{name}: {kept}"));
            }
            if !has_mount || !env.is_empty() {
                result.edit.containers.push(ContainerEdit {
                    list,
                    index,
                    mount: (!has_mount).then(|| mount(injection)),
                    env,
                });
            }
            result.injected.push(name.to_owned());
        }
    }
    result.unknown_names = selection
        .listed()
        .filter(|listed| !seen.contains(listed))
        .map(str::to_owned)
        .collect();

    // The volume (and the label) are only worth adding for a container that mounts it.
    if result.injected.is_empty() {
        result.edit = PodEdit::default();
        return Ok(result);
    }
    let volume = existing_volume(spec, injection, &shapes)?;
    match scope {
        Scope::Creation => {
            match volume {
                Some(ExistingVolume::Reusable) => {}
                Some(ExistingVolume::Foreign(found)) => {
                    return Err(PolicyError::ForeignTokenVolume {
                        pod: pod_label.to_owned(),
                        volume: injection.volume_name.clone(),
                        found,
                        audience: injection.audience.clone(),
                    })
                }
                None => {
                    result.edit.volume = Some(token_volume(
                        &injection.volume_name,
                        &injection.audience,
                        injection.expiration,
                        &injection.token_path,
                    ))
                }
            }
            result.edit.label = missing_label(pod, injection, &shapes)?;
        }
        Scope::NewEphemeralContainers { .. } => {
            let reason = match volume {
                Some(ExistingVolume::Reusable) => None,
                Some(ExistingVolume::Foreign(found)) => Some(format!(
                    "its volume {:?} is {found}, not the token the policy would add",
                    injection.volume_name
                )),
                None => Some(format!(
                    "the pod has no volume {:?} (it was created without credentials, and a running pod's volumes cannot change)",
                    injection.volume_name
                )),
            };
            if reason.is_some() {
                result.edit = PodEdit::default();
                result.no_volume = reason;
            }
        }
    }
    Ok(result)
}

/// The pod's volume with the token volume's name, classified. A foreign one
/// refuses a new pod: the official webhook silently mounted it (its #315).
fn existing_volume(
    spec: &Value,
    injection: &Injection,
    shapes: &Shapes,
) -> Result<Option<ExistingVolume>, PolicyError> {
    let volumes = shapes.list(spec, "volumes", &|| "spec.volumes".into())?;
    for (index, volume) in volumes.iter().enumerate() {
        let name = match &volume["name"] {
            Value::String(name) => name.as_str(),
            Value::Null if volume.is_object() => continue,
            Value::Null => {
                return Err(shapes.error(&|| format!("spec.volumes[{index}]"), "an object", volume))
            }
            other => {
                return Err(shapes.error(
                    &|| format!("spec.volumes[{index}].name"),
                    "a string",
                    other,
                ))
            }
        };
        if name == injection.volume_name {
            return Ok(Some(classify_volume(
                volume,
                &injection.audience,
                &injection.token_path,
            )));
        }
    }
    Ok(None)
}

/// The pod identity label, when this injection sets one and the pod lacks it.
fn missing_label(
    pod: &Value,
    injection: &Injection,
    shapes: &Shapes,
) -> Result<Option<(&'static str, &'static str)>, PolicyError> {
    let Some((key, value)) = injection.pod_label else {
        return Ok(None);
    };
    match pod.pointer("/metadata/labels") {
        None | Some(Value::Null) => Ok(Some((key, value))),
        // The pod's own value of the label, whatever it is, wins.
        Some(Value::Object(labels)) => Ok((!labels.contains_key(key)).then_some((key, value))),
        Some(other) => Err(shapes.error(&|| "metadata.labels".into(), "an object", other)),
    }
}

/// Whether the container already mounts the token volume where it belongs,
/// or the conflict that stops us from mounting it there.
fn token_mount(
    container: &Value,
    container_name: &str,
    pod_label: &str,
    injection: &Injection,
    shapes: &Shapes,
    path: &dyn Fn() -> String,
) -> Result<bool, PolicyError> {
    let mut has_mount = false;
    let mounts = shapes.list(container, "volumeMounts", &|| {
        format!("{}.volumeMounts", path())
    })?;
    for (index, mount) in mounts.iter().enumerate() {
        let at = || format!("{}.volumeMounts[{index}]", path());
        let (volume, mount_path) = (
            shapes.string(mount, "name", &at)?,
            shapes.string(mount, "mountPath", &at)?,
        );
        // The API server compares mount paths as strings; a trailing slash
        // still shadows the same directory at run time.
        let same_path = mount_path.trim_end_matches('/') == injection.mount_path;
        match (volume == injection.volume_name, same_path) {
            (true, true) => has_mount = true,
            (false, false) => {}
            // Another volume where the token goes: the official webhook added
            // a duplicate mount path and the API server refused the pod (#159).
            (false, true) => {
                return Err(PolicyError::MountPathTaken {
                    pod: pod_label.to_owned(),
                    container: container_name.to_owned(),
                    volume: volume.to_owned(),
                    path: injection.mount_path.clone(),
                    skip_annotation: injection.containers.skip_annotation.clone(),
                })
            }
            (true, false) => {
                return Err(PolicyError::TokenVolumeMountedElsewhere {
                    pod: pod_label.to_owned(),
                    container: container_name.to_owned(),
                    found: format!("volume {volume:?} at {mount_path:?}"),
                    path: injection.mount_path.clone(),
                    skip_annotation: injection.containers.skip_annotation.clone(),
                })
            }
        }
    }
    Ok(has_mount)
}

/// The variables this container lacks, in the official webhook's order, and
/// what the container keeps for itself. The credentials pair and the region
/// pair are set together or not at all: half of a pair from the user and half
/// from us would mix two configurations.
fn missing_env(
    container: &Value,
    injection: &Injection,
    shapes: &Shapes,
    path: &dyn Fn() -> String,
    out: &mut Vec<Value>,
) -> Result<Vec<&'static str>, PolicyError> {
    let vars = shapes.list(container, "env", &|| format!("{}.env", path()))?;
    let mut names = Vec::with_capacity(vars.len());
    for (index, var) in vars.iter().enumerate() {
        names.push(shapes.string(var, "name", &|| format!("{}.env[{index}]", path()))?);
    }
    let has = |name: &str| names.contains(&name);
    let credentials = injection.credentials.env(&injection.token_file);
    let region_from_env_from = injection.skip_region_with_env_from
        && container["envFrom"]
            .as_array()
            .is_some_and(|sources| !sources.is_empty());

    let mut kept = Vec::new();
    let mut keep = |wanted: bool, name: &'static str| {
        if wanted && has(name) {
            kept.push(name);
        }
    };
    keep(injection.sts_regional_endpoints, AWS_STS_REGIONAL_ENDPOINTS);
    keep(injection.region.is_some(), AWS_DEFAULT_REGION);
    keep(injection.region.is_some(), AWS_REGION);
    keep(true, credentials[0].0);
    keep(true, credentials[1].0);
    keep(injection.session_name, AWS_ROLE_SESSION_NAME);

    if injection.sts_regional_endpoints && !has(AWS_STS_REGIONAL_ENDPOINTS) {
        out.push(env_value(AWS_STS_REGIONAL_ENDPOINTS, "regional"));
    }
    if let Some(region) = &injection.region {
        if region_from_env_from {
            kept.push("region left to envFrom");
        } else if !has(AWS_DEFAULT_REGION) && !has(AWS_REGION) {
            out.push(env_value(AWS_DEFAULT_REGION, region));
            out.push(env_value(AWS_REGION, region));
        }
    }
    if !has(credentials[0].0) && !has(credentials[1].0) {
        out.extend(
            credentials
                .iter()
                .map(|(name, value)| env_value(name, value)),
        );
    }
    if injection.session_name && !has(AWS_ROLE_SESSION_NAME) {
        out.push(session_name_from_pod_name());
    }
    Ok(kept)
}

// The pieces the policy adds, as the few typed fields they need: k8s-openapi's
// EnvVar and VolumeMount would serialise through every value source they know.

#[derive(Serialize)]
struct EnvVar<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvVarFromField {
    name: &'static str,
    value_from: FieldRefSource,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FieldRefSource {
    field_ref: FieldRef,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FieldRef {
    field_path: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount<'a> {
    mount_path: &'a str,
    name: &'a str,
    read_only: bool,
}

fn env_value(name: &str, value: &str) -> Value {
    to_json(EnvVar { name, value })
}

/// `AWS_ROLE_SESSION_NAME` from the downward API, so it is the pod's real name.
fn session_name_from_pod_name() -> Value {
    to_json(EnvVarFromField {
        name: AWS_ROLE_SESSION_NAME,
        value_from: FieldRefSource {
            field_ref: FieldRef {
                field_path: "metadata.name",
            },
        },
    })
}

fn mount(injection: &Injection) -> Value {
    to_json(VolumeMount {
        mount_path: &injection.mount_path,
        name: &injection.volume_name,
        read_only: true,
    })
}

/// Serialising these cannot fail: they hold only strings and booleans.
fn to_json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
