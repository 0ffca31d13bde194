//! The shapes of values Kubernetes and AWS accept, checked in one place:
//! settings, annotations and the guardrails all ask the same questions.

/// RFC 1123 label, as Kubernetes requires of volume names.
pub fn is_dns_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// RFC 1123 subdomain, as Kubernetes requires of annotation key prefixes.
pub fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// A 12-digit AWS account ID.
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// A token audience: not empty, no surrounding spaces.
pub fn is_audience(value: &str) -> bool {
    !value.trim().is_empty() && value.trim() == value
}

/// A volume mount path the policy may use: absolute, without `:` (Windows
/// drives are the kubelet's business) or `..`; returned without trailing `/`.
pub fn mount_path(value: &str) -> Option<&str> {
    let path = value.trim_end_matches('/');
    let ok =
        path.starts_with('/') && !path.contains(':') && !path.split('/').any(|part| part == "..");
    ok.then_some(path)
}

/// A URL with one of `schemes` and a host: what the AWS SDKs need for an
/// endpoint. A bare address (no scheme) or a URL without a host is not one.
pub fn is_url_with_host(value: &str, schemes: &[&str]) -> bool {
    schemes
        .iter()
        .find_map(|scheme| value.strip_prefix(scheme))
        .is_some_and(|rest| rest.chars().next().is_some_and(|c| !":/?#".contains(c)))
        && !value.contains(char::is_whitespace)
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eusc-de-east-1`, `us-isob-east-1`.
pub fn is_region(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let lowercase = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    parts.len() >= 3
        && (2..=4).contains(&parts[0].len())
        && parts[..parts.len() - 1].iter().all(lowercase)
        && (1..=2).contains(&parts[parts.len() - 1].len())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("us-east-1")]
    #[case("us-gov-west-1")]
    #[case("cn-north-1")]
    #[case("ap-southeast-5")]
    #[case("us-isob-east-1")]
    #[case("eusc-de-east-1")]
    fn accepts_real_region_names(#[case] region: &str) {
        assert!(is_region(region));
    }

    #[rstest]
    #[case("/var/run/aws/", Some("/var/run/aws"))]
    #[case("/", None)]
    #[case("relative", None)]
    #[case("/a/../b", None)]
    #[case("C:/token", None)]
    fn mount_paths_are_absolute_and_plain(#[case] value: &str, #[case] path: Option<&str>) {
        assert_eq!(mount_path(value), path);
    }

    #[rstest]
    #[case("https://sts.us-east-1.amazonaws.com", true)]
    #[case("https://[fd00:ec2::23]/v1", true)]
    #[case("https://", false)]
    #[case("https:///path", false)]
    #[case("https://:443", false)]
    #[case("https://?x", false)]
    #[case("https://#x", false)]
    #[case("https://sts .amazonaws.com", false)]
    #[case("http://sts.amazonaws.com", false)]
    fn a_url_needs_the_scheme_and_a_host(#[case] value: &str, #[case] ok: bool) {
        assert_eq!(is_url_with_host(value, &["https://"]), ok);
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333"));
        assert!(!is_account_id("11112222333x"));
    }
}
