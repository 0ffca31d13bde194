//! End-to-end cases as data: `e2e-tests/cases/<name>/` holds `request.json`
//! (an AdmissionReview or a bare AdmissionRequest), `settings.json` (optional),
//! `session.yml` (a kwctl replay session, `[]` for none) and `expect.json`.
//! This is the full check of a case; `e2e-tests/e2e.bats`, generated from the
//! same folders, runs each through `kwctl run` and checks the response line.

use crate::host::{HostState, Policy, Responder};
use crate::response::AdmissionResponse;
use crate::session::Session;
use anyhow::{bail, Context, Result};
use irsa_policy::invariants;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a case expects. Pointers in `pod` and `absent` are RFC 6901 JSON
/// pointers into the object after the patch is applied.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub description: String,
    /// The settings must be refused by `validate_settings` with this text.
    #[serde(default)]
    pub settings_refused: Option<String>,
    #[serde(default)]
    pub allowed: Option<bool>,
    #[serde(default)]
    pub mutated: Option<bool>,
    /// Substring of the rejection message.
    #[serde(default)]
    pub message: Option<String>,
    /// Text the rejection message must not carry (a backtrace, the wrong advice).
    #[serde(default)]
    pub message_lacks: Vec<String>,
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub pod: BTreeMap<String, Value>,
    #[serde(default)]
    pub absent: Vec<String>,
}

pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub expect: Expect,
}

impl Case {
    pub fn load_all(root: &Path) -> Result<Vec<Case>> {
        let mut cases = Vec::new();
        for entry in
            std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))?
        {
            let dir = entry?.path();
            if !dir.is_dir() {
                continue;
            }
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let expect: Expect =
                serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json"))?)
                    .with_context(|| format!("{name}/expect.json"))?;
            cases.push(Case { name, dir, expect });
        }
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(cases)
    }

    pub fn settings(&self) -> Result<Value> {
        let path = self.dir.join("settings.json");
        if path.exists() {
            Ok(serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("{}", path.display()))?)
        } else {
            Ok(json!({}))
        }
    }

    pub fn request(&self) -> Result<Value> {
        read_request(&self.dir.join("request.json"))
    }

    pub fn session(&self) -> Result<Session> {
        Session::load(&self.dir.join("session.yml"))
    }

    /// Runs the case on fresh instances of the module; the error lists every
    /// expectation that failed.
    pub fn run(&self, policy: &Policy) -> Result<()> {
        let settings = self.settings()?;
        let mut failures = Vec::new();
        let verdict = validate_settings(policy, &settings)?;
        match (&self.expect.settings_refused, verdict) {
            (Some(expected), Err(message)) if message.contains(expected.as_str()) => return Ok(()),
            (Some(expected), Err(message)) => {
                bail!("settings refused with {message:?}, expected it to contain {expected:?}")
            }
            (Some(_), Ok(())) => bail!("validate_settings accepted the settings"),
            (None, Err(message)) => bail!("validate_settings refused the settings: {message}"),
            (None, Ok(())) => {}
        }

        let request = self.request()?;
        let evaluation = evaluate(policy, &request, &settings, self.session()?)?;
        let response = &evaluation.response;
        let expect = &self.expect;
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(what);
            }
        };
        check(
            evaluation.violations.is_empty(),
            format!("host replay: {:?}", evaluation.violations),
        );
        check(
            evaluation.unanswered == 0,
            format!(
                "{} recorded exchanges were never asked for",
                evaluation.unanswered
            ),
        );
        if let Some(allowed) = expect.allowed {
            check(
                response.allowed == allowed,
                format!("allowed is {}, expected {allowed}", response.allowed),
            );
        }
        if let Some(mutated) = expect.mutated {
            check(
                response.patch.is_some() == mutated,
                format!(
                    "patch present is {}, expected {mutated}",
                    response.patch.is_some()
                ),
            );
        }
        let status = response.status.as_ref();
        let message = status.and_then(|s| s.message.clone()).unwrap_or_default();
        if let Some(expected) = &expect.message {
            check(
                message.contains(expected.as_str()),
                format!("message {message:?} does not contain {expected:?}"),
            );
        }
        for unwanted in &expect.message_lacks {
            check(
                !message.contains(unwanted.as_str()),
                format!("message {message:?} contains {unwanted:?}"),
            );
        }
        if let Some(code) = expect.code {
            let actual = status.and_then(|s| s.code);
            check(
                actual == Some(code),
                format!("code is {actual:?}, expected {code}"),
            );
        }
        let warnings = response.warnings.clone().unwrap_or_default();
        check(
            warnings == expect.warnings,
            format!("warnings are {warnings:?}, expected {:?}", expect.warnings),
        );

        let original = &request["object"];
        let patched = response.patched(original)?;
        for (pointer, value) in &expect.pod {
            let actual = patched.pointer(pointer);
            check(
                actual == Some(value),
                format!("{pointer} is {}, expected {value}", show(actual)),
            );
        }
        for pointer in &expect.absent {
            let actual = patched.pointer(pointer);
            check(
                actual.is_none(),
                format!("{pointer} should be absent, is {}", show(actual)),
            );
        }
        if response.patch.is_some() {
            if let Err(lost) = invariants::lossless(original, &patched) {
                check(false, format!("the patch changed or removed {lost}"));
            }
            if let Err(duplicate) = invariants::no_duplicates(&patched) {
                check(false, format!("the patched pod has {duplicate}"));
            }
            // Kubernetes may call a mutating webhook again on its own output.
            let mut again = request.clone();
            again["object"] = patched.clone();
            let second = evaluate(policy, &again, &settings, self.session()?)?;
            check(
                second.response.allowed && second.response.patch.is_none(),
                format!(
                    "a second run on the patched pod was not a no-op: {:?}",
                    second.response
                ),
            );
            // A pod admitted now passes the audit now: the scanner's request
            // for the stored pod, answered from the same ServiceAccounts.
            let audit = invariants::audit_request(&request, &patched);
            let audited = evaluate(policy, &audit, &settings, self.session()?)?;
            check(
                audited.response.allowed && audited.response.patch.is_none(),
                format!(
                    "the audit of the patched pod did not pass: {:?}",
                    audited.response
                ),
            );
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "{}\n    response: {}",
                failures.join("\n    "),
                serde_json::to_string(response)?
            )
        }
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".into(), Value::to_string)
}

/// An AdmissionReview's `request`, or a bare AdmissionRequest, as kwctl reads them.
pub fn read_request(path: &Path) -> Result<Value> {
    let value: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    if !value.is_object() {
        bail!("Invalid request object");
    }
    if value["kind"] == "AdmissionReview" {
        match value.get("request") {
            Some(request) => Ok(request.clone()),
            None => bail!("invalid AdmissionReview object"),
        }
    } else {
        Ok(value)
    }
}

/// `Ok(())` for valid settings, `Err(message)` for refused ones.
pub fn validate_settings(policy: &Policy, settings: &Value) -> Result<Result<(), String>> {
    let state = HostState::new(Responder::Replay(Session::default()));
    let answer = policy.call_fresh(
        &state,
        "validate_settings",
        serde_json::to_string(settings)?.as_bytes(),
    );
    let answer = match answer {
        Ok(bytes) => bytes,
        Err(e) => {
            return Ok(Err(format!(
                "Error invoking settings validation callback: {e}"
            )))
        }
    };
    let verdict: Value = serde_json::from_slice(&answer).context("validate_settings answer")?;
    if verdict["valid"] == true {
        Ok(Ok(()))
    } else {
        Ok(Err(verdict["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()))
    }
}

pub struct Evaluation {
    pub response: AdmissionResponse,
    pub violations: Vec<String>,
    pub unanswered: usize,
    pub kubernetes_calls: usize,
    pub logs: Vec<Value>,
}

/// One `validate` on a fresh instance, answered from `session`.
pub fn evaluate(
    policy: &Policy,
    request: &Value,
    settings: &Value,
    session: Session,
) -> Result<Evaluation> {
    evaluate_with(policy, request, settings, Responder::Replay(session))
}

/// One `validate` on a fresh instance, its lookups answered by `responder`.
pub fn evaluate_with(
    policy: &Policy,
    request: &Value,
    settings: &Value,
    responder: Responder,
) -> Result<Evaluation> {
    let state = HostState::new(responder);
    let payload = serde_json::to_vec(&json!({"request": request, "settings": settings}))?;
    let guest = policy.call_fresh(&state, "validate", &payload);
    let uid = request["uid"].as_str().unwrap_or_default();
    let response = AdmissionResponse::from_guest(uid, &request["object"], guest);
    let state = std::sync::Arc::try_unwrap(state)
        .ok()
        .expect("instance dropped")
        .into_inner()
        .unwrap();
    let kubernetes_calls = state.kubernetes_calls();
    let (violations, unanswered) = match &state.responder {
        Responder::Replay(session) => (session.violations.clone(), session.unanswered()),
        Responder::Fixed(_) | Responder::Cluster(_) => (Vec::new(), 0),
    };
    Ok(Evaluation {
        response,
        violations,
        unanswered,
        kubernetes_calls,
        logs: state.logs,
    })
}
