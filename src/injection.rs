//! What a pod gets: the settings, its ServiceAccount's annotations and its own
//! annotations resolved into one [`Injection`], or nothing when there is no
//! role for it.
//!
//! Precedence follows the official webhook, minus its surprises: an empty
//! `audience` annotation means "unset" (not a token for the API server), and
//! unreadable values are refused instead of silently ignored.
//!
//! - credentials: container credentials for the ServiceAccounts listed in
//!   `containerCredentials`, else the role of the ServiceAccount's annotation,
//!   else of the `serviceAccounts` setting, checked against the guardrails;
//! - audience and regional STS: ServiceAccount annotation, `serviceAccounts`
//!   setting, then the global setting;
//! - token expiration: pod annotation, ServiceAccount annotation,
//!   `serviceAccounts` setting, global setting, clamped to 600..86400;
//! - region: the ServiceAccount's extension annotation, then `awsDefaultRegion`.

use crate::annotations::{parse_bool, parse_name_list};
use crate::aws_env::AWS_ROLE_SESSION_NAME;
use crate::credentials::{Credentials, POD_IDENTITY_LABEL};
use crate::error::{shorten, PolicyError, MAX_QUOTED};
use crate::pod::PodFacts;
use crate::service_account::ServiceAccount;
use crate::settings::Config;
use crate::syntax::is_region;
use crate::token::{token_file, TokenExpiration, TOKEN_PATH};

/// STS caps `RoleSessionName` at 64 characters.
const MAX_SESSION_NAME: usize = 64;

/// Everything the pod edit needs, all values already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub credentials: Credentials,
    pub audience: String,
    pub expiration: TokenExpiration,
    pub volume_name: String,
    pub mount_path: String,
    /// The token's file name inside the volume.
    pub token_path: String,
    /// The token file the SDKs read, in its Windows form for Windows pods.
    pub token_file: String,
    pub region: Option<String>,
    pub sts_regional_endpoints: bool,
    /// Add `AWS_ROLE_SESSION_NAME` from the downward API `metadata.name`.
    pub session_name: bool,
    pub containers: ContainerSelection,
    pub skip_region_with_env_from: bool,
    /// A label the pod gets (EKS Pod Identity marks its pods).
    pub pod_label: Option<(&'static str, &'static str)>,
}

/// Which containers the pod's annotations let the policy touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSelection {
    pub skip: Vec<String>,
    /// `Some`: only these.
    pub only: Option<Vec<String>>,
    /// The annotation keys, for messages.
    pub skip_annotation: String,
    pub only_annotation: String,
}

impl ContainerSelection {
    /// Skipping wins over listing, so an `inject-containers` list copied
    /// between pods cannot undo a `skip-containers` entry.
    pub fn selects(&self, name: &str) -> bool {
        !self.skip.iter().any(|s| s == name)
            && self
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == name))
    }

    /// Every name the annotations mention.
    pub fn listed(&self) -> impl Iterator<Item = &str> {
        self.skip
            .iter()
            .chain(self.only.iter().flatten())
            .map(String::as_str)
    }
}

/// The injection and the warnings the pod's author should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub injection: Injection,
    pub warnings: Vec<String>,
}

/// `Ok(None)` when there is no role for the pod's ServiceAccount.
pub fn resolve(
    config: &Config,
    namespace: &str,
    service_account: &ServiceAccount,
    pod: &PodFacts,
) -> Result<Option<Resolved>, PolicyError> {
    let keys = &config.annotations;
    let sa_name = pod.service_account;
    let sa_label = format!("ServiceAccount {namespace}/{sa_name}");
    let sa_error = |key: &str, value: &str, reason: String| PolicyError::InvalidAnnotation {
        object: sa_label.clone(),
        key: key.to_owned(),
        value: shorten(value.to_owned(), MAX_QUOTED),
        reason,
    };
    let pod_error = |key: &str, value: &str, reason: String| PolicyError::InvalidAnnotation {
        object: format!("pod {}", pod.label),
        key: key.to_owned(),
        value: shorten(value.to_owned(), MAX_QUOTED),
        reason,
    };
    let mapping = config.role_mapping.lookup(namespace, sa_name);
    let container_credentials = config
        .container_credentials
        .as_ref()
        .filter(|cc| cc.covers(namespace, sa_name));

    // Container credentials take precedence over a role, as in the official webhook.
    let (credentials, audience, mount_path, volume_name, token_path) = match container_credentials {
        Some(cc) => (
            Credentials::ContainerCredentials {
                full_uri: cc.full_uri.clone(),
            },
            cc.audience.clone(),
            cc.mount_path.as_str(),
            cc.volume_name.as_str(),
            cc.token_path.as_str(),
        ),
        None => {
            let annotated = service_account
                .annotation(&keys.role_arn)
                .filter(|value| !value.trim().is_empty());
            let role_arn = match (annotated, mapping.and_then(|m| m.role_arn.as_ref())) {
                (Some(value), _) => config
                    .role_mapping
                    .role(value)
                    .map_err(|reason| sa_error(&keys.role_arn, value, reason))?,
                (None, Some(role_arn)) => role_arn.clone(),
                (None, None) => return Ok(None),
            };
            config.guardrails.check(namespace, sa_name, &role_arn)?;
            let audience = match service_account.annotation(&keys.audience) {
                Some(value) if !value.trim().is_empty() => value.trim().to_owned(),
                _ => mapping
                    .and_then(|m| m.audience.clone())
                    .unwrap_or_else(|| config.audience.clone()),
            };
            (
                Credentials::WebIdentity { role_arn },
                audience,
                config.mount_path.as_str(),
                config.volume_name.as_str(),
                TOKEN_PATH,
            )
        }
    };

    let sts_regional_endpoints = match service_account.annotation(&keys.sts_regional_endpoints) {
        Some(value) => parse_bool(value)
            .map_err(|reason| sa_error(&keys.sts_regional_endpoints, value, reason))?,
        None => mapping
            .and_then(|m| m.sts_regional_endpoints)
            .unwrap_or(config.sts_regional_endpoints),
    };

    let mut warnings = Vec::new();
    let pod_expiration = pod.annotation(&keys.token_expiration)?;
    let expiration = match (
        pod_expiration,
        service_account.annotation(&keys.token_expiration),
    ) {
        (Some(value), _) => annotated_expiration(value, &mut warnings)
            .map_err(|reason| pod_error(&keys.token_expiration, value, reason))?,
        (None, Some(value)) => annotated_expiration(value, &mut warnings)
            .map_err(|reason| sa_error(&keys.token_expiration, value, reason))?,
        (None, None) => mapping
            .and_then(|m| m.token_expiration)
            .unwrap_or(config.token_expiration),
    };

    let region_key = &config.extension.region;
    let region = match service_account.annotation(region_key) {
        Some(value) if !value.trim().is_empty() => {
            let value = value.trim();
            if !is_region(value) {
                return Err(sa_error(
                    region_key,
                    value,
                    "is not an AWS region such as us-east-1 or eu-central-1".into(),
                ));
            }
            Some(value.to_owned())
        }
        _ => config.region.clone(),
    };

    let names = |key: &str| -> Result<Option<Vec<String>>, PolicyError> {
        Ok(pod.annotation(key)?.map(|value| {
            parse_name_list(value)
                .into_iter()
                .map(str::to_owned)
                .collect()
        }))
    };
    let containers = ContainerSelection {
        skip: names(&keys.skip_containers)?.unwrap_or_default(),
        only: names(&config.extension.inject_containers)?,
        skip_annotation: keys.skip_containers.clone(),
        only_annotation: config.extension.inject_containers.clone(),
    };

    let web_identity = matches!(credentials, Credentials::WebIdentity { .. });
    let session_name =
        web_identity && config.role_session_name && session_name_fits(pod, &mut warnings);

    Ok(Some(Resolved {
        injection: Injection {
            pod_label: (!web_identity).then_some(POD_IDENTITY_LABEL),
            credentials,
            audience,
            expiration,
            volume_name: volume_name.to_owned(),
            mount_path: mount_path.to_owned(),
            token_path: token_path.to_owned(),
            token_file: token_file(mount_path, token_path, pod.windows),
            region,
            sts_regional_endpoints,
            session_name,
            containers,
            skip_region_with_env_from: config.skip_region_with_env_from,
        },
        warnings,
    }))
}

fn annotated_expiration(
    value: &str,
    warnings: &mut Vec<String>,
) -> Result<TokenExpiration, String> {
    let (expiration, clamped) = TokenExpiration::from_annotation(value)
        .map_err(|reason| format!("{reason}; use a number of seconds between 600 and 86400"))?;
    if clamped {
        warnings.push(format!(
            "token expiration {} seconds is outside 600..86400; using {}",
            value.trim(),
            expiration.seconds()
        ));
    }
    Ok(expiration)
}

/// The session name comes from `metadata.name` at run time, which is the real
/// name even for `generateName` pods (the community webhook guessed it and got
/// it wrong). A generated name is at most 63 characters; a chosen one may be
/// longer than STS allows, and then the SDK's own default is better than an
/// `AssumeRoleWithWebIdentity` failure.
fn session_name_fits(pod: &PodFacts, warnings: &mut Vec<String>) -> bool {
    match (pod.name, pod.generate_name) {
        (Some(name), _) if !name.is_empty() => {
            let fits = name.len() <= MAX_SESSION_NAME;
            if !fits {
                warnings.push(format!(
                    "{AWS_ROLE_SESSION_NAME} not set: pod name is longer than {MAX_SESSION_NAME} characters"
                ));
            }
            fits
        }
        (_, Some(prefix)) => !prefix.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use rstest::rstest;
    use serde_json::{json, Value};

    const ROLE: &str = "arn:aws:iam::123456789012:role/app";

    fn config() -> Config {
        Config::from_settings(&Settings::default()).unwrap()
    }

    fn sa(pairs: &[(&str, &str)]) -> ServiceAccount {
        ServiceAccount::with_annotations(pairs.iter().copied())
    }

    fn resolve_for(
        config: &Config,
        sa: &ServiceAccount,
        pod: &Value,
    ) -> Result<Option<Resolved>, PolicyError> {
        resolve(
            config,
            "team-a",
            sa,
            &PodFacts::read(pod, "team-a").unwrap(),
        )
    }

    fn plain_pod() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app"}]}})
    }

    fn injection(sa: &ServiceAccount, pod: &Value) -> Injection {
        resolve_for(&config(), sa, pod).unwrap().unwrap().injection
    }

    #[rstest]
    #[case(&[])]
    #[case(&[("eks.amazonaws.com/role-arn", "")])]
    #[case(&[("eks.amazonaws.com/role-arn", "  ")])]
    #[case(&[("other.example.com/role-arn", ROLE)])]
    fn no_role_annotation_means_nothing_to_inject(#[case] annotations: &[(&str, &str)]) {
        assert_eq!(
            resolve_for(&config(), &sa(annotations), &plain_pod()),
            Ok(None)
        );
    }

    #[test]
    fn role_annotation_under_a_custom_prefix() {
        let settings = Settings {
            annotation_prefix: "irsa.example.com".into(),
            ..Default::default()
        };
        let config = Config::from_settings(&settings).unwrap();
        let account = sa(&[("irsa.example.com/role-arn", ROLE)]);
        assert!(resolve_for(&config, &account, &plain_pod())
            .unwrap()
            .is_some());
        let official = sa(&[("eks.amazonaws.com/role-arn", ROLE)]);
        assert_eq!(resolve_for(&config, &official, &plain_pod()), Ok(None));
    }

    #[test]
    fn defaults_come_from_settings() {
        let injected = injection(&sa(&[("eks.amazonaws.com/role-arn", ROLE)]), &plain_pod());
        assert_eq!(injected.credentials.describe(), ROLE);
        assert_eq!(injected.audience, "sts.amazonaws.com");
        assert_eq!(injected.expiration.seconds(), 86400);
        assert_eq!(
            injected.token_file,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        );
        assert!(!injected.sts_regional_endpoints);
        assert_eq!(injected.region, None);
        assert!(!injected.session_name);
    }

    #[test]
    fn rejects_an_invalid_role_arn_naming_the_service_account_and_annotation() {
        let account = sa(&[("eks.amazonaws.com/role-arn", "arn:aws:iam::12345:role/app")]);
        let err = resolve_for(&config(), &account, &plain_pod())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "ServiceAccount team-a/default: annotation eks.amazonaws.com/role-arn=\"arn:aws:iam::12345:role/app\" \
             is not an IAM role ARN: account ID \"12345\" is not 12 digits; expected \
             arn:<partition>:iam::<12-digit account ID>:role/<optional/path/><role name>"
        );
    }

    #[test]
    fn service_account_audience_wins_over_settings() {
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/audience", "vault.example.com"),
        ]);
        assert_eq!(
            injection(&account, &plain_pod()).audience,
            "vault.example.com"
        );
    }

    #[test]
    fn empty_audience_annotation_means_unset() {
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/audience", ""),
        ]);
        assert_eq!(
            injection(&account, &plain_pod()).audience,
            "sts.amazonaws.com"
        );
    }

    #[rstest]
    #[case("true", false, true)]
    #[case("TRUE", false, true)]
    #[case("1", false, true)]
    #[case("false", true, false)]
    #[case("0", true, false)]
    fn service_account_regional_sts_wins_over_settings(
        #[case] annotation: &str,
        #[case] setting: bool,
        #[case] expected: bool,
    ) {
        let settings = Settings {
            sts_regional_endpoints: setting,
            ..Default::default()
        };
        let config = Config::from_settings(&settings).unwrap();
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/sts-regional-endpoints", annotation),
        ]);
        let resolved = resolve_for(&config, &account, &plain_pod())
            .unwrap()
            .unwrap();
        assert_eq!(resolved.injection.sts_regional_endpoints, expected);
    }

    #[test]
    fn rejects_a_regional_sts_annotation_that_is_not_a_boolean() {
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/sts-regional-endpoints", "yes"),
        ]);
        let err = resolve_for(&config(), &account, &plain_pod())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ServiceAccount team-a/default: annotation eks.amazonaws.com/sts-regional-endpoints=\"yes\""), "{err}");
    }

    #[test]
    fn pod_expiration_wins_over_service_account_and_settings() {
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/token-expiration", "7200"),
        ]);
        let pod = json!({"metadata": {"name": "web", "annotations": {"eks.amazonaws.com/token-expiration": "3600"}}, "spec": {}});
        assert_eq!(injection(&account, &pod).expiration.seconds(), 3600);
        assert_eq!(injection(&account, &plain_pod()).expiration.seconds(), 7200);
    }

    #[test]
    fn clamps_expiration_and_warns() {
        let account = sa(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let pod = json!({"metadata": {"name": "web", "annotations": {"eks.amazonaws.com/token-expiration": "60"}}, "spec": {}});
        let resolved = resolve_for(&config(), &account, &pod).unwrap().unwrap();
        assert_eq!(resolved.injection.expiration.seconds(), 600);
        assert_eq!(
            resolved.warnings,
            vec!["token expiration 60 seconds is outside 600..86400; using 600"]
        );
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/token-expiration", "604800"),
        ]);
        assert_eq!(
            injection(&account, &plain_pod()).expiration.seconds(),
            86400
        );
    }

    #[test]
    fn rejects_an_unreadable_expiration_naming_the_object() {
        let account = sa(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let pod = json!({"metadata": {"name": "web", "annotations": {"eks.amazonaws.com/token-expiration": "1h"}}, "spec": {}});
        let err = resolve_for(&config(), &account, &pod)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pod team-a/web: annotation eks.amazonaws.com/token-expiration=\"1h\" is not a whole number"), "{err}");
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/token-expiration", "soon"),
        ]);
        let err = resolve_for(&config(), &account, &plain_pod())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ServiceAccount team-a/default: annotation eks.amazonaws.com/token-expiration=\"soon\""), "{err}");
    }

    #[test]
    fn skip_containers_are_trimmed() {
        let account = sa(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let pod = json!({"metadata": {"name": "web", "annotations": {"eks.amazonaws.com/skip-containers": "sidecar, init ,"}}, "spec": {}});
        assert_eq!(
            injection(&account, &pod).containers.skip,
            vec!["sidecar", "init"]
        );
    }

    #[test]
    fn windows_pods_get_the_windows_token_file() {
        let account = sa(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let pod = json!({"metadata": {"name": "web"}, "spec": {"os": {"name": "windows"}}});
        let injected = injection(&account, &pod);
        assert_eq!(
            injected.token_file,
            r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token"
        );
        assert_eq!(
            injected.mount_path,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount"
        );
    }

    #[rstest]
    #[case(json!({"name": "web"}), true)]
    #[case(json!({"generateName": "web-7d9f5c-"}), true)]
    #[case(json!({"name": "", "generateName": "a-very-long-generated-prefix-that-is-truncated-by-the-api-server-"}), true)]
    #[case(json!({"name": "x".repeat(64)}), true)]
    #[case(json!({"name": "x".repeat(65)}), false)]
    #[case(json!({}), false)]
    #[case(json!({"name": ""}), false)]
    #[case(json!({"name": "", "generateName": ""}), false)]
    fn session_name_only_where_the_pod_name_fits(#[case] metadata: Value, #[case] expected: bool) {
        let settings = Settings {
            role_session_name: true,
            ..Default::default()
        };
        let config = Config::from_settings(&settings).unwrap();
        let account = sa(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let pod = json!({"metadata": metadata, "spec": {}});
        let resolved = resolve_for(&config, &account, &pod).unwrap().unwrap();
        assert_eq!(resolved.injection.session_name, expected);
    }
}
