//! The linking strategies, one folder each.

pub mod dynamic;
pub mod sandbox;
