//! Sandlink's shared test code: the conformance suite every strategy runs.

pub mod conformance;
pub mod xml;
