//! The edit of the pod, as JSON, planned in full before anything changes.
//!
//! [`plan`] reads the pod and the [`Injection`] and returns either every edit
//! to make or the conflict that forbids them; [`PodEdit::apply`] then only
//! appends. Nothing is decoded into typed structs and re-encoded, so fields
//! this policy does not know (an init container's `restartPolicy: Always`, a
//! field newer than `k8s-openapi`) come back exactly as they came in: the
//! official webhook rewrote whole container lists and dropped them (its #208).

use crate::aws_env::{Group, Source, Variable, GROUPS};
use crate::credentials::Credentials;
use crate::error::PolicyError;
use crate::injection::Injection;
use crate::pod::describe;
use crate::token::{classify_volume, token_volume, ExistingVolume};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

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
    /// The variables the policy would have set but the container sets itself
    /// (or leaves to `envFrom`).
    pub kept: Vec<Kept>,
    /// Names in the container annotations that match no container of the pod.
    pub unknown_names: Vec<String>,
    /// Why new ephemeral containers get nothing, when their pod has no usable
    /// token volume.
    pub no_volume: Option<String>,
}

/// A group of variables a container keeps for itself, for the decision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub container: String,
    pub reason: KeptReason,
}

/// Why a container gets none of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptReason {
    /// The container sets this variable of the group itself.
    SetByContainer(&'static str),
    /// `skipRegionWithEnvFrom`: the group is left to the container's `envFrom`.
    LeftToEnvFrom(&'static Group),
}

/// `app: AWS_REGION`, `app: region left to envFrom`.
impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            KeptReason::SetByContainer(variable) => write!(f, "{}: {variable}", self.container),
            KeptReason::LeftToEnvFrom(group) => {
                write!(f, "{}: {} left to envFrom", self.container, group.name)
            }
        }
    }
}

impl PodEdit {
    pub fn is_empty(&self) -> bool {
        self.volume.is_none() && self.label.is_none() && self.containers.is_empty()
    }

    /// Whether the edit adds the token volume: the pod has none of its own.
    pub fn adds_volume(&self) -> bool {
        self.volume.is_some()
    }

    /// What the edit adds, for a person: `container "app": AWS_REGION`.
    pub fn describe(&self, pod: &Value) -> Vec<String> {
        let mut items = Vec::new();
        if let Some(volume) = &self.volume {
            items.push(format!("the volume {}", volume["name"]));
        }
        for edit in &self.containers {
            let name = &pod["spec"][edit.list][edit.index]["name"];
            let mut added: Vec<String> = edit
                .mount
                .iter()
                .map(|mount| format!("the mount of {}", mount["name"]))
                .collect();
            added.extend(
                edit.env
                    .iter()
                    .filter_map(|var| var["name"].as_str().map(str::to_owned)),
            );
            items.push(format!("container {name}: {}", added.join(", ")));
        }
        if let Some((key, value)) = self.label {
            items.push(format!("the label {key}={value}"));
        }
        items
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
            for reason in missing_env(container, injection, &shapes, &path, &mut env)? {
                result.kept.push(Kept {
                    container: name.to_owned(),
                    reason,
                });
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

/// The variables this container lacks, group by group in the table's order
/// (see `aws_env`), and why it gets none of a group the injection has.
fn missing_env(
    container: &Value,
    injection: &Injection,
    shapes: &Shapes,
    path: &dyn Fn() -> String,
    out: &mut Vec<Value>,
) -> Result<Vec<KeptReason>, PolicyError> {
    let vars = shapes.list(container, "env", &|| format!("{}.env", path()))?;
    let mut names = Vec::with_capacity(vars.len());
    for (index, var) in vars.iter().enumerate() {
        names.push(shapes.string(var, "name", &|| format!("{}.env[{index}]", path()))?);
    }
    let env_from = injection.skip_region_with_env_from
        && container["envFrom"]
            .as_array()
            .is_some_and(|sources| !sources.is_empty());

    let mut kept = Vec::new();
    // Reasons other than the container's own variables come after all of those.
    let mut left_to_env_from = Vec::new();
    let wanted = |v: &Variable| value(v.source, injection).is_some();
    for group in GROUPS {
        if !group.variables.iter().all(wanted) {
            continue;
        }
        let before = kept.len();
        for variable in group.variables {
            if names.contains(&variable.name) {
                kept.push(KeptReason::SetByContainer(variable.name));
            }
        }
        if group.left_to_env_from && env_from {
            left_to_env_from.push(KeptReason::LeftToEnvFrom(group));
        } else if kept.len() == before {
            out.extend(group.variables.iter().filter_map(|variable| {
                Some(env_var(variable.name, value(variable.source, injection)?))
            }));
        }
    }
    kept.append(&mut left_to_env_from);
    Ok(kept)
}

/// A variable's value for this pod, or `None` when the pod does not get it.
enum EnvValue<'a> {
    Text(&'a str),
    PodName,
}

fn value(source: Source, injection: &Injection) -> Option<EnvValue<'_>> {
    let text = match (source, &injection.credentials) {
        (Source::RegionalSts, _) => injection.sts_regional_endpoints.then_some("regional"),
        (Source::Region, _) => injection.region.as_deref(),
        (Source::RoleArn, Credentials::WebIdentity { role_arn }) => Some(role_arn.as_str()),
        (Source::FullUri, Credentials::ContainerCredentials { full_uri }) => {
            Some(full_uri.as_str())
        }
        (Source::RoleArn | Source::FullUri, _) => None,
        (Source::TokenFile, _) => Some(injection.token_file.as_str()),
        (Source::StsEndpoint, _) => injection.sts_endpoint.as_deref(),
        (Source::PodName, _) => return injection.session_name.then_some(EnvValue::PodName),
    };
    text.map(EnvValue::Text)
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

fn env_var(name: &'static str, value: EnvValue) -> Value {
    match value {
        EnvValue::Text(value) => to_json(EnvVar { name, value }),
        // From the downward API, so it is the pod's real name even for
        // `generateName` pods.
        EnvValue::PodName => to_json(EnvVarFromField {
            name,
            value_from: FieldRefSource {
                field_ref: FieldRef {
                    field_path: "metadata.name",
                },
            },
        }),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_env::*;
    use crate::injection::ContainerSelection;
    use crate::role_arn::RoleArn;
    use crate::token::TokenExpiration;
    use rstest::rstest;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::111122223333:role/app";
    const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
    const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

    /// The one place these tests build an injection: a role and nothing else.
    fn web_identity() -> Injection {
        Injection {
            credentials: Credentials::WebIdentity {
                role_arn: RoleArn::parse(ROLE).unwrap(),
            },
            audience: "sts.amazonaws.com".into(),
            expiration: TokenExpiration::within_bounds(86_400).unwrap(),
            volume_name: "aws-iam-token".into(),
            mount_path: MOUNT_PATH.into(),
            token_path: "token".into(),
            token_file: TOKEN_FILE.into(),
            region: None,
            sts_regional_endpoints: false,
            sts_endpoint: None,
            session_name: false,
            containers: ContainerSelection::default(),
            skip_region_with_env_from: false,
            pod_label: None,
        }
    }

    /// Every group on: regional STS, a region, the role and the session name.
    fn everything() -> Injection {
        Injection {
            region: Some("eu-west-1".into()),
            sts_regional_endpoints: true,
            session_name: true,
            ..web_identity()
        }
    }

    fn container_credentials() -> Injection {
        Injection {
            credentials: Credentials::ContainerCredentials {
                full_uri: "http://169.254.170.23/v1/credentials".into(),
            },
            ..web_identity()
        }
    }

    /// The volume the policy adds for [`web_identity`], with these seconds.
    fn role_token_volume(seconds: i64) -> Value {
        let expiration = TokenExpiration::within_bounds(seconds).unwrap();
        token_volume("aws-iam-token", "sts.amazonaws.com", expiration, "token")
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"containers": containers}})
    }

    fn app(env: Value) -> Value {
        pod(json!([{"name": "app", "image": "app:1", "env": env}]))
    }

    fn planned(pod: &Value, injection: &Injection) -> Result<Plan, PolicyError> {
        plan(pod, "team-a/web", injection, Scope::Creation)
    }

    /// The pod after the edit, and the groups its containers kept.
    fn edited(mut pod: Value, injection: &Injection) -> (Value, Vec<Kept>) {
        let plan = planned(&pod, injection).unwrap();
        plan.edit.apply(&mut pod);
        (pod, plan.kept)
    }

    fn env_names(pod: &Value, index: usize) -> Vec<&str> {
        pod["spec"]["containers"][index]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|var| var["name"].as_str().unwrap())
            .collect()
    }

    fn kept_text(kept: &[Kept]) -> Vec<String> {
        kept.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_group_is_set_in_the_official_order() {
        let (pod, kept) = edited(app(json!(null)), &everything());
        assert_eq!(
            pod["spec"]["containers"][0]["env"],
            json!([
                {"name": AWS_STS_REGIONAL_ENDPOINTS, "value": "regional"},
                {"name": AWS_DEFAULT_REGION, "value": "eu-west-1"},
                {"name": AWS_REGION, "value": "eu-west-1"},
                {"name": AWS_ROLE_ARN, "value": ROLE},
                {"name": AWS_WEB_IDENTITY_TOKEN_FILE, "value": TOKEN_FILE},
                {"name": AWS_ROLE_SESSION_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ])
        );
        assert!(kept.is_empty());
    }

    #[test]
    fn container_credentials_get_their_pair_instead_of_the_roles() {
        let (pod, _) = edited(app(json!(null)), &container_credentials());
        assert_eq!(
            pod["spec"]["containers"][0]["env"],
            json!([
                {"name": AWS_CONTAINER_CREDENTIALS_FULL_URI, "value": "http://169.254.170.23/v1/credentials"},
                {"name": AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "value": TOKEN_FILE},
            ])
        );
    }

    #[test]
    fn groups_the_injection_has_no_value_for_are_not_set() {
        let (pod, _) = edited(app(json!(null)), &web_identity());
        assert_eq!(
            env_names(&pod, 0),
            [AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE]
        );
    }

    #[rstest]
    #[case(AWS_STS_REGIONAL_ENDPOINTS, &[AWS_STS_REGIONAL_ENDPOINTS])]
    #[case(AWS_DEFAULT_REGION, &[AWS_DEFAULT_REGION, AWS_REGION])]
    #[case(AWS_REGION, &[AWS_DEFAULT_REGION, AWS_REGION])]
    #[case(AWS_ROLE_ARN, &[AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE])]
    #[case(AWS_WEB_IDENTITY_TOKEN_FILE, &[AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE])]
    #[case(AWS_ROLE_SESSION_NAME, &[AWS_ROLE_SESSION_NAME])]
    fn a_containers_own_variable_keeps_its_whole_group(#[case] own: &str, #[case] group: &[&str]) {
        let (pod, kept) = edited(app(json!([{"name": own, "value": "mine"}])), &everything());
        let (all, _) = edited(app(json!(null)), &everything());
        let others = env_names(&all, 0)
            .into_iter()
            .filter(|n| !group.contains(n));
        let expected: Vec<&str> = std::iter::once(own).chain(others).collect();
        assert_eq!(env_names(&pod, 0), expected);
        assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "mine");
        assert_eq!(kept_text(&kept), [format!("app: {own}")]);
    }

    #[test]
    fn a_variable_of_the_other_credentials_is_not_the_containers_own() {
        let (pod, kept) = edited(
            app(json!([{"name": AWS_ROLE_ARN, "value": "mine"}])),
            &container_credentials(),
        );
        assert_eq!(
            env_names(&pod, 0),
            [
                AWS_ROLE_ARN,
                AWS_CONTAINER_CREDENTIALS_FULL_URI,
                AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
            ]
        );
        assert!(kept.is_empty());
    }

    #[test]
    fn the_region_is_left_to_env_from_only_with_the_setting() {
        let pod = pod(json!([{"name": "app", "envFrom": [{"configMapRef": {"name": "aws"}}]}]));
        let (without_setting, _) = edited(pod.clone(), &everything());
        assert!(env_names(&without_setting, 0).contains(&AWS_REGION));

        let injection = Injection {
            skip_region_with_env_from: true,
            ..everything()
        };
        let (with_setting, kept) = edited(pod, &injection);
        let env = env_names(&with_setting, 0);
        assert!(!env.contains(&AWS_REGION) && !env.contains(&AWS_DEFAULT_REGION));
        assert!(env.contains(&AWS_ROLE_ARN) && env.contains(&AWS_STS_REGIONAL_ENDPOINTS));
        assert_eq!(kept_text(&kept), ["app: region left to envFrom"]);
    }

    #[test]
    fn an_empty_env_from_does_not_take_the_region() {
        let injection = Injection {
            skip_region_with_env_from: true,
            ..everything()
        };
        let (pod, kept) = edited(pod(json!([{"name": "app", "envFrom": []}])), &injection);
        assert!(env_names(&pod, 0).contains(&AWS_REGION));
        assert!(kept.is_empty());
    }

    #[test]
    fn kept_variables_come_before_what_is_left_to_env_from() {
        let injection = Injection {
            skip_region_with_env_from: true,
            ..everything()
        };
        let pod = pod(
            json!([{"name": "app", "envFrom": [{"secretRef": {"name": "aws"}}],
            "env": [{"name": AWS_ROLE_SESSION_NAME, "value": "me"}, {"name": AWS_REGION, "value": "us-east-1"}]}]),
        );
        let (_, kept) = edited(pod, &injection);
        let region = GROUPS.iter().find(|g| g.name == "region").unwrap();
        assert_eq!(
            kept,
            [
                Kept {
                    container: "app".into(),
                    reason: KeptReason::SetByContainer(AWS_REGION)
                },
                Kept {
                    container: "app".into(),
                    reason: KeptReason::SetByContainer(AWS_ROLE_SESSION_NAME)
                },
                Kept {
                    container: "app".into(),
                    reason: KeptReason::LeftToEnvFrom(region)
                },
            ]
        );
        assert_eq!(
            kept_text(&kept),
            [
                "app: AWS_REGION",
                "app: AWS_ROLE_SESSION_NAME",
                "app: region left to envFrom"
            ]
        );
    }

    #[test]
    fn variables_are_appended_after_the_containers_own() {
        let (pod, _) = edited(
            app(json!([{"name": "LOG_LEVEL", "value": "debug"}])),
            &web_identity(),
        );
        assert_eq!(
            env_names(&pod, 0),
            ["LOG_LEVEL", AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE]
        );
    }

    #[rstest]
    #[case(web_identity())]
    #[case(everything())]
    #[case(container_credentials())]
    #[case(Injection { skip_region_with_env_from: true, pod_label: Some(("eks.amazonaws.com/pod-identity", "enabled")), ..everything() })]
    fn a_second_edit_changes_nothing(#[case] injection: Injection) {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "init"}, {"name": "sidecar", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "aws"}}]},
                           {"name": "worker", "env": [{"name": AWS_REGION, "value": "us-east-1"}]}]}});
        let (once, _) = edited(pod.clone(), &injection);
        assert_ne!(once, pod);
        let again = planned(&once, &injection).unwrap();
        assert!(again.edit.is_empty(), "{:?}", again.edit);
        assert_eq!(again.injected, ["init", "sidecar", "app", "worker"]);
    }

    #[test]
    fn every_selected_container_gets_the_mount_and_the_pod_the_volume() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]}});
        let (pod, _) = edited(pod, &web_identity());
        let token_mount =
            json!({"mountPath": MOUNT_PATH, "name": "aws-iam-token", "readOnly": true});
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"],
            json!([token_mount])
        );
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "data", "mountPath": "/data"}, token_mount])
        );
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[1], role_token_volume(86_400));
    }

    #[rstest]
    #[case(MOUNT_PATH)]
    #[case("/var/run/secrets/eks.amazonaws.com/serviceaccount/")]
    fn an_existing_token_mount_is_kept(#[case] mount_path: &str) {
        let mounts = json!([{"name": "aws-iam-token", "mountPath": mount_path}]);
        let pod = pod(json!([{"name": "app", "volumeMounts": mounts}]));
        let (pod, _) = edited(pod, &web_identity());
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"], mounts);
    }

    #[test]
    fn the_pods_own_token_volume_is_reused() {
        let volume = role_token_volume(3600);
        let mut pod = app(json!(null));
        pod["spec"]["volumes"] = json!([volume]);
        let (pod, _) = edited(pod, &web_identity());
        assert_eq!(pod["spec"]["volumes"], json!([volume]));
        assert!(env_names(&pod, 0).contains(&AWS_ROLE_ARN));
    }

    #[test]
    fn refuses_a_foreign_volume_of_the_token_volumes_name() {
        let mut pod = app(json!(null));
        pod["spec"]["volumes"] = json!([{"name": "aws-iam-token", "emptyDir": {}}]);
        let err = planned(&pod, &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::ForeignTokenVolume { found, .. } if found == "an emptyDir volume"),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_another_volume_at_the_token_mount_path() {
        let pod = pod(json!([{"name": "app",
            "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]}]));
        let err = planned(&pod, &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::MountPathTaken { container, volume, .. } if container == "app" && volume == "mine"),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_the_token_volume_mounted_elsewhere() {
        let pod = pod(json!([{"name": "app",
            "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/token"}]}]));
        let err = planned(&pod, &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::TokenVolumeMountedElsewhere { found, .. } if found == "volume \"aws-iam-token\" at \"/token\""),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_a_variable_without_a_name_naming_its_path() {
        let err = planned(&app(json!([{"value": "x"}])), &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::MissingPodField { field, .. } if field == "spec.containers[0].env[0].name"),
            "{err:?}"
        );
    }

    #[test]
    fn skipped_containers_are_left_alone_and_unknown_names_reported() {
        let injection = Injection {
            containers: ContainerSelection {
                skip: vec!["proxy".into(), "gone".into()],
                ..ContainerSelection::default()
            },
            ..web_identity()
        };
        let original = pod(json!([{"name": "app"}, {"name": "proxy"}]));
        let plan = planned(&original, &injection).unwrap();
        assert_eq!(plan.injected, ["app"]);
        assert_eq!(plan.skipped, ["proxy"]);
        assert_eq!(plan.unknown_names, ["gone"]);
        let (pod, _) = edited(original.clone(), &injection);
        assert_eq!(
            pod["spec"]["containers"][1],
            original["spec"]["containers"][1]
        );
    }

    #[test]
    fn nothing_is_added_when_no_container_is_selected() {
        let injection = Injection {
            containers: ContainerSelection {
                skip: vec!["app".into()],
                ..ContainerSelection::default()
            },
            pod_label: Some(("eks.amazonaws.com/pod-identity", "enabled")),
            ..web_identity()
        };
        assert!(planned(&app(json!(null)), &injection)
            .unwrap()
            .edit
            .is_empty());
    }

    #[test]
    fn the_pod_label_is_added_unless_the_pod_has_its_own() {
        let injection = Injection {
            pod_label: Some(("eks.amazonaws.com/pod-identity", "enabled")),
            ..container_credentials()
        };
        let (pod, _) = edited(app(json!(null)), &injection);
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"eks.amazonaws.com/pod-identity": "enabled"})
        );
        let mut own = app(json!(null));
        own["metadata"]["labels"] = json!({"eks.amazonaws.com/pod-identity": "no"});
        let (own, _) = edited(own, &injection);
        assert_eq!(
            own["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
            "no"
        );
    }

    #[test]
    fn new_ephemeral_containers_only_and_only_with_the_token_volume() {
        let volume = role_token_volume(86_400);
        let mut pod = json!({"metadata": {"name": "web"}, "spec": {
            "containers": [{"name": "app"}],
            "ephemeralContainers": [{"name": "old"}, {"name": "debugger"}]}});
        let existing = ["old".to_owned()];
        let scope = Scope::NewEphemeralContainers {
            existing: &existing,
        };

        let without_volume = plan(&pod, "team-a/web", &web_identity(), scope).unwrap();
        assert!(without_volume.edit.is_empty());
        assert!(without_volume.no_volume.is_some());

        pod["spec"]["volumes"] = json!([volume]);
        let plan = plan(&pod, "team-a/web", &web_identity(), scope).unwrap();
        assert_eq!(plan.injected, ["debugger"]);
        let before = pod.clone();
        plan.edit.apply(&mut pod);
        assert_eq!(pod["spec"]["containers"], before["spec"]["containers"]);
        assert_eq!(pod["spec"]["volumes"], before["spec"]["volumes"]);
        assert_eq!(
            pod["spec"]["ephemeralContainers"][0],
            json!({"name": "old"})
        );
        let debugger = &pod["spec"]["ephemeralContainers"][1];
        assert_eq!(debugger["env"][0]["name"], AWS_ROLE_ARN);
        assert_eq!(debugger["volumeMounts"][0]["name"], "aws-iam-token");
    }
}
