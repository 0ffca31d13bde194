//! Every environment variable the policy puts in a container: its name, the
//! group it is set with, and where its value comes from, in the order the
//! official webhook (`amazon-eks-pod-identity-webhook`) writes them; the STS
//! endpoint (its #52) and the session name (its #112), which it does not set,
//! come last.
//!
//! A group is set whole or not at all: a container that already has any
//! variable of a group keeps its own and gets none of the group, because half
//! of a pair from the user and half from the policy would mix two
//! configurations (one region for the SDK's client, another for its STS
//! calls; a role from one place and a token file from another).
//!
//! A new variable is one entry in [`GROUPS`]; `edit::env` applies the table as
//! it stands. Only a value the injection does not carry yet needs a new
//! [`Source`], which `edit::env` then reads from the injection.

pub const AWS_STS_REGIONAL_ENDPOINTS: &str = "AWS_STS_REGIONAL_ENDPOINTS";
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
pub const AWS_REGION: &str = "AWS_REGION";
pub const AWS_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const AWS_WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const AWS_CONTAINER_CREDENTIALS_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
pub const AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
pub const AWS_ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
pub const AWS_ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";

/// Where a variable's value comes from. A pod gets a group only when the
/// injection has a value for every variable in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `regional`, when regional STS endpoints are on.
    RegionalSts,
    /// The pod's region, when it has one.
    Region,
    /// The role, for web identity credentials.
    RoleArn,
    /// The endpoint, for EKS Pod Identity's container credentials.
    FullUri,
    /// The token file the SDKs read.
    TokenFile,
    /// The STS endpoint (a VPC endpoint's), when one is set.
    StsEndpoint,
    /// The pod's real name through the downward API, when session names are on.
    PodName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub source: Source,
}

/// Variables set together or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// What the group sets, for the decision log.
    pub name: &'static str,
    pub variables: &'static [Variable],
    /// With `skipRegionWithEnvFrom`, a container with `envFrom` gets none of
    /// the group: the region probably comes from the ConfigMap or Secret.
    pub left_to_env_from: bool,
}

impl Group {
    /// Whether the group gives the SDKs their credentials: it points them at the token.
    pub fn is_credentials(&self) -> bool {
        self.variables.iter().any(|v| v.source == Source::TokenFile)
    }
}

const fn var(name: &'static str, source: Source) -> Variable {
    Variable { name, source }
}

/// Every group, in the official webhook's order, the session name last. The
/// two credentials groups exclude each other: a pod gets a role or container
/// credentials.
pub const GROUPS: &[Group] = &[
    Group {
        name: "regional STS",
        variables: &[var(AWS_STS_REGIONAL_ENDPOINTS, Source::RegionalSts)],
        left_to_env_from: false,
    },
    Group {
        name: "region",
        variables: &[
            var(AWS_DEFAULT_REGION, Source::Region),
            var(AWS_REGION, Source::Region),
        ],
        left_to_env_from: true,
    },
    Group {
        name: "web identity",
        variables: &[
            var(AWS_ROLE_ARN, Source::RoleArn),
            var(AWS_WEB_IDENTITY_TOKEN_FILE, Source::TokenFile),
        ],
        left_to_env_from: false,
    },
    Group {
        name: "container credentials",
        variables: &[
            var(AWS_CONTAINER_CREDENTIALS_FULL_URI, Source::FullUri),
            var(AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, Source::TokenFile),
        ],
        left_to_env_from: false,
    },
    Group {
        name: "STS endpoint",
        variables: &[var(AWS_ENDPOINT_URL_STS, Source::StsEndpoint)],
        left_to_env_from: false,
    },
    Group {
        name: "session name",
        variables: &[var(AWS_ROLE_SESSION_NAME, Source::PodName)],
        left_to_env_from: false,
    },
];

/// Every variable name the policy may set, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    GROUPS
        .iter()
        .flat_map(|group| group.variables.iter().map(|v| v.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_in_one_group_once() {
        let names: Vec<&str> = names().collect();
        for name in &names {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name}");
        }
        assert!(names.iter().all(|name| name.starts_with("AWS_")));
    }

    #[test]
    fn the_order_is_the_official_webhooks() {
        assert_eq!(
            names().collect::<Vec<_>>(),
            [
                AWS_STS_REGIONAL_ENDPOINTS,
                AWS_DEFAULT_REGION,
                AWS_REGION,
                AWS_ROLE_ARN,
                AWS_WEB_IDENTITY_TOKEN_FILE,
                AWS_CONTAINER_CREDENTIALS_FULL_URI,
                AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
                AWS_ENDPOINT_URL_STS,
                AWS_ROLE_SESSION_NAME,
            ]
        );
    }

    #[test]
    fn each_credentials_group_points_at_the_token_once() {
        let credentials: Vec<&str> = GROUPS
            .iter()
            .filter(|g| g.is_credentials())
            .map(|g| g.name)
            .collect();
        assert_eq!(credentials, ["web identity", "container credentials"]);
        for group in GROUPS.iter().filter(|g| g.is_credentials()) {
            let tokens = group
                .variables
                .iter()
                .filter(|v| v.source == Source::TokenFile);
            assert_eq!(tokens.count(), 1, "{}", group.name);
        }
    }

    #[test]
    fn only_the_region_is_left_to_env_from() {
        let left: Vec<&str> = GROUPS
            .iter()
            .filter(|g| g.left_to_env_from)
            .map(|g| g.name)
            .collect();
        assert_eq!(left, ["region"]);
    }
}
