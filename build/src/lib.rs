//! # sandlink-build: sandbox any C library from your crate's `build.rs`
//!
//! One builder, in the spirit of the `cc` crate, that compiles a C library
//! to a wasm32-wasi reactor module ready for Sandlink's `Sandbox` strategy:
//! linked with the guest shim (an allocator and errno access for the host),
//! an exported, growable function table (so C can call Rust closures), the
//! stack first in memory (so a stack overflow traps instead of corrupting
//! data), and exactly the exports you list. On request it also builds a
//! native shared object from the same sources and flags, for the `Dynamic`
//! strategy and for differential tests, and C stubs for the `Stubs`
//! strategy ([`Library::stubs`], ctypes' Cstubs): generated from your
//! binding module as `sandlink::record::Recorder` recorded it, checked by
//! the C compiler against the library's headers for the host and for
//! wasm32 (every signature, every described struct's layout, every
//! constant), and linked into your crate. With stubs, the export list is
//! derived from the binding module.
//!
//! ```no_run
//! // build.rs, in `fn main`:
//! sandlink_build::Library::new("cjson")
//!     .file("vendor/cJSON.c")
//!     .include("vendor")
//!     .exports(["cJSON_Parse", "cJSON_Print", "cJSON_Delete"])
//!     .native(true)
//!     .compile(); // or `.build()?` for a `Result`
//! ```
//!
//! ```text
//! // src/main.rs: the module is embedded in the binary.
//! let lib = sandlink::Sandbox::open_bytes(include_bytes!(env!("SANDLINK_CJSON_WASM")), "cjson")?;
//! ```
//!
//! For a library named `cjson` the build script sets `SANDLINK_CJSON_WASM`
//! (and `SANDLINK_CJSON_SO` with `.native(true)`) for the crate's code, and
//! tells cargo to rebuild only when a source, a header the compiler read,
//! an exports file or a toolchain variable changes.
//!
//! ## What the wasm build adds for real C libraries
//!
//! - `setjmp`/`longjmp`: Sandlink's `<setjmp.h>` and runtime (Debian's
//!   wasi-libc has neither), clang's lowering to wasm exceptions, and a
//!   rewrite of the linked module from clang 19's legacy exception encoding
//!   to the standard one that wasmtime runs (validated; an error names the
//!   function it cannot rewrite).
//! - Only clang's and wasi-libc's headers: a header WASI lacks is an error
//!   naming it, never the host's copy.
//! - WASI's emulations (signals, `mmap`, process clocks, `getpid`) declared
//!   and linked as used; `system`, `tmpfile`, `tmpnam` and the other
//!   functions wasi-libc declares without defining fail with `ENOSYS` at
//!   run time instead of failing the link.
//! - [`Library::link_lib`] for the native builds' system libraries.
//! - Compiler warnings summarised in one cargo line, the full text in a
//!   file under `OUT_DIR`.
//!
//! ## Toolchain
//!
//! In this order: `CC_wasm32_wasip1` (or `CC_wasm32-wasip1`,
//! `CC_wasm32_wasi`, `CC_wasm32-wasi`) naming a clang that targets
//! wasm32-wasi; `WASI_SDK_PATH` naming an unpacked wasi-sdk; Debian's
//! `clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32`. A missing piece is
//! an [`Error::Toolchain`] that says what to install. The native build uses
//! the `cc` crate's compiler for the target (so `CC` and `CFLAGS` apply),
//! or [`Library::native_compiler`].

mod compile;
mod eh;
#[cfg(feature = "generate")]
pub mod generate;
mod stubs;
mod toolchain;

use std::fmt;
use std::path::{Path, PathBuf};

#[cfg(feature = "generate")]
pub use generate::{Bindings, GenerateError, Generated, Skipped};
pub use sandlink_guest_shim::spec::StubSpec;
pub use toolchain::{Toolchain, COMPILER_VARS};

/// A C library to build for the Sandbox (and optionally natively).
#[derive(Clone, Debug)]
pub struct Library {
    name: String,
    files: Vec<PathBuf>,
    wasm_files: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    defines: Vec<(String, Option<String>)>,
    flags: Vec<String>,
    wasm_flags: Vec<String>,
    exports: Vec<String>,
    exports_files: Vec<PathBuf>,
    native: bool,
    native_compiler: Option<PathBuf>,
    link_libs: Vec<String>,
    warnings: bool,
    warnings_into_errors: bool,
    opt_level: u32,
    stack_size: u64,
    out_dir: Option<PathBuf>,
    cargo_metadata: bool,
    toolchain: Option<Toolchain>,
    stubs: Option<StubSpec>,
    stub_headers: Vec<String>,
    callback_slots: u32,
    #[cfg_attr(not(feature = "precompile"), allow(dead_code))]
    precompile: bool,
}

/// What [`Library::build`] produced.
#[derive(Clone, Debug)]
pub struct Built {
    /// The wasm32-wasi reactor module.
    pub wasm: PathBuf,
    /// The native shared object, when [`Library::native`] asked for one.
    pub native: Option<PathBuf>,
    /// Every file the build read (sources, headers, exports files): what
    /// cargo was told to watch.
    pub inputs: Vec<PathBuf>,
    /// The environment variable naming the module (`SANDLINK_<NAME>_WASM`).
    pub wasm_env: String,
    /// The environment variable naming the shared object
    /// (`SANDLINK_<NAME>_SO`), when one was built.
    pub native_env: Option<String>,
    /// The generated Rust file giving the Stubs strategy its table, when
    /// [`Library::stubs`] asked for stubs: `include!` it.
    pub stubs: Option<PathBuf>,
    /// The environment variable naming that file (`SANDLINK_<NAME>_STUBS`).
    pub stubs_env: Option<String>,
    /// The module's machine code compiled ahead of time, when
    /// `Library::precompile` (feature `precompile`) asked for it (empty when cross-compiling).
    pub precompiled: Option<PathBuf>,
    /// The environment variable naming that file (`SANDLINK_<NAME>_CWASM`).
    pub precompiled_env: Option<String>,
    /// What the build warns of (also printed as `cargo:warning` lines when
    /// it prints cargo metadata): an include directory that shadows a
    /// header the wasm build provides, say.
    pub warnings: Vec<String>,
}

impl Library {
    /// A library called `name`: it names the outputs (`<name>.wasm`,
    /// `lib<name>.so`) and the environment variables
    /// (`SANDLINK_<NAME>_WASM`, with `NAME` upper-cased and every other
    /// character than a letter or digit turned into `_`).
    pub fn new(name: &str) -> Library {
        Library {
            name: name.to_string(),
            files: Vec::new(),
            wasm_files: Vec::new(),
            includes: Vec::new(),
            defines: Vec::new(),
            flags: Vec::new(),
            wasm_flags: Vec::new(),
            exports: Vec::new(),
            exports_files: Vec::new(),
            native: false,
            native_compiler: None,
            link_libs: Vec::new(),
            warnings: true,
            warnings_into_errors: false,
            opt_level: 2,
            stack_size: 1 << 20,
            out_dir: None,
            cargo_metadata: true,
            toolchain: None,
            stubs: None,
            stub_headers: Vec::new(),
            callback_slots: 128,
            precompile: false,
        }
    }

    /// Adds a C source file.
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut Library {
        self.files.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds C source files.
    pub fn files<P: AsRef<Path>>(&mut self, paths: impl IntoIterator<Item = P>) -> &mut Library {
        for p in paths {
            self.file(p);
        }
        self
    }

    /// Adds a C source file compiled into the wasm module only (a
    /// replacement for something WASI lacks, say).
    pub fn wasm_file(&mut self, path: impl AsRef<Path>) -> &mut Library {
        self.wasm_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds an include directory (`-I`).
    pub fn include(&mut self, dir: impl AsRef<Path>) -> &mut Library {
        self.includes.push(dir.as_ref().to_path_buf());
        self
    }

    /// Defines a macro (`-DNAME` or `-DNAME=VALUE`), for both builds.
    pub fn define<'a>(&mut self, name: &str, value: impl Into<Option<&'a str>>) -> &mut Library {
        self.defines
            .push((name.to_string(), value.into().map(str::to_string)));
        self
    }

    /// Adds a compiler flag, for both builds.
    pub fn flag(&mut self, flag: &str) -> &mut Library {
        self.flags.push(flag.to_string());
        self
    }

    /// Adds a compiler flag for the wasm build only (`-mbulk-memory`, say).
    pub fn wasm_flag(&mut self, flag: &str) -> &mut Library {
        self.wasm_flags.push(flag.to_string());
        self
    }

    /// Exports these functions (or globals) from the wasm module: what the
    /// bindings can bind. Nothing else is exported.
    pub fn exports<S: AsRef<str>>(&mut self, names: impl IntoIterator<Item = S>) -> &mut Library {
        self.exports
            .extend(names.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Exports the names listed in `path`, one per line (blank lines and
    /// lines starting with `#` are skipped).
    pub fn exports_file(&mut self, path: impl AsRef<Path>) -> &mut Library {
        self.exports_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Also builds a native shared object from the same sources and flags.
    pub fn native(&mut self, yes: bool) -> &mut Library {
        self.native = yes;
        self
    }

    /// The compiler for the native build (default: the `cc` crate's choice
    /// for the target). Passing the wasm toolchain's clang
    /// ([`Toolchain::clang`]) makes both builds come from one compiler.
    pub fn native_compiler(&mut self, compiler: impl AsRef<Path>) -> &mut Library {
        self.native_compiler = Some(compiler.as_ref().to_path_buf());
        self
    }

    /// Links the native builds against the system library `name` (`m` for
    /// `-lm`, `dl`, `pthread`, or any other): the shared object that
    /// [`Library::native`] builds records it as a dependency (so `Process`
    /// and `Dynamic` load it), and the crate linking the stubs links it
    /// (`cargo:rustc-link-lib`). The wasm build needs none: wasi-libc holds
    /// the maths library and every emulation sandlink-build enables.
    pub fn link_lib(&mut self, name: &str) -> &mut Library {
        self.link_libs.push(name.to_string());
        self
    }

    /// Whether to compile with the compiler's warnings (`-Wall -Wextra`, on
    /// by default; off gives `-w`, for third-party code you do not
    /// maintain). Either way cargo shows one line per build that had any,
    /// with their count and the file that holds their full text, not each
    /// warning.
    pub fn warnings(&mut self, yes: bool) -> &mut Library {
        self.warnings = yes;
        self
    }

    /// Whether warnings fail the build (`-Werror`; off by default).
    pub fn warnings_into_errors(&mut self, yes: bool) -> &mut Library {
        self.warnings_into_errors = yes;
        self
    }

    /// The optimisation level, `-O<level>` (default 2).
    pub fn opt_level(&mut self, level: u32) -> &mut Library {
        self.opt_level = level;
        self
    }

    /// The wasm module's C stack, in bytes (default 1 MiB).
    pub fn stack_size(&mut self, bytes: u64) -> &mut Library {
        self.stack_size = bytes;
        self
    }

    /// Where to put objects and outputs (default: cargo's `OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl AsRef<Path>) -> &mut Library {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Whether to print `cargo:` instructions (default: yes, for build
    /// scripts).
    pub fn cargo_metadata(&mut self, yes: bool) -> &mut Library {
        self.cargo_metadata = yes;
        self
    }

    /// Uses this toolchain instead of finding one.
    pub fn toolchain(&mut self, toolchain: Toolchain) -> &mut Library {
        self.toolchain = Some(toolchain);
        self
    }

    /// Also generates C stubs for the Stubs strategy from `spec` (what
    /// `sandlink::record::Recorder` recorded from the binding module),
    /// checks them against the headers named by [`Library::stub_header`],
    /// for the host and for wasm32-wasi, and links them, with the library's
    /// sources compiled natively, into this crate. A declaration or a
    /// struct layout that disagrees with a header fails the build with
    /// [`Error::StubMismatch`]. Every function and global the spec declares
    /// is exported from the wasm module too, so no exports list is needed.
    pub fn stubs(&mut self, spec: StubSpec) -> &mut Library {
        self.stubs = Some(spec);
        self
    }

    /// A header the stubs include, as `#include "name"` (or `<name>` when
    /// given in angle brackets), found through [`Library::include`]'s
    /// directories.
    pub fn stub_header(&mut self, header: &str) -> &mut Library {
        self.stub_headers.push(header.to_string());
        self
    }

    /// How many callbacks of one signature may be alive at once on the
    /// Stubs strategy (each is a C trampoline; default 128).
    pub fn callback_slots(&mut self, slots: u32) -> &mut Library {
        self.callback_slots = slots.max(1);
        self
    }

    /// Also compiles the wasm module to machine code now, at build time
    /// (the `precompile` feature, which builds wasmtime into the build
    /// script): the file `SANDLINK_<NAME>_CWASM` names, for
    /// `sandlink::Precompiled` with the module, so that the first sandbox
    /// in a process compiles nothing:
    ///
    /// ```text
    /// // SAFETY: both files are what sandlink-build wrote for this build.
    /// const EXPAT: sandlink::Precompiled<'static> = unsafe {
    ///     sandlink::Precompiled::new(
    ///         include_bytes!(env!("SANDLINK_EXPAT_WASM")),
    ///         include_bytes!(env!("SANDLINK_EXPAT_CWASM")),
    ///     )
    /// };
    /// let lib = sandlink::Sandbox::open_precompiled(EXPAT, "expat")?;
    /// ```
    ///
    /// The code is for the build machine's CPU and this build's wasmtime
    /// and sandbox settings; where it does not fit at run time (another
    /// CPU, another wasmtime), the sandbox compiles the module instead.
    /// When cross-compiling (cargo's `TARGET` is not `HOST`) the file is
    /// empty, which means the same.
    #[cfg(feature = "precompile")]
    pub fn precompile(&mut self, yes: bool) -> &mut Library {
        self.precompile = yes;
        self
    }

    /// The environment variable stem for this library: `SANDLINK_<NAME>`.
    pub fn env_stem(&self) -> String {
        let name: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("SANDLINK_{name}")
    }

    /// Builds the library; on success prints the `cargo:` instructions.
    pub fn build(&self) -> Result<Built, Error> {
        compile::build(self)
    }

    /// Builds the library, or prints the error (with the compiler's
    /// diagnostics) and exits the build script with status 1: for a
    /// `build.rs` that has nothing to do after a failure.
    pub fn compile(&self) -> Built {
        match self.build() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
}

/// Why a build failed. Each names the library, the file and what to do.
pub enum Error {
    /// No usable wasm32-wasi toolchain.
    Toolchain {
        /// What is missing or broken.
        problem: String,
        /// What to install or set.
        fix: String,
    },
    /// A source file (or include directory) that does not exist.
    MissingInput {
        /// The library.
        library: String,
        /// What kind of input (`source file`, `exports file`, …).
        what: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// The library lists no source files or no exports.
    Empty {
        /// The library.
        library: String,
        /// What is missing, and how to add it.
        what: String,
    },
    /// The compiler rejected a source file.
    Compile {
        /// The library.
        library: String,
        /// The source file.
        file: PathBuf,
        /// `wasm32-wasi` or `native`.
        target: &'static str,
        /// The compiler's diagnostics (file, line and column included).
        diagnostics: String,
        /// The command that ran.
        command: String,
    },
    /// The linker failed.
    Link {
        /// The library.
        library: String,
        /// `wasm32-wasi` or `native`.
        target: &'static str,
        /// The linker's diagnostics.
        diagnostics: String,
        /// The command that ran.
        command: String,
    },
    /// Functions the library exports (the bindings declare them) that none
    /// of its sources defines: all of them, from one link.
    MissingExports {
        /// The library.
        library: String,
        /// The names, in the linker's order.
        names: Vec<String>,
        /// The command that ran.
        command: String,
    },
    /// Reading or writing a file, or running a program, failed.
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Neither `OUT_DIR` nor [`Library::out_dir`] says where to build.
    NoOutDir,
    /// The linked module could not be post-processed.
    Module {
        /// The library.
        library: String,
        /// The module.
        module: PathBuf,
        /// What failed, and where in the module.
        problem: String,
    },
    /// A declaration in the binding module disagrees with the library's
    /// header: the generated stub did not compile.
    StubMismatch(Box<StubMismatch>),
}

/// What [`Error::StubMismatch`] reports.
#[derive(Debug)]
pub struct StubMismatch {
    /// The library.
    pub library: String,
    /// The C function (or struct, or global) whose description is wrong.
    pub function: String,
    /// What is wrong: the parameter or the result, and the declared type.
    pub problem: String,
    /// The compiler's message for it.
    pub message: String,
    /// `native` or `wasm32-wasi`: the build whose headers disagree.
    pub target: &'static str,
    /// The generated file, for the full diagnostics.
    pub file: PathBuf,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Toolchain { problem, fix } => write!(
                f,
                "sandlink-build: no usable wasm32-wasi C toolchain: {problem}\n  fix: {fix}"
            ),
            Error::MissingInput {
                library,
                what,
                path,
            } => write!(
                f,
                "sandlink-build: library `{library}`: {what} {} does not exist",
                path.display()
            ),
            Error::Empty { library, what } => {
                write!(f, "sandlink-build: library `{library}`: {what}")
            }
            Error::Compile {
                library,
                file,
                target,
                diagnostics,
                command,
            } => {
                write!(
                    f,
                    "sandlink-build: library `{library}`: compiling {} for {target} failed:\n\
                     {diagnostics}\n  command: {command}",
                    file.display(),
                    diagnostics = diagnostics.trim_end()
                )?;
                match missing_header(diagnostics) {
                    Some(h) if *target == "wasm32-wasi" => write!(
                        f,
                        "\n  note: `{h}` is not in the wasm32-wasi sysroot (wasi-libc has no \
                         such interface, and host headers are never used for wasm). Guard \
                         its use with `#ifndef __wasi__`, or give the wasm build a header of \
                         your own with `.wasm_flag(\"-I<dir>\")`"
                    ),
                    _ => Ok(()),
                }
            }
            Error::Link {
                library,
                target,
                diagnostics,
                command,
            } => write!(
                f,
                "sandlink-build: library `{library}`: linking for {target} failed:\n\
                 {diagnostics}\n  command: {command}",
                diagnostics = diagnostics.trim_end()
            ),
            Error::MissingExports {
                library,
                names,
                command,
            } => write!(
                f,
                "sandlink-build: library `{library}`: {} exported function(s) the bindings \
                 declare are defined in none of its sources: {}\n  \
                 fix: add the sources that define them, or leave them out of the bindings: \
                 generated bindings take `Bindings::block(\"^({})$\")`, hand-written ones lose \
                 those declarations (and the exports list those names)\n  command: {command}",
                names.len(),
                names.join(", "),
                names.join("|")
            ),
            Error::Io { what, source } => write!(f, "sandlink-build: {what}: {source}"),
            Error::StubMismatch(m) => write!(
                f,
                "sandlink-build: library `{}`: the binding of `{}` does not match its C \
                 header ({} build): {}\n  compiler: {}\n  generated stub: {}\n  \
                 fix: correct the description of `{}` in the binding module",
                m.library,
                m.function,
                m.target,
                m.problem,
                m.message,
                m.file.display(),
                m.function
            ),
            Error::Module {
                library,
                module,
                problem,
            } => write!(
                f,
                "sandlink-build: library `{library}`: the linked module {}: {problem}",
                module.display()
            ),
            Error::NoOutDir => f.write_str(
                "sandlink-build: OUT_DIR is not set; outside a build script call \
                 `Library::out_dir`",
            ),
        }
    }
}

/// The header a compiler's "file not found" names, if any.
fn missing_header(diagnostics: &str) -> Option<&str> {
    let at = diagnostics.find("fatal error: '")? + "fatal error: '".len();
    let rest = &diagnostics[at..];
    let end = rest.find("' file not found")?;
    Some(&rest[..end])
}

// Debug shows the message too: `fn main() -> Result<(), Error>` in a build
// script prints the error with `{:?}`.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
