//! The seed's expat example: print a document's element structure, one line
//! per start tag, indented three spaces per level. Sandboxed by default.
//!
//! ```text
//! cargo run --release --example expat_tree -- [--backend sandbox|dynamic|stubs|process]
//!                                             [--library PATH] [FILE|-]
//! ```
//!
//! With no FILE it parses an embedded sample; `-` reads standard input. On a
//! malformed document the lines printed so far stay on stdout, stderr gets
//! `error: <expat's message> at line L, column C`, and the exit status is 1.
//! A bad backend or an unreadable file exits with status 2.

use std::io::{BufWriter, Read, Write};
use std::process::ExitCode;
use std::rc::Rc;

use sandlink::{Dynamic, Foreign, Sandbox};
use sandlink_expat::{Event, Events, Expat, ExpatError, Flow, Handler, Parser};

const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<library xmlns:dc="http://purl.org/dc/elements/1.1/">
  <shelf name="systems">
    <book id="ctypes">
      <dc:title>Modular foreign function bindings</dc:title>
      <dc:creator>Jeremy Yallop</dc:creator>
      <topics><topic>OCaml</topic><topic>FFI</topic></topics>
    </book>
    <book id="rlbox">
      <dc:title>Retrofitting fine grain isolation in the Firefox renderer</dc:title>
      <topics><topic>sandboxing</topic><topic>wasm</topic></topics>
    </book>
  </shelf>
  <shelf name="empty"/>
</library>
"#;

const USAGE: &str =
    "usage: expat_tree [--backend sandbox|dynamic|stubs|process] [--library PATH] [FILE|-]";

/// Prints start tags as the seed's OCaml program does.
struct Tree<W: Write> {
    out: W,
    depth: usize,
    failed: Option<std::io::Error>,
}

impl<W: Write> Handler for Tree<W> {
    fn events(&self) -> Events {
        Events::ELEMENTS
    }

    fn handle(&mut self, event: Event) -> Flow {
        match event {
            Event::StartElement { name, .. } => {
                if let Err(e) = writeln!(self.out, "{:width$}{name}", "", width = self.depth * 3) {
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

fn print_tree<L: Foreign>(lib: &L, input: Box<dyn Read>) -> Result<(), String> {
    let expat = Rc::new(Expat::bind(lib).map_err(|e| e.to_string())?);
    let tree = Tree {
        out: BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        depth: 0,
        failed: None,
    };
    let mut parser = Parser::new(&expat, tree).map_err(|e| e.to_string())?;
    let result = parser.parse_reader(input, 1 << 16);
    // Whatever was printed before an error stays printed.
    let mut tree = parser.into_handler().map_err(|e| e.to_string())?;
    let flushed = tree.out.flush();
    if let Some(e) = tree.failed.take() {
        return Err(format!("writing the tree: {e}"));
    }
    flushed.map_err(|e| format!("writing the tree: {e}"))?;
    match result {
        Ok(_) => Ok(()),
        Err(e @ ExpatError::Parse { .. }) => Err(e.to_string()),
        Err(e) => Err(format!("{e}")),
    }
}

fn main() -> ExitCode {
    let mut backend = "sandbox".to_string();
    let mut library: Option<String> = None;
    let mut file: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" | "--library" => {
                let Some(v) = args.next() else {
                    eprintln!("error: {a} needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                if a == "--backend" {
                    backend = v;
                } else {
                    library = Some(v);
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if a.starts_with("--") => {
                eprintln!("error: unknown option {a}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ if file.is_none() => file = Some(a),
            _ => {
                eprintln!("error: more than one input file\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let input: Box<dyn Read> = match file.as_deref() {
        None => Box::new(SAMPLE.as_bytes()),
        Some("-") => Box::new(std::io::stdin().lock()),
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("error: cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        },
    };

    let result = match backend.as_str() {
        "sandbox" => {
            let path = library.as_deref().unwrap_or(sandlink_clibs::EXPAT_WASM);
            match Sandbox::open(path) {
                Ok(lib) => print_tree(&lib, input),
                Err(e) => {
                    eprintln!("error: cannot start the sandbox: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        "dynamic" => {
            let path = library.as_deref().unwrap_or(sandlink_clibs::EXPAT_SO);
            // SAFETY: expat is trusted when linked dynamically; that is the
            // difference from the sandbox backend.
            match unsafe { Dynamic::open(path) } {
                Ok(lib) => print_tree(&lib, input),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        "stubs" | "process" => {
            eprintln!("error: the {backend} backend is not available yet; use sandbox or dynamic");
            return ExitCode::from(2);
        }
        other => {
            eprintln!(
                "error: unknown backend `{other}`; choose sandbox, dynamic, stubs or process"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}
