//! IAM role ARNs, parsed once at the edge.
//!
//! The official webhook checks the ARN with a regex, logs a warning and injects
//! it anyway, so a typo only surfaces later as an STS `AssumeRoleWithWebIdentity`
//! failure inside the application. We refuse the pod instead, at admission time,
//! with the reason and the expected form.

use crate::error::quoted;
use crate::settings::syntax::is_account_id;
use std::fmt;

/// Partitions that have IAM. `aws-iso-e`, `aws-iso-f` and `aws-eusc` are the
/// newer isolated and sovereign partitions the AWS SDKs know.
pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// What an IAM role ARN looks like, for error messages.
pub const EXPECTED_FORM: &str =
    "arn:<partition>:iam::<12-digit account ID>:role/<optional/path/><role name>";

/// IAM limits: role names are 1-64 characters of `[A-Za-z0-9+=,.@_-]`; a path
/// is at most 512 characters of printable ASCII.
const MAX_ROLE_NAME: usize = 64;
const MAX_PATH: usize = 512;

/// A syntactically valid IAM role ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    partition_len: usize,
}

impl RoleArn {
    /// Parses `value` (surrounding whitespace ignored, as YAML block scalars
    /// often leave a trailing newline). The error says what is wrong, for a person.
    pub fn parse(value: &str) -> Result<Self, String> {
        let arn = value.trim();
        let mut parts = arn.splitn(6, ':');
        let (
            Some(scheme),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err("it does not have the six colon-separated parts of an ARN".into());
        };
        if scheme != "arn" {
            return Err("it does not start with \"arn:\"".into());
        }
        if !PARTITIONS.contains(&partition) {
            return Err(format!(
                "partition {} is not one of {}",
                quoted(partition),
                PARTITIONS.join(", ")
            ));
        }
        if service != "iam" {
            return Err(format!("service is {}, not \"iam\"", quoted(service)));
        }
        if !region.is_empty() {
            return Err(format!("IAM ARNs have no region, found {}", quoted(region)));
        }
        if !is_account_id(account) {
            return Err(format!("account ID {} is not 12 digits", quoted(account)));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(format!(
                "resource {} is not \"role/<name>\"",
                quoted(resource)
            ));
        };
        let (path, name) = match path_and_name.rsplit_once('/') {
            Some((path, name)) => (path, name),
            None => ("", path_and_name),
        };
        if name.is_empty() || name.len() > MAX_ROLE_NAME {
            return Err(format!(
                "role name {} must be 1 to {MAX_ROLE_NAME} characters",
                quoted(name)
            ));
        }
        if let Some(bad) = name.chars().find(|c| !is_role_name_char(*c)) {
            return Err(format!(
                "role name {} contains {bad:?}; allowed are letters, digits and +=,.@_-",
                quoted(name)
            ));
        }
        if path.len() + 2 > MAX_PATH {
            return Err(format!("role path is longer than {MAX_PATH} characters"));
        }
        if !path.is_empty() && path.split('/').any(str::is_empty) {
            return Err(format!("role path {} has an empty segment", quoted(path)));
        }
        if let Some(bad) = path.chars().find(|c| !('!'..='~').contains(c)) {
            return Err(format!(
                "role path {} contains {bad:?}; allowed is printable ASCII",
                quoted(path)
            ));
        }
        Ok(Self {
            partition_len: partition.len(),
            arn: arn.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// `aws`, `aws-cn`, ...
    pub fn partition(&self) -> &str {
        &self.arn[4..4 + self.partition_len]
    }

    /// The 12-digit account ID.
    pub fn account(&self) -> &str {
        let start = 4 + self.partition_len + ":iam::".len();
        &self.arn[start..start + 12]
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

fn is_role_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("arn:aws:iam::123456789012:role/app", "aws", "123456789012")]
    #[case("arn:aws-cn:iam::123456789012:role/app", "aws-cn", "123456789012")]
    #[case(
        "arn:aws-us-gov:iam::000000000000:role/a/b/c/App_1+=,.@-",
        "aws-us-gov",
        "000000000000"
    )]
    #[case("arn:aws-iso-b:iam::123456789012:role/x", "aws-iso-b", "123456789012")]
    #[case("arn:aws-eusc:iam::123456789012:role/x", "aws-eusc", "123456789012")]
    #[case("  arn:aws:iam::123456789012:role/app\n", "aws", "123456789012")]
    fn accepts_valid_role_arns(
        #[case] value: &str,
        #[case] partition: &str,
        #[case] account: &str,
    ) {
        let arn = RoleArn::parse(value).unwrap();
        assert_eq!(arn.as_str(), value.trim());
        assert_eq!(arn.partition(), partition);
        assert_eq!(arn.account(), account);
    }

    #[rstest]
    #[case("", "six colon-separated parts")]
    #[case("my-role", "six colon-separated parts")]
    #[case("urn:aws:iam::123456789012:role/app", "does not start with \"arn:\"")]
    #[case("arn:aws-moon:iam::123456789012:role/app", "partition \"aws-moon\"")]
    #[case("arn:aws:s3::123456789012:role/app", "service is \"s3\"")]
    #[case(
        "arn:aws:iam:us-east-1:123456789012:role/app",
        "IAM ARNs have no region"
    )]
    #[case("arn:aws:iam::12345:role/app", "account ID \"12345\" is not 12 digits")]
    #[case("arn:aws:iam::12345678901x:role/app", "is not 12 digits")]
    #[case("arn:aws:iam::123456789012:user/app", "is not \"role/<name>\"")]
    #[case("arn:aws:iam::123456789012:role/", "must be 1 to 64 characters")]
    #[case("arn:aws:iam::123456789012:role/a/", "must be 1 to 64 characters")]
    #[case("arn:aws:iam::123456789012:role/has space", "contains ' '")]
    #[case("arn:aws:iam::123456789012:role/a//b", "empty segment")]
    #[case("arn:aws:iam::123456789012:role/pa th/b", "contains ' '")]
    fn rejects_invalid_role_arns_with_the_reason(#[case] value: &str, #[case] reason: &str) {
        let err = RoleArn::parse(value).unwrap_err();
        assert!(err.contains(reason), "{err:?} should contain {reason:?}");
    }

    #[test]
    fn rejects_role_names_longer_than_64_characters() {
        let long = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(65));
        assert!(RoleArn::parse(&long).is_err());
        let max = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(64));
        assert!(RoleArn::parse(&max).is_ok());
    }

    #[test]
    fn rejects_role_paths_longer_than_512_characters_with_their_slashes() {
        // IAM counts the path with its leading and trailing "/": "/<510>/" is 512.
        let max = format!("arn:aws:iam::123456789012:role/{}/app", "p".repeat(510));
        assert!(RoleArn::parse(&max).is_ok());
        let long = format!("arn:aws:iam::123456789012:role/{}/app", "p".repeat(511));
        assert!(RoleArn::parse(&long)
            .unwrap_err()
            .contains("role path is longer than 512 characters"));
    }
}
