//! Raw bytes as settings: `validate_settings` must answer, never panic.
#![no_main]

use irsa_policy::settings::{Config, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(settings) = Settings::from_json(data) {
        let _ = Config::from_settings(&settings).map_err(|e| e.to_string());
    }
});
