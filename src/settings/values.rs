//! The values the policy passes around, checked once where they come in
//! (settings, annotations) and carried as their own types after that, so no
//! later code can hold an audience that is blank or a mount path with `..`.
//!
//! Each type says once what a good value looks like ([`Checked::EXPECTED`]):
//! a setting is refused with "must be `<that>`", an annotation with "is not `<that>`".

use crate::error::{shorten, PolicyError, MAX_QUOTED};
use crate::settings::syntax::{
    is_audience, is_dns_label, is_dns_subdomain, is_region, is_url_with_host, mount_path,
};

/// A string value with a shape to check.
pub trait Checked: Sized {
    /// What a valid value looks like, completing "must be ..." and "is not ...".
    const EXPECTED: &'static str;

    /// The value, if it has the shape; `None` otherwise.
    fn check(value: &str) -> Option<Self>;

    /// A setting, or the refusal naming it. `at` names the part of a
    /// structured setting (`audience`, `["ns/app"].audience`); empty for a plain one.
    fn setting(field: &'static str, at: &str, value: &str) -> Result<Self, PolicyError> {
        Self::check(value).ok_or_else(|| PolicyError::InvalidSetting {
            field,
            value: if at.is_empty() {
                format!("{value:?}")
            } else {
                format!("{at} {value:?}")
            },
            reason: format!("must be {}", Self::EXPECTED),
        })
    }

    /// An annotation, or the refusal naming the object that carries it.
    fn annotation(object: &str, key: &str, value: &str) -> Result<Self, PolicyError> {
        Self::check(value).ok_or_else(|| PolicyError::InvalidAnnotation {
            object: object.to_owned(),
            key: key.to_owned(),
            value: shorten(value.to_owned(), MAX_QUOTED),
            reason: format!("is not {}", Self::EXPECTED),
        })
    }
}

/// Declares a newtype over `String` checked by `$check`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $expected:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl Checked for $name {
            const EXPECTED: &'static str = $expected;

            fn check(value: &str) -> Option<Self> {
                let check: fn(&str) -> Option<&str> = $check;
                check(value).map(|v| Self(v.to_owned()))
            }
        }

        /// Read-only: the value is read as the string it is everywhere it goes.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        /// Lets tests and callers compare with a literal.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// The audience of the projected token: STS checks it against the client
    /// IDs registered on the IAM OIDC identity provider.
    Audience,
    "a non-empty audience without surrounding spaces, such as sts.amazonaws.com",
    |v| is_audience(v).then_some(v)
);

checked_string!(
    /// An AWS region, injected as `AWS_REGION` and `AWS_DEFAULT_REGION`.
    Region,
    "an AWS region such as us-east-1 or eu-central-1",
    |v| is_region(v).then_some(v)
);

checked_string!(
    /// The STS endpoint the SDKs call (`AWS_ENDPOINT_URL_STS`), such as an
    /// interface VPC endpoint's: STS takes only https.
    StsEndpoint,
    "an https:// URL with a host, such as https://sts.us-east-1.amazonaws.com",
    |v| is_url_with_host(v, &["https://"]).then_some(v)
);

checked_string!(
    /// Where a token volume is mounted; kept without a trailing `/`.
    MountPath,
    "an absolute path without ':' or '..', such as /var/run/secrets/eks.amazonaws.com/serviceaccount",
    mount_path
);

checked_string!(
    /// A pod volume name: Kubernetes requires a DNS label.
    VolumeName,
    "a DNS label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)",
    |v| is_dns_label(v).then_some(v)
);

checked_string!(
    /// The prefix of an annotation key (`eks.amazonaws.com`): a DNS subdomain.
    AnnotationPrefix,
    "a DNS subdomain (lowercase letters, digits, '-' and '.'), such as eks.amazonaws.com or irsa-policy.io",
    |v| is_dns_subdomain(v).then_some(v)
);

/// Which namespaces a [`ServiceAccountRef`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Namespace {
    Any,
    Named(String),
}

/// `namespace/name` of a ServiceAccount in the settings; `*/name` in the
/// settings that allow it stands for the name in every namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRef {
    namespace: Namespace,
    name: String,
}

impl ServiceAccountRef {
    pub const EXPECTED: &'static str = "\"<namespace>/<name>\"";
    pub const EXPECTED_ANY: &'static str =
        "\"<namespace>/<name>\", or \"*/<name>\" for every namespace";

    /// `any_namespace`: whether `*/<name>` is allowed.
    pub fn parse(value: &str, any_namespace: bool) -> Option<Self> {
        let (namespace, name) = value.split_once('/')?;
        let namespace = match namespace {
            "*" if any_namespace => Namespace::Any,
            ns if is_dns_label(ns) => Namespace::Named(ns.to_owned()),
            _ => return None,
        };
        is_dns_subdomain(name).then(|| Self {
            namespace,
            name: name.to_owned(),
        })
    }

    /// Names exactly this ServiceAccount (`*/name` does not).
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.name == name && self.namespace == Namespace::Named(namespace.to_owned())
    }

    /// `*/name` for this name.
    pub fn is_any_namespace(&self, name: &str) -> bool {
        self.name == name && self.namespace == Namespace::Any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn a_setting_says_what_it_must_be() {
        let err = Audience::setting("tokenAudience", "", " sts ").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting tokenAudience = \" sts \": must be a non-empty audience without \
             surrounding spaces, such as sts.amazonaws.com"
        );
        let err = VolumeName::setting("containerCredentials", "volumeName", "Token").unwrap_err();
        assert!(err.to_string().starts_with(
            "invalid setting containerCredentials = volumeName \"Token\": must be a DNS label"
        ));
    }

    #[test]
    fn an_annotation_says_what_it_is_not() {
        let err = Region::annotation(
            "ServiceAccount team-a/app",
            "irsa-policy.io/region",
            "mumbai",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ServiceAccount team-a/app: annotation irsa-policy.io/region=\"mumbai\" is not an AWS \
             region such as us-east-1 or eu-central-1"
        );
    }

    #[test]
    fn a_mount_path_is_kept_without_its_trailing_slash() {
        assert_eq!(MountPath::check("/var/run/aws/").unwrap(), "/var/run/aws");
        assert!(MountPath::check("/a/../b").is_none());
    }

    #[rstest]
    #[case("team-a/app", false, true)]
    #[case("*/app", true, true)]
    #[case("*/app", false, false)]
    #[case("team-a/", false, false)]
    #[case("app", false, false)]
    #[case("Team/app", false, false)]
    #[case("a/b/c", false, false)]
    fn service_account_refs_are_namespace_slash_name(
        #[case] value: &str,
        #[case] any: bool,
        #[case] ok: bool,
    ) {
        assert_eq!(ServiceAccountRef::parse(value, any).is_some(), ok);
    }

    #[test]
    fn a_ref_names_its_service_account_or_every_namespace() {
        let exact = ServiceAccountRef::parse("team-a/app", false).unwrap();
        assert!(exact.is("team-a", "app"));
        assert!(!exact.is("team-b", "app"));
        assert!(!exact.is_any_namespace("app"));
        let any = ServiceAccountRef::parse("*/app", true).unwrap();
        assert!(any.is_any_namespace("app"));
        assert!(!any.is("*", "app"));
        assert!(!any.is_any_namespace("other"));
    }
}
