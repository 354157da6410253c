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
    };

    let so = out.join("libsandlink_testlib.so");
    build_shared(&testlib, &so);
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
    };
    let module = out.join("hostile.wasm");
    wasm.build(&hostile, &shim, &out, &module);
    println!("cargo:rustc-env=SANDLINK_HOSTILE_WASM={}", module.display());
}

fn run(mut cmd: Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {:?} ({what}): {e}", cmd.get_program()));
    if !status.success() {
        panic!("{what} failed: {cmd:?}");
    }
}

/// Compiles `lib` into the shared object `so` with strict warnings.
fn build_shared(lib: &CLib, so: &Path) {
    let compiler = cc::Build::new().opt_level(2).pic(true).get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args([
        "-shared", "-fPIC", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
    ]);
    for inc in &lib.includes {
        cmd.arg("-I").arg(inc);
    }
    for (k, v) in &lib.defines {
        cmd.arg(format!("-D{k}={v}"));
    }
    cmd.args(&lib.sources).arg("-o").arg(so);
    run(cmd, &format!("building native {}", lib.name));
}

/// clang for wasm32-wasi, with the sysroot flags it needs.
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
            .flag("-std=c11")
            .flag("-Wall")
            .flag("-Wextra")
            .flag("-Werror")
            .files(&lib.sources)
            .file(shim);
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
