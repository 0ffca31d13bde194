//! The waPC contract the policy-server relies on: the module's exports, the
//! functions `wapc_init` registers, `protocol_version`, and `validate_settings`
//! refusing each bad setting with a message that names it.

use crate::cases::validate_settings;
use crate::host::Policy;
use crate::idle_state;
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsCase {
    settings: Value,
    valid: bool,
    /// The refusal must contain this (the setting's name, usually).
    #[serde(default)]
    message: Option<String>,
}

pub fn check(
    policy: &Policy,
    wasm: &Path,
    settings_matrix: &Path,
    sample_policy: &Path,
) -> Result<Vec<(String, Result<(), String>)>> {
    let mut results = Vec::new();

    let bytes = std::fs::read(wasm)?;
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let exports: Vec<String> = module.exports().map(|e| e.name().to_owned()).collect();
    let missing: Vec<&str> = ["wapc_init", "__guest_call"]
        .into_iter()
        .filter(|name| !exports.iter().any(|e| e == name))
        .collect();
    results.push((
        "module exports the waPC entry points wapc_init and __guest_call".into(),
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing exports {missing:?}; has {exports:?}"))
        },
    ));

    for function in ["validate", "validate_settings", "protocol_version"] {
        let answer = policy.call_fresh(&idle_state(), function, b"{}");
        let registered = !matches!(&answer, Err(e) if e.contains("No handler registered"));
        results.push((
            format!("wapc_init registers {function}"),
            if registered {
                Ok(())
            } else {
                Err(format!("{answer:?}"))
            },
        ));
    }
    let unknown = policy.call_fresh(&idle_state(), "no_such_function", b"{}");
    results.push((
        "an unregistered function is an error (the check above can fail)".into(),
        if unknown.is_err() {
            Ok(())
        } else {
            Err(format!("{unknown:?}"))
        },
    ));

    let version = policy
        .call_fresh(&idle_state(), "protocol_version", b"")
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    results.push((
        "protocol_version answers \"v1\"".into(),
        match version {
            Ok(v) if v == "\"v1\"" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    ));

    let matrix: Vec<SettingsCase> =
        serde_json::from_str(&std::fs::read_to_string(settings_matrix)?)
            .with_context(|| format!("parsing {}", settings_matrix.display()))?;
    for case in matrix {
        let verdict = validate_settings(policy, &case.settings)?;
        let name = format!(
            "validate_settings {} {}",
            if case.valid { "accepts" } else { "refuses" },
            case.settings
        );
        let outcome = match (case.valid, verdict) {
            (true, Ok(())) => Ok(()),
            (true, Err(message)) => Err(format!("refused: {message}")),
            (false, Ok(())) => Err("accepted".into()),
            (false, Err(message)) => match &case.message {
                Some(expected) if !message.contains(expected.as_str()) => {
                    Err(format!("message {message:?} does not contain {expected:?}"))
                }
                _ => Ok(()),
            },
        };
        results.push((name, outcome));
    }
    // The ClusterAdmissionPolicy users start from must be accepted as it is.
    let sample: Value = serde_yaml::from_str(&std::fs::read_to_string(sample_policy)?)
        .with_context(|| format!("parsing {}", sample_policy.display()))?;
    let verdict = validate_settings(policy, &sample["spec"]["settings"])?;
    results.push((
        format!(
            "validate_settings accepts the settings of {}",
            sample_policy.display()
        ),
        verdict.map_err(|message| format!("refused: {message}")),
    ));
    Ok(results)
}
