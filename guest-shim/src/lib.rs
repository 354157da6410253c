//! What Sandlink's runtime (`sandlink`) and its build library
//! (`sandlink-build`) share, so that neither depends on the other:
//!
//! - [`SHIM_C`], the guest shim: C linked into every wasm module the
//!   Sandbox strategy runs (an allocator and errno access for the host);
//! - [`abi`], the names the shim and the link recipe export, which the
//!   runtime looks up, and the layout of the Stubs strategy's generated
//!   table;
//! - [`spec`], the stub specification the runtime's recorder produces from
//!   a binding module and the build library turns into checked C stubs.
//!
//! It has no dependencies; users never need it directly.

pub mod abi;
pub mod spec;

/// The guest shim's C source, embedded so that a build needs nothing beside
/// this crate. `sandlink-build` compiles it with [`abi::SHIM_MACROS`] as
/// macros.
pub const SHIM_C: &str = include_str!("../shim/shim.c");
