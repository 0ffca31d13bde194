//! The files a platform engineer installs from (metadata.yml, artifacthub-pkg.yml,
//! questions-ui.yml, deploy/) must agree with each other and with the code:
//! these tests fail when a version, a name, a rule, a context-aware resource or
//! a setting drifts apart.

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
    let role = documents
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .unwrap();
    let binding = documents
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .unwrap();
    let rule = &role["rules"][0];
    assert_eq!(
        rule["resources"],
        serde_yaml::from_str::<Value>("[serviceaccounts]").unwrap()
    );
    assert!(rule["verbs"]
        .as_sequence()
        .unwrap()
        .contains(&Value::from("get")));
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let subject = &binding["subjects"][0];
    assert_eq!(str_at(subject, &["kind"]), "ServiceAccount");
    assert_eq!(str_at(subject, &["name"]), "policy-server");
    assert_eq!(str_at(subject, &["namespace"]), "kubewarden");
}
