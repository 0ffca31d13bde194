//! Stage 5 of the flow: the edit.
//!
//! The edit of the pod, as JSON, planned in full before anything changes.
//!
//! [`plan()`] reads the pod and the [`Injection`](crate::resolve::Injection) and returns either every edit
//! to make or the conflict that forbids them; [`PodEdit::apply`] then only
//! appends. Nothing is decoded into typed structs and re-encoded, so fields
//! this policy does not know (an init container's `restartPolicy: Always`, a
//! field newer than `k8s-openapi`) come back exactly as they came in: the
//! official webhook rewrote whole container lists and dropped them (its #208).

pub(crate) mod apply;
mod conflicts;
mod env;
mod plan;
pub mod volume;

pub use plan::plan;

use crate::resolve::env::Group;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// Which containers of the pod the edit is for.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A pod being created: its init containers (native sidecars among them)
    /// and containers; the token volume is added when missing.
    Creation,
    /// Ephemeral containers added to a running pod (`kubectl debug`): only
    /// those not in `existing`, which Kubernetes forbids changing; a running
    /// pod's volumes cannot change, so the token volume must already be there.
    NewEphemeralContainers { existing: &'a [String] },
}

impl Scope<'_> {
    fn lists(&self) -> &'static [&'static str] {
        match self {
            Scope::Creation => &["initContainers", "containers"],
            Scope::NewEphemeralContainers { .. } => &["ephemeralContainers"],
        }
    }
}

/// Every change to make to one pod. Empty when the pod already has it all.
#[derive(Debug, Default, PartialEq)]
pub struct PodEdit {
    volume: Option<Value>,
    label: Option<(&'static str, &'static str)>,
    containers: Vec<ContainerEdit>,
}

#[derive(Debug, PartialEq)]
struct ContainerEdit {
    list: &'static str,
    index: usize,
    mount: Option<Value>,
    env: Vec<Value>,
}

/// The edit, and what it covers, for the decision log and the warnings.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub edit: PodEdit,
    /// Containers that get (or already have) the credentials.
    pub injected: Vec<String>,
    /// Containers left alone because of the container annotations.
    pub skipped: Vec<String>,
    /// The variables the policy would have set but the container sets itself
    /// (or leaves to `envFrom`).
    pub kept: Vec<Kept>,
    /// Names in the container annotations that match no container of the pod.
    pub unknown_names: Vec<String>,
    /// Why new ephemeral containers get nothing, when their pod has no usable
    /// token volume.
    pub no_volume: Option<String>,
}

/// A group of variables a container keeps for itself, for the decision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub container: String,
    pub reason: KeptReason,
}

/// Why a container gets none of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptReason {
    /// The container sets this variable of the group itself.
    SetByContainer(&'static str),
    /// `skipRegionWithEnvFrom`: the group is left to the container's `envFrom`.
    LeftToEnvFrom(&'static Group),
}

/// `app: AWS_REGION`, `app: region left to envFrom`.
impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            KeptReason::SetByContainer(variable) => write!(f, "{}: {variable}", self.container),
            KeptReason::LeftToEnvFrom(group) => {
                write!(f, "{}: {} left to envFrom", self.container, group.name)
            }
        }
    }
}

/// Serialising what the policy adds cannot fail: it holds only strings,
/// numbers and booleans.
fn to_json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
