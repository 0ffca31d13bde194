//! A waPC host for policy.wasm built on the engine policy-server uses
//! (`wapc` + `wasmtime-provider`): the module is compiled once, and every
//! evaluation gets a fresh instance, on which `wapc_init` runs again.

use crate::session::{CallbackRequest, Session};
use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use wapc::WapcHost;
use wasmtime_provider::{WasmtimeEngineProviderBuilder, WasmtimeEngineProviderPre};

/// The part of `metadata.yml` the host enforces.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    context_aware_resources: Vec<ContextAwareResource>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct ContextAwareResource {
    api_version: String,
    kind: String,
}

/// The payload the SDK's `get_resource` sends.
#[derive(Debug, Deserialize)]
struct GetResourceRequest {
    api_version: String,
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    disable_cache: bool,
    #[serde(default)]
    field_masks: Option<BTreeSet<String>>,
}

/// How `kubernetes/get_resource` calls are answered.
pub enum Responder {
    /// From a kwctl replay session, in order.
    Replay(Session),
    /// Always the same object: the benchmark's stand-in for a warm cache.
    Fixed(Vec<u8>),
    /// From the stand-in cluster's ServiceAccounts (`kubectl` subcommand), with
    /// the texts the policy-server returns for a missing object and a missing grant.
    Cluster(ClusterAccounts),
}

/// The stand-in cluster's ServiceAccounts by `(namespace, name)`, and whether
/// the policy-server's ServiceAccount may `get` them.
pub struct ClusterAccounts {
    pub accounts: BTreeMap<(String, String), Value>,
    pub granted: bool,
}

impl ClusterAccounts {
    fn answer(&self, request: &CallbackRequest) -> Result<Vec<u8>, String> {
        let CallbackRequest::KubernetesGetResource {
            kind,
            name,
            namespace,
            ..
        } = request;
        let namespace = namespace.clone().unwrap_or_default();
        if !self.granted {
            let refusal = format!(
                "serviceaccounts \"{name}\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server\" \
                 cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"{namespace}\""
            );
            return Err(format!(
                "ApiError: {refusal}: Forbidden (ErrorResponse {{ status: \"Failure\", message: {refusal:?}, \
                 reason: \"Forbidden\", code: 403 }})\n\nCaused by:\n    {refusal}: Forbidden"
            ));
        }
        match self.accounts.get(&(namespace.clone(), name.clone())) {
            Some(account) if kind == "ServiceAccount" => {
                serde_json::to_vec(account).map_err(|e| e.to_string())
            }
            _ => Err(format!(
                "Cannot find v1/{kind} named '{name}' inside of namespace 'Some(\"{namespace}\")'"
            )),
        }
    }
}

/// What happened on the host side of one evaluation.
pub struct HostState {
    pub responder: Responder,
    /// Host calls by `namespace/operation`.
    pub calls: BTreeMap<String, usize>,
    /// Log events the policy sent through `tracing/log`.
    pub logs: Vec<Value>,
    /// Errors the host returned for calls the policy was not allowed to make.
    pub refusals: Vec<String>,
}

impl HostState {
    pub fn new(responder: Responder) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            responder,
            calls: BTreeMap::new(),
            logs: Vec::new(),
            refusals: Vec::new(),
        }))
    }

    pub fn kubernetes_calls(&self) -> usize {
        self.calls
            .iter()
            .filter(|(k, _)| k.starts_with("kubernetes/"))
            .map(|(_, v)| v)
            .sum()
    }
}

pub struct Policy {
    pre: WasmtimeEngineProviderPre,
    allowed: Arc<BTreeSet<ContextAwareResource>>,
    pub size: usize,
}

impl Policy {
    /// Compiles the module once; `metadata.yml` gives the resources it may read,
    /// as `kwctl run --allow-context-aware` takes them from the annotated module.
    pub fn load(wasm: &Path, metadata: &Path) -> Result<Self> {
        let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
        let metadata: Metadata = serde_yaml::from_str(
            &std::fs::read_to_string(metadata)
                .with_context(|| format!("reading {}", metadata.display()))?,
        )
        .with_context(|| format!("parsing {}", metadata.display()))?;
        let pre = WasmtimeEngineProviderBuilder::new()
            .engine(engine()?)
            .module_bytes(&bytes)
            .build_pre()
            .map_err(|e| anyhow!("compiling {}: {e}", wasm.display()))?;
        Ok(Self {
            pre,
            allowed: Arc::new(metadata.context_aware_resources.into_iter().collect()),
            size: bytes.len(),
        })
    }

    /// A fresh instance wired to `state`, as policy-server makes one per evaluation.
    pub fn instantiate(&self, state: &Arc<Mutex<HostState>>) -> Result<WapcHost> {
        let engine = self
            .pre
            .rehydrate(Some(DEADLINES))
            .map_err(|e| anyhow!("instantiating: {e}"))?;
        let state = Arc::clone(state);
        let allowed = Arc::clone(&self.allowed);
        let callback =
            move |_id: u64, binding: &str, namespace: &str, operation: &str, payload: &[u8]| {
                let mut state = state.lock().expect("host state lock");
                host_call(&mut state, &allowed, binding, namespace, operation, payload).map_err(
                    |message| -> Box<dyn std::error::Error + Send + Sync> { message.into() },
                )
            };
        WapcHost::new(Box::new(engine), Some(Box::new(callback)))
            .map_err(|e| anyhow!("wapc_init: {e}"))
    }

    /// One waPC call on a fresh instance.
    pub fn call_fresh(
        &self,
        state: &Arc<Mutex<HostState>>,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let host = self.instantiate(state).map_err(|e| e.to_string())?;
        host.call(operation, payload).map_err(|e| e.to_string())
    }
}

/// The engine as policy-server configures it: wasmtime's defaults, function
/// references (for Go policies), and epoch interruption, which policy-server
/// turns on for its evaluation timeout and which costs a check in every loop
/// and function of the guest.
fn engine() -> Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::default();
    config.wasm_function_references(true);
    config.epoch_interruption(true);
    wasmtime::Engine::new(&config).map_err(|e| anyhow!("wasmtime engine: {e}"))
}

/// policy-server's default evaluation limit is 2 s, counted in 1 s epoch
/// ticks; nothing ticks here, so the deadline only costs its checks.
const DEADLINES: wasmtime_provider::EpochDeadlines = wasmtime_provider::EpochDeadlines {
    wapc_init: 2,
    wapc_func: 2,
};

/// Dispatches a guest host call as policy-evaluator does.
fn host_call(
    state: &mut HostState,
    allowed: &BTreeSet<ContextAwareResource>,
    binding: &str,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    if binding != "kubewarden" {
        return Err(format!("unknown binding: {binding}"));
    }
    *state
        .calls
        .entry(format!("{namespace}/{operation}"))
        .or_default() += 1;
    match (namespace, operation) {
        ("tracing", "log") => {
            if let Ok(event) = serde_json::from_slice(payload) {
                state.logs.push(event);
            }
            Ok(Vec::new())
        }
        ("kubernetes", "get_resource") => {
            let req: GetResourceRequest =
                serde_json::from_slice(payload).map_err(|e| e.to_string())?;
            let resource = ContextAwareResource {
                api_version: req.api_version.clone(),
                kind: req.kind.clone(),
            };
            if !allowed.contains(&resource) {
                let refusal = format!(
                    "Policy has not been granted access to Kubernetes {}/{} resources. The violation has been reported.",
                    req.api_version, req.kind
                );
                state.refusals.push(refusal.clone());
                return Err(refusal);
            }
            let request = CallbackRequest::KubernetesGetResource {
                api_version: req.api_version,
                kind: req.kind,
                name: req.name,
                namespace: req.namespace,
                disable_cache: req.disable_cache,
                field_masks: req.field_masks,
            };
            match &mut state.responder {
                Responder::Replay(session) => session.answer(request),
                Responder::Fixed(payload) => Ok(payload.clone()),
                Responder::Cluster(cluster) => cluster.answer(&request),
            }
            .map_err(|e| format!("Callback evaluation failure: {e}"))
        }
        ("kubernetes", other) => Err(format!("unknown operation: {other}")),
        (other, _) => Err(format!("unknown namespace: {other}")),
    }
}
