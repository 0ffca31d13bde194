//! The annotations the policy reads, their keys in one place, derived from the
//! `annotationPrefix` setting (the official webhook's `--annotation-prefix`)
//! and, for this project's own, from `extensionAnnotationPrefix`.

/// Full annotation keys for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationKeys {
    /// ServiceAccount: the IAM role to assume; its presence is what triggers injection.
    pub role_arn: String,
    /// ServiceAccount: the token audience, overriding the `tokenAudience` setting.
    pub audience: String,
    /// ServiceAccount: `true`/`false`, overriding the `stsRegionalEndpoints` setting.
    pub sts_regional_endpoints: String,
    /// Pod or ServiceAccount: token lifetime in seconds (pod wins).
    pub token_expiration: String,
    /// Pod: comma-separated container names to leave alone.
    pub skip_containers: String,
}

impl AnnotationKeys {
    pub fn new(prefix: &str) -> Self {
        let key = |name: &str| format!("{prefix}/{name}");
        Self {
            role_arn: key("role-arn"),
            audience: key("audience"),
            sts_regional_endpoints: key("sts-regional-endpoints"),
            token_expiration: key("token-expiration"),
            skip_containers: key("skip-containers"),
        }
    }
}

/// Annotations of this project's own, for what the official webhook has no
/// annotation for; under the `extensionAnnotationPrefix` setting, so they never
/// squat on `eks.amazonaws.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionKeys {
    /// Pod: comma-separated container names; only these are injected
    /// (the official tracker's #147).
    pub inject_containers: String,
    /// ServiceAccount: the region for its pods, overriding `awsDefaultRegion`
    /// (the official tracker's #149 and #238).
    pub region: String,
    /// ServiceAccount: the STS endpoint for its pods (`AWS_ENDPOINT_URL_STS`),
    /// overriding `stsEndpointUrl` (the official tracker's #52: VPC endpoints).
    pub sts_endpoint: String,
}

impl ExtensionKeys {
    pub fn new(prefix: &str) -> Self {
        Self {
            inject_containers: format!("{prefix}/inject-containers"),
            region: format!("{prefix}/region"),
            sts_endpoint: format!("{prefix}/sts-endpoint"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_keys_follow_their_own_prefix() {
        let keys = ExtensionKeys::new("irsa-policy.io");
        assert_eq!(keys.inject_containers, "irsa-policy.io/inject-containers");
        assert_eq!(keys.region, "irsa-policy.io/region");
    }

    #[test]
    fn keys_follow_the_prefix() {
        let keys = AnnotationKeys::new("irsa.example.com");
        assert_eq!(keys.role_arn, "irsa.example.com/role-arn");
        assert_eq!(keys.audience, "irsa.example.com/audience");
        assert_eq!(
            keys.sts_regional_endpoints,
            "irsa.example.com/sts-regional-endpoints"
        );
        assert_eq!(keys.token_expiration, "irsa.example.com/token-expiration");
        assert_eq!(keys.skip_containers, "irsa.example.com/skip-containers");
    }
}
