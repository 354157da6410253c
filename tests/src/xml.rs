//! Shared pieces of the expat differential tests: a recorder of every event,
//! chunked runs, and a corpus of documents, well-formed and not.

use sandlink::Foreign;
use sandlink_expat::{
    Event, Events, Expat, ExpatError, Flow, Handler, OwnedEvent, Parser, ParserOptions,
};

/// Records every event it is sent.
pub struct Recorder {
    events: Events,
    /// Whether it takes its events batched (`Handler::batched`).
    batched: bool,
    /// What was recorded.
    pub log: Vec<OwnedEvent>,
}

impl Handler for Recorder {
    fn events(&self) -> Events {
        self.events
    }
    fn batched(&self) -> bool {
        self.batched
    }
    fn handle(&mut self, event: Event<'_>) -> Flow {
        match event.into_owned() {
            Ok(e) => {
                self.log.push(e);
                Flow::Continue
            }
            // The library passed a malformed attribute list: the parse
            // fails with that error.
            Err(_) => Flow::Abort,
        }
    }
}

/// How a run ended: success, or expat's error with its position. Library
/// failures are kept as text so that a divergence shows what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Well-formed.
    Ok,
    /// Expat's error code, message, line, column and byte index.
    Parse(i32, String, u64, u64, i64),
    /// The strategy or library failed.
    Library(String),
}

/// Everything observable about one parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every event, in order, with every argument.
    pub events: Vec<OwnedEvent>,
    /// How it ended.
    pub ending: Ending,
}

/// How the document is handed to expat.
#[derive(Debug, Clone)]
pub enum Chunking {
    /// One `XML_Parse` call with `isFinal` set.
    Whole,
    /// `XML_Parse` on pieces of this many bytes, then a final empty call.
    Every(usize),
    /// Pieces ending at these offsets (sorted, within the document).
    At(Vec<usize>),
    /// `XML_GetBuffer`/`XML_ParseBuffer` through a reader with this chunk size.
    Reader(usize),
}

/// Parser options for a run: a fixed hash salt, with or without namespaces.
pub fn options(namespaces: bool) -> ParserOptions {
    ParserOptions {
        namespace_separator: namespaces.then_some(b'|'),
        hash_salt: Some(0x5eed),
        ..ParserOptions::default()
    }
}

fn ending(r: Result<(), ExpatError>) -> Ending {
    match r {
        Ok(()) => Ending::Ok,
        Err(ExpatError::Parse {
            code,
            message,
            line,
            column,
            byte_index,
        }) => Ending::Parse(code, message, line, column, byte_index),
        Err(e) => Ending::Library(e.to_string()),
    }
}

/// Parses `doc` with `expat`, recording `events`, handing it over as
/// `chunking` says.
pub fn run<L: Foreign>(
    expat: &Expat<L>,
    doc: &[u8],
    chunking: &Chunking,
    events: Events,
    opts: &ParserOptions,
) -> Outcome {
    run_with(expat, doc, chunking, events, opts, false)
}

/// [`run`] with the events batched (`Handler::batched`): the outcome must
/// be the same.
pub fn run_batched<L: Foreign>(
    expat: &Expat<L>,
    doc: &[u8],
    chunking: &Chunking,
    events: Events,
    opts: &ParserOptions,
) -> Outcome {
    run_with(expat, doc, chunking, events, opts, true)
}

fn run_with<L: Foreign>(
    expat: &Expat<L>,
    doc: &[u8],
    chunking: &Chunking,
    events: Events,
    opts: &ParserOptions,
    batched: bool,
) -> Outcome {
    let recorder = Recorder {
        events,
        batched,
        log: Vec::new(),
    };
    let mut parser = match Parser::with_options(expat, recorder, opts) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                events: vec![],
                ending: Ending::Library(e.to_string()),
            }
        }
    };
    let result = (|| -> Result<(), ExpatError> {
        match chunking {
            Chunking::Whole => {
                parser.parse(doc)?;
            }
            Chunking::Every(n) => {
                for piece in doc.chunks((*n).max(1)) {
                    parser.feed(piece)?;
                }
                parser.finish()?;
            }
            Chunking::At(cuts) => {
                let mut start = 0;
                for &cut in cuts.iter().chain(std::iter::once(&doc.len())) {
                    let cut = cut.clamp(start, doc.len());
                    parser.feed(&doc[start..cut])?;
                    start = cut;
                }
                parser.finish()?;
            }
            Chunking::Reader(n) => {
                parser.parse_reader(doc, *n)?;
            }
        }
        Ok(())
    })();
    let ending = ending(result);
    let events = match parser.into_handler() {
        Ok(r) => r.log,
        Err(e) => {
            return Outcome {
                events: vec![],
                ending: Ending::Library(e.to_string()),
            }
        }
    };
    Outcome { events, ending }
}

fn utf16(s: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xfe, 0xff]
    } else {
        vec![0xff, 0xfe]
    };
    for u in s.encode_utf16() {
        let b = if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        };
        out.extend_from_slice(&b);
    }
    out
}

/// A large document: many elements with attributes, text and entities.
pub fn large_document(records: usize) -> Vec<u8> {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<data>\n");
    for i in 0..records {
        s.push_str(&format!(
            "  <record id=\"{i}\" kind=\"{}\"><name>item &amp; {i}</name><value>{}</value>{}</record>\n",
            if i % 3 == 0 { "a" } else { "b" },
            i * 7,
            if i % 5 == 0 { "<!-- five --><![CDATA[<raw>]]>" } else { "" }
        ));
    }
    s.push_str("</data>\n");
    s.into_bytes()
}

/// The differential corpus: (name, document, use namespace processing).
pub fn corpus() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut c: Vec<(&'static str, Vec<u8>, bool)> = vec![
        ("simple", b"<a><b x='1' y=\"2\">text</b><c/></a>".to_vec(), false),
        (
            "xml declaration",
            b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?><r/>".to_vec(),
            false,
        ),
        ("declaration without encoding", b"<?xml version=\"1.0\"?><r>x</r>".to_vec(), false),
        (
            "comments and PIs",
            b"<?pi before?><!-- c1 --><r><?target some data?><!--inner--></r><!-- after -->".to_vec(),
            false,
        ),
        (
            "CDATA",
            b"<r><![CDATA[<not a tag> & raw ]]>tail<![CDATA[]]></r>".to_vec(),
            false,
        ),
        (
            "character references",
            "<r>&#65;&#x263A;&lt;&gt;&amp;&apos;&quot; caf\u{e9} \u{1F600}</r>".as_bytes().to_vec(),
            false,
        ),
        (
            "namespaces",
            br#"<root xmlns="urn:default" xmlns:a="urn:a"><a:x a:attr="1" plain="2"><y xmlns=""/></a:x></root>"#.to_vec(),
            true,
        ),
        (
            "namespaces unprocessed",
            br#"<root xmlns="urn:default" xmlns:a="urn:a"><a:x a:attr="1"/></root>"#.to_vec(),
            false,
        ),
        (
            "DTD and internal entities",
            br#"<!DOCTYPE r [
  <!ELEMENT r ANY>
  <!ATTLIST r def CDATA "defaulted" fixed CDATA #FIXED "f">
  <!ENTITY e "entity &amp; text">
  <!ENTITY nested "&e; again">
]>
<r>&e; / &nested;</r>"#
                .to_vec(),
            false,
        ),
        (
            "external entity reference, not loaded",
            br#"<!DOCTYPE r [<!ENTITY ext SYSTEM "file:///etc/passwd">]><r>&ext;</r>"#.to_vec(),
            false,
        ),
        (
            "whitespace and line ends",
            b"<r>\r\n  <a>\r</a>\n\t<b> x </b>\r\n</r>\r\n".to_vec(),
            false,
        ),
        ("UTF-16LE", utf16("<?xml version=\"1.0\" encoding=\"UTF-16\"?><r a=\"\u{e9}\">\u{263A} text</r>", false), false),
        ("UTF-16BE", utf16("<r>big \u{1F600} endian</r>", true), false),
        (
            "ISO-8859-1",
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r a=\"\xe9t\xe9\">caf\xe9 \xa9</r>".to_vec(),
            false,
        ),
        ("US-ASCII", b"<?xml version=\"1.0\" encoding=\"US-ASCII\"?><r>plain</r>".to_vec(), false),
        ("UTF-8 BOM", b"\xef\xbb\xbf<r>bom</r>".to_vec(), false),
        ("large", large_document(20_000), false),
        // Malformed documents.
        ("mismatched tag", b"<a><b></a></b>".to_vec(), false),
        ("unclosed root", b"<a><b></b>".to_vec(), false),
        ("empty document", b"".to_vec(), false),
        ("only a declaration", b"<?xml version=\"1.0\"?>".to_vec(), false),
        ("junk after root", b"<a/><b/>".to_vec(), false),
        ("text before root", b"hello <a/>".to_vec(), false),
        ("invalid character", b"<a>\x01</a>".to_vec(), false),
        ("invalid UTF-8", b"<a>\xff\xfe</a>".to_vec(), false),
        ("undefined entity", b"<a>&nope;</a>".to_vec(), false),
        ("duplicate attribute", b"<a x='1' x='2'/>".to_vec(), false),
        ("lt in attribute", b"<a x='<'/>".to_vec(), false),
        ("unterminated comment", b"<a><!-- never ends </a>".to_vec(), false),
        ("unterminated CDATA", b"<a><![CDATA[ open".to_vec(), false),
        ("truncated in a tag", b"<root><child attr=\"va".to_vec(), false),
        ("declaration not at start", b" <?xml version=\"1.0\"?><a/>".to_vec(), false),
        ("unknown encoding", b"<?xml version=\"1.0\" encoding=\"klingon\"?><a/>".to_vec(), false),
        ("unbound prefix", b"<p:a/>".to_vec(), true),
        ("bad character reference", b"<a>&#0;</a>".to_vec(), false),
        ("recursive entity", br#"<!DOCTYPE r [<!ENTITY a "&b;"><!ENTITY b "&a;">]><r>&a;</r>"#.to_vec(), false),
        ("billion laughs", billion_laughs(), false),
    ];
    c.push(("deep nesting", deep(5_000), false));
    c.push((
        "deep nesting, malformed",
        {
            let mut d = deep(3_000);
            d.truncate(d.len() - 10);
            d.extend_from_slice(b"</wrong>");
            d
        },
        false,
    ));
    c
}

/// `depth` nested elements.
pub fn deep(depth: usize) -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..depth {
        s.extend_from_slice(format!("<e{}>", i % 10).as_bytes());
    }
    for i in (0..depth).rev() {
        s.extend_from_slice(format!("</e{}>", i % 10).as_bytes());
    }
    s
}

/// The classic entity-expansion attack, caught by expat's amplification limit.
pub fn billion_laughs() -> Vec<u8> {
    let mut s = String::from("<!DOCTYPE r [\n<!ENTITY l0 \"lol\">\n");
    for i in 1..10 {
        let prev = format!("&l{};", i - 1);
        s.push_str(&format!("<!ENTITY l{i} \"{}\">\n", prev.repeat(10)));
    }
    s.push_str("]>\n<r>&l9;</r>");
    s.into_bytes()
}
