//! The seed's expat example: print a document's element structure, one line
//! per start tag, indented three spaces per level. Sandboxed by default.
//!
//! ```text
//! cargo run --release --example expat_tree -- [--backend sandbox|dynamic|stubs|process]
//!                                             [--library PATH] [--compile] [FILE|-]
//! ```
//!
//! The sandbox runs the expat embedded in `sandlink-expat`, whose machine
//! code was compiled at build time; `--compile` compiles its wasm at start
//! instead (or takes it from the disk cache), to measure what that saves.
//!
//! With no FILE it parses an embedded sample; `-` reads standard input. On a
//! malformed document the lines printed so far stay on stdout, stderr gets
//! `error: <expat's message> at line L, column C`, and the exit status is 1.
//! A bad backend or an unreadable file exits with status 2. When the reader
//! of standard output goes away early (`expat_tree big.xml | head -1`), it
//! stops quietly with status 0.

use std::io::{BufWriter, Read, Write};
use std::process::ExitCode;

use sandlink::{Dynamic, Foreign, Process, Sandbox, Stubs};
use sandlink_examples::tree::{self, TreeError};

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
    "usage: expat_tree [--backend sandbox|dynamic|stubs|process] [--library PATH] [--compile] \
     [FILE|-]";

fn print_tree<L: Foreign>(lib: &L, input: Box<dyn Read>) -> Result<(), TreeError> {
    // `Stdout`, not its lock: the tree printer is a `Send` handler. The
    // buffer means the lock is taken once per 64 KiB.
    let out = BufWriter::with_capacity(1 << 16, std::io::stdout());
    tree::print_tree(lib, input, out)
}

fn main() -> ExitCode {
    let mut backend = "sandbox".to_string();
    let mut library: Option<String> = None;
    let mut file: Option<String> = None;
    let mut compile = false;
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
            "--compile" => compile = true,
            "-h" | "--help" => {
                // `--help | head -0` must not panic on a closed pipe.
                let _ = writeln!(std::io::stdout(), "{USAGE}");
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
            // By default the expat embedded in sandlink-expat, compiled at
            // build time: the binary needs no file and no compiler at run
            // time.
            let opened = match library.as_deref() {
                Some(path) => Sandbox::open(path),
                None if compile => Sandbox::open_bytes(sandlink_expat::MODULE, "expat"),
                None => Sandbox::open_precompiled(sandlink_expat::PRECOMPILED, "expat"),
            };
            match opened {
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
        "process" => {
            let path = library.as_deref().unwrap_or(sandlink_clibs::EXPAT_SO);
            // Safe: the native library runs in a confined worker process.
            match Process::open(path) {
                Ok(lib) => print_tree(&lib, input),
                Err(e) => {
                    eprintln!("error: cannot start the worker: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        "stubs" => {
            if library.is_some() {
                eprintln!(
                    "error: the stubs backend links expat at build time; --library does not apply"
                );
                return ExitCode::from(2);
            }
            let table = sandlink_clibs::expat_stubs::stub_table();
            // SAFETY: expat is trusted when linked natively, as for dynamic;
            // its declarations were checked against expat.h at build time.
            match unsafe { Stubs::open(table) } {
                Ok(lib) => print_tree(&lib, input),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
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
        // The reader went away (`expat_tree big.xml | head -1`): stop quietly,
        // as Unix filters do.
        Err(TreeError::Closed) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}
