//! The files a platform engineer installs from (metadata.yml, artifacthub-pkg.yml,
//! questions-ui.yml, deploy/) must agree with each other and with the code:
//! these tests fail when a version, a name, a rule, a context-aware resource or
//! a setting drifts apart.

// A test may unwrap, expect and panic: that is how it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use irsa_policy::settings::{Config, Settings};
use serde_yaml::Value;
use std::fs;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// YAML documents of a multi-document file.
fn yaml_documents(path: &str) -> Vec<Value> {
    let text = fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

/// The one document of this kind in a multi-document file.
fn of_kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// A YAML document kept as a string inside another (artifacthub's annotations).
fn embedded(value: &Value) -> Value {
    serde_yaml::from_str(value.as_str().expect("an embedded YAML string")).unwrap()
}

fn cargo_version() -> String {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap()
        .to_owned()
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(value, |v, key| &v[*key])
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string"))
}

fn cluster_admission_policy() -> Value {
    yaml("deploy/policy.yaml")
}

#[test]
fn versions_agree_everywhere() {
    let version = cargo_version();
    let metadata = yaml("metadata.yml");
    let hub = yaml("artifacthub-pkg.yml");
    let oci = str_at(&metadata, &["annotations", "io.kubewarden.policy.ociUrl"]);
    assert_eq!(
        str_at(&metadata, &["annotations", "io.kubewarden.policy.version"]),
        version
    );
    assert_eq!(str_at(&hub, &["version"]), version);
    assert_eq!(
        str_at(&hub["containersImages"][0], &["image"]),
        format!("{oci}:v{version}")
    );
    assert!(str_at(&hub["links"][0], &["url"]).contains(&format!("/download/v{version}/")));
    assert_eq!(
        str_at(&cluster_admission_policy(), &["spec", "module"]),
        format!("registry://{oci}:v{version}")
    );
}

#[test]
fn names_and_descriptions_agree() {
    let metadata = yaml("metadata.yml");
    let hub = yaml("artifacthub-pkg.yml");
    let annotations = &metadata["annotations"];
    assert_eq!(
        str_at(annotations, &["io.kubewarden.policy.title"]),
        "irsa-policy"
    );
    assert_eq!(str_at(&hub, &["name"]), "irsa-policy");
    assert_eq!(
        str_at(&hub, &["displayName"]),
        str_at(annotations, &["io.artifacthub.displayName"])
    );
    assert_eq!(
        str_at(&hub, &["description"]),
        str_at(annotations, &["io.kubewarden.policy.description"])
    );
    assert_eq!(
        str_at(&hub, &["license"]),
        str_at(annotations, &["io.kubewarden.policy.license"])
    );
    assert_eq!(
        str_at(&hub, &["homeURL"]),
        str_at(annotations, &["io.kubewarden.policy.url"])
    );
    // kwctl refuses an author that is not `name <email>`.
    let author = str_at(annotations, &["io.kubewarden.policy.author"]);
    assert!(author.contains(" <") && author.ends_with('>'), "{author}");
}

#[test]
fn rules_and_context_aware_resources_agree() {
    let metadata = yaml("metadata.yml");
    let hub = yaml("artifacthub-pkg.yml");
    let policy = cluster_admission_policy();
    let hub_annotations = &hub["annotations"];

    assert_eq!(
        embedded(&hub_annotations["kubewarden/rules"]),
        metadata["rules"]
    );
    assert_eq!(policy["spec"]["rules"], metadata["rules"]);

    let resources = &metadata["contextAwareResources"];
    assert_eq!(
        resources,
        &serde_yaml::from_str::<Value>("[{apiVersion: v1, kind: ServiceAccount}]").unwrap()
    );
    assert_eq!(
        &embedded(&hub_annotations["kubewarden/contextAwareResources"]),
        resources
    );
    assert_eq!(&policy["spec"]["contextAwareResources"], resources);

    assert_eq!(metadata["mutating"], Value::Bool(true));
    assert_eq!(policy["spec"]["mutating"], metadata["mutating"]);
    assert_eq!(str_at(hub_annotations, &["kubewarden/mutation"]), "true");
    assert_eq!(
        policy["spec"]["backgroundAudit"],
        metadata["backgroundAudit"]
    );
    assert_eq!(str_at(&metadata, &["executionMode"]), "kubewarden-wapc");
    assert_eq!(
        metadata["hostCapabilities"],
        serde_yaml::from_str::<Value>("[kubernetes/get_resource]").unwrap()
    );
    assert_eq!(
        str_at(hub_annotations, &["kubewarden/resources"]),
        str_at(&metadata, &["annotations", "io.artifacthub.resources"])
    );
}

#[test]
fn questions_ui_covers_every_setting_with_its_default() {
    let questions = yaml("questions-ui.yml");
    let hub = yaml("artifacthub-pkg.yml");
    assert_eq!(
        embedded(&hub["annotations"]["kubewarden/questions-ui"]),
        questions
    );

    let defaults = serde_json::to_value(Settings::default()).unwrap();
    let settings: Vec<&String> = defaults.as_object().unwrap().keys().collect();
    let variables: Vec<&str> = questions["questions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|q| str_at(q, &["variable"]))
        .collect();
    let mut sorted = variables.clone();
    sorted.sort();
    assert_eq!(
        sorted, settings,
        "questions-ui.yml must ask for exactly the settings"
    );
    for question in questions["questions"].as_sequence().unwrap() {
        let variable = str_at(question, &["variable"]);
        let default: serde_json::Value = serde_json::to_value(&question["default"]).unwrap();
        assert_eq!(default, defaults[variable], "default of {variable}");
    }
}

#[test]
fn the_sample_policy_settings_are_valid() {
    let policy = cluster_admission_policy();
    let settings = serde_json::to_vec(&policy["spec"]["settings"]).unwrap();
    let settings = Settings::from_json(&settings).unwrap();
    Config::from_settings(&settings).unwrap();
}

#[test]
fn the_sample_policy_leaves_system_namespaces_alone() {
    let policy = cluster_admission_policy();
    let spec = &policy["spec"];
    let excluded = &spec["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(str_at(excluded, &["key"]), "kubernetes.io/metadata.name");
    assert_eq!(str_at(excluded, &["operator"]), "NotIn");
    let values: Vec<&str> = excluded["values"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(values.contains(&"kube-system") && values.contains(&"kubewarden"));
    assert_eq!(str_at(spec, &["failurePolicy"]), "Fail");
    assert_eq!(str_at(spec, &["mode"]), "protect");
}

#[test]
fn rbac_lets_the_policy_server_read_service_accounts() {
    let documents = yaml_documents("deploy/rbac.yaml");
    let role = of_kind(&documents, "ClusterRole");
    let binding = of_kind(&documents, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let subject = &binding["subjects"][0];
    assert_eq!(str_at(subject, &["kind"]), "ServiceAccount");
    assert_eq!(str_at(subject, &["name"]), "policy-server");
    assert_eq!(str_at(subject, &["namespace"]), "kubewarden");
}

/// kwctl's own install text scaffolds the manifest without `--allow-context-aware`,
/// so the policy-server would refuse every ServiceAccount lookup: the text on
/// Artifact Hub is ours (`deploy/artifacthub-install.md`, put in place by
/// `make artifacthub-pkg.yml`).
#[test]
fn artifacthub_install_text_is_ours_and_installs_a_working_policy() {
    let hub = yaml("artifacthub-pkg.yml");
    let install = str_at(&hub, &["install"]);
    let template = fs::read_to_string(root().join("deploy/artifacthub-install.md")).unwrap();
    assert_eq!(
        install,
        template.replace("@VERSION@", &cargo_version()),
        "artifacthub-pkg.yml's install text is not deploy/artifacthub-install.md: run `make artifacthub-pkg.yml`"
    );
    assert!(
        install.contains("kwctl scaffold manifest -t ClusterAdmissionPolicy --allow-context-aware"),
        "{install}"
    );
    let version = cargo_version();
    for file in ["deploy/rbac.yaml", "deploy/policy.yaml"] {
        let url =
            format!("https://raw.githubusercontent.com/irsa-policy/irsa-policy/v{version}/{file}");
        assert!(
            install.contains(&format!("kubectl apply -f {url}")),
            "{url}"
        );
    }
    // The RBAC comes before the policy that needs it.
    let apply = |file: &str| install.find(&format!("/{file}\n")).unwrap();
    assert!(apply("deploy/rbac.yaml") < apply("deploy/policy.yaml"));
}

#[test]
fn artifacthub_names_the_maintainers_from_the_author() {
    let hub = yaml("artifacthub-pkg.yml");
    let metadata = yaml("metadata.yml");
    let author = str_at(&metadata, &["annotations", "io.kubewarden.policy.author"]);
    let (name, email) = author.trim_end_matches('>').split_once(" <").unwrap();
    let maintainer = &hub["maintainers"][0];
    assert_eq!(str_at(maintainer, &["name"]), name);
    assert_eq!(str_at(maintainer, &["email"]), email);
}

/// A release bumps Cargo.toml; each lock file names the crate again, and every
/// `--locked` build of the tag fails while one of them still has the old version.
#[test]
fn every_lock_file_has_the_crate_version_of_cargo_toml() {
    let version = cargo_version();
    for lock in ["Cargo.lock", "test-host/Cargo.lock", "fuzz/Cargo.lock"] {
        let text = fs::read_to_string(root().join(lock)).unwrap();
        let locked = text
            .split("[[package]]")
            .find(|package| package.contains("\nname = \"irsa-policy\"\n"))
            .and_then(|package| {
                package
                    .lines()
                    .find_map(|l| l.strip_prefix("version = \""))
                    .and_then(|v| v.strip_suffix('"'))
            })
            .unwrap_or_else(|| panic!("{lock} has no irsa-policy package"));
        assert_eq!(
            locked, version,
            "{lock} locks irsa-policy {locked}, Cargo.toml says {version}: run `cargo update -p irsa-policy` there"
        );
    }
}

/// `get_resource` is a single GET; list and watch would only widen what a
/// compromised policy-server could read.
#[test]
fn rbac_grants_get_on_serviceaccounts_and_nothing_more() {
    let documents = yaml_documents("deploy/rbac.yaml");
    let kinds: Vec<&str> = documents.iter().map(|d| str_at(d, &["kind"])).collect();
    assert_eq!(kinds, ["ClusterRole", "ClusterRoleBinding"]);
    assert_eq!(
        documents[0]["rules"],
        serde_yaml::from_str::<Value>(
            r#"[{apiGroups: [""], resources: [serviceaccounts], verbs: [get]}]"#
        )
        .unwrap()
    );
}

fn subscribes_to_ephemeral_containers(rules: &Value) -> bool {
    rules.as_sequence().unwrap().iter().any(|rule| {
        rule["resources"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("pods/ephemeralcontainers"))
    })
}

/// An ephemeralcontainers UPDATE carries the pod twice, and the policy-server
/// refuses bodies over 2 MB: subscribed by default, `kubectl debug` on a pod over
/// about 1 MB would be refused (failurePolicy Fail). The rule ships commented out.
#[test]
fn default_rules_leave_out_ephemeral_containers_and_the_readme_says_how_to_add_them() {
    let metadata = yaml("metadata.yml");
    let policy = cluster_admission_policy();
    assert!(!subscribes_to_ephemeral_containers(&metadata["rules"]));
    assert!(!subscribes_to_ephemeral_containers(
        &policy["spec"]["rules"]
    ));
    assert_eq!(
        policy["spec"]["settings"]["ephemeralContainers"],
        Value::Bool(false)
    );
    for file in ["metadata.yml", "deploy/policy.yaml"] {
        let text = fs::read_to_string(root().join(file)).unwrap();
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with('#') && l.contains("pods/ephemeralcontainers")),
            "{file} should keep the rule, commented out, for those who turn ephemeralContainers on"
        );
    }
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `ephemeralContainers` |"))
        .expect("README's Settings table has an ephemeralContainers row");
    for needed in [
        "pods/ephemeralcontainers",
        "deploy/policy.yaml",
        "uncomment",
    ] {
        assert!(row.contains(needed), "{needed} missing from: {row}");
    }
}

#[test]
fn the_sample_policy_lets_pods_opt_out_as_with_the_official_webhook() {
    let policy = cluster_admission_policy();
    assert_eq!(
        policy["spec"]["objectSelector"],
        serde_yaml::from_str::<Value>(
            "{matchExpressions: [{key: eks.amazonaws.com/skip-pod-identity-webhook, operator: DoesNotExist}]}"
        )
        .unwrap()
    );
}

/// deploy/policy.yaml sets backgroundAudit, which Kubewarden's CRD accepts from 1.7.0.
#[test]
fn metadata_names_the_oldest_kubewarden_that_takes_the_sample_policy() {
    let metadata = yaml("metadata.yml");
    assert_eq!(str_at(&metadata, &["minimumKubewardenVersion"]), "1.7.0");
    assert!(cluster_admission_policy()["spec"]["backgroundAudit"].is_bool());
}

#[test]
fn the_dedicated_policy_server_runs_as_its_own_service_account() {
    let documents = yaml_documents("deploy/policy-server.yaml");
    let account = of_kind(&documents, "ServiceAccount");
    let server = of_kind(&documents, "PolicyServer");
    assert_eq!(str_at(server, &["apiVersion"]), "policies.kubewarden.io/v1");
    assert_eq!(
        server["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );
    assert_eq!(str_at(account, &["metadata", "namespace"]), "kubewarden");
    assert!(server["spec"]["replicas"].as_u64().unwrap() >= 2);
    let rbac = fs::read_to_string(root().join("deploy/rbac.yaml")).unwrap();
    assert!(rbac.contains(&format!(
        "#   name: {}",
        str_at(account, &["metadata", "name"])
    )));
}

#[test]
fn the_license_file_is_the_one_cargo_toml_declares() {
    let cargo = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("\nlicense = \"Apache-2.0\"\n"));
    let license = fs::read_to_string(root().join("LICENSE")).unwrap();
    let opening: Vec<&str> = license.lines().take(2).map(str::trim).collect();
    assert_eq!(opening, ["Apache License", "Version 2.0, January 2004"]);
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
}

#[test]
fn renovate_updates_the_three_cargo_manifests_and_the_action_digests() {
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root().join("renovate.json")).unwrap()).unwrap();
    let managers = config["enabledManagers"].as_array().unwrap();
    for manager in ["cargo", "github-actions"] {
        assert!(managers.iter().any(|m| m == manager), "{manager}");
    }
    assert!(config["extends"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "helpers:pinGitHubActionDigestsToSemver"));
    // Renovate's cargo manager finds every Cargo.toml; each has its lock file.
    for dir in [".", "test-host", "fuzz"] {
        assert!(root().join(dir).join("Cargo.lock").exists(), "{dir}");
    }
}
