//! The linking strategies, one folder each, each behind its cargo feature
//! (`dynamic`, `sandbox`, `process`; all on by default).

#[cfg(feature = "dynamic")]
pub mod dynamic;
#[cfg(feature = "process")]
pub mod process;
#[cfg(feature = "sandbox")]
pub mod sandbox;
