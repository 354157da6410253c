//! sandlink-build against the real toolchain: a small library builds for
//! wasm32-wasi and natively, and each way a build can fail names the file,
//! the line or the fix.

use std::path::{Path, PathBuf};

use sandlink_build::{Error, Library};

/// A fresh directory for one test's sources and outputs.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("sandlink-build-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn lib(dir: &Path, name: &str) -> Library {
    let mut l = Library::new(name);
    l.out_dir(dir.join("out")).cargo_metadata(false);
    l
}

#[test]
fn a_library_builds_for_wasm_and_natively_and_lists_its_inputs() {
    let dir = scratch("ok");
    write(&dir.join("src/twice.h"), "int twice(int x);\n");
    write(
        &dir.join("src/twice.c"),
        "#include \"twice.h\"\nint twice(int x) { return 2 * x; }\n",
    );
    let built = lib(&dir, "my-twice")
        .file(dir.join("src/twice.c"))
        .include(dir.join("src"))
        .exports(["twice"])
        .native(true)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let wasm = std::fs::read(&built.wasm).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&wasm[..4], b"\0asm", "{}", built.wasm.display());
    // The export list, the shim's exports and the table are in the module.
    let text = String::from_utf8_lossy(&wasm);
    for name in [
        "twice",
        "sandlink_malloc",
        "sandlink_free",
        "__indirect_function_table",
    ] {
        assert!(text.contains(name), "{name} is not exported");
    }
    let so = built
        .native
        .as_ref()
        .unwrap_or_else(|| panic!("no native build"));
    assert_eq!(
        so.file_name().and_then(|n| n.to_str()),
        Some("libmy-twice.so")
    );
    assert!(so.is_file());
    // The header came from the compiler's dependency output.
    assert!(
        built.inputs.iter().any(|p| p.ends_with("twice.h")),
        "{:?}",
        built.inputs
    );
    assert_eq!(built.wasm_env, "SANDLINK_MY_TWICE_WASM");
    assert_eq!(built.native_env.as_deref(), Some("SANDLINK_MY_TWICE_SO"));
}

#[test]
fn wasm_flags_reach_only_the_wasm_build() {
    let dir = scratch("wasmflag");
    write(
        &dir.join("src/w.c"),
        "#ifdef WASM_ONLY\nint only_in_wasm(void) { return 1; }\n#endif\nint both(void) { return 2; }\n",
    );
    let built = lib(&dir, "w")
        .file(dir.join("src/w.c"))
        .wasm_flag("-DWASM_ONLY=1")
        .exports(["only_in_wasm", "both"])
        .native(true)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let so = std::fs::read(built.native.unwrap_or_else(|| panic!("no native build")))
        .unwrap_or_else(|e| panic!("{e}"));
    let so = String::from_utf8_lossy(&so);
    assert!(so.contains("both") && !so.contains("only_in_wasm"));
}

#[test]
fn a_compile_error_names_the_file_and_line() {
    let dir = scratch("bad");
    write(
        &dir.join("src/bad.c"),
        "int ok(void) { return 1; }\n\nint broken(void) { return undeclared_thing; }\n",
    );
    let e = lib(&dir, "bad")
        .file(dir.join("src/bad.c"))
        .exports(["ok"])
        .build()
        .err()
        .unwrap_or_else(|| panic!("a broken file built"));
    assert!(matches!(e, Error::Compile { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("library `bad`"), "{msg}");
    assert!(msg.contains("bad.c:3:"), "no file:line in: {msg}");
    assert!(msg.contains("undeclared_thing"), "{msg}");
}

#[test]
fn a_missing_source_file_is_named() {
    let dir = scratch("missing");
    let e = lib(&dir, "gone")
        .file(dir.join("src/not-there.c"))
        .exports(["f"])
        .build()
        .err()
        .unwrap_or_else(|| panic!("a missing file built"));
    let msg = e.to_string();
    assert!(matches!(e, Error::MissingInput { .. }), "{msg}");
    assert!(
        msg.contains("source file") && msg.contains("not-there.c"),
        "{msg}"
    );
}

#[test]
fn no_exports_and_missing_exports_files_are_refused() {
    let dir = scratch("exports");
    write(&dir.join("src/f.c"), "int f(void) { return 0; }\n");
    let e = lib(&dir, "none")
        .file(dir.join("src/f.c"))
        .build()
        .err()
        .unwrap_or_else(|| panic!("built without exports"));
    assert!(e.to_string().contains("no exports"), "{e}");
    let e = lib(&dir, "nofile")
        .file(dir.join("src/f.c"))
        .exports_file(dir.join("exports.txt"))
        .build()
        .err()
        .unwrap_or_else(|| panic!("built with a missing exports file"));
    assert!(e.to_string().contains("exports file"), "{e}");
}

#[test]
fn exports_no_source_defines_are_listed_all_at_once_with_the_fix() {
    let dir = scratch("link");
    write(&dir.join("src/f.c"), "int f(void) { return 0; }\n");
    // More than wasm-ld's default of 20 errors.
    let missing: Vec<String> = (0..25).map(|i| format!("no_such_function_{i}")).collect();
    let e = lib(&dir, "link")
        .file(dir.join("src/f.c"))
        .exports(std::iter::once("f".to_string()).chain(missing.iter().cloned()))
        .build()
        .err()
        .unwrap_or_else(|| panic!("linked an unknown export"));
    match &e {
        Error::MissingExports { names, .. } => {
            let mut names = names.clone();
            names.sort();
            let mut want = missing.clone();
            want.sort();
            assert_eq!(names, want, "{e}");
        }
        other => panic!("expected the missing exports, got: {other}"),
    }
    let text = e.to_string();
    assert!(text.contains("25 exported function(s)"), "{text}");
    assert!(text.contains("Bindings::block"), "{text}");
}

#[test]
fn a_header_wasi_lacks_is_missing_for_wasm_not_taken_from_the_host() {
    // <termios.h> exists on the host (glibc) but not in wasi-libc: the
    // native build compiles, the wasm build names the header.
    let dir = scratch("hosthdr");
    write(
        &dir.join("src/t.c"),
        "#include <termios.h>\nint speed(void) { return (int)B9600; }\n",
    );
    let e = lib(&dir, "t")
        .file(dir.join("src/t.c"))
        .exports(["speed"])
        .build()
        .err()
        .unwrap_or_else(|| panic!("a host header reached the wasm build"));
    assert!(
        matches!(
            &e,
            Error::Compile {
                target: "wasm32-wasi",
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("'termios.h' file not found"), "{msg}");
    assert!(
        msg.contains("`termios.h` is not in the wasm32-wasi sysroot"),
        "{msg}"
    );
}

#[test]
fn wasi_emulations_gaps_and_setjmp_compile_and_link_by_default() {
    // Each of these needs a flag, a library or a header that plain
    // wasi-libc does not give: signal, clock, mmap, getpid, system, tmpnam
    // with L_tmpnam, and setjmp/longjmp.
    let dir = scratch("gaps");
    write(
        &dir.join("src/g.c"),
        r#"#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static jmp_buf jb;
static void jump(int v) { longjmp(jb, v); }
int use_everything(void) {
    char name[L_tmpnam];
    int r = setjmp(jb);
    if (r == 0) jump(3);
    signal(SIGINT, SIG_IGN);
    void *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) munmap(m, 4096);
    return r + (int)(clock() >= 0) + (getpid() > 0) + (system("true") == -1)
        + (tmpnam(name) == NULL);
}
"#,
    );
    let built = lib(&dir, "g")
        .file(dir.join("src/g.c"))
        .exports(["use_everything"])
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let wasm = std::fs::read(&built.wasm).unwrap_or_else(|e| panic!("{e}"));
    // Standard exception handling only: the legacy encoding clang emits
    // was rewritten.
    use wasmparser::WasmFeatures;
    let features =
        (WasmFeatures::default() | WasmFeatures::EXCEPTIONS) - WasmFeatures::LEGACY_EXCEPTIONS;
    wasmparser::Validator::new_with_features(features)
        .validate_all(&wasm)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn link_libraries_reach_the_native_shared_object() {
    let dir = scratch("linklib");
    write(
        &dir.join("src/m.c"),
        "#include <math.h>\ndouble lg(double x) { volatile double v = x; return log2(v); }\n",
    );
    let built = lib(&dir, "m")
        .file(dir.join("src/m.c"))
        .exports(["lg"])
        .native(true)
        .link_lib("m")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let so = built.native.unwrap_or_else(|| panic!("no native build"));
    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(&so)
        .output()
        .unwrap_or_else(|e| panic!("readelf: {e}"));
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(dynamic.contains("[libm.so.6]"), "{dynamic}");
}

#[test]
fn compiler_warnings_are_summarised_with_their_full_text_in_a_file() {
    let dir = scratch("warnings");
    write(
        &dir.join("src/w.c"),
        "int noisy(int a) { int unused_here; return a; }\n",
    );
    let built = lib(&dir, "noisy")
        .file(dir.join("src/w.c"))
        .exports(["noisy"])
        .cargo_metadata(true)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(dir.join("out/noisy-wasm/compiler-warnings.txt"))
        .unwrap_or_else(|e| panic!("no warnings file: {e}"));
    assert!(text.contains("unused_here"), "{text}");
    assert!(built.wasm.is_file());
    // Off: compiled with -w, no file written.
    let dir = scratch("warnings-off");
    write(
        &dir.join("src/w.c"),
        "int noisy(int a) { int unused_here; return a; }\n",
    );
    lib(&dir, "noisy")
        .file(dir.join("src/w.c"))
        .exports(["noisy"])
        .warnings(false)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!dir.join("out/noisy-wasm/compiler-warnings.txt").exists());
}

#[test]
fn an_include_directory_shadowing_the_shims_setjmp_h_is_a_warning() {
    let dir = scratch("shadow");
    std::fs::create_dir_all(dir.join("inc")).unwrap_or_else(|e| panic!("{e}"));
    write(
        &dir.join("inc/setjmp.h"),
        "/* a vendored setjmp.h */\n#include_next <setjmp.h>\n",
    );
    write(&dir.join("src/f.c"), "int f(void) { return 0; }\n");
    let build = || {
        lib(&dir, "shadow")
            .file(dir.join("src/f.c"))
            .include(dir.join("inc"))
            .exports(["f"])
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let built = build();
    assert!(
        built
            .warnings
            .iter()
            .any(|w| w.contains("setjmp.h") && w.contains("inc")),
        "{:?}",
        built.warnings
    );
    // Without it, no warning.
    std::fs::remove_file(dir.join("inc/setjmp.h")).unwrap_or_else(|e| panic!("{e}"));
    let built = build();
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
}
