//! Runnable examples of Sandlink; see the `[[example]]` targets. The pieces
//! they share live here so that tests can drive them.

pub mod tree;
