//! Stage 4 of the flow: what a pod gets.
//!
//! What a pod gets: the settings, its ServiceAccount's annotations and its
//! own annotations resolved into one [`Injection`], or nothing when there is
//! no role for it.
//!
//! Precedence follows the official webhook, minus its surprises: an empty
//! `audience` annotation means "unset" (not a token for the API server), and
//! unreadable values are refused instead of silently ignored.
//!
//! - credentials: container credentials for the ServiceAccounts listed in
//!   `containerCredentials`, else the role of the ServiceAccount's annotation,
//!   else of the `serviceAccounts` setting, checked against the guardrails
//!   before any other annotation is read;
//! - audience: for container credentials `containerCredentials.audience`;
//!   else ServiceAccount annotation, `serviceAccounts` setting, `tokenAudience`;
//! - regional STS: ServiceAccount annotation, `serviceAccounts` setting, then
//!   the global setting;
//! - STS endpoint (web identity only): the ServiceAccount's extension
//!   annotation, then `stsEndpointUrl`;
//! - token expiration: pod annotation, ServiceAccount annotation,
//!   `serviceAccounts` setting, then `tokenExpirationSeconds`, clamped to
//!   600..86400; for container credentials, when only the setting decides
//!   (settings cannot tell 86400 written out from the default), spread over
//!   79200..86400;
//! - region: the ServiceAccount's extension annotation, then `awsDefaultRegion`.

pub(crate) mod annotations;
pub(crate) mod credentials;
pub mod env;
pub(crate) mod token;

use crate::error::PolicyError;
use crate::input::pod::PodFacts;
use crate::lookup::ServiceAccount;
use crate::settings::overrides::{Overrides, Precedence};
use crate::settings::token_expiration::TokenExpiration;
use crate::settings::Config;
use annotations::{
    parse_name_list, pod_overrides, service_account_overrides, service_account_role,
};
use credentials::{Credentials, POD_IDENTITY_LABEL};
use env::AWS_ROLE_SESSION_NAME;
use token::{token_file, TOKEN_FILE_NAME};

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
    pub token_file_name: String,
    /// The token file the SDKs read, in its Windows form for Windows pods.
    pub token_file: String,
    pub region: Option<String>,
    pub sts_regional_endpoints: bool,
    /// `AWS_ENDPOINT_URL_STS`, for web identity only: container credentials
    /// never call STS.
    pub sts_endpoint: Option<String>,
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
    service_account: &ServiceAccount,
    pod: &PodFacts,
) -> Result<Option<Resolved>, PolicyError> {
    let (namespace, sa_name) = (pod.namespace, pod.service_account);
    let mapping = config.role_mapping.lookup(namespace, sa_name);
    let container_credentials = config
        .container_credentials
        .as_ref()
        .filter(|cc| cc.covers(namespace, sa_name));
    let object = format!("ServiceAccount {namespace}/{sa_name}");
    // Container credentials take precedence over a role, as in the official
    // webhook, and need none: a ServiceAccount moved to EKS Pod Identity may
    // keep its old role annotation, and nothing reads it.
    let role = match container_credentials {
        Some(_) => None,
        None => {
            let annotated = service_account_role(
                service_account,
                &object,
                &config.annotations,
                &config.role_mapping,
            )?;
            // The ServiceAccount's own role wins over its `serviceAccounts` entry.
            let Some(role) = annotated.or_else(|| mapping.and_then(|m| m.role_arn.clone())) else {
                // No credentials: the other annotations are not read, and a
                // ServiceAccount without a role may carry anything without harm.
                return Ok(None);
            };
            // The guardrails judge the role before anything else is read.
            config.guardrails.check(namespace, sa_name, &role)?;
            Some(role)
        }
    };
    let from_service_account = service_account_overrides(
        service_account,
        &object,
        &config.annotations,
        &config.extension,
        role.is_some(),
    )?;
    let from_pod = pod_overrides(pod, &config.annotations)?;
    let no_entry = Overrides::default();
    // Precedence, in one place: the pod, its ServiceAccount, its
    // `serviceAccounts` entry; the settings where none of them says anything.
    let order = [
        &from_pod,
        &from_service_account,
        mapping.unwrap_or(&no_entry),
    ];
    let sources = Precedence(&order);

    let TokenFor {
        credentials,
        audience,
        mount_path,
        volume_name,
        token_file_name,
    } = match (container_credentials, role) {
        (Some(cc), _) => TokenFor {
            credentials: Credentials::ContainerCredentials {
                full_uri: cc.full_uri.clone(),
            },
            audience: &cc.audience,
            mount_path: &cc.mount_path,
            volume_name: &cc.volume_name,
            token_file_name: &cc.token_file_name,
        },
        (None, Some(role_arn)) => TokenFor {
            credentials: Credentials::WebIdentity { role_arn },
            audience: sources
                .first(|o| o.audience.as_ref())
                .unwrap_or(&config.audience),
            mount_path: &config.mount_path,
            volume_name: &config.volume_name,
            token_file_name: TOKEN_FILE_NAME,
        },
        (None, None) => return Ok(None),
    };
    let web_identity = matches!(credentials, Credentials::WebIdentity { .. });
    let mut warnings = Vec::new();
    let expiration = match sources.first(|o| o.token_expiration.as_ref()) {
        Some(chosen) => {
            warnings.extend(chosen.warning.clone());
            chosen.value
        }
        // EKS Pod Identity with the default lifetime: spread over 22 to 24
        // hours, as the official webhook does (not for IRSA, as there). The
        // settings cannot tell `tokenExpirationSeconds: 86400` written out
        // from the default, so both are spread; an annotation or a
        // `serviceAccounts` entry of 86400 chose it, and is kept.
        None if !web_identity && config.token_expiration == TokenExpiration::DEFAULT => {
            TokenExpiration::spread_default(&pod.identity())
        }
        None => config.token_expiration,
    };
    let session_name =
        web_identity && config.role_session_name && session_name_fits(pod, &mut warnings);

    Ok(Some(Resolved {
        injection: Injection {
            pod_label: (!web_identity).then_some(POD_IDENTITY_LABEL),
            credentials,
            audience: audience.to_string(),
            expiration,
            volume_name: volume_name.to_string(),
            mount_path: mount_path.to_string(),
            token_file_name: token_file_name.to_owned(),
            token_file: token_file(mount_path, token_file_name, pod.windows),
            region: sources
                .first(|o| o.region.as_ref())
                .or(config.region.as_ref())
                .map(ToString::to_string),
            sts_regional_endpoints: sources
                .first(|o| o.sts_regional_endpoints.as_ref())
                .copied()
                .unwrap_or(config.sts_regional_endpoints),
            sts_endpoint: sources
                .first(|o| o.sts_endpoint.as_ref())
                .or(config.sts_endpoint.as_ref())
                .filter(|_| web_identity)
                .map(ToString::to_string),
            session_name,
            containers: container_selection(pod, config)?,
            skip_region_with_env_from: config.skip_region_with_env_from,
        },
        warnings,
    }))
}

/// The credentials a pod gets and where their token goes: container
/// credentials' own settings, or the role's with the audience its sources
/// choose.
struct TokenFor<'a> {
    credentials: Credentials,
    audience: &'a str,
    mount_path: &'a str,
    volume_name: &'a str,
    token_file_name: &'a str,
}

/// Which containers the pod's annotations let the policy touch.
pub(crate) fn container_selection(
    pod: &PodFacts,
    config: &Config,
) -> Result<ContainerSelection, PolicyError> {
    let names = |key: &str| -> Result<Option<Vec<String>>, PolicyError> {
        Ok(pod.annotation(key)?.map(|value| {
            parse_name_list(value)
                .into_iter()
                .map(str::to_owned)
                .collect()
        }))
    };
    let (skip, only) = (
        &config.annotations.skip_containers,
        &config.extension.inject_containers,
    );
    Ok(ContainerSelection {
        skip: names(skip)?.unwrap_or_default(),
        only: names(only)?,
        skip_annotation: skip.clone(),
        only_annotation: only.clone(),
    })
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
        resolve(config, sa, &PodFacts::read(pod, "team-a").unwrap())
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
        assert_eq!(injected.credentials.summary(), ROLE);
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

    #[test]
    fn sts_endpoint_from_the_service_account_wins_over_the_setting() {
        let settings = Settings {
            sts_endpoint_url: Some("https://sts.us-east-1.amazonaws.com".into()),
            ..Default::default()
        };
        let config = Config::from_settings(&settings).unwrap();
        let vpce = "https://vpce-0a1b2c3d-4e5f6a7b.sts.us-east-1.vpce.amazonaws.com";
        let annotated = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("irsa-policy.io/sts-endpoint", vpce),
        ]);
        let resolved = resolve_for(&config, &annotated, &plain_pod())
            .unwrap()
            .unwrap();
        assert_eq!(resolved.injection.sts_endpoint.as_deref(), Some(vpce));
        let plain = sa(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let resolved = resolve_for(&config, &plain, &plain_pod()).unwrap().unwrap();
        assert_eq!(
            resolved.injection.sts_endpoint.as_deref(),
            Some("https://sts.us-east-1.amazonaws.com")
        );
        assert_eq!(injection(&plain, &plain_pod()).sts_endpoint, None);
    }

    #[rstest]
    #[case("http://sts.us-east-1.amazonaws.com")]
    #[case("sts.us-east-1.amazonaws.com")]
    #[case("https://")]
    fn rejects_an_sts_endpoint_annotation_that_is_not_an_https_url(#[case] value: &str) {
        let account = sa(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("irsa-policy.io/sts-endpoint", value),
        ]);
        let err = resolve_for(&config(), &account, &plain_pod())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "ServiceAccount team-a/default: annotation irsa-policy.io/sts-endpoint={value:?} \
                 is not an https:// URL with a host, such as https://sts.us-east-1.amazonaws.com"
            )
        );
    }
}
