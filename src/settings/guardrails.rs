//! Which roles a namespace may assume, decided by the platform team at
//! admission time.
//!
//! None of the existing webhooks has this: whoever may annotate a
//! ServiceAccount picks any role, and only the role's trust policy stands in
//! the way. With `allowedRoleArns`, `allowedAccounts` and `allowedPartitions`
//! a cluster can say "team-a's pods may only use team-a's roles", and a pod
//! that asks for another is refused with the rule to change.

use crate::error::PolicyError;
use crate::settings::role_arn::{RoleArn, PARTITIONS};
use crate::settings::syntax::is_account_id;
use serde::{Deserialize, Serialize};

/// One `allowedRoleArns` entry: pods in these namespaces may assume these roles.
/// Both lists take globs (`*` any run of characters, `?` one character).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleRule {
    pub namespaces: Vec<String>,
    pub role_arns: Vec<String>,
}

/// The checked guardrail settings. Empty lists allow everything.
#[derive(Debug, Clone, Default)]
pub struct Guardrails {
    rules: Vec<(Vec<String>, Vec<String>)>,
    accounts: Vec<String>,
    partitions: Vec<String>,
}

impl Guardrails {
    pub fn from_settings(
        rules: &[RoleRule],
        accounts: &[String],
        partitions: &[String],
    ) -> Result<Self, PolicyError> {
        let invalid = |field, value: String, reason: &str| PolicyError::InvalidSetting {
            field,
            value,
            reason: reason.into(),
        };
        for (i, rule) in rules.iter().enumerate() {
            let blank =
                |globs: &[String]| globs.is_empty() || globs.iter().any(|g| g.trim().is_empty());
            if blank(&rule.namespaces) || blank(&rule.role_arns) {
                return Err(invalid(
                    "allowedRoleArns",
                    format!(
                        "[{i}] namespaces {:?} roleArns {:?}",
                        rule.namespaces, rule.role_arns
                    ),
                    "each rule needs at least one namespace glob and one roleArns glob, none empty",
                ));
            }
        }
        if let Some(bad) = accounts.iter().find(|a| !is_account_id(a)) {
            return Err(invalid(
                "allowedAccounts",
                format!("{bad:?}"),
                "must be 12-digit AWS account IDs",
            ));
        }
        if let Some(bad) = partitions
            .iter()
            .find(|p| !PARTITIONS.contains(&p.as_str()))
        {
            return Err(invalid(
                "allowedPartitions",
                format!("{bad:?}"),
                &format!("must be partitions with IAM: {}", PARTITIONS.join(", ")),
            ));
        }
        let globs = |list: &[String]| list.iter().map(|g| g.trim().to_owned()).collect();
        Ok(Self {
            rules: rules
                .iter()
                .map(|r| (globs(&r.namespaces), globs(&r.role_arns)))
                .collect(),
            accounts: accounts.to_vec(),
            partitions: partitions.to_vec(),
        })
    }

    /// `Ok` when pods of `service_account` in `namespace` may assume `role`.
    pub fn check(
        &self,
        namespace: &str,
        service_account: &str,
        role: &RoleArn,
    ) -> Result<(), PolicyError> {
        let refuse = |setting: &'static str, reason: String| PolicyError::RoleNotAllowed {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            role: role.to_string(),
            setting,
            reason,
        };
        if !self.partitions.is_empty() && !self.partitions.iter().any(|p| p == role.partition()) {
            return Err(refuse(
                "allowedPartitions",
                format!(
                    "partition {} is not one of {}",
                    role.partition(),
                    self.partitions.join(", ")
                ),
            ));
        }
        if !self.accounts.is_empty() && !self.accounts.iter().any(|a| a == role.account()) {
            return Err(refuse(
                "allowedAccounts",
                format!(
                    "account {} is not one of {}",
                    role.account(),
                    self.accounts.join(", ")
                ),
            ));
        }
        let allowed = |(namespaces, roles): &(Vec<String>, Vec<String>)| {
            namespaces.iter().any(|n| glob_matches(n, namespace))
                && roles.iter().any(|r| glob_matches(r, role.as_str()))
        };
        if !self.rules.is_empty() && !self.rules.iter().any(allowed) {
            return Err(refuse(
                "allowedRoleArns",
                format!("no rule allows namespace {namespace} to assume this role"),
            ));
        }
        Ok(())
    }
}

/// `*` matches any run of characters (`/` and `:` included, as in IAM's
/// `StringLike`), `?` exactly one; everything else matches itself, case and all.
///
/// Hand-written rather than the `wildmatch` crate, which compares through
/// Unicode lowercasing and so brings case tables into the module.
/// The classic linear backtracking: on a mismatch, let the last `*` eat one
/// more character.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn role(arn: &str) -> RoleArn {
        RoleArn::parse(arn).unwrap()
    }

    fn rule(namespaces: &[&str], roles: &[&str]) -> RoleRule {
        RoleRule {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            role_arns: roles.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[rstest]
    #[case("*", "", true)]
    #[case("*", "anything/at:all", true)]
    #[case("team-a", "team-a", true)]
    #[case("team-a", "team-ab", false)]
    #[case("team-?", "team-a", true)]
    #[case("team-?", "team-", false)]
    #[case("team-*", "team-", true)]
    #[case("*-prod", "payments-prod", true)]
    #[case("*-prod", "payments-production", false)]
    #[case("a*b*c", "aXXbYYc", true)]
    #[case("a*b*c", "aXXcYYb", false)]
    #[case(
        "arn:aws:iam::*:role/team-a/*",
        "arn:aws:iam::111122223333:role/team-a/x/y",
        true
    )]
    #[case("Team", "team", false)]
    #[case("**", "x", true)]
    #[case("", "", true)]
    #[case("", "x", false)]
    fn globs_match_like_iam(#[case] pattern: &str, #[case] text: &str, #[case] matches: bool) {
        assert_eq!(glob_matches(pattern, text), matches, "{pattern} ~ {text}");
    }

    #[test]
    fn no_guardrails_allow_every_role() {
        let open = Guardrails::default();
        assert!(open
            .check("any", "sa", &role("arn:aws-cn:iam::999999999999:role/x"))
            .is_ok());
    }

    #[rstest]
    #[case("team-a", "arn:aws:iam::111122223333:role/team-a/reader", true)]
    #[case("team-a", "arn:aws:iam::111122223333:role/team-b/reader", false)]
    #[case("team-b", "arn:aws:iam::111122223333:role/team-a/reader", false)]
    #[case("platform-x", "arn:aws:iam::444455556666:role/anything", true)]
    #[case("platformx", "arn:aws:iam::444455556666:role/anything", false)]
    fn role_rules_match_namespace_and_role_globs(
        #[case] namespace: &str,
        #[case] arn: &str,
        #[case] allowed: bool,
    ) {
        let guardrails = Guardrails::from_settings(
            &[
                rule(&["team-a"], &["arn:aws:iam::111122223333:role/team-a/*"]),
                rule(
                    &["platform-?", "platform-??"],
                    &["arn:aws:iam::444455556666:role/*"],
                ),
            ],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            guardrails.check(namespace, "app", &role(arn)).is_ok(),
            allowed
        );
    }

    #[test]
    fn a_refused_role_names_namespace_service_account_role_and_setting() {
        let guardrails = Guardrails::from_settings(
            &[rule(
                &["team-a"],
                &["arn:aws:iam::111122223333:role/team-a-*"],
            )],
            &[],
            &[],
        )
        .unwrap();
        let err = guardrails
            .check(
                "team-b",
                "app",
                &role("arn:aws:iam::111122223333:role/team-a-admin"),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ServiceAccount team-b/app may not assume role arn:aws:iam::111122223333:role/team-a-admin: \
             no rule allows namespace team-b to assume this role; the policy setting allowedRoleArns \
             decides which roles each namespace may assume: use a role it allows, or ask the platform \
             team to change the setting"
        );
        assert_eq!(err.code(), 403);
    }

    #[test]
    fn accounts_and_partitions_limit_roles() {
        let guardrails = Guardrails::from_settings(
            &[],
            &strings(&["111122223333"]),
            &strings(&["aws", "aws-us-gov"]),
        )
        .unwrap();
        assert!(guardrails
            .check("ns", "sa", &role("arn:aws:iam::111122223333:role/x"))
            .is_ok());
        let other_account = guardrails
            .check("ns", "sa", &role("arn:aws:iam::999999999999:role/x"))
            .unwrap_err()
            .to_string();
        assert!(
            other_account.contains("account 999999999999 is not one of 111122223333"),
            "{other_account}"
        );
        assert!(other_account.contains("allowedAccounts"), "{other_account}");
        let other_partition = guardrails
            .check("ns", "sa", &role("arn:aws-cn:iam::111122223333:role/x"))
            .unwrap_err()
            .to_string();
        assert!(
            other_partition.contains("partition aws-cn is not one of aws, aws-us-gov"),
            "{other_partition}"
        );
    }

    #[rstest]
    #[case(vec![rule(&[], &["*"])], vec![], vec![], "allowedRoleArns")]
    #[case(vec![rule(&["ns"], &[])], vec![], vec![], "allowedRoleArns")]
    #[case(vec![rule(&["ns"], &[" "])], vec![], vec![], "allowedRoleArns")]
    #[case(vec![], strings(&["12345"]), vec![], "allowedAccounts = \"12345\"")]
    #[case(vec![], vec![], strings(&["aws-moon"]), "allowedPartitions = \"aws-moon\"")]
    fn rejects_bad_guardrail_settings_naming_them(
        #[case] rules: Vec<RoleRule>,
        #[case] accounts: Vec<String>,
        #[case] partitions: Vec<String>,
        #[case] named: &str,
    ) {
        let err = Guardrails::from_settings(&rules, &accounts, &partitions)
            .unwrap_err()
            .to_string();
        assert!(err.contains(named), "{err:?} should name {named:?}");
    }
}
