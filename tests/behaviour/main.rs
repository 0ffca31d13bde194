//! The behaviour table of docs/behaviour.md, one module per section, run
//! natively against the same `review` that `policy.wasm` runs, with
//! ServiceAccounts held in memory instead of read through the host.

// A test may unwrap, expect and panic: that is how it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod audit;
mod bad_input;
mod conflicts_are_refusals;
mod eks_pod_identity;
mod ephemeral_containers;
mod fuzz_regressions;
mod host_outcomes_and_bad_input;
mod idempotence_and_reuse;
mod logging;
mod lossless;
mod properties;
mod region_envfrom_and_sts_endpoint;
mod role_guardrails;
mod roles_from_the_settings;
mod user_values_win;
mod what_a_pod_gets;
mod when_nothing_happens;
mod which_containers;
