//! Builds the C libraries that tests and examples bind.
//!
//! Native: `testlib` as a shared object, compiled with the `cc` crate's
//! compiler so it matches what `cc` would use for any other C in the build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let testlib = manifest.join("testlib");
    println!("cargo:rerun-if-changed={}", testlib.display());

    let so = out.join("libsandlink_testlib.so");
    build_shared(&[testlib.join("testlib.c")], &[&testlib], &so);
    println!("cargo:rustc-env=SANDLINK_TESTLIB_SO={}", so.display());
}

/// Compiles `sources` into the shared object `so` with strict warnings.
fn build_shared(sources: &[PathBuf], includes: &[&Path], so: &Path) {
    let compiler = cc::Build::new().opt_level(2).pic(true).get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args([
        "-shared", "-fPIC", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
    ]);
    for inc in includes {
        cmd.arg("-I").arg(inc);
    }
    cmd.args(sources).arg("-o").arg(so);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", compiler.path()));
    if !status.success() {
        panic!(
            "C compiler failed building {} (command: {cmd:?})",
            so.display()
        );
    }
}
