//! Stage 6 of the flow: the audit.
//!
//! Kubewarden's audit scanner: which running pods are out of step with their
//! ServiceAccount, the question behind most IRSA support requests ("I annotated
//! the ServiceAccount, why has my pod no credentials?", "I changed the role, why
//! does the pod still use the old one?").
//!
//! With `backgroundAudit: true` the scanner sends every existing pod to the
//! policy as a CREATE and writes the answers into reports; for a mutating
//! policy only accept and reject count, a patch is dropped. So an audited pod
//! is never edited: it is compared with what the same resolution would give it
//! now, and a pod that differs is refused with what to run.
//!
//! The rule that keeps a report worth reading: a pod the policy admits now
//! passes the audit now (`invariants::admitted_passes_audit`). So only what
//! the policy itself writes is compared (a role a container sets for itself
//! is the author's), pods that run no code or that no restart can change pass,
//! and a pod that a restart would not fix is told what to fix first.

use crate::edit::{plan, Scope};
use crate::error::{Finding, PolicyError};
use crate::input::pod::{opt_out_label, PodFacts};
use crate::lookup::{Lookup, ServiceAccountSource};
use crate::resolve::credentials::Credentials;
use crate::resolve::env::{
    self, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_ROLE_ARN,
    AWS_WEB_IDENTITY_TOKEN_FILE,
};
use crate::resolve::token::{token_file, TOKEN_FILE_NAME};
use crate::resolve::{container_selection, resolve, ContainerSelection, Injection};
use crate::settings::container_credentials::ContainerCredentialsSettings;
use crate::settings::Config;
use serde_json::Value;
use slog::{info, Logger};

/// Whether the request is the audit scanner's rather than the API server's.
///
/// The scanner sends an existing pod as a CREATE whose request `uid` is the
/// pod's own `metadata.uid`. A real CREATE reaches a mutating webhook before
/// the API server assigns the pod a `uid` (or a `creationTimestamp`), and its
/// request `uid` is one of the API server's own, so the two never match.
pub fn is_audit(request_uid: &str, pod: &Value) -> bool {
    !request_uid.is_empty() && pod["metadata"]["uid"].as_str() == Some(request_uid)
}

/// A pod that has run to its end (a finished Job's, kept for its logs) runs
/// no code that could use credentials, and restarting it creates nothing.
/// The scanner sends these too.
pub fn is_finished(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Judges one running pod from the scanner, with one ServiceAccount read, as
/// an admission makes.
pub fn audit(
    pod: &Value,
    namespace: &str,
    config: &Config,
    accounts: &dyn ServiceAccountSource,
    log: &Logger,
) -> Result<(), PolicyError> {
    let passes = |reason: &str| {
        info!(log, "pod left unchanged"; "reason" => reason, "audit" => true,
              "pod" => pod["metadata"]["name"].as_str().unwrap_or_default());
        Ok(())
    };
    // The API server accepted this pod: a shape the policy cannot read is no
    // finding of the audit.
    let Ok(facts) = PodFacts::read(pod, namespace) else {
        return passes("audit: pod not readable");
    };
    // As for an admission: no namespace, no lookup.
    if facts.namespace.is_empty() {
        return passes("audit: pod without a namespace");
    }
    // Opted out: no credentials are its due, whatever its ServiceAccount says.
    if facts.opted_out {
        return passes(concat!("audit: pod labelled ", opt_out_label!()));
    }
    // Admission leaves mirror pods alone; the kubelet owns them.
    if facts.mirror {
        return passes("audit: mirror pod");
    }
    if is_finished(pod) {
        return passes("audit: pod finished");
    }
    let new_pod = match accounts.get(facts.namespace, facts.service_account)? {
        Lookup::NotFound => NewPod::Nothing { gone: true },
        Lookup::Found(service_account) => match resolve(config, &service_account, &facts) {
            Ok(Some(resolved)) => NewPod::Gets(Box::new(resolved.injection)),
            Ok(None) => NewPod::Nothing { gone: false },
            Err(refusal) => NewPod::Refused(refusal),
        },
    };
    match judge(pod, &facts, &new_pod, config) {
        None => passes("audit: in step with its ServiceAccount"),
        Some(finding) => {
            let restart = restart(pod, facts.namespace);
            Err(PolicyError::OutOfStep {
                pod: facts.display.clone(),
                service_account: format!("{}/{}", facts.namespace, facts.service_account),
                remedy: match finding.first_step() {
                    Some(first) => format!("{first}, then {restart}"),
                    None => restart,
                },
                finding: Box::new(finding),
            })
        }
    }
}

/// What a pod created now from this one would get.
#[derive(Debug)]
enum NewPod {
    /// Credentials, as this injection.
    Gets(Box<Injection>),
    /// Nothing: the ServiceAccount grants no credentials, or is `gone`.
    Nothing { gone: bool },
    /// A refusal: the guardrails no longer allow the ServiceAccount's role, or
    /// one of its annotations cannot be read.
    Refused(PolicyError),
}

/// Why the running pod differs from a pod created now, if it does.
fn judge(pod: &Value, facts: &PodFacts, new_pod: &NewPod, config: &Config) -> Option<Finding> {
    // Only the containers the pod's annotations select: admission leaves the
    // others alone, and what they carry is their own.
    let selection = match new_pod {
        NewPod::Gets(injection) => Some(injection.containers.clone()),
        NewPod::Nothing { .. } | NewPod::Refused(_) => container_selection(facts, config).ok(),
    };
    let written = Written::read_all(pod, config, facts.windows, selection.as_ref());
    let any_written = written.first();
    let injection = match new_pod {
        NewPod::Nothing { gone } => {
            return any_written.map(|written| Finding::NoLongerGranted {
                carried: written.describe(),
                gone: *gone,
            })
        }
        NewPod::Refused(refusal) => {
            return Some(Finding::Refused {
                carried: any_written.map(Written::describe),
                refusal: Box::new(refusal.clone()),
            })
        }
        NewPod::Gets(injection) => injection,
    };
    let planned = plan(pod, &facts.display, injection, Scope::Creation);
    // The pod's annotations select none of its containers: it gets nothing at
    // creation either, and whatever they carry is their own.
    if planned.as_ref().is_ok_and(|plan| plan.injected.is_empty()) {
        return None;
    }
    let kind = CredentialsKind::of(&injection.credentials);
    match written.iter().find(|w| w.kind == kind) {
        None => {
            if let Some(other) = any_written {
                return Some(Finding::KindChanged {
                    carried: other.describe(),
                    now: gives(injection),
                });
            }
        }
        // (A token for another audience is a conflict the plan below meets.)
        Some(written) => {
            // Several containers, one of them with a role of its own: the
            // others carry what the policy wrote, today's if any does.
            let current = injection.credentials.summary();
            if !written.carried.contains(&current) {
                let carried = written.carried[0].to_owned();
                let now = current.to_owned();
                return Some(match kind {
                    CredentialsKind::WebIdentity => Finding::RoleChanged { carried, now },
                    CredentialsKind::ContainerCredentials => {
                        Finding::EndpointChanged { carried, now }
                    }
                });
            }
        }
    }
    match planned {
        Err(
            conflict @ (PolicyError::ForeignTokenVolume { .. }
            | PolicyError::MountPathTaken { .. }
            | PolicyError::TokenVolumeMountedElsewhere { .. }),
        ) => Some(conflict_finding(pod, facts, injection, conflict)),
        // A shape the policy cannot read; the API server accepted it.
        Err(_) => None,
        Ok(plan) if plan.edit.is_empty() => None,
        Ok(plan) if written.is_empty() && plan.edit.adds_volume() => Some(Finding::NoCredentials {
            gives: gives(injection),
        }),
        Ok(plan) => Some(Finding::Lacks {
            items: plan.edit.describe(pod),
        }),
    }
}

/// A pod created now from this one would meet `conflict`. Either its template
/// has it (the policy refuses such a pod: fix the template, then restart), or
/// it comes from a token the policy added under other settings (another mount
/// path, volume name or audience), which the template does not have and a
/// restart replaces: then the finding is what a pod created now gets.
fn conflict_finding(
    pod: &Value,
    facts: &PodFacts,
    injection: &Injection,
    conflict: PolicyError,
) -> Finding {
    let template = without_token_volumes(pod);
    match plan(&template, &facts.display, injection, Scope::Creation) {
        Err(conflict) => Finding::WouldBeRefused {
            refusal: Box::new(conflict),
        },
        Ok(plan) => match &conflict {
            PolicyError::ForeignTokenVolume { volume, .. }
                if token_audience(pod, volume) != Some(injection.audience.as_str()) =>
            {
                Finding::AudienceChanged {
                    volume: volume.clone(),
                    carried: token_audience(pod, volume).unwrap_or_default().to_owned(),
                    now: injection.audience.clone(),
                }
            }
            // Another token file or mount under the same audience: what a pod
            // created now gets instead.
            _ => Finding::Lacks {
                items: plan.edit.describe(&template),
            },
        },
    }
}

/// The audience of the pod's projected token volume of this name.
fn token_audience<'p>(pod: &'p Value, volume: &str) -> Option<&'p str> {
    pod["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == volume)
        .and_then(|v| v["projected"]["sources"][0]["serviceAccountToken"]["audience"].as_str())
}

/// The pod less what looks like a token any settings of the policy could have
/// added: a projected volume of one service account token for an audience,
/// and the mounts of it. Near enough the template the pod was created from.
fn without_token_volumes(pod: &Value) -> Value {
    let is_token = |volume: &Value| {
        volume["projected"]["sources"]
            .as_array()
            .is_some_and(|sources| {
                sources.len() == 1
                    && sources[0]["serviceAccountToken"]["audience"]
                        .as_str()
                        .is_some_and(|audience| !audience.is_empty())
            })
    };
    let mut template = pod.clone();
    let tokens: Vec<Value> = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|volume| is_token(volume))
        .map(|volume| volume["name"].clone())
        .collect();
    if let Some(volumes) = template["spec"]["volumes"].as_array_mut() {
        volumes.retain(|volume| !is_token(volume));
    }
    // `get_mut`, not `[]`: indexing into a value that is not an object (a
    // container written as a string, say) panics.
    for list in ["initContainers", "containers"] {
        let containers = template
            .get_mut("spec")
            .and_then(|spec| spec.get_mut(list))
            .and_then(Value::as_array_mut);
        for container in containers.into_iter().flatten() {
            if let Some(mounts) = container
                .get_mut("volumeMounts")
                .and_then(Value::as_array_mut)
            {
                mounts.retain(|mount| !tokens.contains(&mount["name"]));
            }
        }
    }
    template
}

/// What a pod created now gets, for a finding.
fn gives(injection: &Injection) -> String {
    match &injection.credentials {
        Credentials::WebIdentity { role_arn } => role_arn.to_string(),
        Credentials::ContainerCredentials { full_uri } => pod_identity(full_uri),
    }
}

fn pod_identity(full_uri: &str) -> String {
    format!("EKS Pod Identity container credentials from {full_uri}")
}

/// The two kinds of credentials the policy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsKind {
    WebIdentity,
    ContainerCredentials,
}

impl CredentialsKind {
    fn of(credentials: &Credentials) -> Self {
        match credentials {
            Credentials::WebIdentity { .. } => CredentialsKind::WebIdentity,
            Credentials::ContainerCredentials { .. } => CredentialsKind::ContainerCredentials,
        }
    }
}

/// Where the policy puts one kind of credentials, as the settings say now.
struct Shape<'a> {
    kind: CredentialsKind,
    volume_name: &'a str,
    mount_path: &'a str,
    token_file_name: &'a str,
    /// The variable that names the credentials, then the token file's.
    pair: [&'static str; 2],
}

/// Credentials shaped exactly as the policy writes them: its token volume (a
/// projected service account token of its name and path), mounted at its
/// path, and in the same container its pair of variables, the token file's
/// naming the policy's file, at the end of the container's variables (only
/// the variables the policy writes after the pair may follow it). A pair a
/// container sets for itself anywhere else, or a token volume without the
/// pair, is its author's: admission keeps it.
#[derive(Debug, PartialEq, Eq)]
pub struct Written<'a> {
    pub kind: CredentialsKind,
    /// The role ARNs (or endpoints) of the selected containers that carry the pair.
    pub carried: Vec<&'a str>,
}

impl<'a> Written<'a> {
    /// Both kinds, as far as the containers `selection` selects (all, for
    /// `None`) carry them. Container credentials are recognised with the
    /// official webhook's defaults when the settings no longer have
    /// `containerCredentials`, so a pod that kept them is seen.
    pub fn read_all(
        pod: &'a Value,
        config: &'a Config,
        windows: bool,
        selection: Option<&ContainerSelection>,
    ) -> Vec<Self> {
        let defaults = ContainerCredentialsSettings::default();
        Written::shapes(config, &defaults)
            .iter()
            .filter_map(|shape| Written::read(pod, shape, windows, selection))
            .collect()
    }

    /// Both shapes, as the settings say now; container credentials with the
    /// official webhook's `defaults` when the settings no longer have them.
    fn shapes<'s>(
        config: &'s Config,
        defaults: &'s ContainerCredentialsSettings,
    ) -> [Shape<'s>; 2] {
        let pair = [
            AWS_CONTAINER_CREDENTIALS_FULL_URI,
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
        ];
        let container_credentials = match &config.container_credentials {
            Some(cc) => Shape {
                kind: CredentialsKind::ContainerCredentials,
                volume_name: &cc.volume_name,
                mount_path: &cc.mount_path,
                token_file_name: &cc.token_file_name,
                pair,
            },
            None => Shape {
                kind: CredentialsKind::ContainerCredentials,
                volume_name: &defaults.volume_name,
                mount_path: &defaults.mount_path,
                token_file_name: &defaults.token_path,
                pair,
            },
        };
        let web_identity = Shape {
            kind: CredentialsKind::WebIdentity,
            volume_name: &config.volume_name,
            mount_path: &config.mount_path,
            token_file_name: TOKEN_FILE_NAME,
            pair: [AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE],
        };
        [web_identity, container_credentials]
    }

    fn read(
        pod: &'a Value,
        shape: &Shape,
        windows: bool,
        selection: Option<&ContainerSelection>,
    ) -> Option<Self> {
        let volume = pod["spec"]["volumes"]
            .as_array()?
            .iter()
            .find(|v| v["name"].as_str() == Some(shape.volume_name))?;
        // The policy's token: at its file name, for some audience.
        let is_token = |token: &Value| {
            token["path"].as_str() == Some(shape.token_file_name) && token["audience"].is_string()
        };
        volume["projected"]["sources"]
            .as_array()?
            .iter()
            .any(|source| is_token(&source["serviceAccountToken"]))
            .then_some(())?;
        let token_file = token_file(shape.mount_path, shape.token_file_name, windows);
        let carried: Vec<&str> = containers(pod, selection)
            .filter(|container| mounts(container, shape))
            .filter_map(|container| written_pair(container, shape, &token_file))
            .collect();
        (!carried.is_empty()).then_some(Written {
            kind: shape.kind,
            carried,
        })
    }

    /// Whether a selected container of the pod sets, after its other
    /// variables, a pair shaped exactly as the policy writes one: with the
    /// token volume and the mount (whoever adds them) the audit cannot tell it
    /// from the policy's.
    #[cfg(any(test, feature = "test-support"))]
    pub fn pair_in(
        pod: &Value,
        config: &Config,
        windows: bool,
        selection: Option<&ContainerSelection>,
    ) -> bool {
        let defaults = ContainerCredentialsSettings::default();
        Written::shapes(config, &defaults).iter().any(|shape| {
            let token_file = token_file(shape.mount_path, shape.token_file_name, windows);
            containers(pod, selection)
                .any(|container| written_pair(container, shape, &token_file).is_some())
        })
    }

    /// What the pod carries, for a finding.
    pub fn describe(&self) -> String {
        match self.kind {
            CredentialsKind::WebIdentity => format!("AWS credentials for {}", self.carried[0]),
            CredentialsKind::ContainerCredentials => pod_identity(self.carried[0]),
        }
    }
}

/// The pod's init containers and containers that `selection` selects.
fn containers<'p>(
    pod: &'p Value,
    selection: Option<&ContainerSelection>,
) -> impl Iterator<Item = &'p Value> {
    let selection = selection.cloned();
    ["initContainers", "containers"]
        .into_iter()
        .filter_map(move |list| pod["spec"][list].as_array())
        .flatten()
        .filter(move |container| {
            let name = container["name"].as_str().unwrap_or_default();
            selection.as_ref().is_none_or(|s| s.selects(name))
        })
}

fn mounts(container: &Value, shape: &Shape) -> bool {
    container["volumeMounts"].as_array().is_some_and(|mounts| {
        mounts.iter().any(|m| {
            m["name"].as_str() == Some(shape.volume_name)
                && m["mountPath"]
                    .as_str()
                    .is_some_and(|path| path.trim_end_matches('/') == shape.mount_path)
        })
    })
}

/// The value of the pair's first variable, when the container's variables
/// end with the pair as the policy appends it: after it, only variables the
/// policy writes after the pair (the table's later groups; the session name
/// from the downward API, as the policy writes it).
fn written_pair<'a>(container: &'a Value, shape: &Shape, token_file: &str) -> Option<&'a str> {
    let env = container["env"].as_array()?;
    let at = env
        .iter()
        .position(|var| var["name"].as_str() == Some(shape.pair[0]))?;
    let token = env.get(at + 1)?;
    let group = env::GROUPS
        .iter()
        .position(|group| group.variables.iter().any(|v| v.name == shape.pair[0]))?;
    let written_after = |var: &Value| {
        let later = env::GROUPS[group + 1..]
            .iter()
            .flat_map(|group| group.variables.iter())
            .any(|v| var["name"].as_str() == Some(v.name));
        let downward = var["name"] != env::AWS_ROLE_SESSION_NAME
            || var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name";
        later && downward
    };
    (token["name"].as_str() == Some(shape.pair[1])
        && token["value"].as_str() == Some(token_file)
        && env[at + 2..].iter().all(written_after))
    .then(|| env[at]["value"].as_str())
    .flatten()
}

/// What to run so the pod is created again, from its `ownerReferences`.
pub fn restart(pod: &Value, namespace: &str) -> String {
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
    let delete = format!("kubectl -n {namespace} delete pod {name}");
    match (kind, deployment) {
        (_, Some(deployment)) => format!(
            "restart its Deployment: kubectl -n {namespace} rollout restart deployment/{deployment}"
        ),
        ("StatefulSet" | "DaemonSet", _) => format!(
            "restart its {kind}: kubectl -n {namespace} rollout restart {}/{owner_name} (with \
             the OnDelete update strategy, delete the pod instead: {delete})",
            kind.to_ascii_lowercase()
        ),
        ("Job", _) => format!(
            "delete the pod and its Job {owner_name} creates another, which may count against \
             the Job's backoffLimit: {delete}"
        ),
        ("", _) => format!("delete and re-create the pod ({delete}, then apply it again)"),
        _ => format!("delete the pod and let its {kind} {owner_name} create it again: {delete}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use rstest::rstest;
    use serde_json::json;

    const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

    fn config(settings: Value) -> Config {
        Config::from_settings(&serde_json::from_value::<Settings>(settings).unwrap()).unwrap()
    }

    #[test]
    fn an_audited_pod_is_one_whose_uid_is_the_requests() {
        let pod = json!({"metadata": {"uid": "7c1f"}});
        assert!(is_audit("7c1f", &pod));
        assert!(!is_audit("705ab4f5", &pod));
        // A pod being created has no uid yet.
        assert!(!is_audit("705ab4f5", &json!({"metadata": {"name": "web"}})));
        assert!(!is_audit("", &json!({"metadata": {"uid": ""}})));
    }

    #[rstest]
    #[case("Succeeded", true)]
    #[case("Failed", true)]
    #[case("Running", false)]
    #[case("Pending", false)]
    #[case("Unknown", false)]
    fn a_pod_that_ran_to_its_end_is_finished(#[case] phase: &str, #[case] finished: bool) {
        assert_eq!(is_finished(&json!({"status": {"phase": phase}})), finished);
        assert!(!is_finished(&json!({"spec": {}})));
    }

    fn web_identity_pod(env: Value) -> Value {
        json!({"spec": {
            "volumes": [{"name": "aws-iam-token", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}],
            "containers": [{"name": "app", "env": env,
                "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}]}]}})
    }

    fn pair(role: &str) -> Value {
        json!([{"name": "AWS_ROLE_ARN", "value": role}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}])
    }

    #[test]
    fn reads_the_credentials_the_policy_wrote() {
        let config = config(json!({}));
        let pod = web_identity_pod(pair("arn:injected"));
        assert_eq!(
            Written::read_all(&pod, &config, false, None),
            [Written {
                kind: CredentialsKind::WebIdentity,
                carried: vec!["arn:injected"],
            }]
        );
        // On Windows the token file is another one.
        assert!(Written::read_all(&pod, &config, true, None).is_empty());
    }

    #[rstest]
    // The container's own role, without the token file the policy writes.
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:own"}]))]
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:own"}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/mine/token"}]))]
    // The pair, then a variable of the container's own: the pair is the author's.
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:own"}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}, {"name": "LOG_LEVEL", "value": "debug"}]))]
    // The pair, then a variable the policy writes before the pair (the region).
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:own"}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}, {"name": "AWS_REGION", "value": "eu-west-1"}]))]
    // The pair, then a session name of the container's own.
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:own"}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}, {"name": "AWS_ROLE_SESSION_NAME", "value": "me"}]))]
    // The pair, then the token file again (the API server takes a duplicate).
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:own"}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/mine/token"}]))]
    // The two apart.
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:own"}, {"name": "LOG_LEVEL", "value": "debug"}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}]))]
    #[case(json!(null))]
    fn a_pair_the_policy_did_not_write_is_the_authors(#[case] env: Value) {
        let config = config(json!({}));
        let pod = web_identity_pod(env);
        assert!(Written::read_all(&pod, &config, false, None).is_empty());
    }

    #[test]
    fn the_policys_later_variables_may_follow_its_pair() {
        let config = config(json!({}));
        let mut env = pair("arn:injected");
        env.as_array_mut().unwrap().push(
            json!({"name": "AWS_ROLE_SESSION_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        );
        let pod = web_identity_pod(env);
        assert_eq!(Written::read_all(&pod, &config, false, None).len(), 1);
    }

    #[rstest]
    // Not mounted where the policy mounts it.
    #[case(json!({"name": "aws-iam-token", "mountPath": "/elsewhere"}), json!("token"))]
    // Another file in the volume.
    #[case(json!({"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}), json!("jwt"))]
    fn a_token_not_where_the_policy_puts_it_is_the_authors(
        #[case] mount: Value,
        #[case] path: Value,
    ) {
        let config = config(json!({}));
        let mut pod = web_identity_pod(pair("arn:x"));
        pod["spec"]["containers"][0]["volumeMounts"] = json!([mount]);
        pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["path"] = path;
        assert!(Written::read_all(&pod, &config, false, None).is_empty());
    }

    #[test]
    fn a_pair_set_by_hand_is_seen_without_the_volume_and_mount() {
        let config = config(json!({}));
        let pod = json!({"spec": {"containers": [{"name": "app", "env": pair("arn:own")}]}});
        assert!(Written::pair_in(&pod, &config, false, None));
        assert!(Written::read_all(&pod, &config, false, None).is_empty());
        let own_file = json!({"spec": {"containers": [{"name": "app", "env": [
            {"name": "AWS_ROLE_ARN", "value": "arn:own"},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/mine/token"}]}]}});
        assert!(!Written::pair_in(&own_file, &config, false, None));
        assert!(!Written::pair_in(
            &json!({"spec": {}}),
            &config,
            false,
            None
        ));
    }

    #[test]
    fn container_credentials_are_recognised_without_their_setting() {
        let pod = json!({"spec": {
            "volumes": [{"name": "eks-pod-identity-token", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "pods.eks.amazonaws.com", "expirationSeconds": 80000, "path": "eks-pod-identity-token"}}]}}],
            "containers": [{"name": "app", "env": [
                {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"},
                {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"}],
                "volumeMounts": [{"name": "eks-pod-identity-token", "mountPath": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount", "readOnly": true}]}]}});
        let config = config(json!({}));
        let written = Written::read_all(&pod, &config, false, None);
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].kind, CredentialsKind::ContainerCredentials);
        assert_eq!(
            written[0].describe(),
            "EKS Pod Identity container credentials from http://169.254.170.23/v1/credentials"
        );
    }

    fn owned_by(kind: &str, name: &str) -> Value {
        json!({"metadata": {"name": "pod-1",
            "ownerReferences": [{"kind": kind, "name": name, "controller": true}]}})
    }

    #[test]
    fn names_the_workload_to_restart() {
        let deployment_pod = json!({"metadata": {"name": "web-7d9f5c6b8-x2x4z",
            "labels": {"pod-template-hash": "7d9f5c6b8"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f5c6b8", "controller": true}]}});
        assert_eq!(
            restart(&deployment_pod, "team-a"),
            "restart its Deployment: kubectl -n team-a rollout restart deployment/web"
        );
        assert_eq!(
            restart(&owned_by("StatefulSet", "db"), "team-a"),
            "restart its StatefulSet: kubectl -n team-a rollout restart statefulset/db (with the \
             OnDelete update strategy, delete the pod instead: kubectl -n team-a delete pod pod-1)"
        );
        assert!(restart(&owned_by("DaemonSet", "agent"), "team-a")
            .starts_with("restart its DaemonSet: kubectl -n team-a rollout restart daemonset/agent (with the OnDelete"));
        assert_eq!(
            restart(&owned_by("Job", "backup"), "team-a"),
            "delete the pod and its Job backup creates another, which may count against the \
             Job's backoffLimit: kubectl -n team-a delete pod pod-1"
        );
        // A ReplicaSet of no Deployment, and owners the policy knows nothing of.
        assert_eq!(
            restart(&owned_by("ReplicaSet", "web"), "team-a"),
            "delete the pod and let its ReplicaSet web create it again: kubectl -n team-a delete pod pod-1"
        );
        assert_eq!(
            restart(&owned_by("Rollout", "canary"), "team-a"),
            "delete the pod and let its Rollout canary create it again: kubectl -n team-a delete pod pod-1"
        );
        let bare = json!({"metadata": {"name": "debug"}});
        assert_eq!(
            restart(&bare, "team-a"),
            "delete and re-create the pod (kubectl -n team-a delete pod debug, then apply it again)"
        );
    }

    #[test]
    fn the_controlling_owner_is_the_one_named() {
        let pod = json!({"metadata": {"name": "p", "ownerReferences": [
            {"kind": "ConfigMap", "name": "c"},
            {"kind": "Job", "name": "backup", "controller": true}]}});
        assert!(restart(&pod, "ns").contains("its Job backup"));
        let pod =
            json!({"metadata": {"name": "p", "ownerReferences": [{"kind": "Job", "name": "j"}]}});
        assert!(restart(&pod, "ns").contains("its Job j"));
    }
}
