//! # Sandlink: modular foreign function bindings for Rust
//!
//! Describe a C library's functions once, as values, then link them in
//! whichever way fits, behind the same [`Foreign`] trait: [`Dynamic`]
//! (dlopen and libffi, no isolation) or [`Sandbox`] (the library compiled to
//! wasm32-wasi and run by wasmtime in this process, unable to touch host
//! memory). It is OCaml ctypes' design carried to Rust.
//!
//! ```
//! use sandlink::types::*;
//! use sandlink::{Dynamic, Foreign};
//!
//! # fn main() -> Result<(), sandlink::Error> {
//! // The seed's first example: `puts : string -> int`.
//! let libc = unsafe { Dynamic::this_process() };
//! let puts = libc.function("puts", &(string() >> returning(int())))?;
//! let n: i32 = puts.call(("Hello, world",))?;
//! assert_eq!(n, 13);
//! # Ok(()) }
//! ```
//!
//! Bindings are written generically over `L: Foreign`, so the same code links
//! every way:
//!
//! ```
//! use sandlink::types::*;
//! use sandlink::{Foreign, Function, Result};
//!
//! struct Strlen<L: Foreign> {
//!     strlen: Function<L, (String,), u64>,
//! }
//!
//! impl<L: Foreign> Strlen<L> {
//!     fn bind(lib: &L) -> Result<Self> {
//!         Ok(Strlen { strlen: lib.function("strlen", &(string() >> returning(size_t())))? })
//!     }
//! }
//! # let libc = unsafe { sandlink::Dynamic::this_process() };
//! # assert_eq!(Strlen::bind(&libc).unwrap().strlen.call(("four",)).unwrap(), 4);
//! ```

//! ## One cargo feature per strategy
//!
//! | feature | strategy | builds |
//! |---|---|---|
//! | `dynamic` (default) | [`Dynamic`] | libloading, libffi (Debian's `libffi-dev`) |
//! | `sandbox` (default) | [`Sandbox`] | wasmtime, wasmtime-wasi |
//!
//! A sandbox-only user sets `default-features = false, features = ["sandbox"]`
//! and builds neither libffi nor libloading; a dynamic-only user builds no
//! wasmtime. Bindings written over [`Foreign`] compile with either.

pub mod backend;
mod error;
mod foreign;
pub mod types;

#[cfg(feature = "dynamic")]
pub use backend::dynamic::Dynamic;
#[cfg(feature = "sandbox")]
pub use backend::sandbox::{Sandbox, SandboxConfig};
pub use error::{Error, ErrorKind, Result, TrapKind};
pub use foreign::{run_callback, Callback, ErasedFn, Foreign, Function, Owned};
pub use types::{Ptr, Typ};
