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
//! use sandlink::Sandbox;
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
//! let lib = Sandbox::open(sandlink_clibs::EXPAT_WASM)?; // or Dynamic::open(...)
//! let expat = Expat::bind(&lib)?;
//! let mut parser = Parser::new(&expat, Names(Vec::new()))?;
//! parser.parse(b"<a><b/><c/></a>")?;
//! assert_eq!(parser.into_handler()?.0, ["a", "b", "c"]);
//! # Ok(()) }
//! ```

pub mod bindings;
mod parser;

pub use bindings::Expat;
pub use parser::{
    AttributeError, AttributeList, Attributes, Event, Events, ExpatError, Flow, Handler,
    OwnedEvent, Parser, ParserOptions, Status,
};
