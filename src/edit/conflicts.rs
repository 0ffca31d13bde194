//! What in the pod stops the policy from adding its token: a foreign volume of
//! the token volume's name, another volume at the token path, the token volume
//! mounted elsewhere.

use super::volume::{classify_volume, ExistingVolume};
use crate::error::PolicyError;
use crate::input::fields::Fields;
use crate::resolve::Injection;
use serde_json::Value;

/// The pod's volume with the token volume's name, classified. A foreign one
/// refuses a new pod: the official webhook silently mounted it (its #315).
pub(super) fn existing_volume(
    spec: &Value,
    injection: &Injection,
    fields: &Fields,
) -> Result<Option<ExistingVolume>, PolicyError> {
    let volumes = fields.list(spec, "volumes", &|| "spec.volumes".into())?;
    for (index, volume) in volumes.iter().enumerate() {
        let name = match &volume["name"] {
            Value::String(name) => name.as_str(),
            Value::Null if volume.is_object() => continue,
            Value::Null => {
                return Err(fields.wrong(&|| format!("spec.volumes[{index}]"), "an object", volume))
            }
            other => {
                return Err(fields.wrong(
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
                &injection.token_file_name,
            )));
        }
    }
    Ok(None)
}

/// Whether the container already mounts the token volume where it belongs,
/// or the conflict that stops us from mounting it there.
pub(super) fn token_mount(
    container: &Value,
    container_name: &str,
    pod_name: &str,
    injection: &Injection,
    fields: &Fields,
    path: &dyn Fn() -> String,
) -> Result<bool, PolicyError> {
    let mut has_mount = false;
    let mounts = fields.list(container, "volumeMounts", &|| {
        format!("{}.volumeMounts", path())
    })?;
    for (index, mount) in mounts.iter().enumerate() {
        let at = || format!("{}.volumeMounts[{index}]", path());
        let (volume, mount_path) = (
            fields.string(mount, "name", &at)?,
            fields.string(mount, "mountPath", &at)?,
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
                    pod: pod_name.to_owned(),
                    container: container_name.to_owned(),
                    volume: volume.to_owned(),
                    path: injection.mount_path.clone(),
                    skip_annotation: injection.containers.skip_annotation.clone(),
                })
            }
            (true, false) => {
                return Err(PolicyError::TokenVolumeMountedElsewhere {
                    pod: pod_name.to_owned(),
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
