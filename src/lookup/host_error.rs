//! Reading the error text the policy-server sends back when a ServiceAccount
//! lookup fails: what kind of failure it is, so the rejection gives the advice
//! that fits, and which of its lines are worth showing.
//!
//! The host gives plain text, no type to match on. policy-server formats the
//! Kubernetes client's error with `{:?}`, so it arrives as a multi-line
//! `Caused by:` chain in which the API server's message is repeated (three
//! times for a Forbidden), and, when the policy-server runs with
//! `RUST_BACKTRACE=1`, followed by a whole `Stack backtrace:`. Shown as it is,
//! the message's 2 KB cut falls inside the backtrace and removes the advice.

use crate::error::{shorten, FailureKind, LookupFailure, PolicyError};

/// The host's own text is kept to this many bytes, so that with the advice
/// before it the whole message stays well under `error::MAX_MESSAGE`.
pub const MAX_DETAIL: usize = 768;

/// Wrappers the SDK, waPC and policy-server put before the client's error.
const WRAPPERS: [&str; 3] = [
    "error invoking host capability kubernetes.get_resource: ",
    "Host error: ",
    "Callback evaluation failure: ",
];

/// Text of errors where the API server was never reached or never answered:
/// hyper's connect errors, the OS's socket errors, tower's and tokio's timeouts.
const UNREACHABLE: [&str; 12] = [
    "client error (connect)",
    "tcp connect error",
    "error trying to connect",
    "connection refused",
    "connection reset",
    "connection closed before message completed",
    "no route to host",
    "network is unreachable",
    "dns error",
    "timed out",
    "timeout",
    "deadline has elapsed",
];

impl LookupFailure {
    /// The failure the host's error text describes.
    pub fn from_host_text(text: &str) -> Self {
        let mut lines = meaningful_lines(text);
        // Judged on the lines shown, not on a backtrace's frame names
        // (`tokio::time::timeout` is no timeout).
        let lower = lines.join("\n").to_ascii_lowercase();
        let kind = if lower.contains("has not been granted access") {
            FailureKind::NotDeclared
        } else if lower.contains(" is forbidden") || lower.contains(": forbidden") {
            FailureKind::Forbidden
        } else if UNREACHABLE.iter().any(|needle| lower.contains(needle)) {
            FailureKind::Unreachable
        } else {
            FailureKind::Other
        };
        if kind == FailureKind::Other {
            lines.truncate(1);
        }
        LookupFailure {
            kind,
            detail: shorten(lines.join(": "), MAX_DETAIL),
        }
    }
}

impl PolicyError {
    /// A lookup refused with the host's error text.
    pub fn lookup_failed(namespace: &str, name: &str, host_text: &str) -> Self {
        PolicyError::ServiceAccountLookup {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            failure: LookupFailure::from_host_text(host_text),
        }
    }
}

/// The lines of the host's text a person needs: the wrappers, the backtrace,
/// the `Caused by:` headings and their numbering, and lines already said by
/// an earlier one, left out.
fn meaningful_lines(text: &str) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.eq_ignore_ascii_case("stack backtrace:") {
            break;
        }
        let line = without_debug_repeat(strip_wrappers(strip_numbering(trimmed)));
        let line = line.trim_end_matches('.').trim();
        if line.is_empty() || line == "Caused by:" {
            continue;
        }
        // The chain repeats: "ApiError: X: Forbidden" is followed by "X: Forbidden".
        if kept.iter().any(|earlier| earlier.contains(line)) {
            continue;
        }
        kept.retain(|earlier| !line.contains(earlier.as_str()));
        kept.push(line.to_owned());
    }
    kept
}

fn strip_wrappers(mut line: &str) -> &str {
    while let Some(rest) = WRAPPERS.iter().find_map(|w| line.strip_prefix(w)) {
        line = rest;
    }
    line
}

/// anyhow numbers the causes of a chain: `    0: client error (Connect)`.
fn strip_numbering(line: &str) -> &str {
    match line.split_once(": ") {
        Some((number, rest))
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => line,
    }
}

/// kube's `ApiError: {0} ({0:?})` prints the API server's answer twice; the
/// second, a Rust struct (`(ErrorResponse { ... })`, `(Status { ... })`), goes.
fn without_debug_repeat(line: &str) -> &str {
    let mut from = 0;
    while let Some(at) = line[from..].find(" (") {
        let start = from + at;
        let rest = &line[start + 2..];
        let ident_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if ident_len > 0
            && rest.as_bytes()[0].is_ascii_uppercase()
            && rest[ident_len..].starts_with(" {")
            && line.ends_with(')')
        {
            return &line[..start];
        }
        from = start + 2;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Forbidden as policy-server 1.31 sends it: kube's ApiError, its Debug
    /// repeat and its cause, each carrying the API server's message.
    pub const FORBIDDEN_CHAIN: &str = "Callback evaluation failure: ApiError: serviceaccounts \"app\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\": Forbidden (ErrorResponse { status: \"Failure\", message: \"serviceaccounts \\\"app\\\" is forbidden: User \\\"system:serviceaccount:kubewarden:policy-server-default\\\" cannot get resource \\\"serviceaccounts\\\" in API group \\\"\\\" in the namespace \\\"team-a\\\"\", reason: \"Forbidden\", code: 403 })\n\nCaused by:\n    serviceaccounts \"app\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\": Forbidden";

    const CONNECT_CHAIN: &str = "Callback evaluation failure: ServiceError: client error (Connect)\n\nCaused by:\n    0: client error (Connect)\n    1: tcp connect error: Connection refused (os error 111)\n    2: Connection refused (os error 111)";

    fn failure(text: &str) -> LookupFailure {
        LookupFailure::from_host_text(text)
    }

    #[test]
    fn a_forbidden_chain_is_an_rbac_problem_said_once() {
        let read = failure(FORBIDDEN_CHAIN);
        assert_eq!(read.kind, FailureKind::Forbidden);
        assert_eq!(
            read.detail,
            "ApiError: serviceaccounts \"app\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\": Forbidden"
        );
    }

    #[test]
    fn a_connect_chain_is_an_unreachable_api_server() {
        let read = failure(CONNECT_CHAIN);
        assert_eq!(read.kind, FailureKind::Unreachable);
        assert_eq!(
            read.detail,
            "ServiceError: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn timeouts_are_an_unreachable_api_server() {
        assert_eq!(
            failure("HyperError: operation timed out").kind,
            FailureKind::Unreachable
        );
        assert_eq!(
            failure("Callback evaluation failure: deadline has elapsed").kind,
            FailureKind::Unreachable
        );
    }

    #[test]
    fn the_hosts_own_refusal_is_a_missing_context_aware_resource() {
        let read = failure("Policy has not been granted access to Kubernetes v1/ServiceAccount resources. The violation has been reported.");
        assert_eq!(read.kind, FailureKind::NotDeclared);
        // No full stop of its own: the message goes on after it.
        assert_eq!(
            read.detail,
            "Policy has not been granted access to Kubernetes v1/ServiceAccount resources. The violation has been reported"
        );
    }

    #[test]
    fn a_backtrace_is_left_out() {
        let text = format!(
            "{CONNECT_CHAIN}\n\nStack backtrace:\n   0: anyhow::error::<impl anyhow::Error>::new\n   1: policy_evaluator::callback_handler::kubernetes::client::Client::get_resource\n             at ./src/client.rs:309:13"
        );
        let read = failure(&text);
        assert!(!read.detail.contains("backtrace"), "{}", read.detail);
        assert!(!read.detail.contains("anyhow"), "{}", read.detail);
        assert_eq!(read.detail, failure(CONNECT_CHAIN).detail);
    }

    #[test]
    fn a_backtrace_frame_does_not_decide_the_kind() {
        let text = "Callback evaluation failure: ApiError: Unauthorized: Unauthorized\n\nStack backtrace:\n   0: tokio::time::timeout::Timeout<T>::poll";
        assert_eq!(failure(text).kind, FailureKind::Other);
    }

    #[test]
    fn any_other_error_keeps_its_first_line() {
        let read = failure("Callback evaluation failure: ApiError: Unauthorized: Unauthorized (ErrorResponse { status: \"Failure\", message: \"Unauthorized\", reason: \"Unauthorized\", code: 401 })\n\nCaused by:\n    Unauthorized: Unauthorized");
        assert_eq!(read.kind, FailureKind::Other);
        assert_eq!(read.detail, "ApiError: Unauthorized: Unauthorized");
        assert_eq!(read.advice(), "the lookup failed");
    }

    #[test]
    fn a_long_host_text_is_cut() {
        let read = failure(&"x".repeat(10_000));
        assert!(read.detail.len() < MAX_DETAIL + 32, "{}", read.detail.len());
    }

    #[test]
    fn numbering_is_only_a_leading_number() {
        assert_eq!(strip_numbering("0: client error"), "client error");
        assert_eq!(strip_numbering("ApiError: x"), "ApiError: x");
        assert_eq!(strip_numbering(": x"), ": x");
    }

    #[test]
    fn only_a_trailing_struct_is_a_debug_repeat() {
        assert_eq!(
            without_debug_repeat("X: Forbidden (Status { code: 403 })"),
            "X: Forbidden"
        );
        assert_eq!(
            without_debug_repeat("refused (os error 111)"),
            "refused (os error 111)"
        );
        assert_eq!(
            without_debug_repeat("client error (Connect)"),
            "client error (Connect)"
        );
    }
}
