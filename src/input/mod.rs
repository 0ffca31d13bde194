//! Stage 1 of the flow: the input.
//!
//! The payload as the host sends it: the admission request (read in one
//! pass, only what the decision needs), and the facts of its pod (who it is,
//! its ServiceAccount, its annotations, whether it runs on Windows). Nothing
//! here knows the settings: the payload's settings are parsed into the type
//! the caller names.

pub(crate) mod diagnose;
pub(crate) mod fields;
pub(crate) mod go_json;
pub(crate) mod payload;
pub(crate) mod pod;
