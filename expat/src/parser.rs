//! A safe, streaming XML parser on top of the bindings, for any strategy.

use std::any::Any;
use std::cell::{Cell, Ref, RefCell};
use std::io::Read;
use std::ops::BitOr;
use std::sync::{Arc, Mutex, MutexGuard};

use sandlink::types::{BytesRef, FunPtr, Params, StrArrayRef, StrRef, Typ};
use sandlink::{Callback, Error, Foreign, Function};

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

/// One parse event, with every argument expat passed, borrowed for the
/// duration of the handler call: names and text are read out of the library
/// into buffers the parser reuses, so delivering an event allocates nothing.
/// [`Event::into_owned`] copies one out.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A start tag. Its attributes are read out of the library only if the
    /// handler asks for them ([`Attributes::read`]).
    StartElement {
        /// The element name as expat reports it.
        name: &'a str,
        /// The attributes, read on demand.
        attributes: Attributes<'a>,
    },
    /// An end tag (or the end of an empty element).
    EndElement {
        /// The element name.
        name: &'a str,
    },
    /// A run of character data (expat may split runs arbitrarily).
    Characters(&'a str),
    /// `<?target data?>`.
    ProcessingInstruction {
        /// The target.
        target: &'a str,
        /// The data.
        data: &'a str,
    },
    /// `<!--data-->`.
    Comment(&'a str),
    /// `<![CDATA[`.
    StartCdata,
    /// `]]>`.
    EndCdata,
    /// Anything with no other handler, verbatim (only with [`Events::DEFAULT`]).
    Default(&'a str),
    /// `<?xml version=… encoding=… standalone=…?>`.
    XmlDecl {
        /// The version, if given.
        version: Option<&'a str>,
        /// The encoding, if given.
        encoding: Option<&'a str>,
        /// -1 when absent, 0 for "no", 1 for "yes".
        standalone: i32,
    },
    /// A namespace comes into scope (only with namespace processing).
    StartNamespace {
        /// The prefix, `None` for the default namespace.
        prefix: Option<&'a str>,
        /// The URI, `None` when undeclaring the default namespace.
        uri: Option<&'a str>,
    },
    /// A namespace goes out of scope.
    EndNamespace {
        /// The prefix.
        prefix: Option<&'a str>,
    },
}

/// An [`Event`] copied out of the handler call, to keep: the same shape with
/// owned strings, and a start tag's attributes read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedEvent {
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
    /// A run of character data.
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
    /// Anything with no other handler, verbatim.
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
    /// A namespace comes into scope.
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

impl Event<'_> {
    /// Copies the event out, reading a start tag's attributes. Fails only
    /// when the library passed a malformed attribute list (the parse then
    /// fails with the full error too).
    pub fn into_owned(self) -> Result<OwnedEvent, AttributeError> {
        let own = |s: &str| s.to_owned();
        let opt = |s: Option<&str>| s.map(str::to_owned);
        Ok(match self {
            Event::StartElement { name, attributes } => OwnedEvent::StartElement {
                name: own(name),
                attributes: attributes.to_vec()?,
            },
            Event::EndElement { name } => OwnedEvent::EndElement { name: own(name) },
            Event::Characters(s) => OwnedEvent::Characters(own(s)),
            Event::ProcessingInstruction { target, data } => OwnedEvent::ProcessingInstruction {
                target: own(target),
                data: own(data),
            },
            Event::Comment(s) => OwnedEvent::Comment(own(s)),
            Event::StartCdata => OwnedEvent::StartCdata,
            Event::EndCdata => OwnedEvent::EndCdata,
            Event::Default(s) => OwnedEvent::Default(own(s)),
            Event::XmlDecl {
                version,
                encoding,
                standalone,
            } => OwnedEvent::XmlDecl {
                version: opt(version),
                encoding: opt(encoding),
                standalone,
            },
            Event::StartNamespace { prefix, uri } => OwnedEvent::StartNamespace {
                prefix: opt(prefix),
                uri: opt(uri),
            },
            Event::EndNamespace { prefix } => OwnedEvent::EndNamespace {
                prefix: opt(prefix),
            },
        })
    }
}

/// A start tag's attributes, read out of the library the first time the
/// handler asks ([`Attributes::read`]); a handler that never asks pays
/// nothing for them. Valid only during the handler call.
#[derive(Clone, Copy)]
pub struct Attributes<'a> {
    source: Option<&'a dyn LoadAttributes>,
}

impl std::fmt::Debug for Attributes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.source {
            None => f.write_str("Attributes(none)"),
            Some(_) => f.write_str("Attributes(unread)"),
        }
    }
}

impl<'a> Attributes<'a> {
    /// Attributes that were not asked for ([`Events::ELEMENT_NAMES`]):
    /// always empty.
    const NONE: Attributes<'static> = Attributes { source: None };

    /// The (name, value) pairs in document order. The first call reads them
    /// out of the library (into buffers the parser reuses); later calls in
    /// the same handler call return the same list.
    pub fn read(&self) -> Result<AttributeList<'a>, AttributeError> {
        match self.source {
            None => Ok(AttributeList { list: None }),
            Some(src) => src.load().map(|list| AttributeList { list: Some(list) }),
        }
    }

    /// The pairs as owned strings.
    pub fn to_vec(&self) -> Result<Vec<(String, String)>, AttributeError> {
        Ok(self
            .read()?
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }
}

/// A start tag's attributes, read: see [`Attributes::read`].
pub struct AttributeList<'a> {
    list: Option<Ref<'a, AttributeBuf>>,
}

impl AttributeList<'_> {
    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.list.as_ref().map_or(0, |l| l.pairs.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The (name, value) pairs in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.list.iter().flat_map(|l| {
            l.pairs
                .iter()
                .map(|&(k, v)| (&l.text[k.0..k.1], &l.text[v.0..v.1]))
        })
    }

    /// The value of attribute `name`, if the tag has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// Why a start tag's attributes could not be read: the library passed a
/// malformed list (never the case with a well-behaved expat). The parse
/// fails with the full error as well.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AttributeError(String);

/// One start tag's attributes, read: every string appended to one buffer.
#[derive(Default)]
struct AttributeBuf {
    text: String,
    pairs: Vec<((usize, usize), (usize, usize))>,
}

/// Where an [`Attributes`] is read from: the start-element callback's
/// `atts` argument (of type `A`: the library's borrowed array) and reusable
/// buffers.
struct AttributeSource<A: Copy> {
    reader: Box<dyn AttributeReader<A>>,
    atts: Cell<Option<A>>,
    loaded: Cell<bool>,
    buf: RefCell<AttributeBuf>,
    failed: RefCell<Option<Error>>,
}

/// Reads an `atts` array out of one library.
trait AttributeReader<A>: Send {
    fn read_into(&self, atts: A, buf: &mut AttributeBuf) -> Result<(), Error>;
}

/// An [`AttributeSource`] whatever its array type, as [`Attributes`] sees it.
trait LoadAttributes {
    fn load(&self) -> Result<Ref<'_, AttributeBuf>, AttributeError>;
}

impl<A: Copy> LoadAttributes for AttributeSource<A> {
    fn load(&self) -> Result<Ref<'_, AttributeBuf>, AttributeError> {
        AttributeSource::load(self)
    }
}

impl<A: Copy> AttributeSource<A> {
    fn new(reader: Box<dyn AttributeReader<A>>) -> AttributeSource<A> {
        AttributeSource {
            reader,
            atts: Cell::new(None),
            loaded: Cell::new(false),
            buf: RefCell::new(AttributeBuf::default()),
            failed: RefCell::new(None),
        }
    }

    /// Starts a new start tag (forgetting anything a handler that panicked
    /// left behind).
    fn reset(&self, atts: A) {
        self.atts.set(Some(atts));
        self.loaded.set(false);
        self.failed.borrow_mut().take();
    }

    /// Ends the tag: the array is not to be read after the callback.
    fn finish(&self) -> Option<Error> {
        self.atts.set(None);
        self.failed.borrow_mut().take()
    }

    fn load(&self) -> Result<Ref<'_, AttributeBuf>, AttributeError> {
        if let Some(e) = &*self.failed.borrow() {
            return Err(AttributeError(e.to_string()));
        }
        if !self.loaded.get() {
            let Some(atts) = self.atts.get() else {
                return Err(AttributeError(
                    "the attributes were asked for after their start tag's handler returned".into(),
                ));
            };
            // Not loaded means no `AttributeList` borrows the buffer (one is
            // made only after a load), so this borrow is free.
            let mut buf = self.buf.try_borrow_mut().map_err(|_| {
                AttributeError("the attribute buffer is in use (re-entered?)".into())
            })?;
            buf.text.clear();
            buf.pairs.clear();
            if let Err(e) = self.reader.read_into(atts, &mut buf) {
                let shown = AttributeError(e.to_string());
                *self.failed.borrow_mut() = Some(e);
                return Err(shown);
            }
            self.loaded.set(true);
        }
        Ok(self.buf.borrow())
    }
}

/// [`AttributeReader`] for library `L`.
struct ReadAtts<L: Foreign> {
    lib: L,
}

impl<L: Foreign> AttributeReader<StrArrayRef> for ReadAtts<L> {
    fn read_into(&self, atts: StrArrayRef, buf: &mut AttributeBuf) -> Result<(), Error> {
        let AttributeBuf { text, pairs } = buf;
        let mut name = true;
        let add = |s: StrRef| {
            let r = self.lib.read_str_into(s, text)?;
            if name {
                pairs.push(((r.start, r.end), (0, 0)));
            } else if let Some(last) = pairs.last_mut() {
                last.1 = (r.start, r.end);
            }
            name = !name;
            Ok(())
        };
        // `atts` is declared a borrowed NULL-terminated array of strings
        // (expat.h, XML_StartElementHandler), valid for the duration of the
        // handler, and this runs only during it (`AttributeSource::atts` is
        // cleared when the handler returns).
        let n = self.lib.for_each_str(atts, MAX_ATTRIBUTE_STRINGS, add)?;
        if n % 2 != 0 {
            return Err(Error::InvalidValue {
                function: None,
                what: "a start tag's attribute list".into(),
                reason: format!("{n} strings, not name/value pairs"),
            });
        }
        Ok(())
    }
}

/// A set of event kinds to subscribe to. Unsubscribed kinds cost nothing:
/// no callback is registered for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Events(u16);

impl Events {
    /// No handlers at all: expat only checks the document.
    pub const NONE: Events = Events(0);
    /// Start and end tags, with their attributes (read only when the
    /// handler asks, [`Attributes::read`]).
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
    /// with attributes that read as empty. Since attributes are read only
    /// on demand, this saves little over [`Events::ELEMENTS`] (see
    /// BENCHMARKS.md); it says in the subscription that a handler never
    /// looks at them. With [`Events::ELEMENTS`] too, attributes are there.
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
    /// Handles one event. Its strings are borrowed for this call only:
    /// [`Event::into_owned`] keeps one.
    fn handle(&mut self, event: Event<'_>) -> Flow;

    /// Whether events may reach [`Handler::handle`] in batches
    /// ([`sandlink::Foreign::callback_batched`]): expat's calls are
    /// recorded where it runs and delivered together, in order, with their
    /// strings as they were. Where a callback is a costly crossing (the
    /// `Process` strategy) this is many times faster; elsewhere events are
    /// delivered one by one as before.
    ///
    /// A batched handler promises to return [`Flow::Continue`] only: by
    /// the time it sees an event, expat has parsed past it, so it cannot
    /// suspend or abort there. [`Flow::Suspend`] or [`Flow::Abort`] from
    /// it fails the `feed` with an error instead. A handler that asks expat
    /// where it is (`XML_GetCurrentLineNumber` through the bindings) gets
    /// the answer for a later point.
    fn batched(&self) -> bool {
        false
    }
}

/// Any `FnMut(Event) -> Flow` is a handler for the standard events.
impl<F: FnMut(Event<'_>) -> Flow> Handler for F {
    fn handle(&mut self, event: Event<'_>) -> Flow {
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
        let (events, batched) = {
            let h = lock(&self.handler);
            (h.events(), h.batched())
        };
        let ex = self.expat.clone();
        let t = &ex;
        let lib = &ex.lib;
        let raw = self.raw;
        let mut keep: Vec<Box<dyn Any + Send>> = Vec::new();
        let ctx = || Dispatch {
            lib: self.expat.lib.clone(),
            stop_parser: self.expat.stop_parser.clone(),
            handler: self.handler.clone(),
            raw,
            batched,
        };

        if events.contains(Events::ELEMENTS) || events.contains(Events::ELEMENT_NAMES) {
            let d = ctx();
            let mut name_buf = String::new();
            let end = handler_callback(lib, batched, &t.end_element, move |(_, name)| {
                let name = d.name(name, &mut name_buf)?;
                d.send(Event::EndElement { name })
            })?;
            let d = ctx();
            let mut name_buf = String::new();
            if events.contains(Events::ELEMENTS) {
                let source = AttributeSource::new(Box::new(ReadAtts {
                    lib: self.expat.lib.clone(),
                }));
                let start =
                    handler_callback(lib, batched, &t.start_element, move |(_, name, atts)| {
                        let name = d.name(name, &mut name_buf)?;
                        source.reset(atts);
                        let sent = d.send(Event::StartElement {
                            name,
                            attributes: Attributes {
                                source: Some(&source),
                            },
                        });
                        // A malformed list the handler ran into fails the
                        // parse, even if the handler carried on.
                        match source.finish() {
                            Some(e) => Err(e),
                            None => sent,
                        }
                    })?;
                ex.set_element_handler
                    .call((raw, Some(&start), Some(&end)))?;
                keep.push(Box::new(start));
            } else {
                // Names only: the attributes' pointer is not even looked
                // at (a batched callback copies none of them).
                let start =
                    handler_callback(lib, batched, &t.start_element_names, move |(_, name, _)| {
                        let name = d.name(name, &mut name_buf)?;
                        d.send(Event::StartElement {
                            name,
                            attributes: Attributes::NONE,
                        })
                    })?;
                ex.set_element_handler_names
                    .call((raw, Some(&start), Some(&end)))?;
                keep.push(Box::new(start));
            }
            keep.push(Box::new(end));
        }
        if events.contains(Events::CHARACTERS) {
            let d = ctx();
            let mut text_buf = Vec::new();
            let cb = handler_callback(lib, batched, &t.text, move |(_, s)| {
                let text = d.text(s, &mut text_buf, "character data")?;
                d.send(Event::Characters(text))
            })?;
            ex.set_character_data_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::PROCESSING_INSTRUCTIONS) {
            let d = ctx();
            let cb = handler_callback(lib, batched, &t.pi, move |(_, target, data)| {
                d.send(Event::ProcessingInstruction {
                    target: &target,
                    data: &data,
                })
            })?;
            ex.set_processing_instruction_handler
                .call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::COMMENTS) {
            let d = ctx();
            let cb = handler_callback(lib, batched, &t.comment, move |(_, data)| {
                d.send(Event::Comment(&data))
            })?;
            ex.set_comment_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::CDATA) {
            let d = ctx();
            let start =
                handler_callback(lib, batched, &t.cdata, move |_| d.send(Event::StartCdata))?;
            let d = ctx();
            let end = handler_callback(lib, batched, &t.cdata, move |_| d.send(Event::EndCdata))?;
            ex.set_start_cdata_section_handler
                .call((raw, Some(&start)))?;
            ex.set_end_cdata_section_handler.call((raw, Some(&end)))?;
            keep.push(Box::new(start));
            keep.push(Box::new(end));
        }
        if events.contains(Events::DEFAULT) {
            let d = ctx();
            let mut text_buf = Vec::new();
            let cb = handler_callback(lib, batched, &t.text, move |(_, s)| {
                let text = d.text(s, &mut text_buf, "default handler data")?;
                d.send(Event::Default(text))
            })?;
            ex.set_default_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::XML_DECL) {
            let d = ctx();
            let cb = handler_callback(
                lib,
                batched,
                &t.xml_decl,
                move |(_, version, encoding, standalone)| {
                    d.send(Event::XmlDecl {
                        version: version.as_deref(),
                        encoding: encoding.as_deref(),
                        standalone,
                    })
                },
            )?;
            ex.set_xml_decl_handler.call((raw, Some(&cb)))?;
            keep.push(Box::new(cb));
        }
        if events.contains(Events::NAMESPACES) {
            let d = ctx();
            let start = handler_callback(lib, batched, &t.start_ns, move |(_, prefix, uri)| {
                d.send(Event::StartNamespace {
                    prefix: prefix.as_deref(),
                    uri: uri.as_deref(),
                })
            })?;
            let d = ctx();
            let end = handler_callback(lib, batched, &t.end_ns, move |(_, prefix)| {
                d.send(Event::EndNamespace {
                    prefix: prefix.as_deref(),
                })
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

    /// Streams a whole document from `reader` in chunks of `chunk` bytes
    /// (`XML_Parse` per chunk): the document never has to fit in memory.
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
                // End of input: `XML_Parse(p, NULL, 0, 1)` ends every
                // document the way expat's own tools and pyexpat do, so an
                // empty one reports expat's "no element found".
                return self.finish();
            }
            // The chunk travels as a `(const char *, int)` argument, so no
            // write into memory the host cannot size is needed (writing into
            // `XML_GetBuffer`'s block would be, on Dynamic and Stubs).
            let st = self.expat.parse.call((self.raw, &buf[..n], 0))?;
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
                Error::Busy {
                    function: None,
                    what: "the parser's handler".into(),
                    reason: "it is still shared with a live callback".into(),
                }
                .into()
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
    /// The handler said [`Handler::batched`].
    batched: bool,
}

/// A callback for one of expat's handler slots: batched when the handler
/// allows it.
fn handler_callback<L, A, F>(
    lib: &L,
    batched: bool,
    ty: &Typ<FunPtr<A, ()>>,
    f: F,
) -> sandlink::Result<Callback<A, ()>>
where
    L: Foreign,
    A: Params,
    F: FnMut(A::Out) -> sandlink::Result<()> + Send + 'static,
{
    if batched {
        lib.callback_batched(ty, f)
    } else {
        lib.callback(ty, f)
    }
}

impl<L: Foreign, H: Handler> Dispatch<L, H> {
    /// Reads an element name expat passed into `buf` (cleared first).
    fn name<'b>(&self, name: StrRef, buf: &'b mut String) -> sandlink::Result<&'b str> {
        buf.clear();
        let r = self.lib.read_str_into(name, buf)?;
        Ok(&buf[r])
    }

    /// Reads the `(s, len)` text expat passed into `buf` (cleared first),
    /// checked as UTF-8.
    fn text<'b>(&self, s: BytesRef, buf: &'b mut Vec<u8>, what: &str) -> sandlink::Result<&'b str> {
        buf.clear();
        self.lib.read_bytes_ref_into(s, buf)?;
        std::str::from_utf8(buf).map_err(|e| Error::InvalidValue {
            function: None,
            what: what.into(),
            reason: format!("expat passed invalid UTF-8: {e}"),
        })
    }

    fn send(&self, event: Event<'_>) -> sandlink::Result<()> {
        let flow = match self.handler.try_lock() {
            Ok(mut h) => h.handle(event),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().handle(event),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(Error::Busy {
                    function: None,
                    what: "the parser's handler".into(),
                    reason: "it is already borrowed (through `Parser::handler`?)".into(),
                })
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::Suspend | Flow::Abort if self.batched => {
                return Err(Error::Unsupported(format!(
                    "the handler returned Flow::{flow:?} with batched events \
                     (Handler::batched): expat has parsed past the event by the time \
                     the handler sees it, so it cannot stop there; return \
                     Flow::Continue, or do not batch"
                )));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Reads a fixed list, or fails, counting its reads.
    struct Fake {
        pairs: Option<Vec<(&'static str, &'static str)>>,
        reads: Arc<AtomicUsize>,
    }

    impl AttributeReader<()> for Fake {
        fn read_into(&self, _: (), buf: &mut AttributeBuf) -> Result<(), Error> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let Some(pairs) = &self.pairs else {
                return Err(Error::InvalidValue {
                    function: None,
                    what: "a start tag's attribute list".into(),
                    reason: "3 strings, not name/value pairs".into(),
                });
            };
            for (k, v) in pairs {
                let at = buf.text.len();
                buf.text.push_str(k);
                let mid = buf.text.len();
                buf.text.push_str(v);
                buf.pairs.push(((at, mid), (mid, buf.text.len())));
            }
            Ok(())
        }
    }

    fn source(
        pairs: Option<Vec<(&'static str, &'static str)>>,
    ) -> (AttributeSource<()>, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let fake = Fake {
            pairs,
            reads: reads.clone(),
        };
        (AttributeSource::new(Box::new(fake)), reads)
    }

    #[test]
    fn attributes_are_read_once_and_only_when_asked() {
        let (src, reads) = source(Some(vec![("a", "1"), ("bee", "two")]));
        src.reset(());
        let attributes = Attributes { source: Some(&src) };
        assert_eq!(
            reads.load(Ordering::Relaxed),
            0,
            "nothing read before asked"
        );
        let list = attributes.read().unwrap_or_else(|e| panic!("{e}"));
        let again = attributes.read().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reads.load(Ordering::Relaxed), 1, "read once per tag");
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            [("a", "1"), ("bee", "two")]
        );
        assert_eq!(
            (again.len(), again.get("bee"), again.get("c")),
            (2, Some("two"), None)
        );
        drop((list, again));
        assert!(src.finish().is_none());
        // The next tag reads afresh.
        src.reset(());
        assert_eq!(attributes.to_vec().map(|v| v.len()), Ok(2));
        assert_eq!(reads.load(Ordering::Relaxed), 2);
        // `ELEMENT_NAMES`: empty, nothing to read.
        assert!(Attributes::NONE.read().is_ok_and(|l| l.is_empty()));
    }

    #[test]
    fn a_malformed_list_reaches_the_handler_and_the_parse() {
        let (src, reads) = source(None);
        src.reset(());
        let attributes = Attributes { source: Some(&src) };
        let e = attributes
            .read()
            .err()
            .unwrap_or_else(|| panic!("read succeeded"));
        assert!(e.to_string().contains("not name/value pairs"), "{e}");
        // Asking again gives the same error without reading again.
        assert_eq!(attributes.read().err(), Some(e));
        assert_eq!(reads.load(Ordering::Relaxed), 1);
        // The callback then fails with the full error.
        let failed = src.finish();
        assert!(
            matches!(&failed, Some(Error::InvalidValue { reason, .. }) if reason.contains("pairs")),
            "{failed:?}"
        );
        // After the tag's handler, the array is not read at all.
        let late = attributes.read().err().map(|e| e.to_string());
        assert!(
            late.is_some_and(|m| m.contains("after")),
            "read after the handler"
        );
    }
}
