//! Builds the C libraries that tests and examples bind, twice each:
//!
//! - native: a shared object for the Dynamic strategy, compiled with the `cc`
//!   crate's host compiler;
//! - wasm32-wasi: a reactor module for the Sandbox strategy, compiled by `cc`
//!   driving clang, linked with the guest shim and an explicit export list.
//!
//! The wasm toolchain is clang-19 + lld-19 + wasi-libc + the wasm32 compiler-rt
//! from Debian, or a wasi-sdk when `WASI_SDK_PATH` is set.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A C library: its sources, include directories and wasm export list.
struct CLib {
    name: &'static str,
    sources: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    exports: PathBuf,
    defines: Vec<(&'static str, &'static str)>,
    /// Our own code: `-std=c11 -Werror`. Third-party code builds as its
    /// authors intend, with warnings shown but not fatal.
    strict: bool,
    /// Sources compiled into the wasm module only.
    wasm_only_sources: Vec<PathBuf>,
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let shim = manifest.join("../guest-shim/shim.c");
    println!("cargo:rerun-if-changed={}", shim.display());
    println!("cargo:rerun-if-env-changed=WASI_SDK_PATH");

    let testlib_dir = manifest.join("testlib");
    println!("cargo:rerun-if-changed={}", testlib_dir.display());
    let testlib = CLib {
        name: "testlib",
        sources: vec![testlib_dir.join("testlib.c")],
        includes: vec![testlib_dir.clone()],
        exports: testlib_dir.join("exports.txt"),
        defines: vec![],
        strict: true,
        wasm_only_sources: vec![],
    };

    let so = out.join("libsandlink_testlib.so");
    build_shared(&testlib, &so, None);
    println!("cargo:rustc-env=SANDLINK_TESTLIB_SO={}", so.display());

    let wasm = WasmToolchain::find();
    let module = out.join("testlib.wasm");
    wasm.build(&testlib, &shim, &out, &module);
    println!("cargo:rustc-env=SANDLINK_TESTLIB_WASM={}", module.display());

    // Hostile misbehaves on purpose: wasm only, never loaded natively.
    let hostile_dir = manifest.join("hostile");
    println!("cargo:rerun-if-changed={}", hostile_dir.display());
    let hostile = CLib {
        name: "hostile",
        sources: vec![hostile_dir.join("hostile.c")],
        includes: vec![],
        exports: hostile_dir.join("exports.txt"),
        defines: vec![],
        strict: true,
        wasm_only_sources: vec![],
    };
    let module = out.join("hostile.wasm");
    wasm.build(&hostile, &shim, &out, &module);
    println!("cargo:rustc-env=SANDLINK_HOSTILE_WASM={}", module.display());

    // expat 2.5.0 from Debian's source package (fetched by scripts/setup.sh),
    // built natively and for wasm with the same compiler (clang-19) and flags.
    println!("cargo:rerun-if-env-changed=SANDLINK_EXPAT_SRC");
    let expat_src = env::var_os("SANDLINK_EXPAT_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../.deps/expat"));
    let expat_lib = expat_src.join("lib");
    if !expat_lib.join("xmlparse.c").exists() {
        panic!(
            "expat's source is not at {}: run `bash scripts/setup.sh` (it fetches Debian's \
             expat 2.5.0 source package), or set SANDLINK_EXPAT_SRC to an expat source tree",
            expat_src.display()
        );
    }
    let expat_dir = manifest.join("expat");
    println!("cargo:rerun-if-changed={}", expat_dir.display());
    println!("cargo:rerun-if-changed={}", expat_lib.display());
    let expat = CLib {
        name: "expat",
        sources: ["xmlparse.c", "xmlrole.c", "xmltok.c"]
            .iter()
            .map(|f| expat_lib.join(f))
            .collect(),
        includes: vec![expat_dir.clone(), expat_lib.clone()],
        exports: expat_dir.join("exports.txt"),
        defines: vec![("HAVE_EXPAT_CONFIG_H", "1")],
        strict: false,
        wasm_only_sources: vec![expat_dir.join("wasi_entropy.c")],
    };
    let so = out.join("libsandlink_expat.so");
    build_shared(&expat, &so, Some(&wasm.clang));
    println!("cargo:rustc-env=SANDLINK_EXPAT_SO={}", so.display());
    let module = out.join("expat.wasm");
    wasm.build(&expat, &shim, &out, &module);
    println!("cargo:rustc-env=SANDLINK_EXPAT_WASM={}", module.display());
}

fn run(mut cmd: Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {:?} ({what}): {e}", cmd.get_program()));
    if !status.success() {
        panic!("{what} failed: {cmd:?}");
    }
}

/// Compiles `lib` into the shared object `so`, with `compiler` or the `cc`
/// crate's default C compiler.
fn build_shared(lib: &CLib, so: &Path, compiler: Option<&Path>) {
    let mut build = cc::Build::new();
    build.opt_level(2).pic(true);
    if let Some(c) = compiler {
        build.compiler(c);
    }
    let mut cmd: Command = build.get_compiler().to_command();
    cmd.args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra"]);
    if lib.strict {
        cmd.args(["-std=c11", "-Werror"]);
    }
    for inc in &lib.includes {
        cmd.arg("-I").arg(inc);
    }
    for (k, v) in &lib.defines {
        cmd.arg(format!("-D{k}={v}"));
    }
    cmd.args(&lib.sources).arg("-o").arg(so);
    run(cmd, &format!("building native {}", lib.name));
}

/// clang for wasm32-wasi, with the sysroot flags it needs. The same clang
/// builds third-party libraries' native copies, so both builds match.
struct WasmToolchain {
    clang: PathBuf,
    flags: Vec<String>,
}

const INSTALL_HINT: &str = "the wasm32-wasi C toolchain is missing. On Debian run \
     `bash scripts/setup.sh` (or `apt-get install clang-19 lld-19 wasi-libc \
     libclang-rt-19-dev-wasm32`), or set WASI_SDK_PATH to a wasi-sdk";

impl WasmToolchain {
    fn find() -> WasmToolchain {
        if let Some(sdk) = env::var_os("WASI_SDK_PATH") {
            let sdk = PathBuf::from(sdk);
            let clang = sdk.join("bin/clang");
            if !clang.exists() {
                panic!(
                    "WASI_SDK_PATH={} has no bin/clang; {INSTALL_HINT}",
                    sdk.display()
                );
            }
            let sysroot = sdk.join("share/wasi-sysroot");
            return WasmToolchain {
                clang,
                flags: vec![format!("--sysroot={}", sysroot.display())],
            };
        }
        let clang = ["clang-19", "/usr/lib/llvm-19/bin/clang"]
            .iter()
            .map(PathBuf::from)
            .find(|c| {
                Command::new(c)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .unwrap_or_else(|| panic!("clang-19 not found: {INSTALL_HINT}"));
        // Debian's wasi-libc and compiler-rt: check them now, so a missing
        // package is named instead of surfacing as a link error.
        for (path, pkg) in [
            ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
            ("/usr/lib/llvm-19/bin/wasm-ld", "lld-19"),
        ] {
            if !Path::new(path).exists() {
                panic!("{path} is missing (package {pkg}): {INSTALL_HINT}");
            }
        }
        let rt = Path::new("/usr/lib/llvm-19/lib/clang/19/lib/wasi");
        if !rt.exists() {
            panic!(
                "{} is missing (package libclang-rt-19-dev-wasm32): {INSTALL_HINT}",
                rt.display()
            );
        }
        WasmToolchain {
            clang,
            flags: vec![],
        }
    }

    /// Compiles `lib` plus the shim with `cc` and links a reactor module.
    fn build(&self, lib: &CLib, shim: &Path, out: &Path, module: &Path) {
        let mut build = cc::Build::new();
        build
            .compiler(&self.clang)
            .target("wasm32-wasip1")
            .no_default_flags(true)
            .cargo_metadata(false)
            .out_dir(out.join(format!("{}-wasm-obj", lib.name)))
            .flag("--target=wasm32-wasi")
            .flag("-O2")
            .flag("-Wall")
            .flag("-Wextra")
            .files(&lib.sources)
            .files(&lib.wasm_only_sources)
            .file(shim);
        if lib.strict {
            build.flag("-std=c11").flag("-Werror");
        } else {
            build.warnings(false).extra_warnings(false);
        }
        for f in &self.flags {
            build.flag(f);
        }
        for inc in &lib.includes {
            build.include(inc);
        }
        for (k, v) in &lib.defines {
            build.define(k, Some(*v));
        }
        let objects = build
            .try_compile_intermediates()
            .unwrap_or_else(|e| panic!("compiling {} for wasm32-wasi failed: {e}", lib.name));

        let exports = std::fs::read_to_string(&lib.exports)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", lib.exports.display()));
        println!("cargo:rerun-if-changed={}", lib.exports.display());

        let mut cmd = Command::new(&self.clang);
        cmd.arg("--target=wasm32-wasi")
            .args(&self.flags)
            .args(["-O2", "-mexec-model=reactor"])
            .args([
                "-Wl,--export-table",
                "-Wl,--growable-table",
                "-Wl,--stack-first",
            ])
            .arg("-Wl,-z,stack-size=1048576");
        for name in exports
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            cmd.arg(format!("-Wl,--export={name}"));
        }
        cmd.args(&objects).arg("-o").arg(module);
        run(cmd, &format!("linking {} for wasm32-wasi", lib.name));
    }
}
