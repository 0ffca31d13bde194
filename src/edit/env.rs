//! The environment table (`resolve::env`) applied to one container: the
//! variables it lacks, group by group, and the ones it keeps for itself.

use super::{to_json, KeptReason};
use crate::error::PolicyError;
use crate::input::fields::Fields;
use crate::resolve::credentials::Credentials;
use crate::resolve::env::{Source, Variable, GROUPS};
use crate::resolve::Injection;
use serde::Serialize;
use serde_json::Value;

/// The variables this container lacks, group by group in the table's order
/// (see `resolve::env`), and why it gets none of a group the injection has.
pub(super) fn missing_env(
    container: &Value,
    injection: &Injection,
    fields: &Fields,
    path: &dyn Fn() -> String,
    out: &mut Vec<Value>,
) -> Result<Vec<KeptReason>, PolicyError> {
    let vars = fields.list(container, "env", &|| format!("{}.env", path()))?;
    let mut names = Vec::with_capacity(vars.len());
    for (index, var) in vars.iter().enumerate() {
        names.push(fields.string(var, "name", &|| format!("{}.env[{index}]", path()))?);
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
