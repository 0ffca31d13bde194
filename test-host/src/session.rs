//! kwctl's host-capabilities replay sessions (`--replay-host-capabilities-interactions`).
//!
//! The file is a YAML list of exchanges; each `request` is a YAML string holding
//! a tagged document (`!KubernetesGetResource` ...). Requests are answered
//! strictly in order and must equal the policy's call, as kwctl does. Unlike
//! kwctl, which only warns, exchanges left unanswered fail the case: they mean
//! the policy made fewer host calls than the case says it should.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

#[derive(Debug, Deserialize)]
struct Exchange {
    request: String,
    response: Response,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Response {
    Success { payload: String },
    Error { message: String },
}

/// The host capability requests this host answers, as kwctl names and orders them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackRequest {
    KubernetesGetResource {
        api_version: String,
        kind: String,
        name: String,
        namespace: Option<String>,
        disable_cache: bool,
        #[serde(default)]
        field_masks: Option<BTreeSet<String>>,
    },
}

#[derive(Debug, Default)]
pub struct Session {
    exchanges: VecDeque<(CallbackRequest, Response)>,
    /// What went wrong replaying, if anything: the case fails with it.
    pub violations: Vec<String>,
    /// Every request the policy made, in order.
    pub requests: Vec<CallbackRequest>,
}

impl Session {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing session {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let exchanges: Vec<Exchange> = serde_yaml::from_str(text)?;
        let exchanges = exchanges
            .into_iter()
            .map(|e| {
                let request: CallbackRequest = serde_yaml::from_str(&e.request)
                    .with_context(|| format!("recorded request {:?}", e.request))?;
                Ok((request, e.response))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            exchanges,
            ..Default::default()
        })
    }

    /// Answers one request the way kwctl's replay proxy does.
    pub fn answer(&mut self, request: CallbackRequest) -> Result<Vec<u8>, String> {
        self.requests.push(request.clone());
        let Some((expected, response)) = self.exchanges.pop_front() else {
            let message = "the list of recorded responses is empty".to_string();
            self.violations.push(format!("{message} (got {request:?})"));
            return Err(message);
        };
        if expected != request {
            let message = format!(
                "Replay error: unexpected request. Was expecting {expected:?}, got {request:?} instead"
            );
            self.violations.push(message.clone());
            return Err(message);
        }
        match response {
            Response::Success { payload } => Ok(payload.into_bytes()),
            Response::Error { message } => Err(message),
        }
    }

    pub fn unanswered(&self) -> usize {
        self.exchanges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = r#"
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: ServiceAccount
    name: app
    namespace: team-a
    disable_cache: false
    field_masks:
    - metadata.annotations
  response:
    type: Error
    message: Cannot find v1/ServiceAccount named 'app' inside of namespace 'Some("team-a")'
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: ServiceAccount
    name: app
    namespace: team-a
    disable_cache: true
    field_masks:
    - metadata.annotations
  response:
    type: Success
    payload: '{"metadata":{"annotations":{"a":"b"}}}'
"#;

    fn request(disable_cache: bool) -> CallbackRequest {
        CallbackRequest::KubernetesGetResource {
            api_version: "v1".into(),
            kind: "ServiceAccount".into(),
            name: "app".into(),
            namespace: Some("team-a".into()),
            disable_cache,
            field_masks: Some(BTreeSet::from(["metadata.annotations".to_string()])),
        }
    }

    #[test]
    fn answers_in_order() {
        let mut session = Session::parse(SESSION).unwrap();
        assert!(session
            .answer(request(false))
            .unwrap_err()
            .starts_with("Cannot find"));
        assert_eq!(
            session.answer(request(true)).unwrap(),
            br#"{"metadata":{"annotations":{"a":"b"}}}"#
        );
        assert!(session.violations.is_empty());
        assert_eq!(
            session.answer(request(true)).unwrap_err(),
            "the list of recorded responses is empty"
        );
        assert_eq!(session.violations.len(), 1);
    }

    #[test]
    fn refuses_a_request_that_differs_from_the_recording() {
        let mut session = Session::parse(SESSION).unwrap();
        let err = session.answer(request(true)).unwrap_err();
        assert!(
            err.starts_with("Replay error: unexpected request."),
            "{err}"
        );
        assert_eq!(session.violations.len(), 1);
    }

    #[test]
    fn writes_requests_the_way_kwctl_records_them() {
        let text = serde_yaml::to_string(&request(false)).unwrap();
        assert_eq!(
            text,
            "!KubernetesGetResource\napi_version: v1\nkind: ServiceAccount\nname: app\nnamespace: team-a\ndisable_cache: false\nfield_masks:\n- metadata.annotations\n"
        );
    }

    #[test]
    fn an_empty_session_is_an_empty_list() {
        assert_eq!(Session::parse("[]").unwrap().unanswered(), 0);
    }
}
