//! expat, bound once and linked any way.
//!
//! [`Expat<L>`](bindings::Expat) is the seed's `Bindings(F : FOREIGN)`:
//! expat's C API described as values, bound with any Sandlink strategy.
//! [`Parser`] is the safe, streaming API on top: a [`Handler`] receives
//! [`Event`]s whose names and text are borrowed for the handler call (read
//! into buffers the parser reuses: no allocation per event), attributes
//! are read out of the library only when the handler asks for them, input
//! comes from byte slices or any `Read` in chunks, and errors carry expat's
//! message, line and column. [`Event::into_owned`] keeps an event.
//!
//! ```
//! use sandlink_expat::{Event, Expat, Flow, Handler, Parser};
//!
//! struct Names(Vec<String>);
//! impl Handler for Names {
//!     fn handle(&mut self, e: Event<'_>) -> Flow {
//!         if let Event::StartElement { name, .. } = e {
//!             self.0.push(name.to_owned());
//!         }
//!         Flow::Continue
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // expat 2.5.0, embedded in this crate, in its own sandbox: no file, no
//! // system library. (`Expat::bind(&lib)` binds any other strategy.)
//! let expat = sandlink_expat::sandboxed()?;
//! let mut parser = Parser::new(&expat, Names(Vec::new()))?;
//! parser.parse(b"<a><b/><c/></a>")?;
//! assert_eq!(parser.into_handler()?.0, ["a", "b", "c"]);
//! # Ok(()) }
//! ```

pub mod bindings;
mod parser;

pub use bindings::Expat;

/// expat 2.5.0 compiled to wasm32-wasi when this crate was built (the
/// `embedded` feature), checked against `expat.h` by the stubs of this
/// crate's binding module. [`sandboxed`] opens it; keep the bytes to open
/// it with your own [`sandlink::SandboxConfig`] (`config.open_bytes(MODULE,
/// "expat")`).
#[cfg(feature = "embedded")]
pub const MODULE: &[u8] = include_bytes!(env!("SANDLINK_EXPAT_WASM"));

/// expat 2.5.0 built natively by this crate's build script (the `native`
/// feature), from the same sources and flags as [`MODULE`]: a path on the
/// build machine, for `Dynamic::open` or `Process::open`.
#[cfg(feature = "native")]
pub const SHARED_OBJECT: &str = env!("SANDLINK_EXPAT_SO");

/// The Stubs strategy's wrappers for this crate's binding module, compiled
/// against `expat.h` and linked into this crate with expat (the `native`
/// feature): `unsafe { sandlink::Stubs::open(sandlink_expat::stubs::stub_table()) }`.
#[cfg(feature = "native")]
pub mod stubs {
    include!(env!("SANDLINK_EXPAT_STUBS"));
}

/// [`MODULE`] with its machine code, compiled when this crate was built
/// (the `precompiled` feature): `config.open_precompiled(PRECOMPILED,
/// "expat")` compiles nothing when the code fits this machine, and compiles
/// [`MODULE`] when it does not (another CPU than the build machine's).
#[cfg(feature = "precompiled")]
// SAFETY: the code is the file this crate's build script had sandlink-build
// write for `MODULE` (`SandboxConfig::precompile`'s output), unmodified:
// `Precompiled::new`'s contract.
pub const PRECOMPILED: sandlink::Precompiled<'static> =
    unsafe { sandlink::Precompiled::new(MODULE, include_bytes!(env!("SANDLINK_EXPAT_CWASM"))) };

/// The embedded expat ([`MODULE`]) in a new sandbox with the default
/// limits, bound: ready for [`Parser::new`]. Each call is a new, separate
/// instance (the compiled code is shared, so only the first call compiles;
/// with the `precompiled` feature, none does).
#[cfg(feature = "embedded")]
pub fn sandboxed() -> sandlink::Result<Expat<sandlink::Sandbox>> {
    #[cfg(feature = "precompiled")]
    let lib = sandlink::Sandbox::open_precompiled(PRECOMPILED, "expat")?;
    #[cfg(not(feature = "precompiled"))]
    let lib = sandlink::Sandbox::open_bytes(MODULE, "expat")?;
    Expat::bind(&lib)
}
pub use parser::{
    AttributeError, AttributeList, Attributes, Event, Events, ExpatError, Flow, Handler,
    OwnedEvent, Parser, ParserOptions, Status,
};
