//! Compiling and linking: the wasm32-wasi reactor recipe and the native
//! shared object, objects compiled in parallel, header dependencies read
//! back from the compiler for cargo's `rerun-if-changed`.

use std::collections::BTreeSet;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sandlink_guest_shim::{abi, GAPS_C, SETJMP_H, SHIM_C, SJLJ_C};

use crate::{stubs, Built, Error, Library, Toolchain, COMPILER_VARS};

const WASM: &str = "wasm32-wasi";
const NATIVE: &str = "native";

/// One object to compile: its source and the flags only it gets.
struct Unit {
    source: PathBuf,
    object: PathBuf,
    extra: Vec<String>,
}

pub(crate) fn build(lib: &Library) -> Result<Built, Error> {
    let out = match &lib.out_dir {
        Some(d) => d.clone(),
        None => env::var_os("OUT_DIR")
            .map(PathBuf::from)
            .ok_or(Error::NoOutDir)?,
    };
    if lib.files.is_empty() {
        return Err(Error::Empty {
            library: lib.name.clone(),
            what: "no source files: add them with `.file(..)` or `.files(..)`".into(),
        });
    }
    for f in lib.files.iter().chain(&lib.wasm_files) {
        if !f.is_file() {
            return Err(missing(lib, "source file", f));
        }
    }
    for d in &lib.includes {
        if !d.is_dir() {
            return Err(missing(lib, "include directory", d));
        }
    }
    let exports = exports(lib)?;
    let warnings = shadowed_shim_headers(lib);
    let toolchain = match &lib.toolchain {
        Some(t) => t.clone(),
        None => Toolchain::find()?,
    };
    let mut inputs: BTreeSet<PathBuf> = BTreeSet::new();
    inputs.extend(lib.files.iter().cloned());
    inputs.extend(lib.wasm_files.iter().cloned());
    inputs.extend(lib.exports_files.iter().cloned());

    // What every wasm compile (and the stubs' wasm check) adds.
    let wasm_only = wasm_only_flags(&out)?;
    // The stubs are checked first: a description that disagrees with the
    // headers is reported as such, not as a missing export at link time.
    let checked = match &lib.stubs {
        Some(spec) => Some(check_stubs(lib, spec, &toolchain, &out, &wasm_only)?),
        None => None,
    };

    // The wasm module: the library, its wasm-only sources and the shim.
    let wasm_dir = out.join(format!("{}-wasm", lib.name));
    mkdir(&wasm_dir)?;
    // Sandlink's own C, in every module: the shim, the setjmp/longjmp
    // runtime, WASI's gaps.
    let mut ours = Vec::new();
    for (name, text) in [
        ("sandlink-guest-shim", SHIM_C),
        ("sandlink-sjlj", SJLJ_C),
        ("sandlink-wasi-gaps", GAPS_C),
    ] {
        let source = out.join(format!("{name}.c"));
        write_if_changed(&source, text)?;
        ours.push((source, wasm_dir.join(format!("{name}.o"))));
    }
    // The constants a binding module reads are part of every build.
    let consts: Vec<PathBuf> = checked
        .as_ref()
        .and_then(|c| c.consts.clone())
        .into_iter()
        .collect();
    let mut units = units_for(
        &wasm_dir,
        lib.files.iter().chain(&lib.wasm_files).chain(&consts),
    );
    let mut shim_flags = vec!["-std=c11".to_string(), "-Wall".into(), "-Werror".into()];
    for (name, value) in abi::SHIM_MACROS {
        shim_flags.push(format!("-D{name}=\"{value}\""));
    }
    for (source, object) in &ours {
        units.push(Unit {
            source: source.clone(),
            object: object.clone(),
            extra: shim_flags.clone(),
        });
    }
    let mut wasm_flags = common_flags(lib);
    wasm_flags.extend(wasm_only.iter().cloned());
    wasm_flags.extend(lib.wasm_flags.iter().cloned());
    let objects = compile_all(lib, WASM, &units, &|| toolchain.command(), &wasm_flags)?;
    let module = out.join(format!("{}.wasm", lib.name));
    let mut link = toolchain.command();
    link.arg(format!("-O{}", lib.opt_level))
        .args(&lib.wasm_flags)
        .arg("-mexec-model=reactor")
        .args([
            "-Wl,--export-table",
            "-Wl,--growable-table",
            "-Wl,--stack-first",
            // Every missing export at once, not the first 20.
            "-Wl,--error-limit=0",
        ])
        .arg(format!("-Wl,-z,stack-size={}", lib.stack_size));
    for name in &exports {
        link.arg(format!("-Wl,--export={name}"));
    }
    link.args(&objects)
        .args(EMULATION_LIBS)
        .arg("-o")
        .arg(&module);
    run_link(lib, WASM, link)?;
    rewrite_exceptions(lib, &module)?;
    inputs.extend(depfiles(&units)?.into_iter().filter(|p| {
        !ours.iter().any(|(source, _)| source == p) && !p.starts_with(out.join(INCLUDE_DIR))
    }));

    // The library compiled natively, from the same sources and flags, once
    // for both the shared object and the stubs archive.
    let compiler = native_compiler(lib);
    let mut native_flags = common_flags(lib);
    native_flags.push("-fPIC".into());
    let native_objects = if lib.native || checked.is_some() {
        let dir = out.join(format!("{}-native", lib.name));
        mkdir(&dir)?;
        let units = units_for(&dir, lib.files.iter().chain(&consts));
        let cmd = || Command::new(&compiler);
        let objects = compile_all(lib, NATIVE, &units, &cmd, &native_flags)?;
        inputs.extend(depfiles(&units)?);
        objects
    } else {
        Vec::new()
    };

    // The native shared object.
    let native = if lib.native {
        let so = out.join(format!("lib{}.so", lib.name));
        let mut link = Command::new(&compiler);
        link.arg("-shared")
            .args(&native_objects)
            // Record every library as needed, used or not, so that loading
            // the shared object loads them.
            .arg("-Wl,--no-as-needed")
            .args(lib.link_libs.iter().map(|l| format!("-l{l}")))
            .arg("-o")
            .arg(&so);
        run_link(lib, NATIVE, link)?;
        Some(so)
    } else {
        None
    };

    let stubs = match &checked {
        Some(c) => Some(archive_stubs(
            lib,
            c,
            &native_objects,
            &compiler,
            &native_flags,
            &mut inputs,
        )?),
        None => None,
    };

    let precompiled = precompile(lib, &module, &out)?;

    let stem = lib.env_stem();
    let built = Built {
        precompiled_env: precompiled.as_ref().map(|_| format!("{stem}_CWASM")),
        precompiled,
        stubs_env: stubs.as_ref().map(|_| format!("{stem}_STUBS")),
        stubs: stubs.as_ref().map(|s| s.rust.clone()),
        wasm: module,
        native_env: native.as_ref().map(|_| format!("{stem}_SO")),
        native,
        inputs: inputs.into_iter().collect(),
        wasm_env: format!("{stem}_WASM"),
        warnings,
    };
    if lib.cargo_metadata {
        for w in &built.warnings {
            println!("cargo:warning=sandlink-build: {w}");
        }
        for p in &built.inputs {
            println!("cargo:rerun-if-changed={}", p.display());
        }
        for var in COMPILER_VARS
            .iter()
            .chain(&["CC", "CFLAGS", "TARGET_CC", "TARGET_CFLAGS"])
        {
            println!("cargo:rerun-if-env-changed={var}");
        }
        println!(
            "cargo:rustc-env={}={}",
            built.wasm_env,
            built.wasm.display()
        );
        if let (Some(var), Some(so)) = (&built.native_env, &built.native) {
            println!("cargo:rustc-env={var}={}", so.display());
        }
        if let (Some(var), Some(code)) = (&built.precompiled_env, &built.precompiled) {
            println!("cargo:rustc-env={var}={}", code.display());
        }
        if let (Some(var), Some(s)) = (&built.stubs_env, &stubs) {
            println!("cargo:rustc-env={var}={}", s.rust.display());
            println!("cargo:rustc-link-search=native={}", s.dir.display());
            println!("cargo:rustc-link-lib=static={}", s.archive_name);
            for l in &lib.link_libs {
                println!("cargo:rustc-link-lib={l}");
            }
        }
    }
    Ok(built)
}

/// When [`Library::precompile`] asked for it: the module's machine code,
/// compiled by the sandbox's own engine settings
/// (`sandlink::SandboxConfig::precompile`), in `<name>.cwasm`; an empty
/// file when cargo builds for another target than the machine running this
/// build script (code for one CPU does not run on another).
#[cfg(feature = "precompile")]
fn precompile(lib: &Library, module: &Path, out: &Path) -> Result<Option<PathBuf>, Error> {
    if !lib.precompile {
        return Ok(None);
    }
    let path = out.join(format!("{}.cwasm", lib.name));
    let io = |what: &str, path: &Path, source| Error::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    let (host, target) = (env::var("HOST").ok(), env::var("TARGET").ok());
    let code = if host != target {
        if lib.cargo_metadata {
            println!(
                "cargo:warning=sandlink-build: `{}` is not compiled ahead of time: the target \
                 ({}) is not this machine ({}); the sandbox compiles it when first opened",
                lib.name,
                target.as_deref().unwrap_or("?"),
                host.as_deref().unwrap_or("?"),
            );
        }
        Vec::new()
    } else {
        let wasm = std::fs::read(module).map_err(|e| io("reading", module, e))?;
        sandlink::SandboxConfig::precompile(&wasm, &lib.name).map_err(|e| Error::Module {
            library: lib.name.clone(),
            module: module.to_path_buf(),
            problem: format!("compiling it to machine code ahead of time failed: {e}"),
        })?
    };
    std::fs::write(&path, code).map_err(|e| io("writing", &path, e))?;
    Ok(Some(path))
}

/// Without the `precompile` feature there is no `Library::precompile`.
#[cfg(not(feature = "precompile"))]
fn precompile(_: &Library, _: &Path, _: &Path) -> Result<Option<PathBuf>, Error> {
    Ok(None)
}

fn missing(lib: &Library, what: &'static str, path: &Path) -> Error {
    Error::MissingInput {
        library: lib.name.clone(),
        what,
        path: path.to_path_buf(),
    }
}

fn mkdir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        what: format!("creating {}", dir.display()),
        source,
    })
}

/// Writes `text` to `path` unless it holds it already (keeps the mtime, so
/// nothing downstream rebuilds).
fn write_if_changed(path: &Path, text: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| Error::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}

/// The export list: the names given plus those in the exports files.
fn exports(lib: &Library) -> Result<Vec<String>, Error> {
    let mut names = lib.exports.clone();
    for path in &lib.exports_files {
        if !path.is_file() {
            return Err(missing(lib, "exports file", path));
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: format!("reading the exports file {}", path.display()),
            source,
        })?;
        names.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    // With stubs, the binding module says what the bindings use: every
    // function and global it declares is exported, and no list is written
    // by hand.
    if let Some(spec) = &lib.stubs {
        names.extend(spec.functions.iter().map(|f| f.name.clone()));
        names.extend(spec.globals.iter().cloned());
        names.extend(spec.constants.iter().map(|c| abi::const_symbol(&c.name)));
    }
    let mut seen = BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if names.is_empty() {
        return Err(Error::Empty {
            library: lib.name.clone(),
            what: "no exports: list the functions the bindings use with `.exports([..])` \
                   or `.exports_file(path)`, or give `.stubs(..)` a binding module's \
                   recording"
                .into(),
        });
    }
    Ok(names)
}

/// What [`check_stubs`] wrote: the stub file and the constants file (when
/// the bindings read constants), checked, in the stubs directory.
struct CheckedStubs {
    dir: PathBuf,
    symbol: String,
    c_file: PathBuf,
    consts: Option<PathBuf>,
}

/// What [`archive_stubs`] made.
struct StubsBuilt {
    dir: PathBuf,
    archive_name: String,
    rust: PathBuf,
}

/// Generates the stubs (and the constants file) and checks them against the
/// headers, for the host and for wasm32-wasi.
fn check_stubs(
    lib: &Library,
    spec: &crate::StubSpec,
    toolchain: &Toolchain,
    out: &Path,
    wasm_only: &[String],
) -> Result<CheckedStubs, Error> {
    let dir = out.join(format!("{}-stubs", lib.name));
    mkdir(&dir)?;
    let symbol = abi::stubs::table_symbol(&lib.name);
    let generated = stubs::generate(&lib.name, &lib.stub_headers, spec, lib.callback_slots);
    let c_file = dir.join(format!("{symbol}.c"));
    write_if_changed(&c_file, &generated.c)?;

    let consts = if spec.constants.is_empty() {
        None
    } else {
        let (text, lines) = stubs::constants_file(&lib.name, &lib.stub_headers, spec);
        let path = dir.join(format!("sandlink_consts_{}.c", lib.name));
        write_if_changed(&path, &text)?;
        Some((path, lines))
    };

    // The check: the wrappers (and the constants) alone, with the mismatch
    // warnings as errors, by clang whatever the native compiler is (the
    // warning names are clang's): for the host (LP64), then for
    // wasm32-wasi (ILP32), so the description is checked against the
    // headers as each build sees them.
    let native_check = || {
        let mut c = Command::new(toolchain.clang());
        c.args(common_flags(lib));
        c
    };
    let wasm_check = || {
        let mut c = toolchain.command();
        c.args(common_flags(lib))
            .args(wasm_only)
            .args(&lib.wasm_flags);
        c
    };
    let checks: [(&'static str, &dyn Fn() -> Command); 2] =
        [(NATIVE, &native_check), (WASM, &wasm_check)];
    for (target, base) in checks {
        let name = c_file.display().to_string();
        run_check(lib, target, base(), &c_file, |d| {
            stubs::explain(spec, &generated, &name, d)
        })?;
        if let Some((path, lines)) = &consts {
            let name = path.display().to_string();
            run_check(lib, target, base(), path, |d| {
                stubs::explain_constant(spec, lines, &name, d)
            })?;
        }
    }
    Ok(CheckedStubs {
        dir,
        symbol,
        c_file,
        consts: consts.map(|(p, _)| p),
    })
}

/// Compiles `file` with `check` and the mismatch flags, syntax only; a
/// failure is a [`Error::StubMismatch`] when `explain` can name what the
/// diagnostics are about, else a plain compile error.
fn run_check(
    lib: &Library,
    target: &'static str,
    mut check: Command,
    file: &Path,
    explain: impl Fn(&str) -> Option<(String, String, String)>,
) -> Result<(), Error> {
    check
        .args(stubs::CHECK_FLAGS)
        .arg("-fsyntax-only")
        .arg(file);
    let output = check.output().map_err(|source| Error::Io {
        what: format!("running the compiler {:?}", check.get_program()),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let diagnostics = String::from_utf8_lossy(&output.stderr).into_owned();
    Err(match explain(&diagnostics) {
        Some((function, problem, message)) => Error::StubMismatch(Box::new(crate::StubMismatch {
            library: lib.name.clone(),
            function,
            problem,
            message,
            target,
            file: file.to_path_buf(),
        })),
        None => Error::Compile {
            library: lib.name.clone(),
            file: file.to_path_buf(),
            target,
            diagnostics,
            command: format!("{check:?}"),
        },
    })
}

/// Compiles the checked stubs and archives them with the library's native
/// objects (`lib_objects`, which hold the constants too), and writes the
/// Rust file that names the table.
fn archive_stubs(
    lib: &Library,
    checked: &CheckedStubs,
    lib_objects: &[PathBuf],
    compiler: &Path,
    flags: &[String],
    inputs: &mut BTreeSet<PathBuf>,
) -> Result<StubsBuilt, Error> {
    let CheckedStubs {
        dir,
        symbol,
        c_file,
        ..
    } = checked;
    let unit = Unit {
        source: c_file.clone(),
        object: dir.join(format!("{symbol}.o")),
        extra: vec!["-w".into()],
    };
    let units = std::slice::from_ref(&unit);
    let objects = compile_all(lib, NATIVE, units, &|| Command::new(compiler), flags)?;
    inputs.extend(depfiles(units)?.into_iter().filter(|p| p != c_file));
    let archive = dir.join(format!("lib{symbol}.a"));
    let _ = std::fs::remove_file(&archive);
    let mut ar = archiver();
    ar.arg("crs").arg(&archive).args(lib_objects).args(&objects);
    run_link(lib, NATIVE, ar)?;

    let rust = dir.join(format!("{symbol}.rs"));
    write_if_changed(&rust, &stubs::rust_file(&lib.name, symbol))?;
    Ok(StubsBuilt {
        dir: dir.clone(),
        archive_name: symbol.clone(),
        rust,
    })
}

/// The `ar` the `cc` crate would use for the target, else `ar`.
fn archiver() -> Command {
    let mut build = cc::Build::new();
    build.cargo_metadata(false);
    if env::var_os("TARGET").is_none() {
        build
            .target(env!("SANDLINK_BUILD_HOST"))
            .host(env!("SANDLINK_BUILD_HOST"));
    }
    build
        .try_get_archiver()
        .unwrap_or_else(|_| Command::new("ar"))
}

/// An object per source, named by its position and file stem.
fn units_for<'a>(dir: &Path, sources: impl Iterator<Item = &'a PathBuf>) -> Vec<Unit> {
    sources
        .enumerate()
        .map(|(i, s)| {
            let stem = s
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Unit {
                source: s.clone(),
                object: dir.join(format!("{i:03}-{stem}.o")),
                extra: Vec::new(),
            }
        })
        .collect()
}

/// Where [`SETJMP_H`] goes, under `OUT_DIR`.
const INCLUDE_DIR: &str = "sandlink-wasm-include";

/// WASI's emulation macros, on in every wasm compile so that `<signal.h>`,
/// `<sys/mman.h>`, `clock()`, `times()`, `getrusage()` and `getpid()` are
/// declared; [`EMULATION_LIBS`] defines them (only what is used is linked).
const EMULATION_DEFINES: [&str; 4] = [
    "-D_WASI_EMULATED_SIGNAL",
    "-D_WASI_EMULATED_MMAN",
    "-D_WASI_EMULATED_PROCESS_CLOCKS",
    "-D_WASI_EMULATED_GETPID",
];

/// wasi-libc's emulation libraries, for [`EMULATION_DEFINES`].
const EMULATION_LIBS: [&str; 4] = [
    "-lwasi-emulated-signal",
    "-lwasi-emulated-mman",
    "-lwasi-emulated-process-clocks",
    "-lwasi-emulated-getpid",
];

/// The flags every wasm compile gets on top of [`common_flags`]: Sandlink's
/// `<setjmp.h>` ahead of the sysroot's headers, setjmp/longjmp lowered to
/// wasm exception handling, and WASI's emulations declared.
/// The headers the wasm build provides itself (in `INCLUDE_DIR`).
const SHIM_HEADERS: &[&str] = &["setjmp.h"];

/// A warning for each include directory of the library's that holds a
/// header the wasm build provides: `-I` is searched first, so that one would
/// be compiled instead, and setjmp/longjmp would not work in the sandbox.
fn shadowed_shim_headers(lib: &Library) -> Vec<String> {
    let mut warnings = Vec::new();
    for dir in &lib.includes {
        for h in SHIM_HEADERS {
            if dir.join(h).is_file() {
                warnings.push(format!(
                    "library `{}`: the include directory {} holds a `{h}`, which the wasm \
                     build would take instead of its own (setjmp/longjmp as wasm exceptions): \
                     rename it or move it out of the include path",
                    lib.name,
                    dir.display()
                ));
            }
        }
    }
    warnings
}

fn wasm_only_flags(out: &Path) -> Result<Vec<String>, Error> {
    let include = out.join(INCLUDE_DIR);
    mkdir(&include)?;
    write_if_changed(&include.join("setjmp.h"), SETJMP_H)?;
    let mut flags = vec![
        format!("-isystem{}", include.display()),
        "-mexception-handling".into(),
        "-mllvm".into(),
        "-wasm-enable-sjlj".into(),
    ];
    flags.extend(EMULATION_DEFINES.iter().map(|s| s.to_string()));
    // wasi-libc declares `tmpnam` but leaves out the sizes that go with it;
    // C code sizing a buffer for it compiles (the call fails with ENOSYS).
    flags.extend(["-DL_tmpnam=20".to_string(), "-DTMP_MAX=10000".into()]);
    Ok(flags)
}

/// Rewrites the linked module's legacy exception handling (what clang 19
/// emits for setjmp/longjmp) into the standard encoding wasmtime runs.
fn rewrite_exceptions(lib: &Library, module: &Path) -> Result<(), Error> {
    let bytes = std::fs::read(module).map_err(|source| Error::Io {
        what: format!("reading the linked module {}", module.display()),
        source,
    })?;
    match crate::eh::to_exnref(&bytes) {
        Ok(None) => Ok(()),
        Ok(Some(rewritten)) => std::fs::write(module, rewritten).map_err(|source| Error::Io {
            what: format!("writing {}", module.display()),
            source,
        }),
        Err(problem) => Err(Error::Module {
            library: lib.name.clone(),
            module: module.to_path_buf(),
            problem: format!(
                "rewriting its exception handling (setjmp/longjmp) into the standard \
                 encoding: {problem}"
            ),
        }),
    }
}

fn common_flags(lib: &Library) -> Vec<String> {
    let mut flags = vec![format!("-O{}", lib.opt_level)];
    if lib.warnings {
        flags.extend(["-Wall".to_string(), "-Wextra".into()]);
    } else {
        flags.push("-w".into());
    }
    if lib.warnings_into_errors {
        flags.push("-Werror".into());
    }
    for inc in &lib.includes {
        flags.push(format!("-I{}", inc.display()));
    }
    for (k, v) in &lib.defines {
        flags.push(match v {
            Some(v) => format!("-D{k}={v}"),
            None => format!("-D{k}"),
        });
    }
    flags.extend(lib.flags.iter().cloned());
    flags
}

/// Compiles every unit, in parallel; the first failure (in source order)
/// is the error. Warnings are passed on to cargo.
fn compile_all(
    lib: &Library,
    target: &'static str,
    units: &[Unit],
    compiler: &(dyn Fn() -> Command + Sync),
    flags: &[String],
) -> Result<Vec<PathBuf>, Error> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results: Vec<Result<String, Error>> = std::thread::scope(|s| {
        let chunks: Vec<&[Unit]> = units.chunks(units.len().div_ceil(threads).max(1)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|u| compile_one(lib, target, u, compiler(), flags))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Err(Error::Io {
                        what: "a compiler thread panicked".into(),
                        source: std::io::Error::other("panic"),
                    })]
                })
            })
            .collect()
    });
    let mut warned = Vec::new();
    for (r, u) in results.into_iter().zip(units) {
        let diagnostics = r?;
        if !diagnostics.trim().is_empty() {
            warned.push((u, diagnostics));
        }
    }
    if !warned.is_empty() && lib.cargo_metadata {
        summarise_warnings(lib, target, &warned);
    }
    Ok(units.iter().map(|u| u.object.clone()).collect())
}

/// One cargo warning for a build's compiler warnings: how many, in how
/// many files, and where their full text is (third-party code can have
/// hundreds, which cargo would print on every rebuild).
fn summarise_warnings(lib: &Library, target: &str, warned: &[(&Unit, String)]) {
    let count: usize = warned
        .iter()
        .map(|(_, d)| d.matches("warning:").count())
        .sum();
    let text: String = warned
        .iter()
        .map(|(u, d)| format!("== {}\n{d}\n", u.source.display()))
        .collect();
    let file = warned[0]
        .0
        .object
        .parent()
        .unwrap_or(Path::new("."))
        .join("compiler-warnings.txt");
    let place = match std::fs::write(&file, text) {
        Ok(()) => format!("full text in {}", file.display()),
        Err(e) => format!("(could not write {}: {e})", file.display()),
    };
    println!(
        "cargo:warning=sandlink-build: library `{}`: {count} compiler warning(s) in {} file(s) \
         ({target}); {place}; `.warnings(false)` compiles without them",
        lib.name,
        warned.len()
    );
}

/// Compiles one unit; its diagnostics (warnings) on success.
fn compile_one(
    lib: &Library,
    target: &'static str,
    unit: &Unit,
    mut cmd: Command,
    flags: &[String],
) -> Result<String, Error> {
    cmd.args(flags)
        .args(&unit.extra)
        .arg("-c")
        .arg(&unit.source)
        .arg("-o")
        .arg(&unit.object)
        .arg("-MD")
        .arg("-MF")
        .arg(unit.object.with_extension("d"));
    let output = cmd.output().map_err(|source| Error::Io {
        what: format!("running the compiler {:?}", cmd.get_program()),
        source,
    })?;
    let diagnostics = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(Error::Compile {
            library: lib.name.clone(),
            file: unit.source.clone(),
            target,
            diagnostics,
            command: format!("{cmd:?}"),
        });
    }
    Ok(diagnostics)
}

fn run_link(lib: &Library, target: &'static str, mut cmd: Command) -> Result<(), Error> {
    let output = cmd.output().map_err(|source| Error::Io {
        what: format!("running the linker {:?}", cmd.get_program()),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    // wasm-ld: "symbol exported via --export not found: NAME", one a line
    // (all of them: the link runs with --error-limit=0).
    let missing: Vec<String> = diagnostics
        .lines()
        .filter_map(|l| l.split_once("symbol exported via --export not found: "))
        .map(|(_, name)| name.trim().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingExports {
            library: lib.name.clone(),
            names: missing,
            command: format!("{cmd:?}"),
        });
    }
    Err(Error::Link {
        library: lib.name.clone(),
        target,
        diagnostics: diagnostics.into_owned(),
        command: format!("{cmd:?}"),
    })
}

/// The native compiler: the one asked for, else the `cc` crate's for the
/// target (which honours `CC`), else `cc`.
fn native_compiler(lib: &Library) -> PathBuf {
    if let Some(c) = &lib.native_compiler {
        return c.clone();
    }
    let mut build = cc::Build::new();
    build.cargo_metadata(false).warnings(false);
    if env::var_os("TARGET").is_none() {
        // Outside a build script: the host is the target.
        build
            .target(env!("SANDLINK_BUILD_HOST"))
            .host(env!("SANDLINK_BUILD_HOST"));
    }
    build.opt_level(2);
    build
        .try_get_compiler()
        .map(|c| c.path().to_path_buf())
        .unwrap_or_else(|_| PathBuf::from("cc"))
}

/// The files the compiler read, from its `-MD` dependency files.
fn depfiles(units: &[Unit]) -> Result<BTreeSet<PathBuf>, Error> {
    let mut all = BTreeSet::new();
    for u in units {
        let d = u.object.with_extension("d");
        let text = std::fs::read_to_string(&d).map_err(|source| Error::Io {
            what: format!("reading the compiler's dependency file {}", d.display()),
            source,
        })?;
        all.extend(parse_depfile(&text));
    }
    Ok(all)
}

/// Parses a make-style dependency file: `target: dep dep \` lines, with
/// `\ ` for a space inside a path.
pub(crate) fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\n", " ").replace("\\\r\n", " ");
    let mut out = Vec::new();
    for rule in joined.lines() {
        let Some((_, deps)) = rule.split_once(": ") else {
            continue;
        };
        let mut cur = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    cur.push(' ');
                    chars.next();
                }
                c if c.is_whitespace() => {
                    if !cur.is_empty() {
                        out.push(PathBuf::from(std::mem::take(&mut cur)));
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(PathBuf::from(cur));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfiles_parse_continuations_and_escaped_spaces() {
        let d = "obj.o: src/a.c include/a.h \\\n  /usr/include/stdio.h my\\ dir/b.h\n";
        assert_eq!(
            parse_depfile(d),
            [
                "src/a.c",
                "include/a.h",
                "/usr/include/stdio.h",
                "my dir/b.h"
            ]
            .iter()
            .map(PathBuf::from)
            .collect::<Vec<_>>()
        );
    }
}
