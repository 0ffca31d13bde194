//! What a pod's or a ServiceAccount's annotations say, parsed once into
//! [`Overrides`] with the error a person can act on (the keys are the
//! settings': `settings::annotation_keys`).

use crate::error::{shorten, PolicyError, MAX_QUOTED};
use crate::input::pod::PodFacts;
use crate::lookup::ServiceAccount;
use crate::settings::annotation_keys::{AnnotationKeys, ExtensionKeys};
use crate::settings::overrides::{Expiration, Overrides};
use crate::settings::role_arn::RoleArn;
use crate::settings::role_mapping::RoleMapping;
use crate::settings::token_expiration::TokenExpiration;
use crate::settings::values::{Audience, Checked, Region, StsEndpoint};

/// Exactly what Go's `strconv.ParseBool` reads, as the official webhook reads
/// `sts-regional-endpoints`: no other case, no surrounding spaces. What it
/// cannot read it ignores; we refuse it, naming it.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(
            "is not a boolean; use \"true\" or \"false\" (or, as Go's strconv.ParseBool \
                  reads them, 1, t, T, TRUE, True, 0, f, F, FALSE, False)"
                .into(),
        ),
    }
}

/// An empty annotation (or one of spaces) is how a chart or a form says
/// "unset"; the official webhook reads an empty `token-expiration` as unset
/// too, since Go's parser refuses it and the value is then ignored.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
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

/// The role a ServiceAccount's annotation names, if it names one; `roles`
/// makes a bare role name an ARN (`composeRoleArn`). Read first, on its own:
/// the guardrails judge the role before anything else is read.
pub fn service_account_role(
    account: &ServiceAccount,
    object: &str,
    keys: &AnnotationKeys,
    roles: &RoleMapping,
) -> Result<Option<RoleArn>, PolicyError> {
    given(account.annotation(&keys.role_arn))
        .map(|value| {
            roles
                .role(value)
                .map_err(|reason| PolicyError::InvalidAnnotation {
                    object: object.to_owned(),
                    key: keys.role_arn.clone(),
                    value: shorten(value.to_owned(), MAX_QUOTED),
                    reason,
                })
        })
        .transpose()
}

/// What a ServiceAccount's other annotations say; `object` names it in
/// messages. The role is [`service_account_role`]'s. `web_identity`: the STS
/// endpoint is read only for pods that call STS (container credentials never do).
pub fn service_account_overrides(
    account: &ServiceAccount,
    object: &str,
    keys: &AnnotationKeys,
    extension: &ExtensionKeys,
    web_identity: bool,
) -> Result<Overrides, PolicyError> {
    let refused = |key: &str, value: &str, reason: String| PolicyError::InvalidAnnotation {
        object: object.to_owned(),
        key: key.to_owned(),
        value: shorten(value.to_owned(), MAX_QUOTED),
        reason,
    };
    let set = |key: &str| given(account.annotation(key));
    let sts_regional_endpoints = account
        .annotation(&keys.sts_regional_endpoints)
        .map(|value| {
            parse_bool(value).map_err(|reason| refused(&keys.sts_regional_endpoints, value, reason))
        })
        .transpose()?;
    let token_expiration = set(&keys.token_expiration)
        .map(|value| {
            annotated_expiration(value)
                .map_err(|reason| refused(&keys.token_expiration, value, reason))
        })
        .transpose()?;
    Ok(Overrides {
        role_arn: None,
        audience: set(&keys.audience)
            .map(|value| Audience::annotation(object, &keys.audience, value.trim()))
            .transpose()?,
        sts_regional_endpoints,
        token_expiration,
        region: set(&extension.region)
            .map(|value| Region::annotation(object, &extension.region, value.trim()))
            .transpose()?,
        sts_endpoint: set(&extension.sts_endpoint)
            .filter(|_| web_identity)
            .map(|value| StsEndpoint::annotation(object, &extension.sts_endpoint, value.trim()))
            .transpose()?,
    })
}

/// What a pod's own annotations say: only its token lifetime.
pub fn pod_overrides(pod: &PodFacts, keys: &AnnotationKeys) -> Result<Overrides, PolicyError> {
    let token_expiration = given(pod.annotation(&keys.token_expiration)?)
        .map(|value| {
            annotated_expiration(value).map_err(|reason| PolicyError::InvalidAnnotation {
                object: format!("pod {}", pod.display),
                key: keys.token_expiration.clone(),
                value: shorten(value.to_owned(), MAX_QUOTED),
                reason,
            })
        })
        .transpose()?;
    Ok(Overrides {
        token_expiration,
        ..Overrides::default()
    })
}

/// A token lifetime from an annotation, with a warning when it was moved into range.
fn annotated_expiration(value: &str) -> Result<Expiration, String> {
    let (expiration, clamped) = TokenExpiration::from_annotation(value)
        .map_err(|reason| format!("{reason}; use a number of seconds between 600 and 86400"))?;
    Ok(Expiration {
        value: expiration,
        warning: clamped.then(|| {
            format!(
                "token expiration {} seconds is outside 600..86400; using {}",
                value,
                expiration.seconds()
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("1", true)]
    #[case("t", true)]
    #[case("T", true)]
    #[case("TRUE", true)]
    #[case("true", true)]
    #[case("True", true)]
    #[case("0", false)]
    #[case("f", false)]
    #[case("F", false)]
    #[case("FALSE", false)]
    #[case("false", false)]
    #[case("False", false)]
    fn reads_booleans_as_go_parse_bool(#[case] value: &str, #[case] expected: bool) {
        assert_eq!(parse_bool(value), Ok(expected));
    }

    // Go's strconv.ParseBool refuses each of these (mixed case, spaces), so
    // the official webhook ignores them; the policy refuses them by name.
    #[rstest]
    #[case("yes")]
    #[case("")]
    #[case("2")]
    #[case("tRuE")]
    #[case("fALSE")]
    #[case(" true ")]
    #[case("true ")]
    #[case("on")]
    fn rejects_what_go_parse_bool_refuses(#[case] value: &str) {
        assert!(parse_bool(value).is_err());
    }

    #[test]
    fn blank_means_not_given() {
        assert_eq!(given(Some("")), None);
        assert_eq!(given(Some("  ")), None);
        assert_eq!(given(Some("3600")), Some("3600"));
        assert_eq!(given(None), None);
    }

    #[test]
    fn trims_container_names() {
        assert_eq!(parse_name_list(" a, b ,,c "), vec!["a", "b", "c"]);
        assert!(parse_name_list("").is_empty());
    }
}
