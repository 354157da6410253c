//! The seed's tree printer, shared by the `expat_tree` example and its tests:
//! one line per start tag, indented three spaces per level.

use std::io::{ErrorKind, Read, Write};

use sandlink::Foreign;
use sandlink_expat::{Event, Events, Expat, Flow, Handler, Parser};

/// Spaces written per nesting level, as in the seed's program.
pub const INDENT: usize = 3;

/// How printing a tree can fail.
#[derive(Debug)]
pub enum TreeError {
    /// Standard output was closed by the reader (`expat_tree big.xml | head`):
    /// not an error for a Unix filter, so the caller exits quietly.
    Closed,
    /// Writing the output failed for another reason.
    Write(std::io::Error),
    /// Parsing failed: expat's message and position, or the library's error.
    Parse(String),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Closed => f.write_str("standard output was closed"),
            TreeError::Write(e) => write!(f, "writing the tree: {e}"),
            TreeError::Parse(msg) => f.write_str(msg),
        }
    }
}

/// Writes `n` spaces without building a string of that size or going through
/// a format width (`{:width$}` refuses widths past 65,535).
fn write_spaces(out: &mut impl Write, mut n: usize) -> std::io::Result<()> {
    const SPACES: [u8; 4096] = [b' '; 4096];
    while n > 0 {
        let k = n.min(SPACES.len());
        out.write_all(&SPACES[..k])?;
        n -= k;
    }
    Ok(())
}

/// Prints start tags as the seed's OCaml program does.
struct Tree<W: Write> {
    out: W,
    depth: usize,
    failed: Option<std::io::Error>,
}

impl<W: Write> Tree<W> {
    fn line(&mut self, name: &str) -> std::io::Result<()> {
        // `depth` counts open elements, each held in memory by expat, so
        // `depth * INDENT` cannot overflow; saturate all the same.
        write_spaces(&mut self.out, self.depth.saturating_mul(INDENT))?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(b"\n")
    }
}

impl<W: Write> Handler for Tree<W> {
    fn events(&self) -> Events {
        // Names only: the printer never looks at attributes.
        Events::ELEMENT_NAMES
    }

    /// The printer never stops expat at an event: a write failure aborts,
    /// and with batched events that abort is the feed's error, checked
    /// after the write failure it stands for.
    fn batched(&self) -> bool {
        true
    }

    fn handle(&mut self, event: Event<'_>) -> Flow {
        match event {
            Event::StartElement { name, .. } => {
                if let Err(e) = self.line(name) {
                    self.failed = Some(e);
                    return Flow::Abort;
                }
                self.depth += 1;
            }
            Event::EndElement { .. } => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Flow::Continue
    }
}

fn write_error(e: std::io::Error) -> TreeError {
    if e.kind() == ErrorKind::BrokenPipe {
        TreeError::Closed
    } else {
        TreeError::Write(e)
    }
}

/// Parses the document from `input` with the expat bound in `lib` and prints
/// its tree to `out`. Whatever was printed before an error stays printed
/// (and flushed).
pub fn print_tree<L: Foreign, W: Write + Send + 'static>(
    lib: &L,
    input: impl Read,
    out: W,
) -> Result<(), TreeError> {
    let lib_err = |e: &dyn std::fmt::Display| TreeError::Parse(e.to_string());
    let expat = Expat::bind(lib).map_err(|e| lib_err(&e))?;
    let tree = Tree {
        out,
        depth: 0,
        failed: None,
    };
    let mut parser = Parser::new(&expat, tree).map_err(|e| lib_err(&e))?;
    let result = parser.parse_reader(input, 1 << 16);
    let mut tree = parser.into_handler().map_err(|e| lib_err(&e))?;
    let flushed = tree.out.flush();
    // A write failure aborted the parse: report it rather than the abort.
    if let Some(e) = tree.failed.take() {
        return Err(write_error(e));
    }
    flushed.map_err(write_error)?;
    result.map(|_| ()).map_err(|e| lib_err(&e))
}
