//! irsa-test-host: runs `policy.wasm` in the waPC engine Kubewarden uses.
//!
//! - `run`: the subset of `kwctl run` this policy needs, same flags, same
//!   AdmissionResponse line, for machines without kwctl.
//! - `e2e`: the module's waPC contract, then every case under `e2e-tests/cases`.
//! - `kubectl`: a stand-in for kubectl against a cluster running the policy,
//!   for the check phase of `e2e-tests/cluster/run.sh` (see `stand_in`).

mod bench;
mod cases;
mod contract;
mod host;
mod response;
mod session;
mod stand_in;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use host::{HostState, Policy, Responder};
use serde_json::Value;
use session::Session;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate one request, as `kwctl run` does, and print the AdmissionResponse.
    Run {
        #[arg(short = 'r', long)]
        request_path: PathBuf,
        #[arg(long, conflicts_with = "settings_path")]
        settings_json: Option<String>,
        #[arg(short = 's', long)]
        settings_path: Option<PathBuf>,
        #[arg(long)]
        replay_host_capabilities_interactions: Option<PathBuf>,
        /// Grant the contextAwareResources listed in the metadata.
        #[arg(long)]
        allow_context_aware: bool,
        /// kwctl reads the metadata from an annotated module; this host reads the file.
        #[arg(long, default_value = "metadata.yml")]
        metadata_path: PathBuf,
        policy: PathBuf,
    },
    /// Check the waPC contract, then run every e2e case.
    E2e {
        #[arg(long, default_value = "e2e-tests/cases")]
        cases: PathBuf,
        #[arg(long, default_value = "e2e-tests/settings-matrix.json")]
        settings_matrix: PathBuf,
        /// The sample ClusterAdmissionPolicy, whose settings must be valid.
        #[arg(long, default_value = "deploy/policy.yaml")]
        sample_policy: PathBuf,
        /// Payloads the fuzzers found faults with; those answered without a
        /// lookup must get the native decision's answer.
        #[arg(long, default_value = "tests/fuzz-regressions")]
        regressions: PathBuf,
        #[arg(long, default_value = "metadata.yml")]
        metadata_path: PathBuf,
        /// Only cases whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        policy: PathBuf,
    },
    /// Answer a kubectl call as a cluster running the policy would (state in
    /// $STAND_IN_STATE, module in $STAND_IN_POLICY, default policy.wasm).
    Kubectl {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Time evaluations on fresh and reused instances against the native decision.
    Bench {
        #[arg(long, default_value = "bench")]
        fixtures: PathBuf,
        #[arg(long, default_value = "metadata.yml")]
        metadata_path: PathBuf,
        /// A tenth of the iterations, for a smoke run.
        #[arg(long)]
        quick: bool,
        policy: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run {
            request_path,
            settings_json,
            settings_path,
            replay_host_capabilities_interactions,
            allow_context_aware,
            metadata_path,
            policy,
        } => run(
            &request_path,
            settings_json,
            settings_path,
            replay_host_capabilities_interactions,
            allow_context_aware,
            &metadata_path,
            &policy,
        ),
        Command::E2e {
            cases,
            settings_matrix,
            sample_policy,
            regressions,
            metadata_path,
            filter,
            policy,
        } => e2e(
            &cases,
            &settings_matrix,
            &sample_policy,
            &regressions,
            &metadata_path,
            filter.as_deref(),
            &policy,
        ),
        Command::Kubectl { args } => std::process::exit(stand_in::run(&args)?),
        Command::Bench {
            fixtures,
            metadata_path,
            quick,
            policy,
        } => bench::run(&Policy::load(&policy, &metadata_path)?, &fixtures, quick),
    }
}

fn run(
    request_path: &std::path::Path,
    settings_json: Option<String>,
    settings_path: Option<PathBuf>,
    session: Option<PathBuf>,
    allow_context_aware: bool,
    metadata_path: &std::path::Path,
    policy_path: &std::path::Path,
) -> Result<()> {
    let empty_metadata = std::env::temp_dir().join("irsa-test-host-no-context.yml");
    let metadata = if allow_context_aware {
        metadata_path.to_path_buf()
    } else {
        eprintln!("warning: the policy is not granted any contextAwareResources (pass --allow-context-aware)");
        std::fs::write(&empty_metadata, "contextAwareResources: []\n")?;
        empty_metadata
    };
    let policy = Policy::load(policy_path, &metadata)?;
    let settings: Value = match (settings_path, settings_json) {
        (Some(path), _) => serde_yaml::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{}", path.display()))?,
        (None, Some(json)) => serde_json::from_str(&json).context("--settings-json")?,
        (None, None) => serde_json::json!({}),
    };
    let settings = if settings.is_null() {
        serde_json::json!({})
    } else {
        settings
    };
    if let Err(message) = cases::validate_settings(&policy, &settings)? {
        bail!("Provided settings are not valid: {message}");
    }
    let request = cases::read_request(request_path)?;
    let session = match session {
        Some(path) => Session::load(&path)?,
        None => Session::default(),
    };
    let evaluation = cases::evaluate(&policy, &request, &settings, session)?;
    for event in &evaluation.logs {
        eprintln!("{event}");
    }
    eprintln!(
        "host calls: kubernetes/get_resource x{}",
        evaluation.kubernetes_calls
    );
    for violation in &evaluation.violations {
        eprintln!("host capabilities replay: {violation}");
    }
    println!("{}", serde_json::to_string(&evaluation.response)?);
    Ok(())
}

fn e2e(
    cases_dir: &std::path::Path,
    settings_matrix: &std::path::Path,
    sample_policy: &std::path::Path,
    regressions: &std::path::Path,
    metadata: &std::path::Path,
    filter: Option<&str>,
    policy_path: &std::path::Path,
) -> Result<()> {
    let started = Instant::now();
    let policy = Policy::load(policy_path, metadata)?;
    println!(
        "policy {} ({} bytes), metadata {}",
        policy_path.display(),
        policy.size,
        metadata.display()
    );
    let mut failed = Vec::new();

    for (name, outcome) in contract::check(
        &policy,
        policy_path,
        settings_matrix,
        sample_policy,
        regressions,
    )? {
        report(&format!("contract: {name}"), &outcome, &mut failed);
    }

    let all = cases::Case::load_all(cases_dir)?;
    let mut run = 0;
    for case in all
        .iter()
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
    {
        run += 1;
        let outcome = case.run(&policy).map_err(|e| format!("{e:#}"));
        report(
            &format!("{} - {}", case.name, case.expect.description),
            &outcome,
            &mut failed,
        );
    }
    println!(
        "\n{} e2e cases and the waPC contract on {} in {:.1}s: {} failed",
        run,
        policy_path.display(),
        started.elapsed().as_secs_f64(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("failed: {}", failed.join(", "))
    }
}

fn report(name: &str, outcome: &Result<(), String>, failed: &mut Vec<String>) {
    match outcome {
        Ok(()) => println!("ok    {name}"),
        Err(reason) => {
            println!("FAIL  {name}\n    {reason}");
            failed.push(name.split(" - ").next().unwrap_or(name).to_owned());
        }
    }
}

/// Used by `contract` to make host state without a session.
pub fn idle_state() -> std::sync::Arc<std::sync::Mutex<HostState>> {
    HostState::new(Responder::Replay(Session::default()))
}
