//! Modules compiled ahead of time: `sandlink-build` writes the machine code
//! next to the module, a sandbox opened from both compiles nothing, and
//! code that does not fit (another module, other engine settings, none) is
//! never used: the module's wasm is compiled instead.

use std::path::{Path, PathBuf};

use sandlink::types::{int, returning};
use sandlink::{Foreign, Precompiled, SandboxConfig};
use sandlink_expat::{Event, Flow, Handler};
use sha2::{Digest, Sha256};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `twice`, built by sandlink-build with `precompile(true)` into a fresh
/// directory: the module and its code.
fn built_twice(tag: &str) -> (Vec<u8>, Vec<u8>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sandlink-aot-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ok(std::fs::create_dir_all(&dir));
    let source = dir.join("twice.c");
    ok(std::fs::write(
        &source,
        "int twice(int x) { return 2 * x; }\n",
    ));
    let built = ok(sandlink_build::Library::new("twice")
        .file(&source)
        .exports(["twice"])
        .out_dir(dir.join("out"))
        .cargo_metadata(false)
        .precompile(true)
        .build());
    let code_path = built
        .precompiled
        .unwrap_or_else(|| panic!("precompile(true) wrote no code file"));
    assert_eq!(
        built.precompiled_env.as_deref(),
        Some("SANDLINK_TWICE_CWASM")
    );
    (read(&built.wasm), read(&code_path), dir)
}

/// Opens `module` with its own engine (`max_instances` differs per test, so
/// no test finds another's module in the process's cache) and checks that
/// it runs `twice`; returns whether the code compiled ahead of time was
/// used.
fn runs_twice(module: Precompiled<'_>, max_instances: u32) -> bool {
    let config = SandboxConfig::default()
        .cache_dir(None)
        .max_instances(max_instances);
    let compiled = ok(config.module_precompiled(module, "twice"));
    let lib = ok(config.instantiate(&compiled));
    let twice = ok(lib.function("twice", &(int() >> returning(int()))));
    assert_eq!(ok(twice.call((21,))), 42);
    compiled.precompiled()
}

#[test]
fn a_module_compiled_at_build_time_opens_without_compiling() {
    let (wasm, code, dir) = built_twice("fits");
    assert!(code.starts_with(b"sandlink aot v1\n"), "not a code file");
    // SAFETY: `code` is the file sandlink-build wrote for `wasm`.
    let module = unsafe { Precompiled::new(&wasm, &code) };
    assert!(runs_twice(module, 3), "the precompiled code was not used");
    // One code for every engine: other limits use it too.
    let config = SandboxConfig::default()
        .cache_dir(None)
        .max_instances(4)
        .max_wasm_stack(256 << 10);
    assert!(ok(config.module_precompiled(module, "twice")).precompiled());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn code_that_does_not_fit_is_not_used_and_the_wasm_is_compiled() {
    let (wasm, code, dir) = built_twice("misfits");

    // No code at all (what a cross-compiling build writes).
    // SAFETY: empty code is allowed.
    assert!(!runs_twice(unsafe { Precompiled::new(&wasm, &[]) }, 5));

    // Another module's code: testlib's, handed in with `twice`'s wasm.
    let testlib = read(Path::new(sandlink_clibs::TESTLIB_WASM));
    let other = ok(SandboxConfig::precompile(&testlib, "testlib"));
    // SAFETY: `other` is `SandboxConfig::precompile`'s output, unmodified.
    assert!(
        !runs_twice(unsafe { Precompiled::new(&wasm, &other) }, 6),
        "code compiled from another module was used"
    );

    // Code for `twice` from an engine with other settings (no epoch
    // interruption, so no deadlines): what an older Sandlink, or one
    // configured differently, would have written. wasmtime refuses it.
    let engine = ok(wasmtime::Engine::new(&wasmtime::Config::new()));
    let foreign = ok(engine.precompile_module(&wasm));
    let mut framed = b"sandlink aot v1\n".to_vec();
    framed.extend_from_slice(&Sha256::digest(&wasm));
    framed.extend_from_slice(&foreign);
    // SAFETY: a header like `precompile`'s over code wasmtime itself
    // wrote: the contract's case of another build's settings, which
    // wasmtime checks before using it.
    assert!(
        !runs_twice(unsafe { Precompiled::new(&wasm, &framed) }, 7),
        "code compiled with other engine settings was used"
    );

    // Not a code file at all.
    // SAFETY: bytes with no header are never handed to wasmtime.
    assert!(!runs_twice(
        unsafe { Precompiled::new(&wasm, b"not code") },
        8
    ));
    // The code the build wrote still fits.
    // SAFETY: `code` is the file sandlink-build wrote for `wasm`.
    assert!(runs_twice(unsafe { Precompiled::new(&wasm, &code) }, 9));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The start tags' names, in order.
struct Names(Vec<String>);

impl Handler for Names {
    fn handle(&mut self, e: Event<'_>) -> Flow {
        if let Event::StartElement { name, .. } = e {
            self.0.push(name.to_owned());
        }
        Flow::Continue
    }
}

#[test]
fn the_embedded_expat_is_compiled_at_build_time_and_parses() {
    let config = SandboxConfig::default().cache_dir(None).max_instances(10);
    let module = ok(config.module_precompiled(sandlink_expat::PRECOMPILED, "expat"));
    assert!(
        module.precompiled(),
        "sandlink-expat's build-time code does not fit the run-time engine"
    );
    let expat = ok(sandlink_expat::Expat::bind(
        &ok(config.instantiate(&module)),
    ));
    let mut parser = ok(sandlink_expat::Parser::new(&expat, Names(Vec::new())));
    ok(parser.parse(b"<a><b/><c/></a>"));
    assert_eq!(ok(parser.into_handler()).0, ["a", "b", "c"]);
}
