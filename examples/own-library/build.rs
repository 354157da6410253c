//! Builds cJSON from Debian's source three ways: a wasm32-wasi module for
//! the Sandbox, a native shared object for Dynamic, and generated stubs for
//! the Stubs strategy. This is all it takes.

use std::path::PathBuf;
use std::process::Command;

// The program's own binding module, compiled into this build script too:
// evaluated against the recorder, it says which functions to export and to
// wrap, and the C compiler checks it against cJSON.h.
#[path = "src/bindings.rs"]
#[allow(dead_code)]
mod bindings;

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = here.join(".deps/cjson");
    if !src.join("cJSON.c").exists() {
        // Fetch it once (apt-get source, into .deps/; see fetch-cjson.sh).
        let ok = Command::new("bash")
            .arg(here.join("fetch-cjson.sh"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cJSON's source is missing and fetch-cjson.sh failed; run it by hand");
            std::process::exit(1);
        }
    }
    let rec = sandlink::record::Recorder::new("cjson");
    let spec = bindings::CJsonLib::bind(&rec).and_then(|_| rec.spec());
    let spec = spec.unwrap_or_else(|e| {
        eprintln!("evaluating the cJSON bindings failed: {e}");
        std::process::exit(1);
    });
    sandlink_build::Library::new("cjson")
        .file(src.join("cJSON.c"))
        .include(&src)
        .stub_header("cJSON.h")
        .stubs(spec)
        .native(true)
        // The module's machine code too (sandlink-build's `precompile`
        // feature), so the program's first sandbox compiles nothing.
        .precompile(true)
        .compile();
}
