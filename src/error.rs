//! Every way the policy can refuse a pod, in one place.
//!
//! A person reads these in `kubectl` output ("admission webhook ... denied the
//! request: ..."), so each message names the object, the field, the value, and
//! what to change.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// The payload from the host is not an admission request we can read.
    #[error("cannot read the admission request: {0}")]
    MalformedRequest(String),

    /// A field of the pod has a JSON type Kubernetes would not produce.
    #[error("pod {pod}: {field} must be {expected}, found {found}")]
    PodShape {
        pod: String,
        field: String,
        expected: &'static str,
        found: String,
    },

    /// A field Kubernetes requires is absent (a hand-written pod): said so,
    /// rather than "found null", which reads as if the pod had a null there.
    #[error("pod {pod}: {field} is missing; it must be {expected}")]
    MissingPodField {
        pod: String,
        field: String,
        expected: &'static str,
    },

    /// The settings are not JSON of the right shape; the reason starts with the setting.
    #[error("cannot read the settings: {reason}")]
    UnreadableSettings { reason: String },

    /// A policy setting is out of range or malformed.
    #[error("invalid setting {field} = {value}: {reason}")]
    InvalidSetting {
        field: &'static str,
        value: String,
        reason: String,
    },

    /// An annotation on the pod or its ServiceAccount cannot be parsed.
    #[error("{object}: annotation {key}={value:?} {reason}")]
    InvalidAnnotation {
        object: String,
        key: String,
        value: String,
        reason: String,
    },

    /// The guardrail settings do not let this ServiceAccount's pods assume its role.
    #[error(
        "ServiceAccount {namespace}/{service_account} may not assume role {role}: {reason}; the \
         policy setting {setting} decides which roles each namespace may assume: use a role it \
         allows, or ask the platform team to change the setting"
    )]
    RoleNotAllowed {
        namespace: String,
        service_account: String,
        role: String,
        setting: &'static str,
        reason: String,
    },

    /// The pod already has a volume with the token volume's name that is not
    /// the token we would add. The official webhook silently mounted such a
    /// volume instead (aws/amazon-eks-pod-identity-webhook#315).
    #[error(
        "pod {pod}: volume {volume:?} already exists and is {found}, not a projected \
         service account token with audience {audience:?} and path \"token\"; rename or \
         remove that volume so the policy can add its own, or choose another name with the \
         policy setting tokenVolumeName"
    )]
    ForeignTokenVolume {
        pod: String,
        volume: String,
        found: String,
        audience: String,
    },

    /// A container mounts another volume where the token goes. The official
    /// webhook added a second mount at the same path and the API server then
    /// refused the pod (aws/amazon-eks-pod-identity-webhook#159).
    #[error(
        "pod {pod}: container {container:?} already mounts volume {volume:?} at {path}, where \
         the policy mounts the AWS web identity token; move that mount, or list the container \
         in the pod annotation {skip_annotation}"
    )]
    MountPathTaken {
        pod: String,
        container: String,
        volume: String,
        path: String,
        skip_annotation: String,
    },

    /// A container mounts the token volume somewhere else, so the token file
    /// the SDKs are pointed at would not be where `AWS_WEB_IDENTITY_TOKEN_FILE` says.
    #[error(
        "pod {pod}: container {container:?} mounts {found}, but the policy mounts it at \
         {path}; remove that mount, or list the container in the pod annotation \
         {skip_annotation}"
    )]
    TokenVolumeMountedElsewhere {
        pod: String,
        container: String,
        /// `volume "aws-iam-token" at "/token"`: the path quoted, so an empty
        /// one reads `at ""`
        found: String,
        path: String,
        skip_annotation: String,
    },

    /// An existing pod, sent by Kubewarden's audit scanner, differs from what
    /// its ServiceAccount gives a pod created now. The remedy says what to
    /// run, and what to fix first when a pod created now would be refused.
    #[error("pod {pod} is out of step with ServiceAccount {service_account}: {finding}; {remedy}")]
    OutOfStep {
        pod: String,
        service_account: String,
        /// Boxed: the other refusals, returned on every path, stay small.
        finding: Box<Finding>,
        remedy: String,
    },

    /// The host could not give us the ServiceAccount for a reason other than
    /// "not found". The advice comes first: the host's text after it can be long.
    #[error(
        "cannot read ServiceAccount {namespace}/{name}: {advice}. Host error: {detail}",
        advice = failure.advice(),
        detail = failure.detail
    )]
    ServiceAccountLookup {
        namespace: String,
        name: String,
        failure: LookupFailure,
    },
}

/// Why the audit reports a running pod: what it carries, and what a pod
/// created now would get or meet instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Finding {
    /// The pod has none of the credentials a pod created now gets.
    #[error(
        "it has no AWS credentials, but its ServiceAccount now gives {gives}: the pod was \
         created before that (or while the policy was not active)"
    )]
    NoCredentials { gives: String },

    /// The pod has the credentials, but a pod created now gets more (a region,
    /// regional STS, a session name, a mount in another container).
    #[error(
        "a pod created now also gets {}, which this pod lacks: it was created before the \
         setting or annotation that gives it",
        .items.join("; ")
    )]
    Lacks { items: Vec<String> },

    /// The role the policy wrote is not the one the ServiceAccount names now.
    #[error("it runs with AWS_ROLE_ARN {carried}, but its ServiceAccount now names {now}")]
    RoleChanged { carried: String, now: String },

    /// The container credentials endpoint the policy wrote is not today's.
    #[error(
        "it runs with AWS_CONTAINER_CREDENTIALS_FULL_URI {carried}, but a pod created now gets \
         {now}"
    )]
    EndpointChanged { carried: String, now: String },

    /// The token volume the policy wrote is for another audience than today's.
    #[error(
        "its token volume {volume:?} has audience {carried:?}, but a pod created now gets {now:?}"
    )]
    AudienceChanged {
        volume: String,
        carried: String,
        now: String,
    },

    /// Web identity credentials where the ServiceAccount now gets EKS Pod
    /// Identity's container credentials, or the reverse.
    #[error("it carries {carried}, but its ServiceAccount now gives {now} instead")]
    KindChanged { carried: String, now: String },

    /// Credentials the policy wrote, for a ServiceAccount that grants none now.
    #[error(
        "it carries {carried} although its ServiceAccount {}",
        if *.gone { "no longer exists" } else { "no longer grants any" }
    )]
    NoLongerGranted { carried: String, gone: bool },

    /// A pod of this ServiceAccount created now is refused (the guardrails no
    /// longer allow its role, or one of its annotations cannot be read).
    #[error("{}", refused(.carried.as_deref(), .refusal))]
    Refused {
        carried: Option<String>,
        refusal: Box<PolicyError>,
    },

    /// A pod created now from this one's template is refused for its own
    /// shape (a volume at the token path, a foreign volume of the token's name).
    #[error("a pod created now would be refused: {refusal}")]
    WouldBeRefused { refusal: Box<PolicyError> },
}

fn refused(carried: Option<&str>, refusal: &PolicyError) -> String {
    match (carried, refusal) {
        (Some(carried), PolicyError::RoleNotAllowed { .. }) => {
            format!("it carries {carried} that the guardrails now refuse ({refusal})")
        }
        (Some(carried), _) => {
            format!("it carries {carried}, but a pod created now is refused ({refusal})")
        }
        (None, _) => format!("a pod created now is refused ({refusal})"),
    }
}

impl Finding {
    /// Whether the finding is about credentials the pod carries: the audit
    /// cannot tell those from the same values written by the pod's author.
    pub fn is_about_carried(&self) -> bool {
        match self {
            Finding::RoleChanged { .. }
            | Finding::EndpointChanged { .. }
            | Finding::AudienceChanged { .. }
            | Finding::KindChanged { .. }
            | Finding::NoLongerGranted { .. } => true,
            Finding::Refused { carried, .. } => carried.is_some(),
            Finding::NoCredentials { .. }
            | Finding::Lacks { .. }
            | Finding::WouldBeRefused { .. } => false,
        }
    }

    /// What must change before a restart helps, when a pod created now would
    /// be refused.
    pub fn first_step(&self) -> Option<&'static str> {
        const TEMPLATE: &str = "change the pod's template as that says first (until then a pod \
                                created from it is refused)";
        match self {
            Finding::Refused { refusal, .. } => Some(match &**refusal {
                PolicyError::RoleNotAllowed { .. } => {
                    "fix the ServiceAccount's role or the guardrails first (until then every new \
                     pod of this ServiceAccount is refused)"
                }
                PolicyError::InvalidAnnotation { object, .. }
                    if object.starts_with("ServiceAccount ") =>
                {
                    "fix the ServiceAccount first (until then every new pod of this \
                     ServiceAccount is refused)"
                }
                // The pod's own annotation: its template has it.
                _ => TEMPLATE,
            }),
            Finding::WouldBeRefused { .. } => Some(TEMPLATE),
            _ => None,
        }
    }
}

/// Why the host could not give the ServiceAccount; each kind has its own advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The host refused before asking the API server: the policy does not
    /// declare `v1/ServiceAccount` in `contextAwareResources`.
    NotDeclared,
    /// The API server answered 403: the policy-server's ServiceAccount lacks RBAC.
    Forbidden,
    /// The API server could not be reached or did not answer in time; nothing
    /// is wrong with the policy or its grants, and the same pod can be retried.
    Unreachable,
    /// Anything else.
    Other,
}

/// A failed lookup as the user is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFailure {
    pub kind: FailureKind,
    /// The meaningful lines of the host's text, joined with ": ".
    pub detail: String,
}

impl LookupFailure {
    /// What the person reading the rejection should do, first in the message.
    pub fn advice(&self) -> &'static str {
        match self.kind {
            FailureKind::NotDeclared => {
                "the policy may not read ServiceAccounts: declare contextAwareResources \
                 [{apiVersion: v1, kind: ServiceAccount}] in the policy (deploy/policy.yaml)"
            }
            FailureKind::Forbidden => {
                "the API server refused the policy-server: grant the policy-server's \
                 ServiceAccount get on serviceaccounts (deploy/rbac.yaml)"
            }
            FailureKind::Unreachable => {
                "the policy-server could not reach the Kubernetes API server; nothing needs \
                 changing in the policy, create the pod again once the API server answers \
                 (controllers retry on their own)"
            }
            FailureKind::Other => "the lookup failed",
        }
    }
}

/// Values quoted in messages are cut to this many bytes: an annotation can be
/// 256 KB, and a message that long is no use in `kubectl` output.
pub const MAX_QUOTED: usize = 128;

/// Messages are cut to this many bytes as a last resort (serde's errors quote
/// whole values).
pub const MAX_MESSAGE: usize = 2048;

/// `text` cut at a character boundary to at most `max` bytes, with a note of
/// how long it was.
pub fn shorten(mut text: String, max: usize) -> String {
    if text.len() > max {
        let total = text.len();
        let cut = text.floor_char_boundary(max);
        text.truncate(cut);
        text.push_str(&format!("... ({total} bytes)"));
    }
    text
}

/// `text` in quotes for a message, shortened to [`MAX_QUOTED`].
pub fn quoted(text: &str) -> String {
    format!("{:?}", shorten(text.to_owned(), MAX_QUOTED))
}

impl PolicyError {
    /// The HTTP status code the API server reports with the rejection.
    pub fn code(&self) -> u16 {
        match self {
            PolicyError::ServiceAccountLookup { .. }
            | PolicyError::InvalidSetting { .. }
            | PolicyError::UnreadableSettings { .. } => 500,
            PolicyError::RoleNotAllowed { .. } => 403,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_refused() -> Box<PolicyError> {
        Box::new(PolicyError::RoleNotAllowed {
            namespace: "team-a".into(),
            service_account: "app".into(),
            role: "arn:aws:iam::111122223333:role/x".into(),
            setting: "allowedAccounts",
            reason: "account 111122223333 is not one of 444455556666".into(),
        })
    }

    #[test]
    fn a_refused_finding_says_what_the_pod_carries_and_why_a_new_pod_is_refused() {
        let refusal = role_refused();
        let carried = Finding::Refused {
            carried: Some("AWS credentials for R".into()),
            refusal: refusal.clone(),
        };
        assert_eq!(
            carried.to_string(),
            format!("it carries AWS credentials for R that the guardrails now refuse ({refusal})")
        );
        let none = Finding::Refused {
            carried: None,
            refusal: refusal.clone(),
        };
        assert_eq!(
            none.to_string(),
            format!("a pod created now is refused ({refusal})")
        );
        let annotation = Box::new(PolicyError::InvalidAnnotation {
            object: "ServiceAccount team-a/app".into(),
            key: "k".into(),
            value: "v".into(),
            reason: "is not a number".into(),
        });
        let other = Finding::Refused {
            carried: Some("AWS credentials for R".into()),
            refusal: annotation.clone(),
        };
        assert_eq!(
            other.to_string(),
            format!(
                "it carries AWS credentials for R, but a pod created now is refused ({annotation})"
            )
        );
    }

    #[test]
    fn only_findings_about_what_the_pod_carries_are_about_carried_credentials() {
        let carried = [
            Finding::RoleChanged {
                carried: "a".into(),
                now: "b".into(),
            },
            Finding::EndpointChanged {
                carried: "a".into(),
                now: "b".into(),
            },
            Finding::AudienceChanged {
                volume: "v".into(),
                carried: "a".into(),
                now: "b".into(),
            },
            Finding::KindChanged {
                carried: "a".into(),
                now: "b".into(),
            },
            Finding::NoLongerGranted {
                carried: "a".into(),
                gone: false,
            },
            Finding::Refused {
                carried: Some("a".into()),
                refusal: role_refused(),
            },
        ];
        assert!(carried.iter().all(Finding::is_about_carried));
        let not_carried = [
            Finding::NoCredentials { gives: "r".into() },
            Finding::Lacks {
                items: vec!["x".into()],
            },
            Finding::Refused {
                carried: None,
                refusal: role_refused(),
            },
            Finding::WouldBeRefused {
                refusal: role_refused(),
            },
        ];
        assert!(!not_carried.iter().any(Finding::is_about_carried));
    }

    #[test]
    fn text_that_fits_is_left_whole() {
        let exact = "x".repeat(MAX_QUOTED);
        assert_eq!(shorten(exact.clone(), MAX_QUOTED), exact);
        assert_eq!(quoted("role"), "\"role\"");
    }

    #[test]
    fn longer_text_is_cut_with_its_length() {
        let cut = shorten("x".repeat(MAX_QUOTED + 1), MAX_QUOTED);
        assert_eq!(
            cut,
            format!("{}... ({} bytes)", "x".repeat(MAX_QUOTED), MAX_QUOTED + 1)
        );
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // "é" is two bytes: a cut at 5 bytes keeps two of them.
        assert_eq!(shorten("ééé".into(), 5), "éé... (6 bytes)");
    }
}
