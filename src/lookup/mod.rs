//! Stage 3 of the flow: the lookup.
//!
//! Reading the pod's ServiceAccount: the one place that talks to the host.
//!
//! Everything else receives a [`ServiceAccountSource`], so the decision is
//! tested natively with an in-memory source, and the host calls themselves are
//! tested here with the SDK's function mocked, as Kubewarden's own
//! context-aware policies do.

pub(crate) mod host_error;

use crate::error::PolicyError;
use kubewarden_policy_sdk::host_capabilities::kubernetes::GetResourceRequest;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

#[cfg(not(test))]
use kubewarden_policy_sdk::host_capabilities::kubernetes::get_resource;
#[cfg(test)]
use tests::mock_kubernetes_sdk::get_resource;

/// The host's "not found" error is plain text with no type to match on:
/// `Cannot find v1/ServiceAccount named 'x' inside of namespace 'Some("ns")'`.
const NOT_FOUND: &str = "Cannot find";

/// The only field the policy reads; the host prunes the rest (older hosts
/// ignore the mask and send the whole object, which parses the same).
pub const FIELD_MASK: &str = "metadata.annotations";

/// The part of a ServiceAccount the policy reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ServiceAccount {
    #[serde(default)]
    pub metadata: Metadata,
}

/// Annotations are kept as JSON values: the module already carries the code
/// for JSON maps, and a map of strings would bring its own copy of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    #[serde(default, deserialize_with = "crate::input::go_json::null_as_default")]
    pub annotations: Map<String, Value>,
}

impl ServiceAccount {
    pub fn with_annotations<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            metadata: Metadata {
                annotations: pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::from(v)))
                    .collect(),
            },
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        // Kubernetes only stores strings here.
        self.metadata.annotations.get(key).and_then(Value::as_str)
    }
}

/// What a lookup can find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(ServiceAccount),
    NotFound,
}

/// Where the decision gets ServiceAccounts from.
pub trait ServiceAccountSource {
    fn get(&self, namespace: &str, name: &str) -> Result<Lookup, PolicyError>;
}

/// ServiceAccounts read through Kubewarden's `kubernetes/get_resource`.
pub struct HostServiceAccounts;

impl ServiceAccountSource for HostServiceAccounts {
    /// A ServiceAccount created together with its pod (one `kubectl apply`)
    /// may be missing from the policy-server's 5-second cache though it exists:
    /// the official tracker's #174 and #264. So "not found" is asked once more,
    /// past the cache, before the pod is let through unchanged.
    fn get(&self, namespace: &str, name: &str) -> Result<Lookup, PolicyError> {
        let failed = |e: kubewarden_policy_sdk::Error| {
            PolicyError::lookup_failed(namespace, name, &e.to_string())
        };
        match fetch(namespace, name, false) {
            Ok(sa) => Ok(Lookup::Found(sa)),
            Err(e) if is_not_found(&e) => match fetch(namespace, name, true) {
                Ok(sa) => Ok(Lookup::Found(sa)),
                Err(e) if is_not_found(&e) => Ok(Lookup::NotFound),
                Err(e) => Err(failed(e)),
            },
            Err(e) => Err(failed(e)),
        }
    }
}

/// ServiceAccounts held in memory, counting lookups: the native stand-in for
/// the host in behaviour tests.
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Default)]
pub struct InMemoryServiceAccounts {
    accounts: std::collections::BTreeMap<(String, String), Result<ServiceAccount, PolicyError>>,
    lookups: std::cell::Cell<usize>,
}

#[cfg(any(test, feature = "test-support"))]
impl InMemoryServiceAccounts {
    pub fn with(mut self, namespace: &str, name: &str, account: ServiceAccount) -> Self {
        self.accounts
            .insert((namespace.into(), name.into()), Ok(account));
        self
    }

    /// A lookup that fails with this host error text.
    pub fn failing(mut self, namespace: &str, name: &str, host_text: &str) -> Self {
        let error = PolicyError::lookup_failed(namespace, name, host_text);
        self.accounts
            .insert((namespace.into(), name.into()), Err(error));
        self
    }

    pub fn lookups(&self) -> usize {
        self.lookups.get()
    }
}

#[cfg(any(test, feature = "test-support"))]
impl ServiceAccountSource for InMemoryServiceAccounts {
    fn get(&self, namespace: &str, name: &str) -> Result<Lookup, PolicyError> {
        self.lookups.set(self.lookups.get() + 1);
        match self.accounts.get(&(namespace.to_owned(), name.to_owned())) {
            Some(Ok(account)) => Ok(Lookup::Found(account.clone())),
            Some(Err(error)) => Err(error.clone()),
            None => Ok(Lookup::NotFound),
        }
    }
}

/// Every lookup finds this ServiceAccount, whatever the pod's namespace and
/// name: the fuzz targets and their regression test then always reach the edit.
#[cfg(any(test, feature = "test-support"))]
pub struct EveryoneHasARole(pub ServiceAccount);

#[cfg(any(test, feature = "test-support"))]
impl ServiceAccountSource for EveryoneHasARole {
    fn get(&self, _namespace: &str, _name: &str) -> Result<Lookup, PolicyError> {
        Ok(Lookup::Found(self.0.clone()))
    }
}

pub fn request(namespace: &str, name: &str, disable_cache: bool) -> GetResourceRequest {
    GetResourceRequest {
        api_version: "v1".into(),
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(namespace.into()),
        disable_cache,
        field_masks: Some(BTreeSet::from([FIELD_MASK.to_owned()])),
    }
}

fn fetch(
    namespace: &str,
    name: &str,
    disable_cache: bool,
) -> kubewarden_policy_sdk::Result<ServiceAccount> {
    get_resource(&request(namespace, name, disable_cache))
}

fn is_not_found(error: &kubewarden_policy_sdk::Error) -> bool {
    error.to_string().contains(NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mockall::automock;
    use mockall::predicate::function;
    use serial_test::serial;

    #[automock]
    pub mod kubernetes_sdk {
        use kubewarden_policy_sdk::host_capabilities::kubernetes::GetResourceRequest;

        #[allow(dead_code)]
        pub fn get_resource<T: 'static>(
            _req: &GetResourceRequest,
        ) -> kubewarden_policy_sdk::Result<T> {
            Err(kubewarden_policy_sdk::Error::Validation(
                "not mocked".into(),
            ))
        }
    }

    fn host_error(text: &str) -> kubewarden_policy_sdk::Error {
        kubewarden_policy_sdk::Error::HostCall {
            operation: "kubernetes.get_resource".into(),
            source: text.into(),
        }
    }

    fn not_found() -> kubewarden_policy_sdk::Error {
        host_error(
            "Cannot find v1/ServiceAccount named 'app' inside of namespace 'Some(\"team-a\")'",
        )
    }

    fn asks_for(disable_cache: bool) -> impl Fn(&GetResourceRequest) -> bool {
        move |req: &GetResourceRequest| {
            req.api_version == "v1"
                && req.kind == "ServiceAccount"
                && req.name == "app"
                && req.namespace.as_deref() == Some("team-a")
                && req.disable_cache == disable_cache
                && req.field_masks == Some(BTreeSet::from(["metadata.annotations".to_owned()]))
        }
    }

    #[test]
    #[serial]
    fn reads_the_service_account_once_through_the_cache_with_a_field_mask() {
        let sa = ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", "arn")]);
        let ctx = mock_kubernetes_sdk::get_resource_context();
        let found = sa.clone();
        ctx.expect::<ServiceAccount>()
            .with(function(asks_for(false)))
            .times(1)
            .returning(move |_| Ok(found.clone()));
        assert_eq!(
            HostServiceAccounts.get("team-a", "app"),
            Ok(Lookup::Found(sa))
        );
    }

    #[test]
    #[serial]
    fn asks_again_past_the_cache_when_not_found() {
        let sa = ServiceAccount::with_annotations([("eks.amazonaws.com/role-arn", "arn")]);
        let ctx = mock_kubernetes_sdk::get_resource_context();
        let mut seq = mockall::Sequence::new();
        ctx.expect::<ServiceAccount>()
            .with(function(asks_for(false)))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(not_found()));
        let found = sa.clone();
        ctx.expect::<ServiceAccount>()
            .with(function(asks_for(true)))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(found.clone()));
        assert_eq!(
            HostServiceAccounts.get("team-a", "app"),
            Ok(Lookup::Found(sa))
        );
    }

    #[test]
    #[serial]
    fn not_found_twice_is_not_found() {
        let ctx = mock_kubernetes_sdk::get_resource_context();
        ctx.expect::<ServiceAccount>()
            .times(2)
            .returning(|_| Err(not_found()));
        assert_eq!(
            HostServiceAccounts.get("team-a", "app"),
            Ok(Lookup::NotFound)
        );
    }

    #[test]
    #[serial]
    fn a_forbidden_lookup_says_what_to_grant() {
        let ctx = mock_kubernetes_sdk::get_resource_context();
        ctx.expect::<ServiceAccount>().times(1).returning(|_| {
            Err(host_error(
                "serviceaccounts \"app\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server\" cannot get resource \"serviceaccounts\"",
            ))
        });
        let err = HostServiceAccounts.get("team-a", "app").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("cannot read ServiceAccount team-a/app: the API server refused the policy-server: grant the policy-server's ServiceAccount get on serviceaccounts (deploy/rbac.yaml). Host error: serviceaccounts \"app\" is forbidden"),
            "{message}"
        );
        // The SDK's and waPC's wrappers say nothing the user needs.
        assert!(!message.contains("Host error: error invoking"), "{message}");
        assert_eq!(err.code(), 500);
    }

    #[test]
    #[serial]
    fn an_error_on_the_second_ask_is_reported() {
        let ctx = mock_kubernetes_sdk::get_resource_context();
        let mut seq = mockall::Sequence::new();
        ctx.expect::<ServiceAccount>()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(not_found()));
        ctx.expect::<ServiceAccount>()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(host_error("connection refused")));
        let err = HostServiceAccounts.get("team-a", "app").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("could not reach the Kubernetes API server"),
            "{message}"
        );
        assert!(
            message.ends_with("Host error: connection refused"),
            "{message}"
        );
    }

    #[test]
    fn reads_annotations_from_a_masked_or_whole_service_account() {
        let masked: ServiceAccount =
            serde_json::from_str(r#"{"metadata":{"annotations":{"a":"b"}}}"#).unwrap();
        assert_eq!(masked.annotation("a"), Some("b"));
        let whole: ServiceAccount = serde_json::from_str(
            r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"app","namespace":"team-a","annotations":null},"secrets":[]}"#,
        )
        .unwrap();
        assert!(whole.metadata.annotations.is_empty());
        let bare: ServiceAccount = serde_json::from_str(r#"{}"#).unwrap();
        assert!(bare.metadata.annotations.is_empty());
    }
}
