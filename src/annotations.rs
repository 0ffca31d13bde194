//! The annotation keys the policy reads, in one place, derived from the
//! `annotationPrefix` setting (the official webhook's `--annotation-prefix`).

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
}

impl ExtensionKeys {
    pub fn new(prefix: &str) -> Self {
        Self {
            inject_containers: format!("{prefix}/inject-containers"),
            region: format!("{prefix}/region"),
        }
    }
}

/// `true`/`false`/`1`/`0`, any case: what people write for the official
/// webhook's `sts-regional-endpoints`, which Go's `strconv.ParseBool` reads.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("is not a boolean; use \"true\" or \"false\"".into()),
    }
}

/// Comma-separated container names. Unlike the official webhook, names are
/// trimmed, so `"a, b"` skips `b` too.
pub fn parse_name_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

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

    #[rstest]
    #[case("true", true)]
    #[case("TRUE", true)]
    #[case("True", true)]
    #[case("1", true)]
    #[case("false", false)]
    #[case("False", false)]
    #[case("0", false)]
    #[case(" true ", true)]
    fn reads_booleans_case_insensitively(#[case] value: &str, #[case] expected: bool) {
        assert_eq!(parse_bool(value), Ok(expected));
    }

    #[rstest]
    #[case("yes")]
    #[case("")]
    #[case("2")]
    fn rejects_other_booleans(#[case] value: &str) {
        assert!(parse_bool(value).is_err());
    }

    #[test]
    fn trims_container_names() {
        assert_eq!(parse_name_list(" a, b ,,c "), vec!["a", "b", "c"]);
        assert!(parse_name_list("").is_empty());
    }
}
