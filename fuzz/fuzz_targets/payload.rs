//! Raw bytes as the `validate` payload, as a broken or hostile host could send them.
#![no_main]

use irsa_policy::lookup::{EveryoneHasARole, ServiceAccount};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let accounts = EveryoneHasARole(ServiceAccount::with_annotations([(
        "eks.amazonaws.com/role-arn",
        "arn:aws:iam::111122223333:role/app",
    )]));
    let decision = irsa_policy::review(data, &accounts, &common::log());
    common::check(data, decision, &accounts);
});
