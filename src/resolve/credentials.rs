//! The two ways a pod's AWS SDKs get credentials, as the official webhook
//! offers them: a web identity token they exchange with STS for a role
//! (IRSA), or EKS Pod Identity's container credentials endpoint, which takes
//! the token in an authorization header and hands back credentials.

use crate::settings::role_arn::RoleArn;

/// The label the official webhook puts on pods it gives container credentials.
pub const POD_IDENTITY_LABEL: (&str, &str) = ("eks.amazonaws.com/pod-identity", "enabled");

/// What the pod's SDKs are pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    WebIdentity { role_arn: RoleArn },
    ContainerCredentials { full_uri: String },
}

impl Credentials {
    /// For the decision log: the role, or the endpoint.
    pub fn summary(&self) -> &str {
        match self {
            Credentials::WebIdentity { role_arn } => role_arn.as_str(),
            Credentials::ContainerCredentials { full_uri } => full_uri,
        }
    }
}
