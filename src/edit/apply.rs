//! The edit made: only appends, in the places the plan checked.

use super::PodEdit;
use serde_json::{Map, Value};

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
pub(crate) fn object_field<'m>(
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
