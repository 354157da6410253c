//! A safe, streaming XML parser on top of the bindings, for any strategy.

use std::any::Any;
use std::io::Read;
use std::ops::BitOr;
use std::sync::{Arc, Mutex, MutexGuard};

use sandlink::types::{char, ptr_opt, Typ};
use sandlink::{Error, Foreign, Function, Ptr};

use crate::bindings::{Expat, XmlParser};

/// Errors from parsing: the document's, the library's, or reading input.
#[derive(Debug, thiserror::Error)]
pub enum ExpatError {
    /// The document is not well-formed (or a handler aborted): expat's own
    /// message and position.
    #[error("{message} at line {line}, column {column}")]
    Parse {
        /// `enum XML_Error` value.
        code: i32,
        /// `XML_ErrorString(code)`.
        message: String,
        /// `XML_GetCurrentLineNumber` (1-based).
        line: u64,
        /// `XML_GetCurrentColumnNumber` (0-based, as expat counts).
        column: u64,
        /// `XML_GetCurrentByteIndex`.
        byte_index: i64,
    },
    /// The library or the strategy failed (a trap, a bad value, …).
    #[error(transparent)]
    Library(#[from] Error),
    /// Reading the input failed.
    #[error("reading the document: {0}")]
    Io(#[from] std::io::Error),
}

/// What a handler wants the parser to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep parsing.
    Continue,
    /// Suspend (`XML_StopParser(p, XML_TRUE)`): the current `feed` returns
    /// [`Status::Suspended`]; [`Parser::resume`] goes on.
    Suspend,
    /// Abort (`XML_StopParser(p, XML_FALSE)`): parsing ends with an error.
    Abort,
}

/// How far a call to the parser got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// All input so far was consumed.
    Ok,
    /// A handler suspended parsing.
    Suspended,
}

/// One parse event, with every argument expat passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A start tag, with its attributes as (name, value) pairs in document order.
    StartElement {
        /// The element name as expat reports it.
        name: String,
        /// The attributes.
        attributes: Vec<(String, String)>,
    },
    /// An end tag (or the end of an empty element).
    EndElement {
        /// The element name.
        name: String,
    },
    /// A run of character data (expat may split runs arbitrarily).
    Characters(String),
    /// `<?target data?>`.
    ProcessingInstruction {
        /// The target.
        target: String,
        /// The data.
        data: String,
    },
    /// `<!--data-->`.
    Comment(String),
    /// `<![CDATA[`.
    StartCdata,
    /// `]]>`.
    EndCdata,
    /// Anything with no other handler, verbatim (only with [`Events::DEFAULT`]).
    Default(String),
    /// `<?xml version=… encoding=… standalone=…?>`.
    XmlDecl {
        /// The version, if given.
        version: Option<String>,
        /// The encoding, if given.
        encoding: Option<String>,
        /// -1 when absent, 0 for "no", 1 for "yes".
        standalone: i32,
    },
    /// A namespace comes into scope (only with namespace processing).
    StartNamespace {
        /// The prefix, `None` for the default namespace.
        prefix: Option<String>,
        /// The URI, `None` when undeclaring the default namespace.
        uri: Option<String>,
    },
    /// A namespace goes out of scope.
    EndNamespace {
        /// The prefix.
        prefix: Option<String>,
    },
}

/// A set of event kinds to subscribe to. Unsubscribed kinds cost nothing:
/// no callback is registered for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Events(u16);

impl Events {
    /// No handlers at all: expat only checks the document.
    pub const NONE: Events = Events(0);
    /// Start and end tags, with their attributes.
    pub const ELEMENTS: Events = Events(1);
    /// Character data.
    pub const CHARACTERS: Events = Events(2);
    /// Processing instructions.
    pub const PROCESSING_INSTRUCTIONS: Events = Events(4);
    /// Comments.
    pub const COMMENTS: Events = Events(8);
    /// CDATA section boundaries.
    pub const CDATA: Events = Events(16);
    /// The default handler. Registering it turns off expansion of internal
    /// entity references (expat passes them here instead).
    pub const DEFAULT: Events = Events(32);
    /// The XML declaration.
    pub const XML_DECL: Events = Events(64);
    /// Namespace declarations (reported when namespace processing is on).
    pub const NAMESPACES: Events = Events(128);
    /// Everything but [`Events::DEFAULT`].
    pub const STANDARD: Events = Events(0xff & !32);
    /// Everything.
    pub const ALL: Events = Events(0xff);
    /// Start and end tags without their attributes: `StartElement` comes
    /// with an empty `attributes`, and the attribute strings are never read
    /// out of the library. For handlers that need only the names (a tree
    /// printer): cheaper, the more attributes a document has. With
    /// [`Events::ELEMENTS`] too, attributes are read.
    pub const ELEMENT_NAMES: Events = Events(256);

    /// Whether every kind in `other` is in `self`.
    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, o: Events) -> Events {
        Events(self.0 | o.0)
    }
}

/// Receives parse events.
pub trait Handler {
    /// The events to subscribe to.
    fn events(&self) -> Events {
        Events::STANDARD
    }
    /// Handles one event.
    fn handle(&mut self, event: Event) -> Flow;
}

/// Any `FnMut(Event) -> Flow` is a handler for the standard events.
impl<F: FnMut(Event) -> Flow> Handler for F {
    fn handle(&mut self, event: Event) -> Flow {
        self(event)
    }
}

/// Options for creating a parser.
#[derive(Clone, Debug, Default)]
pub struct ParserOptions {
    /// Input encoding to assume, overriding the document's declaration.
    pub encoding: Option<String>,
    /// Namespace processing with this separator (`XML_ParserCreateNS`):
    /// names come out as `uri<sep>local`.
    pub namespace_separator: Option<u8>,
    /// A fixed hash salt (`XML_SetHashSalt`), for reproducible runs.
    pub hash_salt: Option<u64>,
    /// Billion-laughs protection: maximum amplification factor.
    pub max_amplification: Option<f32>,
    /// Billion-laughs protection: bytes of output before it activates.
    pub amplification_threshold: Option<u64>,
}

/// An expat parser that delivers events to a [`Handler`] `H`.
///
/// It is `Send` when the strategy is (both are): a parser, with its handler,
/// may move to another thread.
pub struct Parser<L: Foreign, H: Handler + Send + 'static> {
    expat: Expat<L>,
    raw: XmlParser,
    handler: Arc<Mutex<H>>,
    callbacks: Vec<Box<dyn Any + Send>>,
    freed: bool,
}

/// Most attributes read from one start tag before the list is rejected as
/// unterminated (expat never produces this many).
const MAX_ATTRIBUTE_STRINGS: u64 = 1 << 24;

impl<L: Foreign, H: Handler + Send + 'static> Parser<L, H> {
    /// A parser with default options (no namespace processing). It keeps
    /// its own (cheap) copy of the bindings.
    pub fn new(expat: &Expat<L>, handler: H) -> Result<Self, ExpatError> {
        Self::with_options(expat, handler, &ParserOptions::default())
    }

    /// A parser with `options`.
    pub fn with_options(
        expat: &Expat<L>,
        handler: H,
        options: &ParserOptions,
    ) -> Result<Self, ExpatError> {
        let encoding = options.encoding.as_deref();
        let raw = match options.namespace_separator {
            None => expat.parser_create.call((encoding,))?,
            Some(sep) => expat.parser_create_ns.call((encoding, sep as i8))?,
        };
        let raw = raw.ok_or_else(|| Error::Alloc {
            function: Some("XML_ParserCreate".into()),
            size: 0,
            reason: "XML_ParserCreate returned NULL (out of memory in the library)".into(),
        })?;
        let mut parser = Parser {
            expat: expat.clone(),
            raw,
            handler: Arc::new(Mutex::new(handler)),
            callbacks: Vec::new(),
            freed: false,
        };
        parser.configure(options)?;
        Ok(parser)
    }

    fn configure(&mut self, options: &ParserOptions) -> Result<(), ExpatError> {
        let ex = &self.expat;
        if let Some(salt) = options.hash_salt {
            ex.set_hash_salt.call((self.raw, salt))?;
        }
        if let Some(f) = options.max_amplification {
            ex.set_billion_laughs_max_amplification
                .call((self.raw, f))?;
        }
        if let Some(t) = options.amplification_threshold {
            ex.set_billion_laughs_activation_threshold
                .call((self.raw, t))?;
        }
        self.install_handlers()
    }

    /// Registers one callback per subscribed event kind.
    fn install_handlers(&mut self) -> Result<(), ExpatError> {
        let events = lock(&self.handler).events();
        let ex = self.expat.clone();
        let t = &ex.types;
        let lib = &ex.lib;
        let raw = self.raw;
        let mut keep: Vec<Box<dyn Any + Send>> = Vec::new();
        let ctx = || Dispatch {
            lib: self.expat.lib.clone(),
            stop_parser: self.expat.stop_parser.clone(),
            handler: self.handler.clone(),
            raw,
        };

        if events.contains(Events::ELEMENTS) || events.contains(Events::ELEMENT_NAMES) {
            let d = ctx();
            let string_ptr: Typ<Option<Ptr<i8>>> = ptr_opt(char());
            let with_attributes = events.contains(Events::ELEMENTS);
            let start = lib.callback(&t.start_element, move |(_, name, atts)| {
                if !with_attributes {
                    return d.send(Event::StartElement {
                        name,
                        attributes: Vec::new(),
                    });
                }
                // SAFETY: expat passes `atts` as a NULL-terminated array of
                // NUL-terminated strings (expat.h, XML_StartElementHandler),
                // valid for the duration of the handler. Only a `Dynamic`
                // expat is trusted with this; a sandboxed one is checked.
                let ptrs = unsafe {
                    d.lib
                        .read_terminated_unchecked(&string_ptr, atts, MAX_ATTRIBUTE_STRINGS)
                }?;
                if ptrs.len() % 2 != 0 {
                    return Err(Error::InvalidValue {
                        function: None,
                        what: format!("attributes of <{name}>"),
                        reason: format!("{} strings, not name/value pairs", ptrs.len()),
                    });
                }
                let mut attributes = Vec::with_capacity(ptrs.len() / 2);
                for pair in ptrs.chunks_exact(2) {
                    // SAFETY: the array's elements are NUL-terminated strings
                    // (as above).
                    let (k, v) = unsafe {
                        (
                            d.lib.read_string_unchecked(pair[0])?,
                            d.lib.read_string_unchecked(pair[1])?,
                        )
                    };
                    attributes.push((k, v));
                }
                d.send(Event::StartElement { name, attributes })
            })?;
            let d = ctx();
            let end = lib.callback(&t.end_element, move |(_, name)| {
                d.send(Event::EndElement { name })
            })?;
            ex.set_element_handler
                .call((raw, Some(&start), Some(&end)))?;
            keep.push(Box::new(start));
            keep.push(Box::new(end));
        }
        if events.contains(Events::CHARACTERS) {
            let d = ctx();
            let cb = lib.callback(&t.text, move |(_, bytes)| {
                d.send(Event::Characters(utf8(bytes, "character data")?))
            })?;
            ex.set_character_data_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::PROCESSING_INSTRUCTIONS) {
            let d = ctx();
            let cb = lib.callback(&t.pi, move |(_, target, data)| {
                d.send(Event::ProcessingInstruction { target, data })
            })?;
            ex.set_processing_instruction_handler
                .call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::COMMENTS) {
            let d = ctx();
            let cb = lib.callback(&t.comment, move |(_, data)| d.send(Event::Comment(data)))?;
            ex.set_comment_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::CDATA) {
            let d = ctx();
            let start = lib.callback(&t.cdata, move |_| d.send(Event::StartCdata))?;
            let d = ctx();
            let end = lib.callback(&t.cdata, move |_| d.send(Event::EndCdata))?;
            ex.set_start_cdata_section_handler
                .call((raw, Some(&start)))?;
            ex.set_end_cdata_section_handler.call((raw, Some(&end)))?;
            keep.push(Box::new(start));
            keep.push(Box::new(end));
        }
        if events.contains(Events::DEFAULT) {
            let d = ctx();
            let cb = lib.callback(&t.text, move |(_, bytes)| {
                d.send(Event::Default(utf8(bytes, "default handler data")?))
            })?;
            ex.set_default_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::XML_DECL) {
            let d = ctx();
            let cb = lib.callback(&t.xml_decl, move |(_, version, encoding, standalone)| {
                d.send(Event::XmlDecl {
                    version,
                    encoding,
                    standalone,
                })
            })?;
            ex.set_xml_decl_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::NAMESPACES) {
            let d = ctx();
            let start = lib.callback(&t.start_ns, move |(_, prefix, uri)| {
                d.send(Event::StartNamespace { prefix, uri })
            })?;
            let d = ctx();
            let end = lib.callback(&t.end_ns, move |(_, prefix)| {
                d.send(Event::EndNamespace { prefix })
            })?;
            ex.set_start_namespace_decl_handler
                .call((raw, Some(&start)))?;
            ex.set_end_namespace_decl_handler.call((raw, Some(&end)))?;
            keep.push(Box::new(start));
            keep.push(Box::new(end));
        }
        self.callbacks = keep;
        Ok(())
    }

    fn status(&self, st: i32) -> Result<Status, ExpatError> {
        match st {
            1 => Ok(Status::Ok),
            2 => Ok(Status::Suspended),
            0 => Err(self.error()),
            other => Err(Error::InvalidValue {
                function: None,
                what: "XML_Status".into(),
                reason: format!("{other} is not a status"),
            }
            .into()),
        }
    }

    /// The parser's current error, with expat's message and position.
    pub fn error(&self) -> ExpatError {
        let build = || -> Result<ExpatError, Error> {
            let ex = &self.expat;
            let code = ex.get_error_code.call((self.raw,))?;
            let message = ex
                .error_string
                .call((code,))?
                .unwrap_or_else(|| format!("unknown expat error {code}"));
            Ok(ExpatError::Parse {
                code,
                message,
                line: ex.get_current_line_number.call((self.raw,))?,
                column: ex.get_current_column_number.call((self.raw,))?,
                byte_index: ex.get_current_byte_index.call((self.raw,))?,
            })
        };
        build().unwrap_or_else(ExpatError::Library)
    }

    /// Parses the next piece of the document (any size; split for expat's
    /// `int` lengths as needed).
    pub fn feed(&mut self, data: &[u8]) -> Result<Status, ExpatError> {
        self.parse_chunk(data, false)
    }

    /// Tells expat the document is complete; reports any final error.
    pub fn finish(&mut self) -> Result<Status, ExpatError> {
        self.parse_chunk(&[], true)
    }

    /// `feed(data)` then `finish()`.
    pub fn parse(&mut self, data: &[u8]) -> Result<Status, ExpatError> {
        self.parse_chunk(data, true)
    }

    fn parse_chunk(&mut self, data: &[u8], is_final: bool) -> Result<Status, ExpatError> {
        const MAX: usize = i32::MAX as usize;
        let mut rest = data;
        loop {
            let (now, later) = rest.split_at(rest.len().min(MAX));
            let last = later.is_empty();
            let st = self
                .expat
                .parse
                .call((self.raw, now, i32::from(is_final && last)))?;
            let st = self.status(st)?;
            if last || st == Status::Suspended {
                return Ok(st);
            }
            rest = later;
        }
    }

    /// Streams a whole document from `reader` in chunks of `chunk` bytes,
    /// straight into expat's own buffer (`XML_GetBuffer`/`XML_ParseBuffer`):
    /// the document never has to fit in memory.
    pub fn parse_reader(
        &mut self,
        mut reader: impl Read,
        chunk: usize,
    ) -> Result<Status, ExpatError> {
        let chunk = chunk.clamp(1, i32::MAX as usize);
        let mut buf = vec![0u8; chunk];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                // End of input. `XML_ParseBuffer` needs a buffer from a
                // prior `XML_GetBuffer`, which an empty document never had;
                // `XML_Parse(p, NULL, 0, 1)` ends every document the way
                // expat's own tools and pyexpat do, so an empty one reports
                // expat's "no element found".
                return self.finish();
            }
            let dst = self
                .expat
                .get_buffer
                .call((self.raw, n as i32))?
                .ok_or_else(|| self.error())?;
            // SAFETY: `XML_GetBuffer(p, n)` returned a buffer of at least
            // `n` bytes owned by the parser (expat.h); it stays valid until
            // the `XML_ParseBuffer` below.
            unsafe { self.expat.lib.write_bytes_unchecked(dst, &buf[..n]) }?;
            let st = self.expat.parse_buffer.call((self.raw, n as i32, 0))?;
            if self.status(st)? == Status::Suspended {
                return Ok(Status::Suspended);
            }
        }
    }

    /// Resumes after a handler suspended parsing.
    pub fn resume(&mut self) -> Result<Status, ExpatError> {
        let st = self.expat.resume_parser.call((self.raw,))?;
        self.status(st)
    }

    /// Resets the parser for a new document (`XML_ParserReset`), keeping the
    /// handler and options.
    pub fn reset(&mut self, options: &ParserOptions) -> Result<(), ExpatError> {
        let ok = self
            .expat
            .parser_reset
            .call((self.raw, options.encoding.as_deref()))?;
        if ok == 0 {
            return Err(Error::InvalidValue {
                function: Some("XML_ParserReset".into()),
                what: "return value".into(),
                reason: "expat refused to reset the parser (called from a handler?)".into(),
            }
            .into());
        }
        // Reset clears handlers and settings; register them again.
        self.callbacks.clear();
        self.configure(options)
    }

    /// The handler (outside a callback; inside one it is the callback's).
    pub fn handler(&self) -> MutexGuard<'_, H> {
        lock(&self.handler)
    }

    /// The handler, mutably: the same guard as [`Parser::handler`].
    pub fn handler_mut(&self) -> MutexGuard<'_, H> {
        lock(&self.handler)
    }

    /// Frees the parser and gives the handler back.
    pub fn into_handler(mut self) -> Result<H, ExpatError> {
        self.free();
        let handler = self.handler.clone();
        drop(self);
        Arc::try_unwrap(handler)
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .map_err(|_| {
                Error::Unsupported("the handler is still shared with a live callback".into()).into()
            })
    }

    fn free(&mut self) {
        if !self.freed {
            self.freed = true;
            // A poisoned sandbox cannot run XML_ParserFree; its memory goes
            // with the instance.
            let _ = self.expat.parser_free.call((self.raw,));
            self.callbacks.clear();
        }
    }
}

impl<L: Foreign, H: Handler + Send + 'static> Drop for Parser<L, H> {
    fn drop(&mut self) {
        self.free();
    }
}

/// Locks a handler; a panic in an earlier handler call (caught at the C
/// boundary and reported then) leaves it usable.
fn lock<H>(h: &Mutex<H>) -> MutexGuard<'_, H> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

/// What each callback closure needs to deliver an event.
struct Dispatch<L: Foreign, H: Handler> {
    lib: L,
    stop_parser: Function<L, (XmlParser, u8), i32>,
    handler: Arc<Mutex<H>>,
    raw: XmlParser,
}

impl<L: Foreign, H: Handler> Dispatch<L, H> {
    fn send(&self, event: Event) -> sandlink::Result<()> {
        let flow = match self.handler.try_lock() {
            Ok(mut h) => h.handle(event),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().handle(event),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(Error::Unsupported(
                    "the handler is already borrowed (through `Parser::handler`?)".into(),
                ))
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::Suspend => {
                self.stop_parser.call((self.raw, 1))?;
            }
            Flow::Abort => {
                self.stop_parser.call((self.raw, 0))?;
            }
        }
        Ok(())
    }
}

fn utf8(bytes: Vec<u8>, what: &str) -> sandlink::Result<String> {
    String::from_utf8(bytes).map_err(|e| Error::InvalidValue {
        function: None,
        what: what.into(),
        reason: format!("expat passed invalid UTF-8: {}", e.utf8_error()),
    })
}
