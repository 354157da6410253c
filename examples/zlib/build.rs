//! Builds zlib from Debian's source for every strategy, with bindings
//! generated from zlib.h: nothing about zlib's API is written by hand
//! except what a header cannot say (which pointers are byte slices).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = here.join(".deps/zlib");
    if !src.join("zlib.h").exists() {
        // Fetch it once (apt-get source, into .deps/; see fetch-zlib.sh).
        let ok = Command::new("bash")
            .arg(here.join("fetch-zlib.sh"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("zlib's source is missing and fetch-zlib.sh failed; run it by hand");
            std::process::exit(1);
        }
    }
    // The bindings: all of zlib.h. The overrides say which (pointer,
    // length) pairs are byte slices; everything else is the header's.
    let generated = sandlink_build::Bindings::new("Zlib")
        .header(src.join("zlib.h"))
        .include(&src)
        // As the library is compiled (below): zconf.h's types depend on it.
        .define("HAVE_UNISTD_H", None)
        .buffer("crc32|adler32", "buf", "len")
        .buffer("compress2?|uncompress", "source", "sourceLen")
        .buffer("(deflate|inflate)SetDictionary", "dictionary", "dictLength")
        .buffer("gzread|gzwrite|gzgets", "buf", "len")
        .non_null("zlibVersion|zError", "return")
        .generate_to_out_dir("zlib.rs");
    // The library: a wasm module, a shared object, and stubs checked
    // against zlib.h, all from the generated declarations.
    let sources = [
        "adler32.c",
        "compress.c",
        "crc32.c",
        "deflate.c",
        "gzclose.c",
        "gzlib.c",
        "gzread.c",
        "gzwrite.c",
        "infback.c",
        "inffast.c",
        "inflate.c",
        "inftrees.c",
        "trees.c",
        "uncompr.c",
        "zutil.c",
    ];
    sandlink_build::Library::new("zlib")
        .files(sources.map(|f| src.join(f)))
        .include(&src)
        .define("HAVE_UNISTD_H", None)
        .stub_header("zlib.h")
        .stubs(generated.spec)
        .native(true)
        // The module's machine code too (sandlink-build's `precompile`
        // feature): the program's sandbox compiles nothing.
        .precompile(true)
        .compile();
}
