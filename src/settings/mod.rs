//! Stage 2 of the flow: the settings.
//!
//! Policy settings: the JSON a platform team writes in the
//! ClusterAdmissionPolicy, and the checked [`Config`] the rest of the policy
//! works with. Every value is parsed here, once, into a type that cannot hold
//! an invalid one (roles, audiences, paths, lifetimes, guardrails).
//!
//! `validate_settings` and `validate` both go through [`Config::from_settings`],
//! so a value the policy-server accepted is exactly a value `validate` can use.

pub(crate) mod annotation_keys;
pub(crate) mod container_credentials;
pub(crate) mod guardrails;
pub(crate) mod overrides;
pub(crate) mod role_arn;
pub(crate) mod role_mapping;
pub(crate) mod syntax;
pub(crate) mod token_expiration;
pub(crate) mod values;

use crate::error::PolicyError;
use crate::input::diagnose;
use crate::input::go_json::object_or_null;
use crate::settings::guardrails::{Guardrails, RoleRule};
use crate::settings::role_mapping::{ComposeRoleArn, RoleMapping, ServiceAccountMapping};
use crate::settings::values::{
    AnnotationPrefix, Audience, Checked, MountPath, Region, StsEndpoint, VolumeName,
};
use annotation_keys::{AnnotationKeys, ExtensionKeys};
use container_credentials::{ContainerCredentials, ContainerCredentialsSettings};
use serde::{Deserialize, Serialize};
use token_expiration::TokenExpiration;

pub const DEFAULT_ANNOTATION_PREFIX: &str = "eks.amazonaws.com";
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
pub const DEFAULT_MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
pub const DEFAULT_VOLUME_NAME: &str = "aws-iam-token";
pub const DEFAULT_EXTENSION_PREFIX: &str = "irsa-policy.io";

/// The settings as written, camelCase, every field optional.
///
/// Unknown fields are refused: a misspelt `tokenAudiance` silently falling back
/// to the default would be found only when STS refuses the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Settings {
    pub annotation_prefix: String,
    pub token_audience: String,
    pub token_expiration_seconds: i64,
    pub token_mount_path: String,
    pub token_volume_name: String,
    pub aws_default_region: Option<String>,
    pub sts_regional_endpoints: bool,
    pub sts_endpoint_url: Option<String>,
    pub role_session_name: bool,
    pub extension_annotation_prefix: String,
    pub allowed_role_arns: Vec<RoleRule>,
    pub allowed_accounts: Vec<String>,
    pub allowed_partitions: Vec<String>,
    #[serde(with = "crate::settings::role_mapping::entries")]
    pub service_accounts: Vec<(String, ServiceAccountMapping)>,
    pub compose_role_arn: Option<ComposeRoleArn>,
    pub container_credentials: Option<ContainerCredentialsSettings>,
    pub skip_region_with_env_from: bool,
    pub ephemeral_containers: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            annotation_prefix: DEFAULT_ANNOTATION_PREFIX.into(),
            token_audience: DEFAULT_AUDIENCE.into(),
            token_expiration_seconds: i64::from(TokenExpiration::MAX),
            token_mount_path: DEFAULT_MOUNT_PATH.into(),
            token_volume_name: DEFAULT_VOLUME_NAME.into(),
            aws_default_region: None,
            sts_regional_endpoints: false,
            sts_endpoint_url: None,
            role_session_name: false,
            extension_annotation_prefix: DEFAULT_EXTENSION_PREFIX.into(),
            allowed_role_arns: Vec::new(),
            allowed_accounts: Vec::new(),
            allowed_partitions: Vec::new(),
            service_accounts: Vec::new(),
            compose_role_arn: None,
            container_credentials: None,
            skip_region_with_env_from: false,
            ephemeral_containers: false,
        }
    }
}

impl Settings {
    /// Reads settings JSON; the error names the field that could not be read.
    pub fn from_json(json: &[u8]) -> Result<Self, PolicyError> {
        let mut parser = serde_json::Deserializer::from_slice(json);
        object_or_null(&mut parser)
            .and_then(|settings| parser.end().map(|()| settings))
            .map_err(|e| {
                let reason = match json.iter().find(|b| !b.is_ascii_whitespace()) {
                    Some(b'{') => diagnose::explain::<Self>(json, &e),
                    _ => format!(
                        "must be a JSON object, found {:?}",
                        String::from_utf8_lossy(json)
                            .chars()
                            .take(64)
                            .collect::<String>()
                    ),
                };
                PolicyError::UnreadableSettings { reason }
            })
    }
}

impl kubewarden_policy_sdk::settings::Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        Config::from_settings(self)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Settings after checking: every value here is usable as it is.
#[derive(Debug, Clone)]
pub struct Config {
    pub annotations: AnnotationKeys,
    pub extension: ExtensionKeys,
    pub audience: Audience,
    pub token_expiration: TokenExpiration,
    pub mount_path: MountPath,
    pub volume_name: VolumeName,
    pub region: Option<Region>,
    pub sts_regional_endpoints: bool,
    /// `AWS_ENDPOINT_URL_STS` for web identity pods, when set.
    pub sts_endpoint: Option<StsEndpoint>,
    pub role_session_name: bool,
    pub guardrails: Guardrails,
    pub role_mapping: RoleMapping,
    pub container_credentials: Option<ContainerCredentials>,
    /// Leave the region to containers that read their environment from
    /// ConfigMaps or Secrets (`envFrom`): an explicit `env` entry would
    /// override what they set there (the official tracker's #248).
    pub skip_region_with_env_from: bool,
    pub ephemeral_containers: bool,
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Self, PolicyError> {
        let annotation_prefix =
            AnnotationPrefix::setting("annotationPrefix", "", &s.annotation_prefix)?;
        let audience = Audience::setting("tokenAudience", "", &s.token_audience)?;
        let token_expiration =
            TokenExpiration::within_bounds(s.token_expiration_seconds).map_err(|reason| {
                PolicyError::InvalidSetting {
                    field: "tokenExpirationSeconds",
                    value: s.token_expiration_seconds.to_string(),
                    reason,
                }
            })?;
        let mount_path = MountPath::setting("tokenMountPath", "", &s.token_mount_path)?;
        let volume_name = VolumeName::setting("tokenVolumeName", "", &s.token_volume_name)?;
        let extension_prefix = AnnotationPrefix::setting(
            "extensionAnnotationPrefix",
            "",
            &s.extension_annotation_prefix,
        )?;
        // An empty region is how a form (Rancher's UI, a Helm value) says "none".
        let region = match s.aws_default_region.as_deref() {
            None | Some("") => None,
            Some(region) => Some(Region::setting("awsDefaultRegion", "", region)?),
        };
        let sts_endpoint = match s.sts_endpoint_url.as_deref() {
            None | Some("") => None,
            Some(url) => Some(StsEndpoint::setting("stsEndpointUrl", "", url)?),
        };
        Ok(Self {
            annotations: AnnotationKeys::new(&annotation_prefix),
            extension: ExtensionKeys::new(&extension_prefix),
            audience,
            token_expiration,
            mount_path,
            volume_name,
            region,
            sts_regional_endpoints: s.sts_regional_endpoints,
            sts_endpoint,
            role_session_name: s.role_session_name,
            guardrails: Guardrails::from_settings(
                &s.allowed_role_arns,
                &s.allowed_accounts,
                &s.allowed_partitions,
            )?,
            role_mapping: RoleMapping::from_settings(
                &s.service_accounts,
                s.compose_role_arn.as_ref(),
            )?,
            container_credentials: s
                .container_credentials
                .as_ref()
                .map(ContainerCredentials::from_settings)
                .transpose()?,
            skip_region_with_env_from: s.skip_region_with_env_from,
            ephemeral_containers: s.ephemeral_containers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewarden_policy_sdk::settings::Validatable;
    use rstest::rstest;

    #[test]
    fn defaults_match_the_official_webhook() {
        let config = Config::from_settings(&Settings::default()).unwrap();
        assert_eq!(config.annotations.role_arn, "eks.amazonaws.com/role-arn");
        assert_eq!(config.audience, "sts.amazonaws.com");
        assert_eq!(config.token_expiration.seconds(), 86400);
        assert_eq!(
            config.mount_path,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount"
        );
        assert_eq!(config.volume_name, "aws-iam-token");
        assert_eq!(config.region, None);
        assert!(!config.sts_regional_endpoints);
        assert!(!config.role_session_name);
    }

    #[test]
    fn an_empty_region_means_no_region() {
        let settings = Settings::from_json(br#"{"awsDefaultRegion": ""}"#).unwrap();
        assert_eq!(Config::from_settings(&settings).unwrap().region, None);
    }

    #[test]
    fn empty_or_null_settings_mean_defaults() {
        assert_eq!(Settings::from_json(b"{}").unwrap(), Settings::default());
        assert_eq!(Settings::from_json(b" null ").unwrap(), Settings::default());
    }

    #[test]
    fn reads_every_setting_in_camel_case() {
        let settings = Settings::from_json(
            br#"{"annotationPrefix":"irsa.example.com","tokenAudience":"sts.example.com",
                "tokenExpirationSeconds":3600,"tokenMountPath":"/var/run/aws/","tokenVolumeName":"aws-token",
                "awsDefaultRegion":"eu-west-1","stsRegionalEndpoints":true,"roleSessionName":true}"#,
        )
        .unwrap();
        let config = Config::from_settings(&settings).unwrap();
        assert_eq!(config.annotations.role_arn, "irsa.example.com/role-arn");
        assert_eq!(config.audience, "sts.example.com");
        assert_eq!(config.token_expiration.seconds(), 3600);
        assert_eq!(config.mount_path, "/var/run/aws");
        assert_eq!(config.volume_name, "aws-token");
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert!(config.sts_regional_endpoints);
        assert!(config.role_session_name);
    }

    #[rstest]
    #[case(r#"{"tokenAudiance":"x"}"#, "unknown field `tokenAudiance`")]
    #[case(r#"{"tokenExpirationSeconds":"3600"}"#, "tokenExpirationSeconds")]
    #[case(r#"{"stsRegionalEndpoints":"yes"}"#, "stsRegionalEndpoints")]
    #[case(r#"[]"#, "must be a JSON object")]
    #[case(r#""x""#, "must be a JSON object")]
    #[case(r#"{"annotationPrefix":"#, "settings")]
    #[case("nope", "must be a JSON object, found \"nope\"")]
    #[case("null null", "must be a JSON object")]
    #[case(
        r#"{"serviceAccounts": []}"#,
        "serviceAccounts: invalid type: sequence, expected an object of \"<namespace>/<name>\""
    )]
    fn rejects_unreadable_settings_naming_the_field(#[case] json: &str, #[case] named: &str) {
        let err = Settings::from_json(json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(named), "{err:?} should name {named:?}");
    }

    #[rstest]
    #[case(
        r#"{"annotationPrefix":"Not A Prefix"}"#,
        "annotationPrefix = \"Not A Prefix\""
    )]
    #[case(r#"{"annotationPrefix":"eks.amazonaws.com/"}"#, "annotationPrefix")]
    #[case(r#"{"tokenAudience":""}"#, "tokenAudience = \"\"")]
    #[case(r#"{"tokenAudience":" sts "}"#, "tokenAudience")]
    #[case(r#"{"tokenExpirationSeconds":599}"#, "tokenExpirationSeconds = 599")]
    #[case(
        r#"{"tokenExpirationSeconds":86401}"#,
        "tokenExpirationSeconds = 86401"
    )]
    #[case(r#"{"tokenExpirationSeconds":-1}"#, "tokenExpirationSeconds = -1")]
    #[case(
        r#"{"tokenMountPath":"relative/path"}"#,
        "tokenMountPath = \"relative/path\""
    )]
    #[case(r#"{"tokenMountPath":"/var/../etc"}"#, "tokenMountPath")]
    #[case(r#"{"tokenMountPath":"C:/token"}"#, "tokenMountPath")]
    #[case(r#"{"tokenMountPath":"/"}"#, "tokenMountPath")]
    #[case(
        r#"{"tokenVolumeName":"AWS_Token"}"#,
        "tokenVolumeName = \"AWS_Token\""
    )]
    #[case(r#"{"tokenVolumeName":""}"#, "tokenVolumeName")]
    #[case(r#"{"awsDefaultRegion":"useast1"}"#, "awsDefaultRegion = \"useast1\"")]
    #[case(r#"{"awsDefaultRegion":"US-EAST-1"}"#, "awsDefaultRegion")]
    #[case(
        r#"{"stsEndpointUrl":"http://sts.amazonaws.com"}"#,
        "stsEndpointUrl = \"http://sts.amazonaws.com\": must be an https:// URL with a host"
    )]
    fn validate_settings_rejects_each_bad_value_naming_it(#[case] json: &str, #[case] named: &str) {
        let settings = Settings::from_json(json.as_bytes()).unwrap();
        let err = settings.validate().unwrap_err();
        assert!(err.contains(named), "{err:?} should name {named:?}");
    }
}
