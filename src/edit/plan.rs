//! The plan: every container the edit is for, what each lacks, and the
//! volume and label the pod gets, or the conflict that forbids them all.

use super::conflicts::{existing_volume, token_mount};
use super::env::missing_env;
use super::volume::{mount, token_volume, ExistingVolume};
use super::{ContainerEdit, Kept, Plan, PodEdit, Scope};
use crate::error::PolicyError;
use crate::input::fields::Fields;
use crate::resolve::Injection;
use serde_json::Value;

/// Works out the whole edit, or the reason the pod cannot get credentials.
pub fn plan(
    pod: &Value,
    pod_name: &str,
    injection: &Injection,
    scope: Scope,
) -> Result<Plan, PolicyError> {
    let fields = Fields::of(pod_name);
    let spec = &pod["spec"];
    let selection = &injection.containers;
    let mut result = Plan::default();
    let mut seen: Vec<&str> = Vec::new();

    for &list in scope.lists() {
        let containers = fields.list(spec, list, &|| format!("spec.{list}"))?;
        for (index, container) in containers.iter().enumerate() {
            let path = || format!("spec.{list}[{index}]");
            if !container.is_object() {
                return Err(fields.wrong(&path, "an object", container));
            }
            let name = match &container["name"] {
                Value::String(name) => name.as_str(),
                Value::Null => "",
                other => {
                    return Err(fields.wrong(&|| format!("{}.name", path()), "a string", other))
                }
            };
            seen.push(name);
            if let Scope::NewEphemeralContainers { existing } = scope {
                if existing.iter().any(|e| e == name) {
                    continue;
                }
            }
            if !selection.selects(name) {
                result.skipped.push(name.to_owned());
                continue;
            }
            let has_mount = token_mount(container, name, pod_name, injection, &fields, &path)?;
            let mut env = Vec::new();
            for reason in missing_env(container, injection, &fields, &path, &mut env)? {
                result.kept.push(Kept {
                    container: name.to_owned(),
                    reason,
                });
            }
            if !has_mount || !env.is_empty() {
                result.edit.containers.push(ContainerEdit {
                    list,
                    index,
                    mount: (!has_mount).then(|| mount(injection)),
                    env,
                });
            }
            result.injected.push(name.to_owned());
        }
    }
    result.unknown_names = selection
        .listed()
        .filter(|listed| !seen.contains(listed))
        .map(str::to_owned)
        .collect();

    // The volume (and the label) are only worth adding for a container that mounts it.
    if result.injected.is_empty() {
        result.edit = PodEdit::default();
        return Ok(result);
    }
    let volume = existing_volume(spec, injection, &fields)?;
    match scope {
        Scope::Creation => {
            match volume {
                Some(ExistingVolume::Reusable) => {}
                Some(ExistingVolume::Foreign(found)) => {
                    return Err(PolicyError::ForeignTokenVolume {
                        pod: pod_name.to_owned(),
                        volume: injection.volume_name.clone(),
                        found,
                        audience: injection.audience.clone(),
                    })
                }
                None => {
                    result.edit.volume = Some(token_volume(
                        &injection.volume_name,
                        &injection.audience,
                        injection.expiration,
                        &injection.token_file_name,
                    ))
                }
            }
            result.edit.label = missing_label(pod, injection, &fields)?;
        }
        Scope::NewEphemeralContainers { .. } => {
            let reason = match volume {
                Some(ExistingVolume::Reusable) => None,
                Some(ExistingVolume::Foreign(found)) => Some(format!(
                    "its volume {:?} is {found}, not the token the policy would add",
                    injection.volume_name
                )),
                None => Some(format!(
                    "the pod has no volume {:?} (it was created without credentials, and a running pod's volumes cannot change)",
                    injection.volume_name
                )),
            };
            if reason.is_some() {
                result.edit = PodEdit::default();
                result.no_volume = reason;
            }
        }
    }
    Ok(result)
}

/// The pod identity label, when this injection sets one and the pod lacks it.
fn missing_label(
    pod: &Value,
    injection: &Injection,
    fields: &Fields,
) -> Result<Option<(&'static str, &'static str)>, PolicyError> {
    let Some((key, value)) = injection.pod_label else {
        return Ok(None);
    };
    match pod.pointer("/metadata/labels") {
        None | Some(Value::Null) => Ok(Some((key, value))),
        // The pod's own value of the label, whatever it is, wins.
        Some(Value::Object(labels)) => Ok((!labels.contains_key(key)).then_some((key, value))),
        Some(other) => Err(fields.wrong(&|| "metadata.labels".into(), "an object", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::KeptReason;
    use crate::resolve::credentials::Credentials;
    use crate::resolve::env::*;
    use crate::resolve::ContainerSelection;
    use crate::settings::role_arn::RoleArn;
    use crate::settings::token_expiration::TokenExpiration;
    use rstest::rstest;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::111122223333:role/app";
    const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
    const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

    /// The one place these tests build an injection: a role and nothing else.
    fn web_identity() -> Injection {
        Injection {
            credentials: Credentials::WebIdentity {
                role_arn: RoleArn::parse(ROLE).unwrap(),
            },
            audience: "sts.amazonaws.com".into(),
            expiration: TokenExpiration::within_bounds(86_400).unwrap(),
            volume_name: "aws-iam-token".into(),
            mount_path: MOUNT_PATH.into(),
            token_file_name: "token".into(),
            token_file: TOKEN_FILE.into(),
            region: None,
            sts_regional_endpoints: false,
            sts_endpoint: None,
            session_name: false,
            containers: ContainerSelection::default(),
            skip_region_with_env_from: false,
            pod_label: None,
        }
    }

    /// Every group on: regional STS, a region, the role and the session name.
    fn everything() -> Injection {
        Injection {
            region: Some("eu-west-1".into()),
            sts_regional_endpoints: true,
            session_name: true,
            ..web_identity()
        }
    }

    fn container_credentials() -> Injection {
        Injection {
            credentials: Credentials::ContainerCredentials {
                full_uri: "http://169.254.170.23/v1/credentials".into(),
            },
            ..web_identity()
        }
    }

    /// The volume the policy adds for [`web_identity`], with these seconds.
    fn role_token_volume(seconds: i64) -> Value {
        let expiration = TokenExpiration::within_bounds(seconds).unwrap();
        token_volume("aws-iam-token", "sts.amazonaws.com", expiration, "token")
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"containers": containers}})
    }

    fn app(env: Value) -> Value {
        pod(json!([{"name": "app", "image": "app:1", "env": env}]))
    }

    fn planned(pod: &Value, injection: &Injection) -> Result<Plan, PolicyError> {
        plan(pod, "team-a/web", injection, Scope::Creation)
    }

    /// The pod after the edit, and the groups its containers kept.
    fn edited(mut pod: Value, injection: &Injection) -> (Value, Vec<Kept>) {
        let plan = planned(&pod, injection).unwrap();
        plan.edit.apply(&mut pod);
        (pod, plan.kept)
    }

    fn env_names(pod: &Value, index: usize) -> Vec<&str> {
        pod["spec"]["containers"][index]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|var| var["name"].as_str().unwrap())
            .collect()
    }

    fn kept_text(kept: &[Kept]) -> Vec<String> {
        kept.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_group_is_set_in_the_official_order() {
        let (pod, kept) = edited(app(json!(null)), &everything());
        assert_eq!(
            pod["spec"]["containers"][0]["env"],
            json!([
                {"name": AWS_STS_REGIONAL_ENDPOINTS, "value": "regional"},
                {"name": AWS_DEFAULT_REGION, "value": "eu-west-1"},
                {"name": AWS_REGION, "value": "eu-west-1"},
                {"name": AWS_ROLE_ARN, "value": ROLE},
                {"name": AWS_WEB_IDENTITY_TOKEN_FILE, "value": TOKEN_FILE},
                {"name": AWS_ROLE_SESSION_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ])
        );
        assert!(kept.is_empty());
    }

    #[test]
    fn container_credentials_get_their_pair_instead_of_the_roles() {
        let (pod, _) = edited(app(json!(null)), &container_credentials());
        assert_eq!(
            pod["spec"]["containers"][0]["env"],
            json!([
                {"name": AWS_CONTAINER_CREDENTIALS_FULL_URI, "value": "http://169.254.170.23/v1/credentials"},
                {"name": AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "value": TOKEN_FILE},
            ])
        );
    }

    #[test]
    fn groups_the_injection_has_no_value_for_are_not_set() {
        let (pod, _) = edited(app(json!(null)), &web_identity());
        assert_eq!(
            env_names(&pod, 0),
            [AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE]
        );
    }

    #[rstest]
    #[case(AWS_STS_REGIONAL_ENDPOINTS, &[AWS_STS_REGIONAL_ENDPOINTS])]
    #[case(AWS_DEFAULT_REGION, &[AWS_DEFAULT_REGION, AWS_REGION])]
    #[case(AWS_REGION, &[AWS_DEFAULT_REGION, AWS_REGION])]
    #[case(AWS_ROLE_ARN, &[AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE])]
    #[case(AWS_WEB_IDENTITY_TOKEN_FILE, &[AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE])]
    #[case(AWS_ROLE_SESSION_NAME, &[AWS_ROLE_SESSION_NAME])]
    fn a_containers_own_variable_keeps_its_whole_group(#[case] own: &str, #[case] group: &[&str]) {
        let (pod, kept) = edited(app(json!([{"name": own, "value": "mine"}])), &everything());
        let (all, _) = edited(app(json!(null)), &everything());
        let others = env_names(&all, 0)
            .into_iter()
            .filter(|n| !group.contains(n));
        let expected: Vec<&str> = std::iter::once(own).chain(others).collect();
        assert_eq!(env_names(&pod, 0), expected);
        assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "mine");
        assert_eq!(kept_text(&kept), [format!("app: {own}")]);
    }

    #[test]
    fn a_variable_of_the_other_credentials_is_not_the_containers_own() {
        let (pod, kept) = edited(
            app(json!([{"name": AWS_ROLE_ARN, "value": "mine"}])),
            &container_credentials(),
        );
        assert_eq!(
            env_names(&pod, 0),
            [
                AWS_ROLE_ARN,
                AWS_CONTAINER_CREDENTIALS_FULL_URI,
                AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
            ]
        );
        assert!(kept.is_empty());
    }

    #[test]
    fn the_region_is_left_to_env_from_only_with_the_setting() {
        let pod = pod(json!([{"name": "app", "envFrom": [{"configMapRef": {"name": "aws"}}]}]));
        let (without_setting, _) = edited(pod.clone(), &everything());
        assert!(env_names(&without_setting, 0).contains(&AWS_REGION));

        let injection = Injection {
            skip_region_with_env_from: true,
            ..everything()
        };
        let (with_setting, kept) = edited(pod, &injection);
        let env = env_names(&with_setting, 0);
        assert!(!env.contains(&AWS_REGION) && !env.contains(&AWS_DEFAULT_REGION));
        assert!(env.contains(&AWS_ROLE_ARN) && env.contains(&AWS_STS_REGIONAL_ENDPOINTS));
        assert_eq!(kept_text(&kept), ["app: region left to envFrom"]);
    }

    #[test]
    fn an_empty_env_from_does_not_take_the_region() {
        let injection = Injection {
            skip_region_with_env_from: true,
            ..everything()
        };
        let (pod, kept) = edited(pod(json!([{"name": "app", "envFrom": []}])), &injection);
        assert!(env_names(&pod, 0).contains(&AWS_REGION));
        assert!(kept.is_empty());
    }

    #[test]
    fn kept_variables_come_before_what_is_left_to_env_from() {
        let injection = Injection {
            skip_region_with_env_from: true,
            ..everything()
        };
        let pod = pod(
            json!([{"name": "app", "envFrom": [{"secretRef": {"name": "aws"}}],
            "env": [{"name": AWS_ROLE_SESSION_NAME, "value": "me"}, {"name": AWS_REGION, "value": "us-east-1"}]}]),
        );
        let (_, kept) = edited(pod, &injection);
        let region = GROUPS.iter().find(|g| g.name == "region").unwrap();
        assert_eq!(
            kept,
            [
                Kept {
                    container: "app".into(),
                    reason: KeptReason::SetByContainer(AWS_REGION)
                },
                Kept {
                    container: "app".into(),
                    reason: KeptReason::SetByContainer(AWS_ROLE_SESSION_NAME)
                },
                Kept {
                    container: "app".into(),
                    reason: KeptReason::LeftToEnvFrom(region)
                },
            ]
        );
        assert_eq!(
            kept_text(&kept),
            [
                "app: AWS_REGION",
                "app: AWS_ROLE_SESSION_NAME",
                "app: region left to envFrom"
            ]
        );
    }

    #[test]
    fn variables_are_appended_after_the_containers_own() {
        let (pod, _) = edited(
            app(json!([{"name": "LOG_LEVEL", "value": "debug"}])),
            &web_identity(),
        );
        assert_eq!(
            env_names(&pod, 0),
            ["LOG_LEVEL", AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE]
        );
    }

    #[rstest]
    #[case(web_identity())]
    #[case(everything())]
    #[case(container_credentials())]
    #[case(Injection { skip_region_with_env_from: true, pod_label: Some(("eks.amazonaws.com/pod-identity", "enabled")), ..everything() })]
    fn a_second_edit_changes_nothing(#[case] injection: Injection) {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "init"}, {"name": "sidecar", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "aws"}}]},
                           {"name": "worker", "env": [{"name": AWS_REGION, "value": "us-east-1"}]}]}});
        let (once, _) = edited(pod.clone(), &injection);
        assert_ne!(once, pod);
        let again = planned(&once, &injection).unwrap();
        assert!(again.edit.is_empty(), "{:?}", again.edit);
        assert_eq!(again.injected, ["init", "sidecar", "app", "worker"]);
    }

    #[test]
    fn every_selected_container_gets_the_mount_and_the_pod_the_volume() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]}});
        let (pod, _) = edited(pod, &web_identity());
        let token_mount =
            json!({"mountPath": MOUNT_PATH, "name": "aws-iam-token", "readOnly": true});
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"],
            json!([token_mount])
        );
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "data", "mountPath": "/data"}, token_mount])
        );
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[1], role_token_volume(86_400));
    }

    #[rstest]
    #[case(MOUNT_PATH)]
    #[case("/var/run/secrets/eks.amazonaws.com/serviceaccount/")]
    fn an_existing_token_mount_is_kept(#[case] mount_path: &str) {
        let mounts = json!([{"name": "aws-iam-token", "mountPath": mount_path}]);
        let pod = pod(json!([{"name": "app", "volumeMounts": mounts}]));
        let (pod, _) = edited(pod, &web_identity());
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"], mounts);
    }

    #[test]
    fn the_pods_own_token_volume_is_reused() {
        let volume = role_token_volume(3600);
        let mut pod = app(json!(null));
        pod["spec"]["volumes"] = json!([volume]);
        let (pod, _) = edited(pod, &web_identity());
        assert_eq!(pod["spec"]["volumes"], json!([volume]));
        assert!(env_names(&pod, 0).contains(&AWS_ROLE_ARN));
    }

    #[test]
    fn refuses_a_foreign_volume_of_the_token_volumes_name() {
        let mut pod = app(json!(null));
        pod["spec"]["volumes"] = json!([{"name": "aws-iam-token", "emptyDir": {}}]);
        let err = planned(&pod, &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::ForeignTokenVolume { found, .. } if found == "an emptyDir volume"),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_another_volume_at_the_token_mount_path() {
        let pod = pod(json!([{"name": "app",
            "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]}]));
        let err = planned(&pod, &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::MountPathTaken { container, volume, .. } if container == "app" && volume == "mine"),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_the_token_volume_mounted_elsewhere() {
        let pod = pod(json!([{"name": "app",
            "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/token"}]}]));
        let err = planned(&pod, &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::TokenVolumeMountedElsewhere { found, .. } if found == "volume \"aws-iam-token\" at \"/token\""),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_a_variable_without_a_name_naming_its_path() {
        let err = planned(&app(json!([{"value": "x"}])), &web_identity()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::MissingPodField { field, .. } if field == "spec.containers[0].env[0].name"),
            "{err:?}"
        );
    }

    #[test]
    fn skipped_containers_are_left_alone_and_unknown_names_reported() {
        let injection = Injection {
            containers: ContainerSelection {
                skip: vec!["proxy".into(), "gone".into()],
                ..ContainerSelection::default()
            },
            ..web_identity()
        };
        let original = pod(json!([{"name": "app"}, {"name": "proxy"}]));
        let plan = planned(&original, &injection).unwrap();
        assert_eq!(plan.injected, ["app"]);
        assert_eq!(plan.skipped, ["proxy"]);
        assert_eq!(plan.unknown_names, ["gone"]);
        let (pod, _) = edited(original.clone(), &injection);
        assert_eq!(
            pod["spec"]["containers"][1],
            original["spec"]["containers"][1]
        );
    }

    #[test]
    fn nothing_is_added_when_no_container_is_selected() {
        let injection = Injection {
            containers: ContainerSelection {
                skip: vec!["app".into()],
                ..ContainerSelection::default()
            },
            pod_label: Some(("eks.amazonaws.com/pod-identity", "enabled")),
            ..web_identity()
        };
        assert!(planned(&app(json!(null)), &injection)
            .unwrap()
            .edit
            .is_empty());
    }

    #[test]
    fn the_pod_label_is_added_unless_the_pod_has_its_own() {
        let injection = Injection {
            pod_label: Some(("eks.amazonaws.com/pod-identity", "enabled")),
            ..container_credentials()
        };
        let (pod, _) = edited(app(json!(null)), &injection);
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"eks.amazonaws.com/pod-identity": "enabled"})
        );
        let mut own = app(json!(null));
        own["metadata"]["labels"] = json!({"eks.amazonaws.com/pod-identity": "no"});
        let (own, _) = edited(own, &injection);
        assert_eq!(
            own["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
            "no"
        );
    }

    #[test]
    fn new_ephemeral_containers_only_and_only_with_the_token_volume() {
        let volume = role_token_volume(86_400);
        let mut pod = json!({"metadata": {"name": "web"}, "spec": {
            "containers": [{"name": "app"}],
            "ephemeralContainers": [{"name": "old"}, {"name": "debugger"}]}});
        let existing = ["old".to_owned()];
        let scope = Scope::NewEphemeralContainers {
            existing: &existing,
        };

        let without_volume = plan(&pod, "team-a/web", &web_identity(), scope).unwrap();
        assert!(without_volume.edit.is_empty());
        assert!(without_volume.no_volume.is_some());

        pod["spec"]["volumes"] = json!([volume]);
        let plan = plan(&pod, "team-a/web", &web_identity(), scope).unwrap();
        assert_eq!(plan.injected, ["debugger"]);
        let before = pod.clone();
        plan.edit.apply(&mut pod);
        assert_eq!(pod["spec"]["containers"], before["spec"]["containers"]);
        assert_eq!(pod["spec"]["volumes"], before["spec"]["volumes"]);
        assert_eq!(
            pod["spec"]["ephemeralContainers"][0],
            json!({"name": "old"})
        );
        let debugger = &pod["spec"]["ephemeralContainers"][1];
        assert_eq!(debugger["env"][0]["name"], AWS_ROLE_ARN);
        assert_eq!(debugger["volumeMounts"][0]["name"], "aws-iam-token");
    }
}
