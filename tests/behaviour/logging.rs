//! What the policy-server's log shows: one short info event per decision (each
//! event is a host call, so there is never a second), saying what happened and
//! why, and one debug event with the lists a person asks about.

use std::fmt;
use std::sync::{Arc, Mutex};

use irsa_policy::lookup::{InMemoryServiceAccounts, ServiceAccount};
use irsa_policy::review;
use serde_json::{json, Value};
use slog::{Drain, Key, Level, OwnedKVList, Record, Serializer, KV};

use crate::common::ROLE;

/// One log event as the host would receive it: level, message and fields.
#[derive(Debug)]
struct Event {
    level: Level,
    message: String,
    fields: Vec<(String, String)>,
}

impl Event {
    fn field(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("event {self:?} has no field {key}"))
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Event>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Serializer for Fields<'_> {
    fn emit_arguments(&mut self, key: Key, value: &fmt::Arguments) -> slog::Result {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

impl Drain for Capture {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Vec::new();
        record
            .kv()
            .serialize(record, &mut Fields(&mut fields))
            .unwrap();
        values.serialize(record, &mut Fields(&mut fields)).unwrap();
        self.0.lock().unwrap().push(Event {
            level: record.level(),
            message: record.msg().to_string(),
            fields,
        });
        Ok(())
    }
}

fn events(operation: &str, pod: Value, account: Option<ServiceAccount>) -> Vec<Event> {
    let payload = serde_json::to_vec(&json!({
        "request": {
            "uid": "705ab4f5",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": operation,
            "namespace": "team-a",
            "object": pod,
        },
        "settings": {},
    }))
    .unwrap();
    let mut accounts = InMemoryServiceAccounts::default();
    if let Some(account) = account {
        accounts = accounts.with("team-a", "app", account);
    }
    let capture = Capture::default();
    let log = slog::Logger::root(capture.clone().fuse(), slog::o!("policy" => "irsa-policy"));
    review(&payload, &accounts, &log);
    let events = std::mem::take(&mut *capture.0.lock().unwrap());
    events
}

fn pod(containers: Value) -> Value {
    json!({"metadata": {"name": "web"}, "spec": {"serviceAccountName": "app", "containers": containers}})
}

fn role_account() -> Option<ServiceAccount> {
    Some(ServiceAccount::with_annotations([(
        "eks.amazonaws.com/role-arn",
        ROLE,
    )]))
}

/// The single info event of a decision.
fn outcome(events: &[Event]) -> &Event {
    let info: Vec<&Event> = events.iter().filter(|e| e.level == Level::Info).collect();
    assert_eq!(info.len(), 1, "one info event per decision: {events:?}");
    info[0]
}

/// The debug events of a decision.
fn details(events: &[Event]) -> Vec<&Event> {
    events.iter().filter(|e| e.level == Level::Debug).collect()
}

fn field_names(event: &Event) -> Vec<&str> {
    let mut names: Vec<&str> = event.fields.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names
}

#[test]
fn a_mutation_logs_the_pod_the_role_and_the_containers() {
    let logged = events(
        "CREATE",
        pod(json!([{"name": "app"}, {"name": "proxy"}])),
        role_account(),
    );
    let event = outcome(&logged);
    assert_eq!(event.message, "pod mutated");
    assert_eq!(event.field("pod"), "team-a/web");
    assert_eq!(event.field("serviceAccount"), "app");
    assert_eq!(event.field("credentials"), ROLE);
    assert_eq!(event.field("containers"), "2");
    assert_eq!(event.field("policy"), "irsa-policy");
    // Nothing else: an info line per pod is read by people in a busy log.
    assert_eq!(
        field_names(event),
        [
            "containers",
            "credentials",
            "pod",
            "policy",
            "serviceAccount"
        ]
    );
}

#[test]
fn the_lists_of_a_mutation_are_logged_at_debug() {
    let logged = events(
        "CREATE",
        pod(json!([{"name": "app"}, {"name": "proxy"}])),
        role_account(),
    );
    let debug = details(&logged);
    assert_eq!(debug.len(), 1, "{logged:?}");
    let event = debug[0];
    assert_eq!(event.message, "injection details");
    assert_eq!(event.field("pod"), "team-a/web");
    assert_eq!(event.field("containers"), "app,proxy");
    assert_eq!(event.field("skippedContainers"), "");
    assert_eq!(event.field("audience"), "sts.amazonaws.com");
    assert_eq!(event.field("expirationSeconds"), "86400");
    assert_eq!(
        event.field("tokenFile"),
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    );
    assert_eq!(event.field("region"), "");
    assert_eq!(event.field("stsRegionalEndpoints"), "false");
    assert_eq!(event.field("stsEndpoint"), "");
    assert_eq!(event.field("keptVariables"), "");
}

#[test]
fn variables_a_container_keeps_for_itself_are_logged_at_debug() {
    let logged = events(
        "CREATE",
        pod(json!([
            {"name": "app", "env": [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/own"}]},
            {"name": "proxy"}
        ])),
        role_account(),
    );
    assert_eq!(outcome(&logged).message, "pod mutated");
    let debug = details(&logged);
    assert_eq!(debug.len(), 1, "{logged:?}");
    assert!(
        debug[0].field("keptVariables").starts_with("app: "),
        "{debug:?}"
    );
}

#[test]
fn a_pod_left_unchanged_logs_why() {
    let no_role = events(
        "CREATE",
        pod(json!([{"name": "app"}])),
        Some(ServiceAccount::default()),
    );
    assert_eq!(outcome(&no_role).message, "pod left unchanged");
    assert_eq!(
        outcome(&no_role).field("reason"),
        "no role for the ServiceAccount"
    );
    assert_eq!(outcome(&no_role).field("pod"), "team-a/web");

    let no_account = events("CREATE", pod(json!([{"name": "app"}])), None);
    assert_eq!(
        outcome(&no_account).field("reason"),
        "ServiceAccount not found"
    );

    let update = events("UPDATE", pod(json!([{"name": "app"}])), role_account());
    assert_eq!(outcome(&update).field("reason"), "not a pod creation");
    assert_eq!(outcome(&update).field("operation"), "UPDATE");
}

#[test]
fn an_opted_out_pod_is_logged_as_left_unchanged_naming_the_label() {
    let mut opted_out = pod(json!([{"name": "app"}]));
    opted_out["metadata"]["labels"] =
        json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"});
    let logged = events("CREATE", opted_out, role_account());
    assert_eq!(outcome(&logged).message, "pod left unchanged");
    assert_eq!(
        outcome(&logged).field("reason"),
        "pod labelled eks.amazonaws.com/skip-pod-identity-webhook"
    );
    assert_eq!(outcome(&logged).field("pod"), "team-a/web");
}

#[test]
fn a_pod_named_by_generate_name_is_logged_by_its_prefix() {
    let pod = json!({"metadata": {"name": "", "generateName": "web-7d9f5c-"},
        "spec": {"serviceAccountName": "app", "containers": [{"name": "app"}]}});
    let logged = events("CREATE", pod, role_account());
    assert_eq!(outcome(&logged).field("pod"), "team-a/web-7d9f5c-*");
}

#[test]
fn a_rejection_logs_the_message_the_user_gets() {
    let logged = events(
        "CREATE",
        pod(json!([{"name": "app"}])),
        Some(ServiceAccount::with_annotations([(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::12:role/app",
        )])),
    );
    let event = outcome(&logged);
    assert_eq!(event.message, "pod rejected");
    assert!(
        event.field("reason").contains("arn:aws:iam::12:role/app"),
        "{event:?}"
    );
}
