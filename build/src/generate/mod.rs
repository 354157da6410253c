//! Bindings generated from C headers (the `generate` feature).
//!
//! [`Bindings`] reads headers with libclang (through the `clang` crate,
//! which loads the system's `libclang` at run time: Debian's `libclang1-19`)
//! and writes a Rust module in the [`sandlink::bindings!`] form: a binding
//! struct generic over `L: Foreign` with a `Function` field per function,
//! the structs and unions the functions reach, type aliases, callback types
//! and constants. The same declarations are recorded through
//! `sandlink::record::Recorder`, so [`Generated::spec`] is the stub spec for
//! exactly what the module binds: pass it to [`crate::Library::stubs`] and
//! the C compiler checks the generated bindings against the header, for the
//! host and for wasm32, like hand-written ones.
//!
//! ```no_run
//! // build.rs
//! let generated = sandlink_build::Bindings::new("Zlib")
//!     .header("vendor/zlib.h")
//!     .include("vendor")
//!     // What a header cannot say: `(buf, len)` is one byte slice.
//!     .buffer("crc32|adler32", "buf", "len")
//!     .generate_to_out_dir("zlib.rs");
//! sandlink_build::Library::new("zlib")
//!     .files(["vendor/crc32.c" /* … */])
//!     .include("vendor")
//!     .stub_header("zlib.h")
//!     .stubs(generated.spec.clone())
//!     .compile();
//! ```
//!
//! # What a header cannot say, and the defaults taken
//!
//! | C | parameter | result | struct field | callback argument |
//! |---|---|---|---|---|
//! | `const char *` | `string` (a `&str`, copied in) | `string_opt` | `string_opt` | `string_opt` |
//! | `char *` | `ptr(char)` | `ptr_opt(char)` | `string_opt` | `ptr_opt(char)` |
//! | `void *` | `ptr_opt(void)` | `ptr_opt(void)` | `ptr_opt(void)` | `ptr_opt(void)` |
//! | other `T *` | `ptr(T)` (never NULL) | `ptr_opt(T)` | `ptr_opt(T)` | `ptr_opt(T)` |
//! | function pointer | `funptr_opt` | `funptr_opt` | `funptr_opt` | `funptr_opt` |
//!
//! Overrides change them per function (a regular expression over function
//! names, or over callback typedef names for a callback's arguments) and
//! parameter (a regular expression over its C name, `"return"` for the
//! result):
//! [`Bindings::string`], [`Bindings::pointer`], [`Bindings::nullable`],
//! [`Bindings::non_null`], [`Bindings::buffer`] (a `(pointer, length)` pair
//! as one slice; in a callback, a lent `BytesRef`),
//! [`Bindings::borrowed`] (a lent string, read on demand) and
//! [`Bindings::owned`] (a returned `char *` the caller frees). Each generated function's documentation says which defaults and
//! overrides it took. An override that matches nothing is a warning, and so
//! is one that changes nothing (`string` on an `unsigned char *`, which is
//! not a `char *`: `lib.read_string(p)` reads such text).
//!
//! # What is skipped
//!
//! Variadic functions, functions with more than ten parameters, `static`
//! functions, parameters or results of a type Sandlink cannot pass (a
//! struct by value, `long double`, `va_list`, …), function-like macros and
//! macros that are not constant expressions. A macro that is an expression
//! is evaluated by the compiler (through libclang), for the host and for
//! wasm32-wasi; one whose value differs between the two (`sizeof(void *)`)
//! is skipped with both values: `lib.constant` reads it from the library's
//! own build. Each is named, with the reason, in
//! [`Generated::skipped`], in a `cargo:warning` and in the generated file's
//! header. A struct with a bit-field, or with a field whose type cannot be
//! described, is generated as an incomplete struct (usable behind pointers),
//! also with a warning.

mod clang_read;
mod emit;
mod model;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use regex::Regex;
use sandlink_guest_shim::spec::StubSpec;

pub use model::Skipped;

/// One libclang instance per process (the `clang` crate's rule): parallel
/// generations, as tests run them, take turns.
static CLANG: Mutex<()> = Mutex::new(());

/// A header generator: headers in, a binding module and its stub spec out.
/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Bindings {
    name: String,
    headers: Vec<PathBuf>,
    clang_args: Vec<String>,
    allow_functions: Vec<String>,
    allow_types: Vec<String>,
    allow_constants: Vec<String>,
    block: Vec<String>,
    overrides: Vec<Override>,
    cargo_warnings: bool,
}

/// What an override makes of a parameter or result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// A `char *` is a NUL-terminated string.
    String,
    /// A `char *` is a pointer.
    Pointer,
    /// NULL allowed.
    Nullable,
    /// NULL refused.
    NonNull,
    /// The pointer parameter and the named length parameter after it are
    /// one slice.
    Buffer(String),
    /// A returned `char *` the caller frees.
    Owned,
    /// A `char *` (or `char **`) C lends: read on demand, not copied.
    Borrowed,
}

#[derive(Clone, Debug)]
pub(crate) struct Override {
    pub(crate) function: String,
    pub(crate) param: String,
    pub(crate) choice: Choice,
}

/// An error that stops generation: libclang missing, a header that does not
/// parse, a bad pattern.
#[derive(Debug)]
pub struct GenerateError(pub String);

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sandlink-build: generating bindings: {}", self.0)
    }
}

impl std::error::Error for GenerateError {}

/// What [`Bindings::generate`] made.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The Rust module: a `sandlink::bindings!` invocation and constants.
    pub source: String,
    /// The stub spec for exactly the generated functions, for
    /// [`crate::Library::stubs`].
    pub spec: StubSpec,
    /// The C names of the functions generated.
    pub functions: Vec<String>,
    /// The named types generated (structs, unions, aliases), by C spelling.
    pub types: Vec<String>,
    /// The constants generated.
    pub constants: Vec<String>,
    /// What was left out, and why.
    pub skipped: Vec<Skipped>,
    /// Overrides that matched nothing, and structs made incomplete.
    pub warnings: Vec<String>,
}

impl Generated {
    /// Writes [`Generated::source`] to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, &self.source)
    }
}

impl Bindings {
    /// A generator whose binding struct is called `name` (a Rust type name,
    /// `Zlib`).
    pub fn new(name: &str) -> Bindings {
        Bindings {
            name: name.to_string(),
            headers: Vec::new(),
            clang_args: Vec::new(),
            allow_functions: Vec::new(),
            allow_types: Vec::new(),
            allow_constants: Vec::new(),
            block: Vec::new(),
            overrides: Vec::new(),
            cargo_warnings: true,
        }
    }

    /// A header to read. Every function and constant declared in it, or in
    /// a header it includes that is not a system header, is generated
    /// unless an allowlist says otherwise.
    pub fn header(&mut self, path: impl AsRef<Path>) -> &mut Bindings {
        self.headers.push(path.as_ref().to_path_buf());
        self
    }

    /// An include directory (`-I`).
    pub fn include(&mut self, dir: impl AsRef<Path>) -> &mut Bindings {
        self.clang_args
            .push(format!("-I{}", dir.as_ref().to_string_lossy()));
        self
    }

    /// A preprocessor definition (`-D`), as the library is compiled with.
    pub fn define<'a>(&mut self, name: &str, value: impl Into<Option<&'a str>>) -> &mut Bindings {
        self.clang_args.push(match value.into() {
            Some(v) => format!("-D{name}={v}"),
            None => format!("-D{name}"),
        });
        self
    }

    /// Any other clang argument.
    pub fn clang_arg(&mut self, arg: &str) -> &mut Bindings {
        self.clang_args.push(arg.to_string());
        self
    }

    /// Generates only the functions whose whole name matches one of these
    /// regular expressions (as bindgen's `allowlist_function`).
    pub fn allow_function(&mut self, pattern: &str) -> &mut Bindings {
        self.allow_functions.push(pattern.to_string());
        self
    }

    /// Generates only the named types (structs, unions, typedefs) that match
    /// or that a generated function or type reaches.
    pub fn allow_type(&mut self, pattern: &str) -> &mut Bindings {
        self.allow_types.push(pattern.to_string());
        self
    }

    /// Generates only the constants whose name matches.
    pub fn allow_constant(&mut self, pattern: &str) -> &mut Bindings {
        self.allow_constants.push(pattern.to_string());
        self
    }

    /// Leaves out every function, type or constant whose name matches (a
    /// blocked function is listed in [`Generated::skipped`] as blocked).
    pub fn block(&mut self, pattern: &str) -> &mut Bindings {
        self.block.push(pattern.to_string());
        self
    }

    fn choose(&mut self, function: &str, param: &str, choice: Choice) -> &mut Bindings {
        self.overrides.push(Override {
            function: function.to_string(),
            param: param.to_string(),
            choice,
        });
        self
    }

    /// The `char *` parameter `param` (or `"return"`) of the functions
    /// matching `function` is a NUL-terminated string.
    pub fn string(&mut self, function: &str, param: &str) -> &mut Bindings {
        self.choose(function, param, Choice::String)
    }

    /// The `char *` parameter (or result) is a pointer, not a string.
    pub fn pointer(&mut self, function: &str, param: &str) -> &mut Bindings {
        self.choose(function, param, Choice::Pointer)
    }

    /// The pointer parameter (or result) may be NULL.
    pub fn nullable(&mut self, function: &str, param: &str) -> &mut Bindings {
        self.choose(function, param, Choice::Nullable)
    }

    /// The pointer parameter (or result) is never NULL: a NULL result is
    /// an error.
    pub fn non_null(&mut self, function: &str, param: &str) -> &mut Bindings {
        self.choose(function, param, Choice::NonNull)
    }

    /// The pointer parameter `ptr` and the integer parameter `len` right
    /// after it are one byte slice: `&[u8]` for a `const` pointee (copied
    /// in), `&mut [u8]` otherwise (copied in and back). A slice too long
    /// for the length's C type is an error, never truncated.
    pub fn buffer(&mut self, function: &str, ptr: &str, len: &str) -> &mut Bindings {
        self.choose(function, ptr, Choice::Buffer(len.to_string()))
    }

    /// The returned `char *` belongs to the caller, who frees it
    /// (`str_owned_opt`): read it with `lib.take_str(s, &free)`.
    pub fn owned(&mut self, function: &str) -> &mut Bindings {
        self.choose(function, "return", Choice::Owned)
    }

    /// Whether [`Bindings::generate_to_out_dir`] prints a `cargo:warning`
    /// per skipped declaration and per warning (on by default). Off, they
    /// are still listed in the generated file's header and in
    /// [`Generated`], for a crate that checks them itself.
    pub fn cargo_warnings(&mut self, yes: bool) -> &mut Bindings {
        self.cargo_warnings = yes;
        self
    }

    /// The `char *` parameter (or result) is lent by C and read on demand
    /// (`str_ref`: no copy until `lib.read_str_into`), and a `const char **`
    /// one is a NULL-terminated array of such strings (`str_array_ref`):
    /// for callback arguments, which are valid only during the call.
    pub fn borrowed(&mut self, function: &str, param: &str) -> &mut Bindings {
        self.choose(function, param, Choice::Borrowed)
    }

    /// Reads the headers and generates the module and its stub spec.
    pub fn generate(&self) -> Result<Generated, GenerateError> {
        if self.headers.is_empty() {
            return Err(GenerateError("no header named (`Bindings::header`)".into()));
        }
        let filters = Filters {
            functions: patterns(&self.allow_functions, "allow_function")?,
            types: patterns(&self.allow_types, "allow_type")?,
            constants: patterns(&self.allow_constants, "allow_constant")?,
            block: patterns(&self.block, "block")?,
        };
        let mut overrides = Vec::new();
        for o in &self.overrides {
            let function = whole(&o.function, "an override's functions")?;
            let param = whole(&o.param, "an override's parameters")?;
            overrides.push((function, param, o.clone()));
        }
        let mut module = {
            let _turn = match CLANG.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            clang_read::read(&self.headers, &self.clang_args, &filters, &overrides)?
        };
        model::settle(&mut module);
        let spec = model::record(&self.name, &module)?;
        let source = emit::module(&self.name, &self.headers, &module);
        Ok(Generated {
            source,
            spec,
            functions: module.functions.iter().map(|f| f.c_name.clone()).collect(),
            types: module
                .items
                .iter()
                .map(|(ident, i)| i.c_spelling(ident))
                .collect(),
            constants: module.constants.iter().map(|c| c.name.clone()).collect(),
            skipped: module.skipped,
            warnings: module.warnings,
        })
    }

    /// For `build.rs`: generates, writes the module to `OUT_DIR/file`,
    /// prints a `cargo:warning` per skipped declaration and per warning, and
    /// tells cargo to rerun when a header changes. An error is printed and
    /// the build script exits with status 1.
    pub fn generate_to_out_dir(&self, file: &str) -> Generated {
        let out = match std::env::var_os("OUT_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                eprintln!("sandlink-build: OUT_DIR is not set: call this from a build script");
                std::process::exit(1);
            }
        };
        let generated = match self.generate() {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        for h in &self.headers {
            println!("cargo:rerun-if-changed={}", h.display());
        }
        println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
        if self.cargo_warnings {
            for s in &generated.skipped {
                println!("cargo:warning=sandlink-build: skipped {s}");
            }
            for w in &generated.warnings {
                println!("cargo:warning=sandlink-build: {w}");
            }
        }
        if let Err(e) = generated.write(out.join(file)) {
            eprintln!("sandlink-build: writing {}: {e}", out.join(file).display());
            std::process::exit(1);
        }
        generated
    }
}

/// The allowlists and the blocklist, compiled.
pub(crate) struct Filters {
    pub(crate) functions: Vec<Regex>,
    pub(crate) types: Vec<Regex>,
    pub(crate) constants: Vec<Regex>,
    pub(crate) block: Vec<Regex>,
}

impl Filters {
    fn allowed(list: &[Regex], block: &[Regex], name: &str) -> bool {
        (list.is_empty() || list.iter().any(|r| r.is_match(name)))
            && !block.iter().any(|r| r.is_match(name))
    }
    pub(crate) fn function(&self, name: &str) -> bool {
        Self::allowed(&self.functions, &self.block, name)
    }
    pub(crate) fn constant(&self, name: &str) -> bool {
        Self::allowed(&self.constants, &self.block, name)
    }
    pub(crate) fn types_listed(&self) -> bool {
        !self.types.is_empty()
    }
    pub(crate) fn ty(&self, name: &str) -> bool {
        Self::allowed(&self.types, &self.block, name)
    }
    pub(crate) fn blocked(&self, name: &str) -> bool {
        self.block.iter().any(|r| r.is_match(name))
    }
}

fn whole(p: &str, what: &str) -> Result<Regex, GenerateError> {
    Regex::new(&format!("^(?:{p})$"))
        .map_err(|e| GenerateError(format!("bad pattern `{p}` for {what}: {e}")))
}

fn patterns(list: &[String], what: &str) -> Result<Vec<Regex>, GenerateError> {
    list.iter().map(|p| whole(p, what)).collect()
}

/// The declarations read, in header order (the order the module lists them).
#[derive(Debug, Default)]
pub(crate) struct Module {
    pub(crate) functions: Vec<model::Function>,
    /// Named types by Rust identifier.
    pub(crate) items: BTreeMap<String, model::Item>,
    pub(crate) constants: Vec<model::Constant>,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) warnings: Vec<String>,
}
