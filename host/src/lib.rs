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

//! ## Soundness: where trust is granted
//!
//! The Sandbox strategy needs no trust: every address is bounds-checked
//! against linear memory and every value is validated. Trust is granted, and
//! `unsafe` written, at these places only:
//!
//! | where | what the caller promises |
//! |---|---|
//! | `unsafe` [`Dynamic::open`], [`Dynamic::this_process`] | the library is trusted: its initialisers, its code, the signatures declared for it, and every pointer it returns (it points at what its declared type says, for as long as C keeps it alive) |
//! | `unsafe` [`Ptr::from_addr`] | the address points at a live `T` in that library |
//! | `unsafe` [`Foreign::free`] | the pointer is the start of a live block of that library's allocator, freed once, unused afterwards ([`Foreign::alloc`]'s [`Owned`] handle needs no call) |
//!
//! Pointers and callbacks carry their library and reset generation, so one
//! used with another library or after a reset is an error, never an access.
//!
//! **Known gap (Dynamic only):** [`Ptr::byte_add`], [`Ptr::cast`],
//! [`Foreign::elem_ptr`] and the `Memory` trait's raw methods are safe, and
//! on `Dynamic` library memory is host memory, so a safe call can read or
//! write past a block the library returned. On the Sandbox the same calls are
//! bounds-checked and harmless. Closing this (bounds-carrying pointers or
//! `unsafe` arithmetic on `Dynamic`) is open work.

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
