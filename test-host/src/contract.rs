//! The waPC contract the policy-server relies on: the module's exports, the
//! functions `wapc_init` registers, `protocol_version`, and `validate_settings`
//! refusing each bad setting with a message that names it.

use crate::cases::validate_settings;
use crate::host::Policy;
use crate::idle_state;
use anyhow::{Context, Result};
use irsa_policy::lookup::InMemoryServiceAccounts;
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
    regressions: &Path,
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
    results.extend(answered_as_natively(policy, regressions)?);
    Ok(results)
}

/// The inputs the fuzzers found a fault with (`tests/fuzz-regressions/`) that
/// the policy answers without a ServiceAccount read, refusals of the payload
/// itself among them: the module must answer each byte for byte as the
/// native decision does, so what `tests/` asserts natively is what a
/// policy-server gets.
fn answered_as_natively(policy: &Policy, dir: &Path) -> Result<Vec<(String, Result<(), String>)>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
    files.sort();
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let mut results = Vec::new();
    for file in files {
        let payload = std::fs::read(&file)?;
        let accounts = InMemoryServiceAccounts::default();
        let native = irsa_policy::encode(
            irsa_policy::review(&payload, &accounts, &log),
            payload.len(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        if accounts.lookups() > 0 {
            continue;
        }
        let answer = policy.call_fresh(&idle_state(), "validate", &payload);
        results.push((
            format!(
                "validate answers {} as the native decision does",
                file.display()
            ),
            match answer {
                Ok(bytes) if bytes == native => Ok(()),
                other => Err(format!(
                    "module {:?}, native {}",
                    other.map(|b| String::from_utf8_lossy(&b).into_owned()),
                    String::from_utf8_lossy(&native)
                )),
            },
        ));
    }
    if results.is_empty() {
        results.push((
            format!(
                "{} holds a payload answered without a lookup",
                dir.display()
            ),
            Err("none: this check compared nothing".into()),
        ));
    }
    Ok(results)
}
