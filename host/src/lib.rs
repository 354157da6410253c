//! # Sandlink: modular foreign function bindings for Rust
//!
//! Describe a C library's functions once, as values, then link them in
//! whichever way fits, behind the same [`Foreign`] trait: [`Dynamic`]
//! (dlopen, and direct or libffi calls, no isolation), [`Stubs`] (C wrappers generated from
//! the same description and checked by the C compiler against the
//! library's headers; see [`record`]), [`Sandbox`] (the library compiled to
//! wasm32-wasi and run by wasmtime in this process, unable to touch host
//! memory) or [`Process`] (the native library in a seccomp-confined worker
//! process). It is OCaml ctypes' design carried to Rust.
//!
//! ```
//! use sandlink::types::*;
//! use sandlink::{Dynamic, Foreign};
//!
//! # fn main() -> Result<(), sandlink::Error> {
//! // The seed's first example: `puts : string -> int`.
//! // SAFETY: libc is trusted, and `puts` is declared with its real type.
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
//! use sandlink::prelude::*; // what bindings need, in one import
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
//! # // SAFETY: libc is trusted, and `strlen` is declared with its real type.
//! # let libc = unsafe { sandlink::Dynamic::this_process() };
//! # assert_eq!(Strlen::bind(&libc).unwrap().strlen.call(("four",)).unwrap(), 4);
//! ```

//! ## One cargo feature per strategy
//!
//! | feature | strategy | builds |
//! |---|---|---|
//! | `dynamic` (default) | [`Dynamic`] | libloading, libffi (Debian's `libffi-dev`) |
//! | `sandbox` (default) | [`Sandbox`] | wasmtime, wasmtime-wasi |
//! | `process` (default) | [`Process`] | seccompiler, and a C worker that the build script compiles against the system's libffi (Debian's `libffi-dev`) |
//! | `stubs` (default) | [`Stubs`] | nothing beyond libc: the stubs are C that `sandlink-build` generates and compiles in the user's build script |
//!
//! A sandbox-only user sets `default-features = false, features = ["sandbox"]`
//! and builds neither libffi nor libloading; a dynamic-only user builds no
//! wasmtime. Bindings written over [`Foreign`] compile with any of them, and
//! with no feature at all: that is how a build script evaluates them
//! against the [`record::Recorder`].

//! ## Threads
//!
//! [`Sandbox`], [`Process`], [`Dynamic`] and [`Stubs`] handles are `Send`: a library, with the
//! functions, callbacks and allocations made from it, can move to a worker
//! thread, and N sandboxes can run on N threads in parallel. Clones share
//! one instance, and calls into it are serialised by a lock that the calling
//! thread holds for the whole call (re-entrantly, so a callback may call in
//! again). Callback closures are therefore `Send`. The handles are not
//! `Sync`:
//!
//! ```compile_fail,E0277
//! fn shared<T: Sync>() {}
//! shared::<sandlink::Sandbox>(); // error: `Cell<()>` cannot be shared between threads
//! ```
//!
//! ```compile_fail,E0277
//! fn shared<T: Sync>() {}
//! shared::<sandlink::Dynamic>();
//! ```
//!
//! ```compile_fail,E0277
//! fn shared<T: Sync>() {}
//! shared::<sandlink::Process>();
//! ```
//!
//! ```compile_fail,E0277
//! fn shared<T: Sync>() {}
//! shared::<sandlink::Stubs>();
//! ```

//! ## Soundness: where trust is granted
//!
//! No safe function of this crate, called with any arguments, can cause
//! undefined behaviour in the host. The Sandbox and Process strategies need
//! no trust at all: they are [`Isolated`]. In the Sandbox every address is
//! checked against linear memory; in Process every access is a request to
//! the worker, which answers a bad address with an error (and a library
//! that crashes takes only the worker down). Every value from the library
//! is validated, so everything a binding does with them is safe. Trust is granted, and `unsafe` written, only here:
//!
//! | where | what the caller promises |
//! |---|---|
//! | `unsafe` [`Dynamic::open`], [`Dynamic::this_process`] | the library and the bindings used with it are right: its code and initialisers, the signatures, layouts and array lengths declared for it, that a call that type-checks is one the library accepts, and that every pointer it returns points at what its declared type says for as long as it is used |
//! | `unsafe` [`Stubs::open`] | as for `Dynamic::open`, less what the C compiler checked at build time (each function's declared signature and each struct's layout against the headers), plus that the table is one `sandlink-build` generated |
//! | `unsafe` [`Ptr::from_addr`], [`Ptr::cast`], [`Ptr::byte_add`] | the address points at a live value of the pointer's type (on a non-[`Isolated`] strategy) |
//! | `unsafe` `Foreign::*_unchecked` (`elem_ptr`, `read_bytes`, `write_bytes`, `read_string`, `read_terminated`) | the memory the host claims beyond the pointer's own type exists (on a non-[`Isolated`] strategy); on an [`Isolated`] one, the safe forms without the suffix need no promise |
//! | `unsafe` [`Foreign::free`] | the pointer is the start of a live block of that library's allocator, freed once, unused afterwards ([`Foreign::alloc`]'s [`Owned`] handle needs no call) |
//!
//! Nothing else asks for trust: the strategy interface (how a strategy
//! calls, converts and reaches memory) is private to this crate, and so are
//! the raw memory methods. [`Foreign`], [`Isolated`], [`types::Shadow`] and
//! [`types::Params`] are sealed: no other crate implements them, so no other
//! crate can add a strategy or a C type whose promises this table does not
//! list.
//!
//! The **pointer invariant** ties these together: a [`Ptr`] admitted for a
//! library points at what its type says. It is granted where a pointer is
//! made: by the library (a return value, a callback argument, a loaded
//! field: the `Dynamic::open` promise), by [`Foreign::alloc`] (a fresh block
//! of the right size), by [`Foreign::field_ptr`] (inside the struct), or by
//! an `unsafe` call above; [`Owned::elem`] checks its index. Pointers and
//! callbacks carry their library and reset generation, so one used with
//! another library or after a reset is an error, never an access.
//!
//! A [`Callback`] may be dropped while the library still holds its address
//! (expat keeps its handlers): on every strategy the address then stays
//! callable, runs nothing, and fails the call it happens in with
//! [`Error::CallbackDropped`]. Dynamic never frees a callback's libffi
//! closure; it parks it for the library's next callback of the same type.
//!
//! The compiler holds the line. Safe pointer arithmetic exists only on an
//! [`Isolated`] strategy:
//!
//! ```
//! # use sandlink::{types::int, Foreign, Ptr, Result, Sandbox};
//! fn third(lib: &Sandbox, p: Ptr<i32>) -> Result<Ptr<i32>> {
//!     lib.elem_ptr(&int(), p, 2) // checked at every access
//! }
//! ```
//!
//! ```compile_fail,E0277
//! # use sandlink::{types::int, Dynamic, Foreign, Ptr, Result};
//! fn third(lib: &Dynamic, p: Ptr<i32>) -> Result<Ptr<i32>> {
//!     lib.elem_ptr(&int(), p, 2) // error: `Dynamic` is not `Isolated`
//! }
//! ```
//!
//! binding code generic over `L: Foreign` sees the vocabulary and nothing
//! of the strategy behind it:
//!
//! ```compile_fail,E0599
//! # use sandlink::Foreign;
//! fn peek<L: Foreign>(lib: &L) -> u8 {
//!     let mut b = [0u8];
//!     lib.read_raw(0x1000, &mut b).unwrap(); // error: no method `read_raw`
//!     b[0]
//! }
//! ```
//!
//! and arithmetic on a bare pointer needs `unsafe`:
//!
//! ```compile_fail,E0133
//! # use sandlink::Ptr;
//! fn next(p: Ptr<i32>) -> Ptr<i32> {
//!     p.byte_add(4).unwrap() // error: call to unsafe function
//! }
//! ```

mod backend;
mod bindings;
mod error;
mod foreign;
pub mod prelude;
mod protocol;
pub mod record;
mod strategy;
pub mod types;

#[cfg(feature = "dynamic")]
pub use backend::dynamic::Dynamic;
#[cfg(feature = "process")]
pub use backend::process::{landlock_abi, Confinement, Process, ProcessConfig};
#[cfg(feature = "sandbox")]
pub use backend::sandbox::{
    CompiledModule, DirAccess, DirGrant, Precompiled, Sandbox, SandboxConfig,
};
#[cfg(feature = "stubs")]
pub use backend::stubs::{StubTable, Stubs};
pub use error::{Error, ErrorKind, Result, StrategyKind, TrapKind};
pub use foreign::{Callback, Foreign, Function, Hold, Owned};
pub use strategy::Isolated;
pub use types::{Ptr, Typ};
