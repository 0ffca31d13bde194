//! One admission decision: request -> resolved injection -> edited pod.
//!
//! Pure apart from the [`ServiceAccountSource`] it is given, so the whole
//! behaviour is tested natively, and the benchmark measures this same function
//! as the native floor of a `policy.wasm` evaluation.

use crate::error::PolicyError;
use crate::injection::resolve;
use crate::pod::PodFacts;
use crate::pod_edit::plan;
use crate::request::AdmissionRequest;
use crate::service_account::{Lookup, ServiceAccountSource};
use crate::settings::Config;
use serde_json::Value;
use slog::{debug, info, Logger};

/// What the policy answers.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Let the pod through unchanged.
    Accept { warnings: Vec<String> },
    /// Let the pod through with these changes.
    Mutate { pod: Value, warnings: Vec<String> },
    /// Refuse the pod; nothing of it is changed.
    Reject(PolicyError),
}

pub fn evaluate(
    request: AdmissionRequest,
    config: &Config,
    accounts: &dyn ServiceAccountSource,
    log: &Logger,
) -> Decision {
    if !request.is_pod_create() {
        info!(log, "pod left unchanged"; "reason" => "not a pod creation",
              "operation" => &request.operation, "kind" => &request.kind.kind, "uid" => &request.uid);
        return Decision::Accept {
            warnings: Vec::new(),
        };
    }
    match decide(request, config, accounts, log) {
        Ok(decision) => decision,
        Err(error) => {
            info!(log, "pod rejected"; "reason" => error.to_string());
            Decision::Reject(error)
        }
    }
}

fn decide(
    request: AdmissionRequest,
    config: &Config,
    accounts: &dyn ServiceAccountSource,
    log: &Logger,
) -> Result<Decision, PolicyError> {
    let mut pod = request.object;
    let facts = PodFacts::read(&pod, &request.namespace)?;
    let namespace = facts.label.split_once('/').map_or("", |(ns, _)| ns);
    if namespace.is_empty() {
        return Err(PolicyError::MalformedRequest(
            "the request has no namespace and neither has the pod's metadata".into(),
        ));
    }
    let service_account = match accounts.get(namespace, facts.service_account)? {
        Lookup::Found(service_account) => service_account,
        Lookup::NotFound => {
            info!(log, "pod left unchanged"; "reason" => "ServiceAccount not found",
                  "pod" => &facts.label, "serviceAccount" => facts.service_account);
            return Ok(Decision::Accept {
                warnings: Vec::new(),
            });
        }
    };
    let Some(resolved) = resolve(config, namespace, &service_account, &facts)? else {
        info!(log, "pod left unchanged"; "reason" => "ServiceAccount has no role annotation",
              "pod" => &facts.label, "serviceAccount" => facts.service_account,
              "annotation" => &config.annotations.role_arn);
        return Ok(Decision::Accept {
            warnings: Vec::new(),
        });
    };
    let injection = &resolved.injection;
    let plan = plan(&pod, &facts.label, injection)?;
    let warnings = resolved.warnings;
    // One info event per decision (each event is a host call); debug only for
    // what a person would ask about: variables the containers set themselves.
    if !plan.kept.is_empty() {
        debug!(log, "containers keep their own AWS variables"; "pod" => &facts.label,
               "kept" => plan.kept.join(", "));
    }
    if plan.edit.is_empty() {
        let reason = if plan.injected.is_empty() {
            "no container to inject into"
        } else {
            "pod already has the credentials"
        };
        info!(log, "pod left unchanged"; "reason" => reason, "pod" => &facts.label,
              "roleArn" => injection.role_arn.as_str(), "skippedContainers" => plan.skipped.join(","));
        return Ok(Decision::Accept { warnings });
    }
    info!(log, "pod mutated"; "pod" => &facts.label, "serviceAccount" => facts.service_account,
          "roleArn" => injection.role_arn.as_str(), "audience" => &injection.audience,
          "expirationSeconds" => injection.expiration.seconds(), "tokenFile" => &injection.token_file,
          "region" => injection.region.as_deref().unwrap_or(""),
          "stsRegionalEndpoints" => injection.sts_regional_endpoints,
          "containers" => plan.injected.join(","), "skippedContainers" => plan.skipped.join(","));
    drop(facts);
    plan.edit.apply(&mut pod);
    Ok(Decision::Mutate { pod, warnings })
}
