//! Every input the fuzzers found a fault with (tests/fuzz-regressions/),
//! replayed through the same checks the fuzz targets make.

use irsa_policy::invariants::check_decision;
use irsa_policy::lookup::{EveryoneHasARole, ServiceAccount};

#[test]
fn every_input_the_fuzzers_found_passes_their_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let accounts = EveryoneHasARole(ServiceAccount::with_annotations([(
        "eks.amazonaws.com/role-arn",
        "arn:aws:iam::111122223333:role/app",
    )]));
    let log = crate::common::log();
    let mut inputs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let payload = std::fs::read(&path).unwrap();
        let decision = irsa_policy::review(&payload, &accounts, &log);
        if let Err(broken) = check_decision(&payload, decision, &accounts) {
            panic!("{}: {broken}", path.display());
        }
        inputs += 1;
    }
    assert!(inputs > 0);
}
