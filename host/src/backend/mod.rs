//! The linking strategies, one folder each, each behind its cargo feature
//! (`dynamic`, `sandbox`, `process`, `stubs`; all on by default).

#[cfg(feature = "dynamic")]
pub mod dynamic;
#[cfg(any(feature = "dynamic", feature = "stubs"))]
mod native;
#[cfg(feature = "process")]
pub mod process;
#[cfg(feature = "sandbox")]
pub mod sandbox;
#[cfg(feature = "stubs")]
pub mod stubs;
