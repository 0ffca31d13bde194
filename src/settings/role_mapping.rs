//! Roles from the settings: the `serviceAccounts` map, the analogue of the
//! official webhook's `pod-identity-webhook` ConfigMap, and `composeRoleArn`,
//! its `--compose-role-arn`, which turns a bare role name into an ARN.

use crate::error::PolicyError;
use crate::settings::overrides::Overrides;
use crate::settings::role_arn::{RoleArn, EXPECTED_FORM, PARTITIONS};
use crate::settings::syntax::is_account_id;
use crate::settings::token_expiration::TokenExpiration;
use crate::settings::values::{Audience, Checked, ServiceAccountRef};
use serde::{Deserialize, Serialize};

/// One `serviceAccounts` entry, as written. A ServiceAccount's own annotation
/// wins over each of these fields, as in the official webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ServiceAccountMapping {
    pub role_arn: Option<String>,
    pub audience: Option<String>,
    pub sts_regional_endpoints: Option<bool>,
    pub token_expiration_seconds: Option<i64>,
}

/// `composeRoleArn`, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComposeRoleArn {
    pub account_id: String,
    #[serde(default = "default_partition")]
    pub partition: String,
}

fn default_partition() -> String {
    "aws".into()
}

/// The checked `serviceAccounts` map and `composeRoleArn`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMapping {
    // A list, not a map: a handful of entries, looked up once per pod.
    entries: Vec<(ServiceAccountRef, Overrides)>,
    compose: Option<ComposeRoleArn>,
}

impl RoleMapping {
    pub fn from_settings(
        entries: &[(String, ServiceAccountMapping)],
        compose: Option<&ComposeRoleArn>,
    ) -> Result<Self, PolicyError> {
        // An empty account ID is how a form says "off".
        let compose = compose.filter(|c| !c.account_id.is_empty());
        if let Some(compose) = compose {
            let account = &compose.account_id;
            if !is_account_id(account) {
                return Err(invalid(
                    "composeRoleArn",
                    format!("accountId {account:?}"),
                    "must be a 12-digit AWS account ID",
                ));
            }
            if !PARTITIONS.contains(&compose.partition.as_str()) {
                return Err(invalid(
                    "composeRoleArn",
                    format!("partition {:?}", compose.partition),
                    &format!("must be one of {}", PARTITIONS.join(", ")),
                ));
            }
        }
        let mut checked = Self {
            entries: Vec::with_capacity(entries.len()),
            compose: compose.cloned(),
        };
        for (index, (key, entry)) in entries.iter().enumerate() {
            let at = |field: &str| format!("[{key:?}].{field}");
            if entries[..index].iter().any(|(earlier, _)| earlier == key) {
                return Err(invalid(
                    "serviceAccounts",
                    format!("{key:?}"),
                    "appears twice",
                ));
            }
            let Some(reference) = ServiceAccountRef::parse(key, true) else {
                return Err(invalid(
                    "serviceAccounts",
                    format!("{key:?}"),
                    &format!("keys are {}", ServiceAccountRef::EXPECTED_ANY),
                ));
            };
            let role_arn = entry
                .role_arn
                .as_deref()
                .map(|value| checked.role(value))
                .transpose()
                .map_err(|reason| invalid("serviceAccounts", at("roleArn"), &reason))?;
            let audience = entry
                .audience
                .as_deref()
                .map(|audience| Audience::setting("serviceAccounts", &at("audience"), audience))
                .transpose()?;
            let token_expiration = entry
                .token_expiration_seconds
                .map(TokenExpiration::within_bounds)
                .transpose()
                .map_err(|reason| {
                    invalid("serviceAccounts", at("tokenExpirationSeconds"), &reason)
                })?;
            checked.entries.push((
                reference,
                Overrides {
                    role_arn,
                    audience,
                    sts_regional_endpoints: entry.sts_regional_endpoints,
                    token_expiration: token_expiration.map(Into::into),
                    region: None,
                    sts_endpoint: None,
                },
            ));
        }
        Ok(checked)
    }

    /// The entry for a ServiceAccount: `namespace/name` first, then `*/name`.
    pub fn lookup(&self, namespace: &str, name: &str) -> Option<&Overrides> {
        let find = |names: &dyn Fn(&ServiceAccountRef) -> bool| {
            self.entries
                .iter()
                .find_map(|(reference, entry)| names(reference).then_some(entry))
        };
        find(&|r| r.is(namespace, name)).or_else(|| find(&|r| r.is_any_namespace(name)))
    }

    /// A role from an annotation or a setting: an ARN, or with `composeRoleArn`
    /// a role name (with an optional path) made into one.
    pub fn role(&self, value: &str) -> Result<RoleArn, String> {
        let value = value.trim();
        match &self.compose {
            Some(compose) if !value.starts_with("arn:") => RoleArn::parse(&format!(
                "arn:{}:iam::{}:role/{}",
                compose.partition,
                compose.account_id,
                value.trim_start_matches('/')
            ))
            .map_err(|reason| format!("is not a role name: {reason}")),
            _ => RoleArn::parse(value).map_err(|reason| {
                let hint = if self.compose.is_none() && !value.starts_with("arn:") {
                    " (bare role names need the composeRoleArn setting)"
                } else {
                    ""
                };
                format!("is not an IAM role ARN: {reason}; expected {EXPECTED_FORM}{hint}")
            }),
        }
    }
}

/// `serviceAccounts` as written (a JSON object) into a list of entries: the
/// module already has the code for lists, and a map type would add its own.
pub mod entries {
    use super::ServiceAccountMapping;
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    type Entries = Vec<(String, ServiceAccountMapping)>;

    pub fn serialize<S: Serializer>(entries: &Entries, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(entries.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Entries, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of \"<namespace>/<name>\" to {roleArn, audience, ...}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(entries)
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

fn invalid(field: &'static str, value: String, reason: &str) -> PolicyError {
    PolicyError::InvalidSetting {
        field,
        value,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn mapping(
        pairs: &[(&str, ServiceAccountMapping)],
        compose: Option<ComposeRoleArn>,
    ) -> Result<RoleMapping, PolicyError> {
        let entries: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        RoleMapping::from_settings(&entries, compose.as_ref())
    }

    fn with_role(role: &str) -> ServiceAccountMapping {
        ServiceAccountMapping {
            role_arn: Some(role.into()),
            ..Default::default()
        }
    }

    const ROLE: &str = "arn:aws:iam::111122223333:role/app";

    #[test]
    fn exact_namespace_wins_over_any_namespace() {
        let m = mapping(
            &[
                ("team-a/app", with_role(ROLE)),
                ("*/app", with_role("arn:aws:iam::111122223333:role/any")),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            m.lookup("team-a", "app")
                .unwrap()
                .role_arn
                .as_ref()
                .unwrap()
                .as_str(),
            ROLE
        );
        assert_eq!(
            m.lookup("team-b", "app")
                .unwrap()
                .role_arn
                .as_ref()
                .unwrap()
                .as_str(),
            "arn:aws:iam::111122223333:role/any"
        );
        assert!(m.lookup("team-b", "other").is_none());
    }

    #[rstest]
    #[case("app", "arn:aws:iam::111122223333:role/app")]
    #[case("team/app", "arn:aws:iam::111122223333:role/team/app")]
    #[case("/team/app", "arn:aws:iam::111122223333:role/team/app")]
    #[case(
        "arn:aws:iam::444455556666:role/other",
        "arn:aws:iam::444455556666:role/other"
    )]
    fn composes_role_names_into_arns(#[case] value: &str, #[case] arn: &str) {
        let compose = ComposeRoleArn {
            account_id: "111122223333".into(),
            partition: "aws".into(),
        };
        let m = mapping(&[], Some(compose)).unwrap();
        assert_eq!(m.role(value).unwrap().as_str(), arn);
    }

    #[test]
    fn composes_in_the_configured_partition() {
        let compose = ComposeRoleArn {
            account_id: "111122223333".into(),
            partition: "aws-cn".into(),
        };
        let m = mapping(&[], Some(compose)).unwrap();
        assert_eq!(
            m.role("app").unwrap().as_str(),
            "arn:aws-cn:iam::111122223333:role/app"
        );
    }

    #[test]
    fn an_empty_account_id_turns_composition_off() {
        let compose = ComposeRoleArn {
            account_id: String::new(),
            partition: "aws".into(),
        };
        assert!(mapping(&[], Some(compose)).unwrap().role("app").is_err());
    }

    #[test]
    fn a_bare_name_without_composition_says_what_is_missing() {
        let err = RoleMapping::default().role("app").unwrap_err();
        assert!(
            err.ends_with("(bare role names need the composeRoleArn setting)"),
            "{err}"
        );
    }

    #[rstest]
    #[case(&[("app", with_role(ROLE))], None, "serviceAccounts = \"app\"")]
    #[case(&[("Team/app", with_role(ROLE))], None, "serviceAccounts = \"Team/app\"")]
    #[case(&[("ns/", with_role(ROLE))], None, "serviceAccounts")]
    #[case(&[("ns/app", with_role("arn:aws:iam::1:role/x"))], None, "serviceAccounts = [\"ns/app\"].roleArn")]
    #[case(&[("ns/app", ServiceAccountMapping { audience: Some(String::new()), ..Default::default() })], None, "[\"ns/app\"].audience")]
    #[case(&[("ns/app", ServiceAccountMapping { token_expiration_seconds: Some(60), ..Default::default() })], None, "[\"ns/app\"].tokenExpirationSeconds")]
    #[case(&[("ns/app", with_role(ROLE)), ("ns/app", with_role(ROLE))], None, "serviceAccounts = \"ns/app\": appears twice")]
    #[case(&[], Some(ComposeRoleArn { account_id: "1".into(), partition: "aws".into() }), "composeRoleArn = accountId \"1\"")]
    #[case(&[], Some(ComposeRoleArn { account_id: "111122223333".into(), partition: "moon".into() }), "composeRoleArn = partition \"moon\"")]
    fn rejects_bad_mapping_settings_naming_them(
        #[case] pairs: &[(&str, ServiceAccountMapping)],
        #[case] compose: Option<ComposeRoleArn>,
        #[case] named: &str,
    ) {
        let err = mapping(pairs, compose).unwrap_err().to_string();
        assert!(err.contains(named), "{err:?} should name {named:?}");
    }
}
