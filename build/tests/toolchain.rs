//! A missing toolchain is an error that says what to install. (Its own test
//! binary: it sets an environment variable, which no other test may see.)

use sandlink_build::{Error, Library, Toolchain};

#[test]
fn a_compiler_that_does_not_run_names_the_variable_and_the_fix() {
    // Safe in edition 2021; this binary runs this one test only.
    std::env::set_var("CC_wasm32_wasip1", "/nonexistent/clang");
    let e = Toolchain::find()
        .err()
        .unwrap_or_else(|| panic!("a nonexistent compiler was accepted"));
    let msg = e.to_string();
    assert!(matches!(e, Error::Toolchain { .. }), "{msg}");
    assert!(msg.contains("CC_wasm32_wasip1=/nonexistent/clang"), "{msg}");
    assert!(
        msg.contains("clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"),
        "no install hint: {msg}"
    );
    // A build reports the same, before compiling anything.
    let dir = std::env::temp_dir();
    let e = Library::new("x")
        .file(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/toolchain.rs"))
        .exports(["f"])
        .out_dir(&dir)
        .cargo_metadata(false)
        .build()
        .err()
        .unwrap_or_else(|| panic!("built without a toolchain"));
    assert!(matches!(e, Error::Toolchain { .. }), "{e}");

    // The override is used when it runs: Debian's clang-19 by its path.
    let clang = std::path::Path::new("/usr/lib/llvm-19/bin/clang");
    if clang.exists() {
        std::env::set_var("CC_wasm32_wasip1", clang);
        let t = Toolchain::find().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.clang(), clang);
        assert!(
            t.origin().starts_with("CC_wasm32_wasip1="),
            "{}",
            t.origin()
        );
    }
}
