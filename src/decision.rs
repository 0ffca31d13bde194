//! Stage 7 of the flow: the decision.
//!
//! One admission decision: request -> resolved injection -> edited pod.
//!
//! Pure apart from the [`ServiceAccountSource`] it is given, so the whole
//! behaviour is tested natively, and the benchmark measures this same function
//! as the native floor of a `policy.wasm` evaluation.

use crate::edit::{plan, Scope};
use crate::error::PolicyError;
use crate::input::payload::AdmissionRequest;
use crate::input::pod::{opt_out_label, PodFacts};
use crate::lookup::{Lookup, ServiceAccountSource};
use crate::resolve::resolve;
use crate::settings::Config;
use serde_json::Value;
use slog::{debug, info, Logger};

/// What the policy answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let the pod through unchanged.
    Accept { warnings: Vec<String> },
    /// Let the pod through with these changes.
    Mutate { pod: Value, warnings: Vec<String> },
    /// Refuse the pod; nothing of it is changed.
    Reject(PolicyError),
}

/// Decides one admission request: the audit scanner's running pods are
/// compared, pod creations (and, with the setting, `kubectl debug`) injected,
/// everything else accepted as it is without a host call.
pub fn decide(
    request: AdmissionRequest,
    config: &Config,
    accounts: &dyn ServiceAccountSource,
    log: &Logger,
) -> Decision {
    if request.is_pod_create() && crate::audit::is_audit(&request.uid, &request.object) {
        return match crate::audit::audit(&request.object, &request.namespace, config, accounts, log)
        {
            Ok(()) => Decision::Accept {
                warnings: Vec::new(),
            },
            Err(error) => {
                info!(log, "pod rejected"; "reason" => error.to_string(), "audit" => true);
                Decision::Reject(error)
            }
        };
    }
    let existing;
    let scope = if request.is_pod_create() {
        Scope::Creation
    } else if request.is_ephemeral_containers_update() && config.ephemeral_containers {
        existing = request
            .old_object
            .as_ref()
            .map(|old| old.ephemeral_container_names())
            .unwrap_or_default();
        Scope::NewEphemeralContainers {
            existing: &existing,
        }
    } else {
        let reason = if request.is_ephemeral_containers_update() {
            "ephemeral containers are not injected (setting ephemeralContainers)"
        } else {
            "not a pod creation"
        };
        info!(log, "pod left unchanged"; "reason" => reason, "operation" => &request.operation,
              "kind" => &request.kind.kind, "subResource" => &request.sub_resource,
              "uid" => &request.uid);
        return Decision::Accept {
            warnings: Vec::new(),
        };
    };
    match inject(
        request.object,
        &request.namespace,
        &request.uid,
        scope,
        config,
        accounts,
        log,
    ) {
        Ok(decision) => decision,
        Err(error) => {
            info!(log, "pod rejected"; "reason" => error.to_string());
            Decision::Reject(error)
        }
    }
}

fn inject(
    mut pod: Value,
    namespace: &str,
    uid: &str,
    scope: Scope,
    config: &Config,
    accounts: &dyn ServiceAccountSource,
    log: &Logger,
) -> Result<Decision, PolicyError> {
    let facts = PodFacts::read(&pod, namespace)?.in_request(uid);
    let unchanged = |reason: &str, warnings| Ok(left_unchanged(log, &facts, reason, warnings));
    // Before anything else, and with no host call: the official webhook is
    // not even called for such a pod.
    if facts.opted_out {
        return unchanged(concat!("pod labelled ", opt_out_label!()), Vec::new());
    }
    // AWS's webhook never injects a mirror pod either: the API server refuses
    // one with a projected service account token.
    if facts.mirror {
        return unchanged("mirror pod of a static pod", Vec::new());
    }
    let namespace = facts.namespace;
    if namespace.is_empty() {
        return Err(PolicyError::MalformedRequest(
            "the request has no namespace and neither has the pod's metadata".into(),
        ));
    }
    let service_account = match accounts.get(namespace, facts.service_account)? {
        Lookup::Found(service_account) => service_account,
        Lookup::NotFound => return unchanged("ServiceAccount not found", Vec::new()),
    };
    let Some(resolved) = resolve(config, &service_account, &facts)? else {
        return unchanged("no role for the ServiceAccount", Vec::new());
    };
    let injection = &resolved.injection;
    let plan = plan(&pod, &facts.display, injection, scope)?;
    let mut warnings = resolved.warnings;
    for name in &plan.unknown_names {
        warnings.push(format!(
            "pod annotation {} or {} names container {name:?}, which the pod does not have",
            injection.containers.skip_annotation, injection.containers.only_annotation
        ));
    }
    if let Some(reason) = &plan.no_volume {
        warnings.push(format!(
            "the new ephemeral containers get no AWS credentials: {reason}"
        ));
    }
    // Each log event is a host call, and policy-server drops debug events only
    // after it. So: one info event per decision, short enough to read in a
    // busy log (who, which role, how many containers), and one debug event
    // with the lists a person asks about when something looks wrong.
    debug!(log, "injection details"; "pod" => &facts.display,
           "audience" => &injection.audience, "expirationSeconds" => injection.expiration.seconds(),
           "tokenFile" => &injection.token_file, "region" => injection.region.as_deref().unwrap_or(""),
           "stsRegionalEndpoints" => injection.sts_regional_endpoints,
           "stsEndpoint" => injection.sts_endpoint.as_deref().unwrap_or(""),
           "containers" => plan.injected.join(","), "skippedContainers" => plan.skipped.join(","),
           "keptVariables" => plan.kept.iter().map(ToString::to_string)
               .collect::<Vec<_>>().join("; "));
    if plan.edit.is_empty() {
        let reason = match (&plan.no_volume, plan.injected.is_empty()) {
            (Some(_), _) => "no usable token volume for the new ephemeral containers",
            (None, true) => "no container to inject into",
            (None, false) => "pod already has the credentials",
        };
        return unchanged(reason, warnings);
    }
    info!(log, "pod mutated"; "pod" => &facts.display, "serviceAccount" => facts.service_account,
          "credentials" => injection.credentials.summary(), "containers" => plan.injected.len());
    plan.edit.apply(&mut pod);
    Ok(Decision::Mutate { pod, warnings })
}

/// Logs why the pod is let through as it is. One copy for every reason: the
/// event, inlined at each return, made the module larger (docs/performance.md).
#[inline(never)]
fn left_unchanged(log: &Logger, facts: &PodFacts, reason: &str, warnings: Vec<String>) -> Decision {
    info!(log, "pod left unchanged"; "reason" => reason, "pod" => &facts.display,
          "serviceAccount" => facts.service_account);
    Decision::Accept { warnings }
}
