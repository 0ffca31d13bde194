//! What the policy reads from the pod before deciding anything: who it is,
//! which ServiceAccount it runs as, its annotations, and whether it runs on
//! Windows. Read-only; the edit lives in `edit`.

use super::fields::{describe, Fields};
use crate::error::PolicyError;
use serde_json::{Map, Value};

/// The label that opts a pod out, whatever its value. The official webhook
/// never sees such a pod: its `objectSelector` (`DoesNotExist` on this key)
/// keeps the API server from calling it. A Kubewarden policy's selector is
/// the operator's to write, and `kwctl run` has none, so the policy checks
/// the label itself.
pub const OPT_OUT_LABEL: &str = opt_out_label!();

/// [`OPT_OUT_LABEL`] as a literal, so that a message can `concat!` it
/// rather than format it at run time (which costs the module bytes).
macro_rules! opt_out_label {
    () => {
        "eks.amazonaws.com/skip-pod-identity-webhook"
    };
}
pub(crate) use opt_out_label;

/// The annotation the kubelet puts on the mirror pod of a static pod (its
/// other mark is an owner of kind `Node`).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The pod's identity and the inputs to the decision, borrowed from its JSON.
#[derive(Debug)]
pub struct PodFacts<'a> {
    /// The request's namespace, else the pod's own (a hand-written fixture).
    pub namespace: &'a str,
    /// `namespace/name` (or `namespace/generateName*`): how messages and the
    /// log name the pod (not a Kubernetes label).
    pub display: String,
    pub name: Option<&'a str>,
    pub generate_name: Option<&'a str>,
    pub service_account: &'a str,
    annotations: Option<&'a Map<String, Value>>,
    pub windows: bool,
    /// The pod carries [`OPT_OUT_LABEL`].
    pub opted_out: bool,
    /// The kubelet's mirror of a static pod: the API server refuses it with a
    /// projected service account token, and the kubelet, not a controller,
    /// creates it again.
    pub mirror: bool,
    /// The admission request's `uid`: it tells apart the replicas of one
    /// workload, which share a `generateName` (empty when not given).
    pub request_uid: &'a str,
}

impl<'a> PodFacts<'a> {
    /// `namespace` is the request's; a pod in a request always has one, but a
    /// hand-written fixture may not, so the pod's own metadata is the fallback.
    pub fn read(pod: &'a Value, namespace: &'a str) -> Result<Self, PolicyError> {
        // Not a pod at all: there is no field of it to name, only the request's.
        if !pod.is_object() {
            return Err(PolicyError::MalformedRequest(format!(
                "request.object: must be the Pod, a JSON object, found {}",
                describe(pod)
            )));
        }
        let metadata = pod.get("metadata").unwrap_or(&Value::Null);
        let name = optional_str(metadata, "name");
        let generate_name = optional_str(metadata, "generateName");
        let namespace = match namespace {
            "" => optional_str(metadata, "namespace").unwrap_or_default(),
            namespace => namespace,
        };
        let display = match (name, generate_name) {
            (Some(name), _) if !name.is_empty() => format!("{namespace}/{name}"),
            (_, Some(prefix)) => format!("{namespace}/{prefix}*"),
            _ => format!("{namespace}/<unnamed>"),
        };
        let fields = Fields::of(&display);
        let shape = |field: &str, expected, found: &Value| {
            fields.wrong(&|| field.to_owned(), expected, found)
        };
        // The request says Pod; an object that says otherwise is not one to edit.
        match pod.get("kind") {
            None | Some(Value::Null) => {}
            Some(Value::String(kind)) if kind == "Pod" => {}
            Some(other) => return Err(shape("kind", "\"Pod\"", other)),
        }
        if !(metadata.is_object() || metadata.is_null()) {
            return Err(shape("metadata", "an object", metadata));
        }
        let annotations = match metadata.get("annotations") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => return Err(shape("metadata.annotations", "an object", other)),
        };
        // A label map that is not a map cannot say whether the pod opted out.
        let opted_out = match metadata.get("labels") {
            None | Some(Value::Null) => false,
            Some(Value::Object(labels)) => labels.contains_key(OPT_OUT_LABEL),
            Some(other) => return Err(shape("metadata.labels", "an object", other)),
        };
        let mirror = annotations.is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
            || metadata["ownerReferences"]
                .as_array()
                .is_some_and(|owners| owners.iter().any(|o| o["kind"] == "Node"));
        let spec = match pod.get("spec") {
            Some(spec @ Value::Object(_)) => spec,
            other => return Err(shape("spec", "an object", other.unwrap_or(&Value::Null))),
        };
        // `serviceAccount` is the deprecated alias the API server still copies
        // into `serviceAccountName`; fixtures written by hand may only have it.
        let service_account = ["serviceAccountName", "serviceAccount"]
            .into_iter()
            .find_map(|field| match spec.get(field) {
                Some(Value::String(sa)) if !sa.is_empty() => Some(Ok(sa.as_str())),
                None | Some(Value::Null) | Some(Value::String(_)) => None,
                Some(other) => Some(Err(shape(&format!("spec.{field}"), "a string", other))),
            })
            .transpose()?
            .unwrap_or("default");
        Ok(Self {
            windows: runs_on_windows(spec),
            opted_out,
            mirror,
            request_uid: "",
            namespace,
            display,
            name,
            generate_name,
            service_account,
            annotations,
        })
    }

    /// The facts of the pod of the admission request with this `uid`.
    pub fn in_request(self, uid: &'a str) -> Self {
        Self {
            request_uid: uid,
            ..self
        }
    }

    /// What tells this pod creation from any other, for a value that must
    /// differ between pods yet stay the same for the same request: the
    /// request's uid, the namespace, the name (or `generateName`, the only
    /// name a workload's pod has at admission) and the ServiceAccount.
    pub fn identity(&self) -> [&'a str; 4] {
        let name = match (self.name, self.generate_name) {
            (Some(name), _) if !name.is_empty() => name,
            (_, prefix) => prefix.unwrap_or_default(),
        };
        [self.request_uid, self.namespace, name, self.service_account]
    }

    /// The value of one pod annotation; a non-string value is a shape error.
    pub fn annotation(&self, key: &str) -> Result<Option<&'a str>, PolicyError> {
        match self.annotations.and_then(|a| a.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(other) => Err(Fields::of(&self.display).wrong(
                &|| format!("metadata.annotations[{key:?}]"),
                "a string",
                other,
            )),
        }
    }
}

fn optional_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str)
}

const OS_LABELS: [&str; 2] = ["kubernetes.io/os", "beta.kubernetes.io/os"];

/// Windows containers need a `C:\` token path. The official webhook only looks
/// at `nodeSelector`; `spec.os.name` and required node affinity pin a pod to
/// Windows just as surely (its issue #57).
fn runs_on_windows(spec: &Value) -> bool {
    let is_windows = |value: &Value| value.as_str() == Some("windows");
    if is_windows(&spec["os"]["name"]) {
        return true;
    }
    if OS_LABELS
        .iter()
        .any(|label| is_windows(&spec["nodeSelector"][label]))
    {
        return true;
    }
    // Terms are ORed: every term must pin the OS to windows. Inside a term,
    // expressions are ANDed: one `In [windows]` on an OS label pins it.
    let terms = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    terms.is_some_and(|terms| {
        !terms.is_empty()
            && terms.iter().all(|term| {
                term["matchExpressions"]
                    .as_array()
                    .is_some_and(|expressions| {
                        expressions.iter().any(|expression| {
                            let values = expression["values"].as_array();
                            expression["key"]
                                .as_str()
                                .is_some_and(|key| OS_LABELS.contains(&key))
                                && expression["operator"] == "In"
                                && values.is_some_and(|v| !v.is_empty() && v.iter().all(is_windows))
                        })
                    })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn facts(pod: &Value) -> PodFacts<'_> {
        PodFacts::read(pod, "team-a").unwrap()
    }

    #[test]
    fn service_account_defaults_to_default() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {"containers": []}});
        assert_eq!(facts(&pod).service_account, "default");
        assert_eq!(facts(&pod).display, "team-a/web");
    }

    #[test]
    fn reads_service_account_name_then_deprecated_service_account() {
        let pod = json!({"spec": {"serviceAccountName": "app", "serviceAccount": "old"}});
        assert_eq!(facts(&pod).service_account, "app");
        let pod = json!({"spec": {"serviceAccount": "old"}});
        assert_eq!(facts(&pod).service_account, "old");
    }

    #[test]
    fn labels_generate_name_pods_with_a_star() {
        let pod = json!({"metadata": {"generateName": "web-7d9f-"}, "spec": {}});
        assert_eq!(facts(&pod).display, "team-a/web-7d9f-*");
        let pod = json!({"metadata": {"namespace": "own"}, "spec": {}});
        assert_eq!(PodFacts::read(&pod, "").unwrap().display, "own/<unnamed>");
    }

    #[rstest]
    #[case(json!({"spec": {"os": {"name": "windows"}}}), true)]
    #[case(json!({"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}}), true)]
    #[case(json!({"spec": {"nodeSelector": {"beta.kubernetes.io/os": "windows"}}}), true)]
    #[case(json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]}]}}}}}), true)]
    #[case(json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}}), false)]
    #[case(json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows", "linux"]}]}]}}}}}), false)]
    #[case(json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution":
        [{"weight": 1, "preference": {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]}}]}}}}), false)]
    #[case(json!({"spec": {"os": {"name": "linux"}, "nodeSelector": {"kubernetes.io/os": "linux"}}}), false)]
    #[case(json!({"spec": {}}), false)]
    fn detects_windows_pods(#[case] pod: Value, #[case] windows: bool) {
        assert_eq!(facts(&pod).windows, windows);
    }

    #[rstest]
    #[case(json!({"spec": "x"}), "spec must be an object, found string \"x\"")]
    #[case(json!({}), "spec must be an object, found null")]
    #[case(json!({"metadata": [], "spec": {}}), "metadata must be an object, found a list")]
    #[case(json!({"metadata": {"annotations": "a=b"}, "spec": {}}), "metadata.annotations must be an object")]
    #[case(json!({"metadata": {"labels": ["a"]}, "spec": {}}), "metadata.labels must be an object, found a list")]
    #[case(json!({"spec": {"serviceAccountName": 7}}), "spec.serviceAccountName must be a string, found number 7")]
    #[case(json!({"kind": "ConfigMap", "data": {}}), "kind must be \"Pod\", found string \"ConfigMap\"")]
    fn names_the_field_of_a_malformed_pod(#[case] pod: Value, #[case] message: &str) {
        let err = PodFacts::read(&pod, "team-a").unwrap_err().to_string();
        assert!(err.contains(message), "{err:?} should contain {message:?}");
    }

    #[rstest]
    #[case(json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"}), true)]
    #[case(json!({"eks.amazonaws.com/skip-pod-identity-webhook": ""}), true)]
    #[case(json!({"eks.amazonaws.com/skip-pod-identity-webhook": "false"}), true)]
    #[case(json!({"app": "web"}), false)]
    #[case(json!({"irsa.example.com/skip-pod-identity-webhook": "true"}), false)]
    #[case(Value::Null, false)]
    fn the_opt_out_label_counts_whatever_its_value(#[case] labels: Value, #[case] opted_out: bool) {
        let pod = json!({"metadata": {"labels": labels}, "spec": {}});
        assert_eq!(facts(&pod).opted_out, opted_out);
    }

    #[rstest]
    #[case(json!({"annotations": {"kubernetes.io/config.mirror": "3b2f"}}), true)]
    #[case(json!({"ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "worker-1", "controller": true}]}), true)]
    #[case(json!({"annotations": {"kubernetes.io/config.source": "file"}}), false)]
    #[case(json!({"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1"}]}), false)]
    fn a_mirror_pod_is_marked_by_annotation_or_node_owner(
        #[case] metadata: Value,
        #[case] mirror: bool,
    ) {
        let pod = json!({"metadata": metadata, "spec": {}});
        assert_eq!(facts(&pod).mirror, mirror);
    }

    #[test]
    fn identity_is_the_request_namespace_name_and_service_account() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {"serviceAccountName": "app"}});
        assert_eq!(
            facts(&pod).in_request("uid-1").identity(),
            ["uid-1", "team-a", "web", "app"]
        );
        let replica = json!({"metadata": {"name": "", "generateName": "web-7d9f-"}, "spec": {}});
        assert_eq!(
            facts(&replica).identity(),
            ["", "team-a", "web-7d9f-", "default"]
        );
    }

    #[test]
    fn non_string_annotation_is_a_shape_error() {
        let pod = json!({"metadata": {"annotations": {"k": 5}}, "spec": {}});
        let err = facts(&pod).annotation("k").unwrap_err().to_string();
        assert!(
            err.contains("metadata.annotations[\"k\"] must be a string, found number 5"),
            "{err}"
        );
    }
}
