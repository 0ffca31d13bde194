//! `make bench`: the cost of one admission as policy-server pays it.
//!
//! For each scenario: a fresh instance per evaluation (policy-server's way:
//! instantiate, `wapc_init`, `validate`), a reused instance, and the same
//! decision compiled natively (parse the request and the ServiceAccount JSON,
//! decide, edit, log, serialise the response). One JSON line per scenario on
//! stdout, to compare across commits; a summary against the targets on stderr.

use crate::host::{HostState, Policy, Responder};
use anyhow::{bail, Context, Result};
use irsa_policy::error::PolicyError;
use irsa_policy::lookup::{self, Lookup, ServiceAccount, ServiceAccountSource};
use serde_json::{json, Map, Value};
use slog::KV;
use std::path::Path;
use std::time::{Duration, Instant};

struct Scenario {
    name: &'static str,
    payload: Vec<u8>,
    containers: usize,
    pod_bytes: usize,
    iterations: usize,
    mutates: bool,
}

pub fn run(policy: &Policy, bench_dir: &Path, quick: bool) -> Result<()> {
    let review: Value = serde_json::from_str(&std::fs::read_to_string(
        bench_dir.join("deployment-pod.json"),
    )?)
    .context("bench/deployment-pod.json")?;
    let sa_bytes = serde_json::to_vec(&serde_json::from_str::<Value>(&std::fs::read_to_string(
        bench_dir.join("service-account.json"),
    )?)?)?;
    let settings = json!({"awsDefaultRegion": "eu-west-1"});
    let request = review["request"].clone();
    let scale = if quick { 10 } else { 1 };

    let scenario = |name, request: Value, iterations: usize, mutates| -> Result<Scenario> {
        let object = &request["object"];
        let count = |list: &str| object["spec"][list].as_array().map_or(0, Vec::len);
        Ok(Scenario {
            name,
            containers: count("containers") + count("initContainers"),
            pod_bytes: serde_json::to_vec(object)?.len(),
            payload: serde_json::to_vec(&json!({"request": request, "settings": settings}))?,
            iterations: iterations / scale,
            mutates,
        })
    };

    let mut wide = request.clone();
    let template = wide["object"]["spec"]["containers"][0].clone();
    wide["object"]["spec"]["initContainers"] = json!([]);
    wide["object"]["spec"]["containers"] = (0..100)
        .map(|i| {
            let mut c = template.clone();
            c["name"] = json!(format!("c{i}"));
            c
        })
        .collect();
    let mut update = request.clone();
    update["operation"] = json!("UPDATE");
    update["oldObject"] = update["object"].clone();

    let scenarios = [
        scenario("deployment-pod", request, 3000, true)?,
        scenario("100-container-pod", wide, 400, true)?,
        scenario("update-not-acted-on", update, 3000, false)?,
    ];

    let mut results = Vec::new();
    for s in &scenarios {
        let result = measure(policy, s, &sa_bytes)?;
        println!("{}", serde_json::to_string(&result)?);
        results.push(result);
    }
    summary(policy, &results);
    Ok(())
}

fn measure(policy: &Policy, s: &Scenario, sa_bytes: &[u8]) -> Result<Value> {
    // Check the answer once, so a broken module cannot look fast.
    let state = HostState::new(Responder::Fixed(sa_bytes.to_vec()));
    let answer: Value = serde_json::from_slice(
        &policy
            .call_fresh(&state, "validate", &s.payload)
            .map_err(anyhow::Error::msg)?,
    )?;
    if answer["accepted"] != true || answer["mutated_object"].is_object() != s.mutates {
        bail!("{}: unexpected answer {answer}", s.name);
    }
    let (kubernetes_calls, log_calls) = {
        let state = state.lock().unwrap();
        (
            state.kubernetes_calls(),
            state.calls.get("tracing/log").copied().unwrap_or(0),
        )
    };

    // Interleaved: each round times one of each, so drift in the machine's
    // speed (a shared VM) moves all four series together and the ratios hold.
    let host = policy.instantiate(&state)?;
    let source = JsonServiceAccount(sa_bytes.to_vec());
    let log = slog::Logger::root(JsonDrain, slog::o!("policy" => "irsa-policy"));
    let mut series: [Vec<Duration>; 4] = Default::default();
    for round in 0..s.iterations + s.iterations / 10 {
        let timings = [
            time(|| {
                let state = HostState::new(Responder::Fixed(sa_bytes.to_vec()));
                policy.instantiate(&state).expect("instantiate")
            }),
            time(|| {
                let state = HostState::new(Responder::Fixed(sa_bytes.to_vec()));
                let host = policy.instantiate(&state).expect("instantiate");
                host.call("validate", &s.payload).expect("validate")
            }),
            time(|| host.call("validate", &s.payload).expect("validate")),
            time(|| {
                let decision = irsa_policy::review(&s.payload, &source, &log);
                irsa_policy::encode(decision, s.payload.len()).expect("encode")
            }),
        ];
        // The first tenth warms caches and allocators up.
        if round >= s.iterations / 10 {
            for (samples, timing) in series.iter_mut().zip(timings) {
                samples.push(timing);
            }
        }
    }
    let [instantiate, fresh, reused, native] = series;
    let (fresh, reused, native, instantiate) = (
        stats(fresh),
        stats(reused),
        stats(native),
        stats(instantiate),
    );
    let per_container = |median: f64| median / s.containers as f64;
    Ok(json!({
        "scenario": s.name,
        "containers": s.containers,
        "pod_bytes": s.pod_bytes,
        "module_bytes": policy.size,
        "iterations": s.iterations,
        "fresh_median_us": fresh.0, "fresh_p99_us": fresh.1,
        "instantiate_median_us": instantiate.0,
        "reused_median_us": reused.0, "reused_p99_us": reused.1,
        "native_median_us": native.0, "native_p99_us": native.1,
        "fresh_over_native": round(fresh.0 / native.0),
        "reused_over_native": round(reused.0 / native.0),
        "fresh_us_per_container": round(per_container(fresh.0)),
        "native_us_per_container": round(per_container(native.0)),
        "kubernetes_calls_per_evaluation": kubernetes_calls,
        "log_calls_per_evaluation": log_calls,
    }))
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    let result = std::hint::black_box(f());
    let elapsed = start.elapsed();
    drop(result);
    elapsed
}

/// Median and 99th percentile, in microseconds.
fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    (round(at(0.5)), round(at(0.99)))
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn summary(policy: &Policy, results: &[Value]) {
    let get = |name: &str, field: &str| {
        results
            .iter()
            .find(|r| r["scenario"] == name)
            .and_then(|r| r[field].as_f64())
            .unwrap_or(f64::NAN)
    };
    let typical = "deployment-pod";
    let wide = "100-container-pod";
    let linear = get(wide, "native_us_per_container") / get(typical, "native_us_per_container");
    let linear_fresh = get(wide, "fresh_us_per_container") / get(typical, "fresh_us_per_container");
    let rows = [
        (
            "policy.wasm size",
            format!("{} bytes", policy.size),
            policy.size <= 400_000,
            "<= 400 KB",
        ),
        (
            "fresh / native (deployment pod)",
            format!("{:.2}x", get(typical, "fresh_over_native")),
            get(typical, "fresh_over_native") <= 2.5,
            "<= 2.5x",
        ),
        (
            "reused / native (deployment pod)",
            format!("{:.2}x", get(typical, "reused_over_native")),
            get(typical, "reused_over_native") <= 1.75,
            "<= 1.75x",
        ),
        (
            "fresh / native (100 containers)",
            format!("{:.2}x", get(wide, "fresh_over_native")),
            get(wide, "fresh_over_native") <= 2.5,
            "<= 2.5x",
        ),
        (
            "reused / native (100 containers)",
            format!("{:.2}x", get(wide, "reused_over_native")),
            get(wide, "reused_over_native") <= 1.75,
            "<= 1.75x",
        ),
        (
            "per-container cost, 100 vs deployment pod (native)",
            format!("{linear:.2}x"),
            linear <= 1.5,
            "<= 1.5x",
        ),
        (
            "per-container cost, 100 vs deployment pod (fresh)",
            format!("{linear_fresh:.2}x"),
            linear_fresh <= 1.5,
            "<= 1.5x",
        ),
        (
            "host calls on a pod CREATE",
            format!("{}", get(typical, "kubernetes_calls_per_evaluation")),
            get(typical, "kubernetes_calls_per_evaluation") == 1.0,
            "1",
        ),
        (
            "host calls on anything else",
            format!(
                "{}",
                get("update-not-acted-on", "kubernetes_calls_per_evaluation")
            ),
            get("update-not-acted-on", "kubernetes_calls_per_evaluation") == 0.0,
            "0",
        ),
    ];
    eprintln!();
    for (what, value, ok, target) in rows {
        eprintln!(
            "{} {what:<52} {value:>14}   target {target}",
            if ok { "ok  " } else { "MISS" }
        );
    }
}

/// The native stand-in for the host: the ServiceAccount arrives as JSON, as it
/// does in the module, and the request for it is serialised as the SDK does.
struct JsonServiceAccount(Vec<u8>);

impl ServiceAccountSource for JsonServiceAccount {
    fn get(&self, namespace: &str, name: &str) -> Result<Lookup, PolicyError> {
        std::hint::black_box(serde_json::to_vec(&lookup::request(namespace, name, false)).ok());
        serde_json::from_slice::<ServiceAccount>(&self.0)
            .map(Lookup::Found)
            .map_err(|e| PolicyError::lookup_failed(namespace, name, &e.to_string()))
    }
}

/// Serialises each log record to JSON as the SDK's drain does before its host
/// call, so native pays for the same logging work.
struct JsonDrain;

impl slog::Drain for JsonDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let mut map = JsonMap(Map::new());
        let _ = record.kv().serialize(record, &mut map);
        let _ = slog::KV::serialize(values, record, &mut map);
        map.0.insert("level".into(), json!(record.level().as_str()));
        map.0
            .insert("message".into(), json!(record.msg().to_string()));
        map.0.insert("line".into(), json!(record.line()));
        map.0.insert("file".into(), json!(record.file()));
        std::hint::black_box(serde_json::to_vec(&map.0).ok());
        Ok(())
    }
}

struct JsonMap(Map<String, Value>);

impl slog::Serializer for JsonMap {
    fn emit_arguments(&mut self, key: slog::Key, value: &std::fmt::Arguments) -> slog::Result {
        self.0.insert(key.to_string(), json!(value.to_string()));
        Ok(())
    }
}
