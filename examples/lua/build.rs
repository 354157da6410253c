//! Builds Lua 5.4 from Debian's source: a wasm32-wasi module for the
//! Sandbox, a shared object for Dynamic and Process, and checked stubs for
//! Stubs. Lua is unmodified and needs no shim: its errors are
//! setjmp/longjmp, which sandlink-build supports in wasm, and what WASI
//! lacks (`system`, `tmpnam`, `clock`, …) is filled in by default.

use std::path::PathBuf;
use std::process::Command;

#[path = "src/bindings.rs"]
#[allow(dead_code)]
mod bindings;

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = here.join(".deps/lua5.4/src");
    if !src.join("lapi.c").exists() {
        let fetched = Command::new("bash")
            .arg(here.join("fetch-lua.sh"))
            .status()
            .is_ok_and(|s| s.success());
        if !fetched {
            eprintln!("Lua's source is missing and fetch-lua.sh failed; run it by hand");
            std::process::exit(1);
        }
    }
    // The library: every source but the two programs.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
        .expect("read Lua's src directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .filter(|p| !p.ends_with("lua.c") && !p.ends_with("luac.c"))
        .collect();
    files.sort();
    // Debian's luaconf.h includes a header its packaging generates, naming
    // the multiarch directory of C modules (package.cpath): made here.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    std::fs::write(
        out.join("lua5.4-deb-multiarch.h"),
        format!("#define DEB_HOST_MULTIARCH \"{arch}-linux-gnu\"\n"),
    )
    .expect("write lua5.4-deb-multiarch.h");
    let rec = sandlink::record::Recorder::new("lua");
    let spec = bindings::Lua::bind(&rec)
        .and_then(|_| rec.spec())
        .unwrap_or_else(|e| {
            eprintln!("evaluating the Lua bindings failed: {e}");
            std::process::exit(1);
        });
    sandlink_build::Library::new("lua")
        .files(&files)
        .include(&src)
        .include(&out)
        .stub_header("lua.h")
        .stub_header("lauxlib.h")
        .stub_header("lualib.h")
        .stubs(spec)
        .native(true)
        .link_lib("m")
        // The module's machine code too (sandlink-build's `precompile`
        // feature): the program's sandboxes compile nothing.
        .precompile(true)
        .compile();
}
