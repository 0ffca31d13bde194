//! What one source says about a pod's credentials: the pod's annotations, its
//! ServiceAccount's annotations, or the ServiceAccount's `serviceAccounts`
//! entry. Each is parsed once into this shape, and resolving a pod is then a
//! merge of the sources in their order of precedence (`resolve::resolve`).

use crate::settings::role_arn::RoleArn;
use crate::settings::token_expiration::TokenExpiration;
use crate::settings::values::{Audience, Region, StsEndpoint};

/// Every field is optional: `None` is "this source says nothing", and the
/// next source (finally the settings) decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub role_arn: Option<RoleArn>,
    pub audience: Option<Audience>,
    pub sts_regional_endpoints: Option<bool>,
    pub token_expiration: Option<Expiration>,
    pub region: Option<Region>,
    pub sts_endpoint: Option<StsEndpoint>,
}

/// A token lifetime, and the warning its author should see if it was moved
/// into range. Carried with the value so that only the source that wins warns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiration {
    pub value: TokenExpiration,
    pub warning: Option<String>,
}

impl From<TokenExpiration> for Expiration {
    fn from(value: TokenExpiration) -> Self {
        Expiration {
            value,
            warning: None,
        }
    }
}

/// Sources from the highest precedence to the lowest.
pub struct Precedence<'a>(pub &'a [&'a Overrides]);

impl<'a> Precedence<'a> {
    /// The field as the first source that sets it says.
    pub fn first<T>(&self, field: impl Fn(&'a Overrides) -> Option<&'a T>) -> Option<&'a T> {
        self.0.iter().find_map(|source| field(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_source_that_says_something_wins() {
        let pod = Overrides::default();
        let service_account = Overrides {
            sts_regional_endpoints: Some(false),
            ..Default::default()
        };
        let mapping = Overrides {
            sts_regional_endpoints: Some(true),
            token_expiration: Some(TokenExpiration::within_bounds(3600).unwrap().into()),
            ..Default::default()
        };
        let sources = Precedence(&[&pod, &service_account, &mapping]);
        assert_eq!(
            sources.first(|o| o.sts_regional_endpoints.as_ref()),
            Some(&false)
        );
        assert_eq!(
            sources
                .first(|o| o.token_expiration.as_ref())
                .map(|e| e.value.seconds()),
            Some(3600)
        );
        assert_eq!(sources.first(|o| o.region.as_ref()), None);
    }
}
