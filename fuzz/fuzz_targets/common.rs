//! What every target shares: a ServiceAccount source that always finds one,
//! and the checks of `irsa_policy::invariants::check_decision`.

use irsa_policy::admission::Decision;
use irsa_policy::service_account::{Lookup, ServiceAccount, ServiceAccountSource};

/// Every lookup finds this ServiceAccount: the fuzzer then reaches the edit.
pub struct EveryoneHasARole(pub ServiceAccount);

impl ServiceAccountSource for EveryoneHasARole {
    fn get(&self, _: &str, _: &str) -> Result<Lookup, irsa_policy::error::PolicyError> {
        Ok(Lookup::Found(self.0.clone()))
    }
}

pub fn log() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

pub fn check(payload: &[u8], decision: Decision, accounts: &dyn ServiceAccountSource) {
    if let Err(broken) = irsa_policy::invariants::check_decision(payload, decision, accounts) {
        panic!("{broken}");
    }
}
