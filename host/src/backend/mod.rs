//! The linking strategies, one folder each, each behind its cargo feature
//! (`dynamic`, `sandbox`; both on by default).

#[cfg(feature = "dynamic")]
pub mod dynamic;
#[cfg(feature = "sandbox")]
pub mod sandbox;
