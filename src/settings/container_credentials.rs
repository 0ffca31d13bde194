//! The `containerCredentials` setting: which ServiceAccounts' pods get EKS Pod
//! Identity's container credentials instead of a role, and where their token
//! goes (the official webhook's defaults).

use crate::error::PolicyError;
use crate::settings::syntax::is_url_with_host;
use crate::settings::values::{Audience, Checked, MountPath, ServiceAccountRef, VolumeName};
use serde::{Deserialize, Serialize};

/// `containerCredentials`, as written; defaults are the official webhook's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ContainerCredentialsSettings {
    /// `namespace/name` of the ServiceAccounts whose pods get container credentials.
    pub service_accounts: Vec<String>,
    pub full_uri: String,
    pub audience: String,
    pub mount_path: String,
    pub volume_name: String,
    pub token_path: String,
}

impl Default for ContainerCredentialsSettings {
    fn default() -> Self {
        Self {
            service_accounts: Vec::new(),
            full_uri: "http://169.254.170.23/v1/credentials".into(),
            audience: "pods.eks.amazonaws.com".into(),
            mount_path: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount".into(),
            volume_name: "eks-pod-identity-token".into(),
            token_path: "eks-pod-identity-token".into(),
        }
    }
}

/// The checked container credentials mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCredentials {
    service_accounts: Vec<ServiceAccountRef>,
    pub full_uri: String,
    pub audience: Audience,
    pub mount_path: MountPath,
    pub volume_name: VolumeName,
    /// The token's file name inside the volume (the setting's `tokenPath`).
    pub token_file_name: String,
}

impl ContainerCredentials {
    pub fn from_settings(s: &ContainerCredentialsSettings) -> Result<Self, PolicyError> {
        let invalid = |what: &str, value: &str, reason: &str| PolicyError::InvalidSetting {
            field: "containerCredentials",
            value: format!("{what} {value:?}"),
            reason: reason.into(),
        };
        let service_accounts = s
            .service_accounts
            .iter()
            .map(|sa| {
                ServiceAccountRef::parse(sa, false).ok_or_else(|| {
                    invalid(
                        "serviceAccounts",
                        sa,
                        &format!("entries are {}", ServiceAccountRef::EXPECTED),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        // The SDKs accept any http(s) URL here.
        if !is_url_with_host(&s.full_uri, &["http://", "https://"]) {
            return Err(invalid(
                "fullUri",
                &s.full_uri,
                "must be an http:// or https:// URL",
            ));
        }
        let audience = Audience::setting("containerCredentials", "audience", &s.audience)?;
        let mount_path = MountPath::setting("containerCredentials", "mountPath", &s.mount_path)?;
        let volume_name =
            VolumeName::setting("containerCredentials", "volumeName", &s.volume_name)?;
        if s.token_path.is_empty() || s.token_path.contains('/') || s.token_path.starts_with('.') {
            return Err(invalid(
                "tokenPath",
                &s.token_path,
                "must be a file name, without '/' and not starting with '.'",
            ));
        }
        Ok(Self {
            service_accounts,
            full_uri: s.full_uri.clone(),
            audience,
            mount_path,
            volume_name,
            token_file_name: s.token_path.clone(),
        })
    }

    /// Whether pods of this ServiceAccount get container credentials.
    pub fn covers(&self, namespace: &str, name: &str) -> bool {
        self.service_accounts
            .iter()
            .any(|sa| sa.is(namespace, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn defaults_are_the_official_webhooks() {
        let cc =
            ContainerCredentials::from_settings(&ContainerCredentialsSettings::default()).unwrap();
        assert_eq!(cc.full_uri, "http://169.254.170.23/v1/credentials");
        assert_eq!(cc.audience, "pods.eks.amazonaws.com");
        assert_eq!(
            cc.mount_path,
            "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
        );
        assert_eq!(cc.volume_name, "eks-pod-identity-token");
        assert_eq!(cc.token_file_name, "eks-pod-identity-token");
    }

    #[test]
    fn covers_listed_service_accounts_only() {
        let settings = ContainerCredentialsSettings {
            service_accounts: vec!["team-a/app".into()],
            ..Default::default()
        };
        let cc = ContainerCredentials::from_settings(&settings).unwrap();
        assert!(cc.covers("team-a", "app"));
        assert!(!cc.covers("team-b", "app"));
        assert!(!cc.covers("team-a", "other"));
    }

    #[rstest]
    #[case("http://a")]
    #[case("https://credentials.example.com/v1/credentials")]
    #[case("http://[fd00:ec2::23]/v1/credentials")]
    fn accepts_any_http_url_with_a_host(#[case] full_uri: &str) {
        let settings = ContainerCredentialsSettings {
            full_uri: full_uri.into(),
            ..Default::default()
        };
        let cc = ContainerCredentials::from_settings(&settings).unwrap();
        assert_eq!(cc.full_uri, full_uri);
    }

    #[rstest]
    #[case(ContainerCredentialsSettings { service_accounts: vec!["app".into()], ..Default::default() }, "serviceAccounts \"app\"")]
    #[case(ContainerCredentialsSettings { full_uri: "169.254.170.23".into(), ..Default::default() }, "fullUri")]
    #[case(ContainerCredentialsSettings { full_uri: "ftp://169.254.170.23/v1/credentials".into(), ..Default::default() }, "fullUri")]
    #[case(ContainerCredentialsSettings { full_uri: "https://".into(), ..Default::default() }, "fullUri")]
    #[case(ContainerCredentialsSettings { full_uri: "http:///v1/credentials".into(), ..Default::default() }, "fullUri")]
    #[case(ContainerCredentialsSettings { full_uri: "http://169.254.170.23/v1 credentials".into(), ..Default::default() }, "fullUri")]
    #[case(ContainerCredentialsSettings { audience: "".into(), ..Default::default() }, "audience")]
    #[case(ContainerCredentialsSettings { mount_path: "var/run".into(), ..Default::default() }, "mountPath")]
    #[case(ContainerCredentialsSettings { volume_name: "Token".into(), ..Default::default() }, "volumeName")]
    #[case(ContainerCredentialsSettings { token_path: "a/b".into(), ..Default::default() }, "tokenPath")]
    fn rejects_bad_container_credentials_settings_naming_them(
        #[case] settings: ContainerCredentialsSettings,
        #[case] named: &str,
    ) {
        let err = ContainerCredentials::from_settings(&settings)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("containerCredentials = {named}")),
            "{err:?} should name {named:?}"
        );
    }
}
