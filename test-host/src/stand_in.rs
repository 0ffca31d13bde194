//! `irsa-test-host kubectl ...`: a stand-in for `kubectl` talking to a cluster
//! that runs this policy, so that the check phase of `e2e-tests/cluster/run.sh`
//! (its manifests, `jq` filters and greps) runs in `make test` on machines
//! without a cluster, and only cluster plumbing is left for GitHub.
//!
//! It answers the few calls the check phase makes, as the API server would:
//! objects kept in `$STAND_IN_STATE/cluster.json`; pods admitted as the API
//! server admits them (the ServiceAccount must exist, `kube-api-access-*` is
//! added, defaults are written), the policy called when the applied
//! ClusterAdmissionPolicy's selectors match, with its settings, its lookups
//! answered from the stored ServiceAccounts and refused without the RBAC of
//! `deploy/rbac.yaml`; refusals in kubectl's words; Deployments that make one
//! pod through admission; the audit scanner's job, writing OpenReports.
//! Anything else is refused by name, so the script cannot drift into calls
//! that only a real cluster answers without this failing.

use crate::cases::evaluate_with;
use crate::host::{ClusterAccounts, Policy, Responder};
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The webhook name the API server quotes when the policy refuses a pod.
const WEBHOOK: &str = "clusterwide-irsa-policy.kubewarden.admission";
/// The name reports give a ClusterAdmissionPolicy named `irsa-policy`.
const REPORT_POLICY: &str = "clusterwide-irsa-policy";
/// The policy-server's identity, as `deploy/rbac.yaml` binds it.
const POLICY_SERVER: (&str, &str) = ("kubewarden", "policy-server");

#[derive(Default, Serialize, Deserialize)]
struct Cluster {
    /// Namespace name -> labels.
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// `Kind/namespace/name` (namespace empty for cluster-scoped kinds) -> object.
    objects: BTreeMap<String, Value>,
    /// Makes generated names and uids unique and repeatable.
    counter: u64,
}

/// The arguments of one call: flags with their values, and the rest.
struct Args {
    flags: Vec<(String, String)>,
    words: Vec<String>,
}

/// Flags that take a value when it is given as the next argument.
const VALUED: [&str; 10] = [
    "-n",
    "--namespace",
    "-f",
    "--filename",
    "-o",
    "--output",
    "-l",
    "--selector",
    "--for",
    "--timeout",
];

impl Args {
    fn parse(raw: &[String]) -> Self {
        let (mut flags, mut words) = (Vec::new(), Vec::new());
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            if let Some((flag, value)) = arg.split_once('=').filter(|_| arg.starts_with('-')) {
                flags.push((flag.to_owned(), value.to_owned()));
            } else if VALUED.contains(&arg.as_str()) {
                flags.push((arg.clone(), it.next().cloned().unwrap_or_default()));
            } else if arg.starts_with('-') && arg != "-" {
                flags.push((arg.clone(), String::new()));
            } else {
                words.push(arg.clone());
            }
        }
        Args { flags, words }
    }

    fn flag(&self, names: &[&str]) -> Option<&str> {
        self.flags
            .iter()
            .find(|(f, _)| names.contains(&f.as_str()))
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, names: &[&str]) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(f, _)| names.contains(&f.as_str()))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn namespace(&self) -> Option<&str> {
        self.flag(&["-n", "--namespace"])
    }
}

/// Runs one `kubectl` call; the exit status is kubectl's (0, or 1 for a
/// refusal, with kubectl's message on stderr).
pub fn run(raw: &[String]) -> Result<i32> {
    let state_dir = PathBuf::from(
        std::env::var("STAND_IN_STATE")
            .context("STAND_IN_STATE: the directory the stand-in cluster lives in")?,
    );
    let mut cluster = Cluster::load(&state_dir)?;
    let args = Args::parse(raw);
    let outcome = cluster.dispatch(&args);
    cluster.save(&state_dir)?;
    match outcome {
        Ok(Reply { stdout, stderr }) => {
            for line in stderr {
                eprintln!("{line}");
            }
            print!("{stdout}");
            Ok(0)
        }
        Err(Refusal(message)) => {
            eprintln!("{message}");
            Ok(1)
        }
    }
}

struct Reply {
    stdout: String,
    stderr: Vec<String>,
}

impl Reply {
    fn out(stdout: String) -> Self {
        Reply {
            stdout,
            stderr: Vec::new(),
        }
    }
}

/// What kubectl prints when the API server refuses a call.
struct Refusal(String);

impl From<anyhow::Error> for Refusal {
    fn from(error: anyhow::Error) -> Self {
        Refusal(format!("error: {error:#}"))
    }
}

type Outcome = std::result::Result<Reply, Refusal>;

impl Cluster {
    fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("cluster.json");
        let mut cluster: Cluster = if path.exists() {
            serde_json::from_slice(&std::fs::read(&path)?).context("cluster.json")?
        } else {
            Cluster::default()
        };
        for namespace in ["default", "kube-system", "kube-public", "kubewarden"] {
            cluster.namespace_entry(namespace);
        }
        Ok(cluster)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("cluster.json"), serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    fn namespace_entry(&mut self, name: &str) -> &mut BTreeMap<String, String> {
        let labels = self.namespaces.entry(name.to_owned()).or_default();
        labels.insert("kubernetes.io/metadata.name".into(), name.to_owned());
        labels
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn dispatch(&mut self, args: &Args) -> Outcome {
        let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["apply"] => self.apply(args),
            ["delete"] => self.delete(args),
            ["delete", "deployment" | "deployments", names @ ..] => {
                self.delete_deployments(args, names)
            }
            ["create", "job", name] => self.audit_scan(args, name),
            ["create"] if args.flag(&["--dry-run"]) == Some("server") => self.dry_run(args),
            ["annotate", target, pairs @ ..] => self.annotate(args, target, pairs),
            ["rollout", "restart", target] => self.rollout_restart(args, target),
            ["rollout", "status", target] => self.rollout_status(args, target),
            ["get", "pods"] => self.get_pods(args),
            ["get", "reports.openreports.io"] => self.get_reports(args),
            ["wait", target] => self.wait(args, target),
            _ => Err(Refusal(format!(
                "the stand-in kubectl does not answer `kubectl {}`: add it to test-host/src/stand_in.rs \
                 if the cluster script needs it",
                args_text(args)
            ))),
        }
    }

    // -- Objects -----------------------------------------------------------

    fn apply(&mut self, args: &Args) -> Outcome {
        let mut lines = Vec::new();
        for object in manifests(args)? {
            let kind = object["kind"].as_str().unwrap_or_default().to_owned();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let verb = if kind == "Namespace" {
                let existed = self.namespaces.contains_key(&name);
                let labels = self.namespace_entry(&name);
                for (k, v) in object["metadata"]["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    labels.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
                }
                if existed {
                    "unchanged"
                } else {
                    "created"
                }
            } else {
                let key = self.key_of(&object, args)?;
                let existed = self.objects.insert(key.clone(), object).is_some();
                if kind == "Deployment" {
                    self.reconcile(&key)?;
                }
                if existed {
                    "configured"
                } else {
                    "created"
                }
            };
            lines.push(format!("{}/{name} {verb}\n", kind.to_ascii_lowercase()));
        }
        Ok(Reply::out(lines.concat()))
    }

    fn delete(&mut self, args: &Args) -> Outcome {
        let mut lines = Vec::new();
        for object in manifests(args)? {
            let key = self.key_of(&object, args)?;
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let kind = object["kind"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            match self.objects.remove(&key) {
                Some(_) => lines.push(format!("{kind}/{name} deleted\n")),
                None if args.flag(&["--ignore-not-found"]).is_some() => {}
                None => {
                    return Err(Refusal(format!(
                        "Error from server (NotFound): {kind} \"{name}\" not found"
                    )))
                }
            }
        }
        Ok(Reply::out(lines.concat()))
    }

    /// Deployments by name, and their pods.
    fn delete_deployments(&mut self, args: &Args, names: &[&str]) -> Outcome {
        let namespace = args.namespace().unwrap_or("default").to_owned();
        let mut lines = Vec::new();
        for name in names {
            let key = format!("Deployment/{namespace}/{name}");
            if self.objects.remove(&key).is_none() {
                if args.flag(&["--ignore-not-found"]).is_some() {
                    continue;
                }
                return Err(Refusal(format!(
                    "Error from server (NotFound): deployments.apps \"{name}\" not found"
                )));
            }
            let pods: Vec<String> = self
                .pods_of(&namespace, name)
                .map(|(k, _)| k.clone())
                .collect();
            for pod in pods {
                self.objects.remove(&pod);
            }
            lines.push(format!("deployment.apps \"{name}\" deleted\n"));
        }
        Ok(Reply::out(lines.concat()))
    }

    /// The pods of a Deployment: their ReplicaSet is `<deployment>-<pod-template-hash>`.
    fn pods_of<'s>(
        &'s self,
        namespace: &'s str,
        deployment: &'s str,
    ) -> impl Iterator<Item = (&'s String, &'s Value)> + 's {
        self.objects.iter().filter(move |(key, pod)| {
            let hash = pod["metadata"]["labels"]["pod-template-hash"].as_str();
            key.starts_with("Pod/")
                && pod["metadata"]["namespace"] == namespace
                && hash.is_some_and(|hash| {
                    pod["metadata"]["ownerReferences"][0]["name"] == format!("{deployment}-{hash}")
                })
        })
    }

    /// `Kind/namespace/name`, the namespace from the object, `-n` or `default`,
    /// which must exist.
    fn key_of(&self, object: &Value, args: &Args) -> std::result::Result<String, Refusal> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let cluster_scoped = matches!(
            kind,
            "ClusterRole" | "ClusterRoleBinding" | "ClusterAdmissionPolicy" | "PolicyServer"
        );
        let namespace = if cluster_scoped {
            String::new()
        } else {
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .or(args.namespace())
                .unwrap_or("default");
            if !self.namespaces.contains_key(namespace) {
                return Err(Refusal(format!(
                    "Error from server (NotFound): namespaces \"{namespace}\" not found"
                )));
            }
            namespace.to_owned()
        };
        Ok(format!("{kind}/{namespace}/{name}"))
    }

    fn objects_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |(key, _)| key.split('/').next() == Some(kind))
            .map(|(_, object)| object)
    }

    fn annotate(&mut self, args: &Args, target: &str, pairs: &[&str]) -> Outcome {
        let (kind, name, pairs) = match target.split_once('/') {
            Some((kind, name)) => (kind, name, pairs),
            None => match pairs.split_first() {
                Some((name, rest)) => (target, *name, rest),
                None => {
                    return Err(Refusal(
                        "error: you must specify the object to annotate".into(),
                    ))
                }
            },
        };
        if !matches!(kind, "serviceaccount" | "serviceaccounts" | "sa") {
            return Err(Refusal(format!(
                "the stand-in annotates ServiceAccounts only, not {kind}"
            )));
        }
        let namespace = args.namespace().unwrap_or("default");
        let key = format!("ServiceAccount/{namespace}/{name}");
        let Some(account) = self.objects.get_mut(&key) else {
            return Err(Refusal(format!(
                "Error from server (NotFound): serviceaccounts \"{name}\" not found"
            )));
        };
        let annotations = field(object_at(account, "metadata"), "annotations");
        for pair in pairs {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| Refusal(format!("error: invalid annotation {pair:?}")))?;
            if annotations.contains_key(k) && args.flag(&["--overwrite"]).is_none() {
                return Err(Refusal(format!(
                    "error: --overwrite is false but found the following declared annotation(s): '{k}' already has a value"
                )));
            }
            annotations.insert(k.to_owned(), Value::from(v));
        }
        Ok(Reply::out(format!("serviceaccount/{name} annotated\n")))
    }

    // -- Pods ---------------------------------------------------------------

    fn dry_run(&mut self, args: &Args) -> Outcome {
        let mut objects = manifests(args)?;
        if objects.len() != 1 || objects[0]["kind"] != "Pod" {
            return Err(Refusal("the stand-in creates one Pod at a time".into()));
        }
        let (pod, warnings) = self.admit(objects.remove(0), args.namespace(), true)?;
        let stdout = serde_json::to_string_pretty(&pod).map_err(anyhow::Error::from)? + "\n";
        Ok(Reply {
            stdout,
            stderr: warnings
                .into_iter()
                .map(|w| format!("Warning: {w}"))
                .collect(),
        })
    }

    /// A pod through the API server's admission: the ServiceAccount plugin,
    /// then the policy's webhook when its selectors match, then defaults.
    fn admit(
        &mut self,
        mut pod: Value,
        namespace: Option<&str>,
        dry_run: bool,
    ) -> std::result::Result<(Value, Vec<String>), Refusal> {
        let namespace = pod["metadata"]["namespace"]
            .as_str()
            .or(namespace)
            .unwrap_or("default")
            .to_owned();
        if !self.namespaces.contains_key(&namespace) {
            return Err(Refusal(format!(
                "Error from server (NotFound): error when creating \"STDIN\": namespaces \"{namespace}\" not found"
            )));
        }
        let metadata = object_at(&mut pod, "metadata");
        metadata.insert("namespace".into(), Value::from(namespace.as_str()));
        let unnamed = metadata
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let prefix = metadata
            .get("generateName")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let suffix = self.next();
        let metadata = object_at(&mut pod, "metadata");
        if let (true, Some(prefix)) = (unnamed, prefix) {
            metadata.insert(
                "name".into(),
                Value::from(format!("{prefix}{}", random_suffix(suffix))),
            );
        }
        let name = metadata["name"].as_str().unwrap_or_default().to_owned();
        // The ServiceAccount admission plugin runs before webhooks.
        let spec = object_at(&mut pod, "spec");
        let account = ["serviceAccountName", "serviceAccount"]
            .iter()
            .find_map(|f| {
                spec.get(*f)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or("default")
            .to_owned();
        spec.insert("serviceAccountName".into(), Value::from(account.as_str()));
        spec.insert("serviceAccount".into(), Value::from(account.as_str()));
        if !self
            .objects
            .contains_key(&format!("ServiceAccount/{namespace}/{account}"))
        {
            return Err(Refusal(format!(
                "Error from server (Forbidden): error when creating \"STDIN\": pods \"{name}\" is forbidden: \
                 error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found"
            )));
        }
        mount_api_access(spec, &random_suffix(suffix + 7));
        apply_defaults(&mut pod);

        let mut warnings = Vec::new();
        if let Some(policy) = self.policy_for(&namespace, &pod) {
            let request = json!({
                "uid": format!("5c1e0a8d-0000-4000-8000-{:012}", self.next()),
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "name": name, "namespace": namespace, "operation": "CREATE",
                "userInfo": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
                "object": pod, "oldObject": null, "dryRun": dry_run,
                "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
            });
            let response = self.evaluate(&request, &policy["spec"]["settings"])?;
            if !response.allowed {
                let status = response.status.as_ref();
                let code = status.and_then(|s| s.code).unwrap_or(400);
                let message = status.and_then(|s| s.message.clone()).unwrap_or_default();
                return Err(Refusal(format!(
                    "Error from server ({}): error when creating \"STDIN\": admission webhook \"{WEBHOOK}\" \
                     denied the request: {message}",
                    reason(code)
                )));
            }
            warnings = response.warnings.clone().unwrap_or_default();
            pod = response.patched(&pod).map_err(Refusal::from)?;
            // The API server defaults the object again after mutating webhooks.
            apply_defaults(&mut pod);
        }
        let metadata = object_at(&mut pod, "metadata");
        metadata.insert(
            "uid".into(),
            Value::from(format!("9e7d3c1a-0000-4000-8000-{:012}", suffix)),
        );
        metadata.insert(
            "creationTimestamp".into(),
            Value::from("2026-12-01T10:00:00Z"),
        );
        object_at(&mut pod, "status").insert("phase".into(), Value::from("Pending"));
        Ok((pod, warnings))
    }

    /// The applied policy, when its `namespaceSelector` and `objectSelector`
    /// send this pod to it.
    fn policy_for(&self, namespace: &str, pod: &Value) -> Option<Value> {
        let policy = self.objects_of("ClusterAdmissionPolicy").next()?.clone();
        let namespace_labels = self.namespaces.get(namespace).cloned().unwrap_or_default();
        let pod_labels: BTreeMap<String, String> = pod["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        (selects(&policy["spec"]["namespaceSelector"], &namespace_labels)
            && selects(&policy["spec"]["objectSelector"], &pod_labels))
        .then_some(policy)
    }

    fn evaluate(
        &self,
        request: &Value,
        settings: &Value,
    ) -> std::result::Result<crate::response::AdmissionResponse, Refusal> {
        let policy_path = std::env::var("STAND_IN_POLICY").unwrap_or_else(|_| "policy.wasm".into());
        let metadata = std::env::var("STAND_IN_METADATA").unwrap_or_else(|_| "metadata.yml".into());
        let policy = Policy::load(Path::new(&policy_path), Path::new(&metadata))?;
        let accounts = self
            .objects_of("ServiceAccount")
            .map(|sa| {
                let key = (
                    sa["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    sa["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                (key, sa.clone())
            })
            .collect();
        let settings = if settings.is_null() {
            json!({})
        } else {
            settings.clone()
        };
        let responder = Responder::Cluster(ClusterAccounts {
            accounts,
            granted: self.grants_get_on_service_accounts(),
        });
        Ok(evaluate_with(&policy, request, &settings, responder)?.response)
    }

    /// Whether a ClusterRoleBinding gives the policy-server's ServiceAccount a
    /// ClusterRole with `get` on `serviceaccounts`.
    fn grants_get_on_service_accounts(&self) -> bool {
        self.objects_of("ClusterRoleBinding").any(|binding| {
            let subject = binding["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| {
                    s["kind"] == "ServiceAccount"
                        && s["namespace"] == POLICY_SERVER.0
                        && s["name"] == POLICY_SERVER.1
                });
            let role = binding["roleRef"]["name"].as_str().unwrap_or_default();
            subject
                && self
                    .objects
                    .get(&format!("ClusterRole//{role}"))
                    .is_some_and(|role| {
                        role["rules"].as_array().into_iter().flatten().any(|rule| {
                            let has = |field: &str, value: &str| {
                                rule[field]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .any(|v| v == value || v == "*")
                            };
                            has("apiGroups", "")
                                && has("resources", "serviceaccounts")
                                && has("verbs", "get")
                        })
                    })
        })
    }

    fn get_pods(&self, args: &Args) -> Outcome {
        let namespace = args.namespace().unwrap_or("default");
        let wanted = label_equalities(args.flag(&["-l", "--selector"]).unwrap_or_default());
        let items: Vec<Value> = self
            .objects_of("Pod")
            .filter(|pod| pod["metadata"]["namespace"] == namespace)
            .filter(|pod| {
                wanted
                    .iter()
                    .all(|(k, v)| pod["metadata"]["labels"][k].as_str() == Some(v.as_str()))
            })
            .cloned()
            .collect();
        output_list(args, items)
    }

    // -- Deployments --------------------------------------------------------

    /// One replica: a pod from the template, named and owned as a Deployment's
    /// ReplicaSet names and owns it, through admission. A refused pod is not
    /// created (the ReplicaSet would retry).
    fn reconcile(&mut self, key: &str) -> std::result::Result<(), Refusal> {
        let deployment = self.objects[key].clone();
        let namespace = deployment["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let name = deployment["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let template = &deployment["spec"]["template"];
        let hash = template_hash(template);
        let (stale, current): (Vec<_>, Vec<_>) = self
            .pods_of(&namespace, &name)
            .map(|(key, pod)| {
                (
                    key.clone(),
                    pod["metadata"]["labels"]["pod-template-hash"] == hash.as_str(),
                )
            })
            .partition(|(_, current)| !current);
        let current = !current.is_empty();
        for (key, _) in stale {
            self.objects.remove(&key);
        }
        if current {
            return Ok(());
        }
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": template["metadata"].clone(), "spec": template["spec"].clone()});
        let replica_set = format!("{name}-{hash}");
        let metadata = object_at(&mut pod, "metadata");
        metadata.insert(
            "generateName".into(),
            Value::from(format!("{replica_set}-")),
        );
        metadata.insert("namespace".into(), Value::from(namespace.as_str()));
        metadata.insert("ownerReferences".into(), json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": replica_set, "uid": "3f1e2d4c-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}]));
        field(metadata, "labels").insert("pod-template-hash".into(), Value::from(hash.as_str()));
        if let Ok((mut pod, _)) = self.admit(pod, Some(&namespace), false) {
            object_at(&mut pod, "status").insert("phase".into(), Value::from("Running"));
            let pod_name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.objects
                .insert(format!("Pod/{namespace}/{pod_name}"), pod);
        }
        Ok(())
    }

    fn deployment_key(&self, args: &Args, target: &str) -> std::result::Result<String, Refusal> {
        let name = target
            .strip_prefix("deployment/")
            .or_else(|| target.strip_prefix("deploy/"))
            .ok_or_else(|| {
                Refusal(format!(
                    "the stand-in rolls out Deployments only, not {target}"
                ))
            })?;
        let key = format!(
            "Deployment/{}/{name}",
            args.namespace().unwrap_or("default")
        );
        if self.objects.contains_key(&key) {
            Ok(key)
        } else {
            Err(Refusal(format!(
                "Error from server (NotFound): deployments.apps \"{name}\" not found"
            )))
        }
    }

    fn rollout_restart(&mut self, args: &Args, target: &str) -> Outcome {
        let key = self.deployment_key(args, target)?;
        let restarted = format!("2026-12-01T10:{:02}:00Z", self.next() % 60);
        let deployment = self
            .objects
            .get_mut(&key)
            .ok_or_else(|| Refusal("gone".into()))?;
        let template = field(object_at(deployment, "spec"), "template");
        field(field(template, "metadata"), "annotations").insert(
            "kubectl.kubernetes.io/restartedAt".into(),
            Value::from(restarted),
        );
        self.reconcile(&key)?;
        Ok(Reply::out(format!("{target} restarted\n")))
    }

    fn rollout_status(&mut self, args: &Args, target: &str) -> Outcome {
        let key = self.deployment_key(args, target)?;
        let name = key.rsplit('/').next().unwrap_or_default().to_owned();
        let namespace = args.namespace().unwrap_or("default");
        let running = self.pods_of(namespace, &name).next().is_some();
        if running {
            Ok(Reply::out(format!(
                "deployment \"{name}\" successfully rolled out\n"
            )))
        } else {
            Err(Refusal(format!(
                "error: timed out waiting for the condition (deployment \"{name}\" has no pod: its pods were refused)"
            )))
        }
    }

    // -- The audit scanner ----------------------------------------------------

    /// `kubectl -n kubewarden create job --from=cronjob/audit-scanner NAME`:
    /// one scan, as the scanner makes it, written as OpenReports.
    fn audit_scan(&mut self, args: &Args, job: &str) -> Outcome {
        if args.namespace() != Some(POLICY_SERVER.0)
            || args.flag(&["--from"]) != Some("cronjob/audit-scanner")
        {
            return Err(Refusal(format!(
                "Error from server (NotFound): cronjobs.batch \"audit-scanner\" not found (in {:?}, from {:?})",
                args.namespace(),
                args.flag(&["--from"])
            )));
        }
        let pods: Vec<Value> = self.objects_of("Pod").cloned().collect();
        for pod in pods {
            let namespace = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            // The scanner skips its own namespace, and policies without backgroundAudit.
            if namespace == POLICY_SERVER.0 {
                continue;
            }
            let Some(policy) = self.policy_for(&namespace, &pod) else {
                continue;
            };
            if policy["spec"]["backgroundAudit"] != true {
                continue;
            }
            let uid = pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let request = json!({
                "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "Pod"},
                "name": name, "namespace": namespace, "operation": "CREATE", "userInfo": {},
                "object": pod,
            });
            let response = self.evaluate(&request, &policy["spec"]["settings"])?;
            let status = response.status.as_ref();
            let result = match (response.allowed, status.and_then(|s| s.code)) {
                (true, _) => "pass",
                (false, Some(500)) => "error",
                (false, _) => "fail",
            };
            let mut entry = json!({"source": "kubewarden", "policy": REPORT_POLICY, "result": result, "scored": true,
                "properties": {"mutating": "true", "context-aware": "true", "policy-name": "irsa-policy"}});
            if let Some(message) = status.and_then(|s| s.message.clone()) {
                entry["message"] = Value::from(message);
            }
            let count = |r: &str| u64::from(result == r);
            let report = json!({
                "apiVersion": "openreports.io/v1alpha1", "kind": "Report",
                "metadata": {"name": uid, "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": "kubewarden"}},
                "scope": {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace, "uid": uid},
                "summary": {"pass": count("pass"), "fail": count("fail"), "warn": 0, "error": count("error"), "skip": 0},
                "results": [entry],
            });
            self.objects
                .insert(format!("Report/{namespace}/{uid}"), report);
        }
        self.objects.insert(
            format!("Job/{}/{job}", POLICY_SERVER.0),
            json!({"kind": "Job", "metadata": {"name": job, "namespace": POLICY_SERVER.0},
                   "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        );
        Ok(Reply::out(format!("job.batch/{job} created\n")))
    }

    fn get_reports(&self, args: &Args) -> Outcome {
        let all = args.flag(&["-A", "--all-namespaces"]).is_some();
        let namespace = args.namespace().unwrap_or("default");
        let items: Vec<Value> = self
            .objects_of("Report")
            .filter(|r| all || r["metadata"]["namespace"] == namespace)
            .cloned()
            .collect();
        output_list(args, items)
    }

    fn wait(&self, args: &Args, target: &str) -> Outcome {
        let condition = args.flag(&["--for"]).unwrap_or_default();
        match (target.split_once('/'), condition) {
            (Some(("job", name)), "condition=complete") => {
                let key = format!("Job/{}/{name}", args.namespace().unwrap_or("default"));
                if self.objects.contains_key(&key) {
                    Ok(Reply::out(format!("job.batch/{name} condition met\n")))
                } else {
                    Err(Refusal(format!(
                        "Error from server (NotFound): jobs.batch \"{name}\" not found"
                    )))
                }
            }
            _ => Err(Refusal(format!(
                "the stand-in waits for finished jobs only, not {target} {condition}"
            ))),
        }
    }
}

fn args_text(args: &Args) -> String {
    let flags = args.flags.iter().map(|(f, v)| {
        if v.is_empty() {
            f.clone()
        } else {
            format!("{f}={v}")
        }
    });
    args.words
        .iter()
        .cloned()
        .chain(flags)
        .collect::<Vec<_>>()
        .join(" ")
}

fn reason(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        500 => "InternalError",
        _ => "BadRequest",
    }
}

/// The objects of every `-f` (a file or `-`): JSON, a JSON `List`, or YAML
/// documents.
fn manifests(args: &Args) -> std::result::Result<Vec<Value>, Refusal> {
    let mut objects = Vec::new();
    let files = args.all(&["-f", "--filename"]);
    if files.is_empty() {
        return Err(Refusal("error: must specify -f".into()));
    }
    for file in files {
        let text = if file == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(anyhow::Error::from)?;
            text
        } else {
            std::fs::read_to_string(file).map_err(|e| anyhow!("{file}: {e}"))?
        };
        let documents: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(value) => vec![value],
            Err(_) => serde_yaml::Deserializer::from_str(&text)
                .map(|document| Value::deserialize(document).map_err(|e| anyhow!("{file}: {e}")))
                .collect::<Result<_>>()?,
        };
        for document in documents {
            match document["kind"].as_str() {
                Some("List") => {
                    objects.extend(document["items"].as_array().cloned().unwrap_or_default())
                }
                Some(_) => objects.push(document),
                None if document.is_null() => {}
                None => return Err(Refusal(format!("error: {file}: an object without a kind"))),
            }
        }
    }
    Ok(objects)
}

fn output_list(args: &Args, items: Vec<Value>) -> Outcome {
    match args.flag(&["-o", "--output"]) {
        Some("json") => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}});
            Ok(Reply::out(
                serde_json::to_string_pretty(&list).map_err(anyhow::Error::from)? + "\n",
            ))
        }
        other => Err(Refusal(format!(
            "the stand-in lists with -o json only, not {other:?}"
        ))),
    }
}

/// `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist), as
/// the API server reads a webhook's selectors; absent selects everything.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let value = labels.get(key).map(String::as_str);
            match e["operator"].as_str() {
                Some("In") => value.is_some_and(|v| values.contains(&v)),
                Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => false,
            }
        });
    match_labels && expressions
}

fn label_equalities(selector: &str) -> Vec<(String, String)> {
    selector
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The token volume and mounts the ServiceAccount admission plugin adds.
fn mount_api_access(spec: &mut Map<String, Value>, suffix: &str) {
    if spec.get("automountServiceAccountToken") == Some(&Value::Bool(false)) {
        return;
    }
    let volume = format!("kube-api-access-{suffix}");
    let mount = json!({"name": volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
    for container in containers(spec) {
        push(container, "volumeMounts", mount.clone());
    }
    push(
        spec,
        "volumes",
        json!({"name": volume, "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}),
    );
}

/// Fields the API server fills in when a client leaves them out.
fn apply_defaults(pod: &mut Value) {
    let spec = object_at(pod, "spec");
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
        (
            "tolerations",
            json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]),
        ),
    ] {
        spec.entry(field).or_insert(value);
    }
    for container in containers(spec) {
        for (field, value) in [
            ("terminationMessagePath", json!("/dev/termination-log")),
            ("terminationMessagePolicy", json!("File")),
            ("imagePullPolicy", json!("IfNotPresent")),
            ("resources", json!({})),
        ] {
            container.entry(field).or_insert(value);
        }
    }
    for volume in spec
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(projected) = volume.get_mut("projected").and_then(Value::as_object_mut) {
            projected.entry("defaultMode").or_insert(json!(420));
        }
    }
}

/// The pod's init containers and containers, as objects.
fn containers(spec: &mut Map<String, Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    spec.iter_mut()
        .filter(|(list, _)| *list == "initContainers" || *list == "containers")
        .filter_map(|(_, list)| list.as_array_mut())
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn push(object: &mut Map<String, Value>, field: &str, item: Value) {
    let slot = object.entry(field).or_insert(Value::Null);
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    if let Value::Array(items) = slot {
        items.push(item);
    }
}

/// An object field of a value, made one when absent or not an object.
fn object_at<'v>(value: &'v mut Value, name: &str) -> &'v mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    let Value::Object(map) = value else {
        unreachable!()
    };
    field(map, name)
}

/// An object field of an object, made one when absent or not an object.
fn field<'m>(map: &'m mut Map<String, Value>, name: &str) -> &'m mut Map<String, Value> {
    let slot = map.entry(name).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(inner) = slot else {
        unreachable!()
    };
    inner
}

/// Five characters of the kind the API server appends to a `generateName`.
fn random_suffix(seed: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A ReplicaSet's `pod-template-hash`: the template's, in the same alphabet.
fn template_hash(template: &Value) -> String {
    let text = template.to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut suffix = random_suffix(hash);
    suffix.push_str(&random_suffix(hash >> 25));
    suffix.truncate(9);
    suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_read_as_the_api_server_reads_them() {
        let not_system = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]});
        assert!(selects(
            &not_system,
            &labels(&[("kubernetes.io/metadata.name", "team-a")])
        ));
        assert!(!selects(
            &not_system,
            &labels(&[("kubernetes.io/metadata.name", "kube-system")])
        ));
        let opt_out = json!({"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]});
        assert!(!selects(&opt_out, &labels(&[("skip", "")])));
        assert!(selects(&Value::Null, &labels(&[])));
        assert!(selects(
            &json!({"matchLabels": {"a": "b"}}),
            &labels(&[("a", "b")])
        ));
        assert!(!selects(
            &json!({"matchLabels": {"a": "b"}}),
            &labels(&[("a", "c")])
        ));
    }

    #[test]
    fn flags_take_their_values_either_way() {
        let raw: Vec<String> = [
            "-n",
            "team-a",
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            "-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let args = Args::parse(&raw);
        assert_eq!(args.words, ["create"]);
        assert_eq!(args.namespace(), Some("team-a"));
        assert_eq!(args.flag(&["--dry-run"]), Some("server"));
        assert_eq!(args.all(&["-f"]), ["-"]);
    }
}
