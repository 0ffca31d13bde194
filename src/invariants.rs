//! The promises every edit keeps, as checks: the property tests, the fuzz
//! targets and the e2e test host all judge the policy's output with these,
//! so "lossless" and "valid" mean the same thing everywhere.
//!
//! Not called by the policy itself, so the module in policy.wasm leaves them out.

use crate::audit::{is_audit, Written};
use crate::decision::Decision;
use crate::edit::apply::object_field;
use crate::error::PolicyError;
use crate::input::payload::ValidatePayload;
use crate::input::pod::PodFacts;
use crate::lookup::ServiceAccountSource;
use crate::resolve::container_selection;
use crate::settings::{Config, Settings};
use serde_json::{json, Value};

/// Every value of `original` is in `edited` at the same JSON pointer: objects
/// may gain keys, lists may grow at the end, a null may become a list or an
/// object (Kubernetes reads both as absent); nothing else changes. The error is
/// the first pointer that was changed or removed.
pub fn lossless(original: &Value, edited: &Value) -> Result<(), String> {
    lossless_at(original, edited, &mut String::new())
}

fn lossless_at(original: &Value, edited: &Value, at: &mut String) -> Result<(), String> {
    let changed = |at: &str| {
        if at.is_empty() {
            "/".to_owned()
        } else {
            at.to_owned()
        }
    };
    match (original, edited) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let len = at.len();
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                match b.get(key) {
                    Some(other) => lossless_at(value, other, at)?,
                    None => return Err(changed(at)),
                }
                at.truncate(len);
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if b.len() >= a.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                let len = at.len();
                at.push_str(&format!("/{index}"));
                lossless_at(x, y, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        (Value::Null, Value::Array(_) | Value::Object(_)) => Ok(()),
        (a, b) if a == b => Ok(()),
        _ => Err(changed(at)),
    }
}

/// What the API server would refuse in a pod the policy produced: two volumes
/// of one name, or in one container two variables, two mounts of one volume,
/// or two mounts at one path. The error names the first duplicate.
pub fn no_duplicates(pod: &Value) -> Result<(), String> {
    let names = |items: &Value, field: &str| -> Vec<String> {
        items
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|item| item[field].as_str())
                    .map(|s| s.trim_end_matches('/').to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let unique = |what: String, mut values: Vec<String>| {
        values.sort();
        match values.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => Err(format!("{what}: {:?} twice", pair[0])),
            None => Ok(()),
        }
    };
    unique(
        "spec.volumes".into(),
        names(&pod["spec"]["volumes"], "name"),
    )?;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (index, container) in pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("spec.{list}[{index}]");
            unique(format!("{at}.env"), names(&container["env"], "name"))?;
            unique(
                format!("{at}.volumeMounts names"),
                names(&container["volumeMounts"], "name"),
            )?;
            unique(
                format!("{at}.volumeMounts paths"),
                names(&container["volumeMounts"], "mountPath"),
            )?;
        }
    }
    Ok(())
}

/// The `uid` the audit scanner gives the pod an admission let through: the
/// pod's own, once the API server has stored it.
pub const AUDIT_UID: &str = "6f1d0c2e-8a4b-4e6f-9c3d-2b7a5e8f1a40";

/// The audit scanner's request for the pod that `request` (an AdmissionRequest
/// for a pod creation) let through as `admitted`: the pod as the API server
/// stores it (its name, `uid` and status, `defaultMode: 420` on projected
/// volumes), in a CREATE whose `uid` is the pod's, with empty `userInfo` and
/// `resource.resource` the kind, as Kubewarden's scanner sends it.
pub fn audit_request(request: &Value, admitted: &Value) -> Value {
    let mut pod = admitted.clone();
    if let Some(pod) = pod.as_object_mut() {
        if let Some(metadata) = object_field(pod, "metadata") {
            let unnamed = metadata
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if let (true, Some(prefix)) = (
                unnamed,
                metadata.get("generateName").and_then(Value::as_str),
            ) {
                // The API server cuts the prefix to 58 characters and adds five.
                let cut = prefix.floor_char_boundary(58);
                let name = format!("{}x7k2p", &prefix[..cut]);
                metadata.insert("name".into(), name.into());
            }
            metadata.insert("uid".into(), AUDIT_UID.into());
        }
        if let Some(volumes) = pod
            .get_mut("spec")
            .and_then(|spec| spec.get_mut("volumes"))
            .and_then(Value::as_array_mut)
        {
            for projected in volumes
                .iter_mut()
                .filter_map(|v| v.get_mut("projected").and_then(Value::as_object_mut))
            {
                projected.entry("defaultMode").or_insert(json!(420));
            }
        }
        if let Some(status) = object_field(pod, "status") {
            status.entry("phase").or_insert(json!("Running"));
        }
    }
    let mut audit = request.clone();
    if let Some(audit) = audit.as_object_mut() {
        audit.insert("uid".into(), AUDIT_UID.into());
        audit.insert("operation".into(), "CREATE".into());
        audit.insert("userInfo".into(), json!({}));
        audit.insert(
            "resource".into(),
            json!({"group": "", "version": "v1", "resource": "Pod"}),
        );
        audit.insert("object".into(), pod);
        audit.remove("oldObject");
        audit.remove("dryRun");
    }
    audit
}

/// A pod the policy admits now passes the audit now: the pod that `decision`
/// lets through (mutated or unchanged), audited as the scanner would send it
/// with the same ServiceAccounts and settings, is accepted.
///
/// One exception: a pod whose containers came in setting, as their author's
/// own, the pair of variables exactly as the policy writes it, for other
/// credentials than the ServiceAccount gives now (or none). With the token
/// volume and mount (the author's or the policy's), that is byte for byte what
/// a pod looks like after its role changed or was removed, and reporting it is
/// right; the finding must then be about those credentials.
pub fn admitted_passes_audit(
    payload: &[u8],
    decision: &Decision,
    accounts: &dyn ServiceAccountSource,
) -> Result<(), String> {
    let admitted = match decision {
        Decision::Accept { .. } => None,
        Decision::Mutate { pod, .. } => Some(pod),
        Decision::Reject(_) => return Ok(()),
    };
    let Ok(parsed) = ValidatePayload::<Settings>::from_json(payload) else {
        return Ok(());
    };
    // Only pod creations judged by admission, not the scanner's own requests.
    let request = &parsed.request;
    if !request.is_pod_create() || is_audit(&request.uid, &request.object) {
        return Ok(());
    }
    let Ok(top) = serde_json::from_slice::<Value>(payload) else {
        return Ok(());
    };
    let original = &request.object;
    let audit = audit_request(&top["request"], admitted.unwrap_or(original));
    let audit_payload = serde_json::to_vec(&json!({"request": audit, "settings": top["settings"]}))
        .map_err(|e| e.to_string())?;
    let log = slog::Logger::root(slog::Discard, slog::o!());
    match crate::review(&audit_payload, accounts, &log) {
        Decision::Accept { .. } => Ok(()),
        Decision::Reject(PolicyError::OutOfStep { finding, .. })
            if finding.is_about_carried() && carried_on_arrival(original, &parsed) =>
        {
            Ok(())
        }
        other => Err(format!(
            "the pod admission let through does not pass the audit: {other:?}"
        )),
    }
}

/// Whether the pod came in with a pair of variables shaped as the policy writes them.
fn carried_on_arrival(pod: &Value, parsed: &ValidatePayload<Settings>) -> bool {
    let (Ok(facts), Ok(config)) = (
        PodFacts::read(pod, &parsed.request.namespace),
        Config::from_settings(&parsed.settings),
    ) else {
        return false;
    };
    let selection = container_selection(&facts, &config).ok();
    Written::pair_in(pod, &config, facts.windows, selection.as_ref())
}

/// What the fuzz targets and their regression tests ask of one decision on
/// `payload`: it encodes; a rejection carries no object; the pod it lets
/// through passes the audit ([`admitted_passes_audit`]); a mutation is
/// lossless and, run through the policy again (a retried request, or a pod
/// that already went through it), changes nothing more.
pub fn check_decision(
    payload: &[u8],
    decision: Decision,
    accounts: &dyn ServiceAccountSource,
) -> Result<(), String> {
    admitted_passes_audit(payload, &decision, accounts)?;
    let pod = match &decision {
        Decision::Mutate { pod, .. } => Some(pod.clone()),
        _ => None,
    };
    let encoded = crate::encode(decision, payload.len()).map_err(|e| format!("encode: {e}"))?;
    let encoded: Value =
        serde_json::from_slice(&encoded).map_err(|e| format!("the answer is not JSON: {e}"))?;
    if encoded["accepted"] == false && !encoded["mutated_object"].is_null() {
        return Err("a rejection carries an object".into());
    }
    let Some(pod) = pod else { return Ok(()) };
    let top: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("a mutated request does not parse: {e}"))?;
    let request = &top["request"];
    lossless(&request["object"], &pod).map_err(|at| format!("the edit changed or removed {at}"))?;
    // The same request with the edited pod: every other field as it came
    // (inventing one, such as a null subResource, would test another request).
    let mut again = top.clone();
    // serde also reads a request written as a JSON list, by position: there is
    // no field to put the pod in, so no second run.
    let Some(request) = again.get_mut("request").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    request.insert("object".into(), pod);
    let again = serde_json::to_vec(&again).map_err(|e| e.to_string())?;
    let log = slog::Logger::root(slog::Discard, slog::o!());
    match crate::review(&again, accounts, &log) {
        Decision::Accept { .. } => Ok(()),
        other => Err(format!(
            "a second run did not leave the pod alone: {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lossless_allows_appends_and_new_keys_only() {
        let original = json!({"a": [1, {"b": 2}], "c": null, "d": "x", "e/f": 1});
        let grown = json!({"a": [1, {"b": 2, "n": 1}, 3], "c": [], "d": "x", "e/f": 1, "g": 1});
        assert_eq!(lossless(&original, &grown), Ok(()));
        let changed = json!({"a": [1, {"b": 3}], "c": null, "d": "x", "e/f": 1});
        assert_eq!(lossless(&original, &changed), Err("/a/1/b".into()));
        let reordered = json!({"a": [{"b": 2}, 1], "c": null, "d": "x", "e/f": 1});
        assert_eq!(lossless(&original, &reordered), Err("/a/0".into()));
        let removed = json!({"a": [1, {"b": 2}], "c": null, "e/f": 1});
        assert_eq!(lossless(&original, &removed), Err("/d".into()));
        let escaped = json!({"a": [1, {"b": 2}], "c": null, "d": "x", "e/f": 2});
        assert_eq!(lossless(&original, &escaped), Err("/e~1f".into()));
    }

    #[test]
    fn finds_duplicate_names_and_paths() {
        let ok = json!({"spec": {"volumes": [{"name": "a"}, {"name": "b"}],
            "containers": [{"env": [{"name": "X"}], "volumeMounts": [{"name": "a", "mountPath": "/a"}]}]}});
        assert_eq!(no_duplicates(&ok), Ok(()));
        let volumes = json!({"spec": {"volumes": [{"name": "a"}, {"name": "a"}]}});
        assert_eq!(
            no_duplicates(&volumes),
            Err("spec.volumes: \"a\" twice".into())
        );
        let paths = json!({"spec": {"initContainers": [{"volumeMounts": [
            {"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/a/"}]}]}});
        assert_eq!(
            no_duplicates(&paths),
            Err("spec.initContainers[0].volumeMounts paths: \"/a\" twice".into())
        );
    }
}
