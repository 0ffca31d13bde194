//! Kubewarden's audit scanner: which running pods are out of step with their
//! ServiceAccount, the question behind most IRSA support requests ("I annotated
//! the ServiceAccount, why has my pod no credentials?", "I changed the role, why
//! does the pod still use the old one?").
//!
//! With `backgroundAudit: true` the scanner sends every existing pod to the
//! policy as a CREATE and writes the answers into PolicyReports; for a mutating
//! policy only accept and reject count, a patch is dropped. So an audited pod
//! is never edited: it is compared with what the same resolution would give it
//! now, and a pod that differs is refused with what to run.

use crate::aws_env::AWS_ROLE_ARN;
use crate::error::PolicyError;
use crate::injection::Injection;
use serde_json::Value;

/// Whether the request is the audit scanner's rather than the API server's.
///
/// The scanner sends an existing pod as a CREATE whose request `uid` is the
/// pod's own `metadata.uid`. A real CREATE reaches a mutating webhook before
/// the API server assigns the pod a `uid` (or a `creationTimestamp`), and its
/// request `uid` is one of the API server's own, so the two never match.
pub fn is_audit(request_uid: &str, pod: &Value) -> bool {
    !request_uid.is_empty() && pod["metadata"]["uid"].as_str() == Some(request_uid)
}

/// What the pod carries now, read from its JSON.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Carried<'a> {
    /// The audience of the projected token volume with this name, if any;
    /// `Some("")` for a volume of that name that is not a token.
    pub token_audience: Option<&'a str>,
    /// `AWS_ROLE_ARN` of the first container that mounts the token volume.
    pub role_arn: Option<&'a str>,
}

impl<'a> Carried<'a> {
    pub fn read(pod: &'a Value, volume_name: &str) -> Self {
        let volume = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"].as_str() == Some(volume_name));
        let token_audience = volume.map(|volume| {
            volume["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|source| source["serviceAccountToken"]["audience"].as_str())
                .unwrap_or("")
        });
        let mounts_token = |container: &&Value| {
            container["volumeMounts"].as_array().is_some_and(|mounts| {
                mounts
                    .iter()
                    .any(|m| m["name"].as_str() == Some(volume_name))
            })
        };
        let role_arn = ["initContainers", "containers"]
            .iter()
            .filter_map(|list| pod["spec"][list].as_array())
            .flatten()
            .filter(mounts_token)
            .find_map(|container| {
                container["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["name"].as_str() == Some(AWS_ROLE_ARN))
                    .and_then(|e| e["value"].as_str())
            });
        Carried {
            token_audience,
            role_arn,
        }
    }
}

/// What a pod created now would get.
#[derive(Debug, Clone, Copy)]
pub enum Now<'a> {
    /// Credentials, as this injection.
    Gets(&'a Injection),
    /// Nothing: the ServiceAccount grants no credentials (or is gone).
    Nothing,
    /// A refusal: the guardrails no longer allow the ServiceAccount's role.
    Refused(&'a PolicyError),
}

/// Why an audited pod is out of step with what it would get now, if it is.
pub fn out_of_step(carried: &Carried, now: Now) -> Option<String> {
    // A volume of that name that is not a token is not the policy's: a pod
    // created now would be refused naming it, and a restart would not help.
    if carried.token_audience == Some("") {
        return None;
    }
    match (now, carried.token_audience) {
        (Now::Gets(injection), None) => Some(format!(
            "it has no AWS credentials, but its ServiceAccount now gives {}: the pod was created \
             before that (or while the policy was not active)",
            injection.credentials.summary()
        )),
        (Now::Gets(injection), Some(audience)) if audience != injection.audience => Some(format!(
            "its token volume {:?} has audience {audience:?}, but a pod created now gets {:?}",
            injection.volume_name, injection.audience
        )),
        (Now::Gets(injection), Some(_)) => {
            match (carried.role_arn, injection.credentials.role_arn()) {
                (Some(carried), Some(now)) if carried != now => Some(format!(
                    "it runs with AWS_ROLE_ARN {carried}, but its ServiceAccount now names {now}"
                )),
                _ => None,
            }
        }
        (Now::Nothing, Some(_)) => Some(format!(
            "it carries AWS credentials{} although its ServiceAccount no longer grants any",
            role_suffix(carried)
        )),
        (Now::Refused(refusal), Some(_)) => Some(format!(
            "it carries AWS credentials{} that the guardrails now refuse ({refusal})",
            role_suffix(carried)
        )),
        (Now::Nothing | Now::Refused(_), None) => None,
    }
}

fn role_suffix(carried: &Carried) -> String {
    carried
        .role_arn
        .map(|role| format!(" for {role}"))
        .unwrap_or_default()
}

/// What to run so the pod is created again, from its `ownerReferences`.
pub fn remedy(pod: &Value, namespace: &str) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let owners = pod["metadata"]["ownerReferences"].as_array();
    let owner = owners.and_then(|owners| {
        owners
            .iter()
            .find(|o| o["controller"] == true)
            .or_else(|| owners.first())
    });
    let (kind, owner_name) = match owner {
        Some(owner) => (
            owner["kind"].as_str().unwrap_or_default(),
            owner["name"].as_str().unwrap_or_default(),
        ),
        None => ("", ""),
    };
    // A Deployment's ReplicaSet is named <deployment>-<pod-template-hash>.
    let hash = pod["metadata"]["labels"]["pod-template-hash"].as_str();
    let deployment = match (kind, hash) {
        ("ReplicaSet", Some(hash)) => owner_name
            .strip_suffix(hash)
            .and_then(|rest| rest.strip_suffix('-'))
            .filter(|d| !d.is_empty()),
        _ => None,
    };
    match (kind, deployment) {
        (_, Some(deployment)) => format!(
            "restart its Deployment: kubectl -n {namespace} rollout restart deployment/{deployment}"
        ),
        ("StatefulSet" | "DaemonSet", _) => format!(
            "restart its {kind}: kubectl -n {namespace} rollout restart {}/{owner_name}",
            kind.to_ascii_lowercase()
        ),
        ("", _) => format!(
            "delete and re-create the pod (kubectl -n {namespace} delete pod {name}, then apply it again)"
        ),
        _ => format!(
            "delete the pod and let its {kind} {owner_name} create it again: kubectl -n {namespace} delete pod {name}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_audited_pod_is_one_whose_uid_is_the_requests() {
        let pod = json!({"metadata": {"uid": "7c1f"}});
        assert!(is_audit("7c1f", &pod));
        assert!(!is_audit("705ab4f5", &pod));
        // A pod being created has no uid yet.
        assert!(!is_audit("705ab4f5", &json!({"metadata": {"name": "web"}})));
        assert!(!is_audit("", &json!({"metadata": {"uid": ""}})));
    }

    #[test]
    fn reads_the_token_audience_and_the_role_of_a_container_that_mounts_it() {
        let pod = json!({"spec": {
            "volumes": [{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken":
                {"audience": "sts.amazonaws.com", "path": "token"}}]}}],
            "containers": [
                {"name": "proxy", "env": [{"name": "AWS_ROLE_ARN", "value": "arn:own"}]},
                {"name": "app", "env": [{"name": "AWS_ROLE_ARN", "value": "arn:injected"}],
                 "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/t"}]}]}});
        assert_eq!(
            Carried::read(&pod, "aws-iam-token"),
            Carried {
                token_audience: Some("sts.amazonaws.com"),
                role_arn: Some("arn:injected")
            }
        );
        assert_eq!(Carried::read(&pod, "other"), Carried::default());
        let empty_dir = json!({"spec": {"volumes": [{"name": "aws-iam-token", "emptyDir": {}}]}});
        assert_eq!(
            Carried::read(&empty_dir, "aws-iam-token").token_audience,
            Some("")
        );
    }

    #[test]
    fn names_the_workload_to_restart() {
        let deployment_pod = json!({"metadata": {"name": "web-7d9f5c6b8-x2x4z",
            "labels": {"pod-template-hash": "7d9f5c6b8"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f5c6b8", "controller": true}]}});
        assert_eq!(
            remedy(&deployment_pod, "team-a"),
            "restart its Deployment: kubectl -n team-a rollout restart deployment/web"
        );
        let stateful = json!({"metadata": {"name": "db-0",
            "ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": true}]}});
        assert_eq!(
            remedy(&stateful, "team-a"),
            "restart its StatefulSet: kubectl -n team-a rollout restart statefulset/db"
        );
        let job = json!({"metadata": {"name": "backup-x1",
            "ownerReferences": [{"kind": "Job", "name": "backup", "controller": true}]}});
        assert_eq!(
            remedy(&job, "team-a"),
            "delete the pod and let its Job backup create it again: kubectl -n team-a delete pod backup-x1"
        );
        let bare = json!({"metadata": {"name": "debug"}});
        assert_eq!(
            remedy(&bare, "team-a"),
            "delete and re-create the pod (kubectl -n team-a delete pod debug, then apply it again)"
        );
    }
}
