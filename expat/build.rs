//! With the `embedded` feature (on by default): compiles expat 2.5.0 to
//! wasm32-wasi through `sandlink-build`, checked against `expat.h` by the
//! stubs generated from this crate's own binding module, so that the module
//! can be embedded in the crate (`sandlink_expat::sandboxed()`). With the
//! `native` feature: the shared object and the Stubs strategy's wrappers
//! too, from the same sources and flags. With `precompiled`: the module's
//! machine code as well, compiled now.

use std::path::PathBuf;

#[path = "src/bindings.rs"]
#[allow(dead_code, missing_docs)]
mod bindings;
mod recipe;

fn main() {
    let native = std::env::var_os("CARGO_FEATURE_NATIVE").is_some();
    if std::env::var_os("CARGO_FEATURE_EMBEDDED").is_none() && !native {
        return;
    }
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let fail = |e: String| -> ! {
        eprintln!("sandlink-expat: {e}");
        std::process::exit(1);
    };
    let src = recipe::source(&dir).unwrap_or_else(|e| fail(e));
    // The binding module, evaluated against the recorder: the functions the
    // module exports and the stubs check.
    let rec = sandlink::record::Recorder::new("expat");
    let spec = bindings::Expat::bind(&rec)
        .and_then(|_| rec.spec())
        .unwrap_or_else(|e| fail(format!("evaluating the binding module failed: {e}")));
    let toolchain = sandlink_build::Toolchain::find().unwrap_or_else(|e| fail(e.to_string()));
    let mut library = recipe::library(&src, &dir, spec);
    if native {
        // One clang for both copies, so native and sandboxed expat match.
        library.native(true).native_compiler(toolchain.clang());
    }
    #[cfg(feature = "precompiled")]
    library.precompile(true);
    if let Err(e) = library.toolchain(toolchain).build() {
        fail(e.to_string());
    }
}
