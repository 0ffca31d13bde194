//! What every target shares: a quiet logger and the checks of
//! `irsa_policy::invariants::check_decision`.

use irsa_policy::decision::Decision;
use irsa_policy::lookup::ServiceAccountSource;

pub fn log() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

pub fn check(payload: &[u8], decision: Decision, accounts: &dyn ServiceAccountSource) {
    if let Err(broken) = irsa_policy::invariants::check_decision(payload, decision, accounts) {
        panic!("{broken}");
    }
}
