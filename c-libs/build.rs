//! Builds the C libraries that tests and examples bind, through
//! `sandlink-build` like any user crate: testlib (ours) and expat natively
//! and for wasm32-wasi, hostile too (natively for the Process strategy only).

use std::env;
use std::path::PathBuf;

use sandlink_build::{Error, Library, StubSpec, Toolchain};

/// Where the hostile initialiser's write act writes (`HI_PATH`).
const HOSTILE_INIT_WRITES: &str = "/tmp/sandlink-hostile-init-write";

#[path = "../expat/recipe.rs"]
mod recipe;

/// A binding module evaluated against the recorder: what the Stubs
/// strategy's wrappers are generated from.
fn spec<T>(
    name: &str,
    bind: impl FnOnce(&sandlink::record::Recorder) -> sandlink::Result<T>,
) -> StubSpec {
    let rec = sandlink::record::Recorder::new(name);
    let spec = bind(&rec).and_then(|_| rec.spec());
    spec.unwrap_or_else(|e| {
        eprintln!("evaluating the {name} binding module at build time failed: {e}");
        std::process::exit(1);
    })
}

fn main() -> Result<(), Error> {
    let dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // One clang for every build, so native and sandboxed copies match.
    let toolchain = Toolchain::find()?;

    // Ours: strict C11, warnings are errors.
    Library::new("testlib")
        .file(dir.join("testlib/testlib.c"))
        .include(dir.join("testlib"))
        .stub_header("testlib.h")
        .stubs(spec("testlib", sandlink_testlib::Testlib::bind))
        .flag("-std=c11")
        .warnings_into_errors(true)
        .native(true)
        .native_compiler(toolchain.clang())
        .toolchain(toolchain.clone())
        .build()?;

    // Misbehaves on purpose: for the Sandbox and for the Process strategy's
    // worker; loaded into the host (Dynamic), it would crash it.
    Library::new("hostile")
        .file(dir.join("hostile/hostile.c"))
        .exports_file(dir.join("hostile/exports.txt"))
        .flag("-std=c11")
        .warnings_into_errors(true)
        .native(true)
        .native_compiler(toolchain.clang())
        .toolchain(toolchain.clone())
        .build()?;

    // Libraries whose initialisers misbehave, one act each, for the Process
    // worker's confinement before load (plain shared objects: nothing binds
    // them but `hi_outcome`).
    let init_src = dir.join("hostile-init/init.c");
    println!("cargo:rerun-if-changed={}", init_src.display());
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for act in [
        "write", "read", "socket", "fork", "exec", "signal", "prlimit", "setown", "memory",
        "procmem", "sibling", "fds",
    ] {
        let so = out.join(format!("libhostile_init_{act}.so"));
        run_clang(
            std::process::Command::new(toolchain.clang())
                .args([
                    "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-ldl",
                ])
                .arg(format!("-DACT_{}", act.to_uppercase()))
                .arg(format!("-DHI_PATH=\"{HOSTILE_INIT_WRITES}\""))
                .arg(&init_src)
                .arg("-o")
                .arg(&so),
            &format!("{} ({act})", init_src.display()),
        )?;
    }
    println!(
        "cargo:rustc-env=SANDLINK_HOSTILE_INIT_DIR={}",
        out.display()
    );
    println!("cargo:rustc-env=SANDLINK_HOSTILE_INIT_WRITES={HOSTILE_INIT_WRITES}");

    // The same maths user twice: with libm named as a link library, and
    // without (a worker cannot load that one).
    for (name, libm) in [("uses_libm", true), ("forgets_libm", false)] {
        let mut lib = Library::new(name);
        lib.file(dir.join("uses-libm/uses_libm.c"))
            .exports(["um_log2"])
            .warnings_into_errors(true)
            .native(true)
            .toolchain(toolchain.clone());
        if libm {
            lib.link_lib("m");
        }
        lib.build()?;
    }

    // expat 2.5.0 from Debian's source package (fetched by scripts/setup.sh),
    // by sandlink-expat's own recipe.
    let src = recipe::source(&dir).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let lib = src.join("lib");
    let clang = toolchain.clang().to_path_buf();
    let built = recipe::library(
        &src,
        &dir.join("../expat"),
        spec("expat", sandlink_expat::Expat::bind),
    )
    .native(true)
    .native_compiler(toolchain.clang())
    .toolchain(toolchain)
    .build()?;

    // The C tree printer, the benchmarks' anchor: the same clang, -O2,
    // linked against the expat just built.
    let so = built.native.as_ref().expect("expat is built natively");
    let so_dir = so.parent().expect("the shared object is in OUT_DIR");
    let exe = so_dir.join("c_tree");
    let source = dir.join("c-tree/c_tree.c");
    println!("cargo:rerun-if-changed={}", source.display());
    run_clang(
        std::process::Command::new(&clang)
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-std=c11"])
            .arg(format!("-I{}", lib.display()))
            .arg(&source)
            .arg(so)
            .arg(format!("-Wl,-rpath,{}", so_dir.display()))
            .arg("-o")
            .arg(&exe),
        &source.display().to_string(),
    )?;
    println!("cargo:rustc-env=SANDLINK_C_TREE={}", exe.display());
    Ok(())
}

/// Runs a clang command that builds `what`; a failed build ends the build
/// script (clang has printed why).
fn run_clang(cmd: &mut std::process::Command, what: &str) -> Result<(), Error> {
    let status = cmd.status().map_err(|source| Error::Io {
        what: format!("running clang for {what}"),
        source,
    })?;
    if !status.success() {
        eprintln!("building {what} failed");
        std::process::exit(1);
    }
    Ok(())
}
