//! The token volume the policy adds, and how a volume of its name that the pod
//! already has compares with it.

use super::to_json;
use crate::resolve::Injection;
use crate::settings::token_expiration::TokenExpiration;
use serde::Serialize;
use serde_json::Value;

/// The volume the policy adds: a projected service account token for `audience`.
///
/// Built from these few typed fields rather than `k8s_openapi::Volume`, whose
/// serialiser drags every volume source (and a time library) into the module
/// for four fields (docs/performance.md has the module's size).
pub fn token_volume(name: &str, audience: &str, expiration: TokenExpiration, path: &str) -> Value {
    #[derive(Serialize)]
    struct Volume<'a> {
        name: &'a str,
        projected: Projected<'a>,
    }
    #[derive(Serialize)]
    struct Projected<'a> {
        sources: [Source<'a>; 1],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Source<'a> {
        service_account_token: Token<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Token<'a> {
        audience: &'a str,
        expiration_seconds: u32,
        path: &'a str,
    }
    let volume = Volume {
        name,
        projected: Projected {
            sources: [Source {
                service_account_token: Token {
                    audience,
                    expiration_seconds: expiration.seconds(),
                    path,
                },
            }],
        },
    };
    serde_json::to_value(volume).unwrap_or(Value::Null)
}

/// How an existing volume of the token volume's name compares with ours.
#[derive(Debug, PartialEq, Eq)]
pub enum ExistingVolume {
    /// A projected token for the same audience and path: reuse it.
    Reusable,
    /// Anything else, described for the error message ("a hostPath volume").
    Foreign(String),
}

pub fn classify_volume(volume: &Value, audience: &str, path: &str) -> ExistingVolume {
    let sources = volume
        .pointer("/projected/sources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let same_token = sources.iter().any(|source| {
        let token = &source["serviceAccountToken"];
        token["audience"].as_str() == Some(audience) && token["path"].as_str() == Some(path)
    });
    if same_token {
        return ExistingVolume::Reusable;
    }
    let kind = volume
        .as_object()
        .and_then(|fields| fields.keys().find(|key| *key != "name"))
        .map(String::as_str);
    ExistingVolume::Foreign(match kind {
        Some("projected") => {
            let audiences: Vec<&str> = sources
                .iter()
                .filter_map(|s| s.pointer("/serviceAccountToken/audience")?.as_str())
                .collect();
            if audiences.is_empty() {
                "a projected volume without a service account token".into()
            } else {
                format!("a projected token for audience {:?}", audiences.join(", "))
            }
        }
        Some(kind) => format!("{} {kind} volume", article(kind)),
        None => "a volume with no source (an emptyDir)".into(),
    })
}

/// "an" before a vowel sound: the volume kinds that start with a vowel, and
/// those read letter by letter whose first letter sounds like one.
fn article(kind: &str) -> &'static str {
    let vowel = kind.starts_with(['a', 'e', 'i', 'o', 'u']) || ["nfs", "rbd", "fc"].contains(&kind);
    if vowel {
        "an"
    } else {
        "a"
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount<'a> {
    mount_path: &'a str,
    name: &'a str,
    read_only: bool,
}

pub fn mount(injection: &Injection) -> Value {
    to_json(VolumeMount {
        mount_path: &injection.mount_path,
        name: &injection.volume_name,
        read_only: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::token::TOKEN_FILE_NAME;
    use rstest::rstest;
    use serde_json::json;

    #[test]
    fn token_volume_is_a_projected_service_account_token() {
        let volume = token_volume(
            "aws-iam-token",
            "sts.amazonaws.com",
            TokenExpiration::DEFAULT,
            TOKEN_FILE_NAME,
        );
        assert_eq!(
            volume,
            json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken":
                {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}})
        );
        assert_eq!(
            classify_volume(&volume, "sts.amazonaws.com", TOKEN_FILE_NAME),
            ExistingVolume::Reusable
        );
    }

    #[rstest]
    #[case(json!({"name": "t", "hostPath": {"path": "/etc"}}), "a hostPath volume")]
    #[case(json!({"name": "t", "emptyDir": {}}), "an emptyDir volume")]
    #[case(json!({"name": "t", "ephemeral": {}}), "an ephemeral volume")]
    #[case(json!({"name": "t", "nfs": {"server": "s"}}), "an nfs volume")]
    #[case(json!({"name": "t", "csi": {"driver": "d"}}), "a csi volume")]
    #[case(json!({"name": "t"}), "a volume with no source (an emptyDir)")]
    #[case(json!({"name": "t", "projected": {"sources": [{"configMap": {"name": "x"}}]}}),
           "a projected volume without a service account token")]
    #[case(json!({"name": "t", "projected": {"sources": [{"serviceAccountToken": {"audience": "vault", "path": "token"}}]}}),
           "a projected token for audience \"vault\"")]
    #[case(json!({"name": "t", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "jwt"}}]}}),
           "a projected token for audience \"sts.amazonaws.com\"")]
    fn describes_foreign_volumes(#[case] volume: Value, #[case] described: &str) {
        assert_eq!(
            classify_volume(&volume, "sts.amazonaws.com", TOKEN_FILE_NAME),
            ExistingVolume::Foreign(described.into())
        );
    }
}
