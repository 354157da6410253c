//! Generates expat's bindings from `expat.h` with sandlink-build's header
//! generator, for `tests/generated_expat.rs`, which compares them with
//! `sandlink-expat`'s hand-written ones; and the generator's test header's,
//! for `tests/generated_fixture.rs`.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let src = std::env::var_os("SANDLINK_EXPAT_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("../.deps/expat"));
    println!("cargo:rerun-if-env-changed=SANDLINK_EXPAT_SRC");
    let lib = src.join("lib");
    // The headers the stubs check expat against, in the same order: the
    // configuration decides which functions expat.h declares (`XML_DTD`).
    let generator = |name: &str| {
        let mut b = sandlink_build::Bindings::new(name);
        b.header(dir.join("../expat/c/expat_config.h"))
            .header(lib.join("expat.h"))
            .include(&lib)
            .include(dir.join("../expat/c"))
            .define("HAVE_EXPAT_CONFIG_H", "1")
            // The test checks what is skipped; no warning on every build.
            .cargo_warnings(false);
        b
    };
    // No override: the header's defaults, so the test sees every choice
    // the hand-written bindings make differently.
    generator("GeneratedExpat").generate_to_out_dir("expat_generated.rs");
    // With the overrides that say what the header cannot, as the
    // hand-written bindings do: the test sees what is left.
    generator("OverriddenExpat")
        .nullable("XML_ParserCreate(NS)?|XML_ParserReset", "encoding")
        .non_null("XML_ExpatVersion", "return")
        .buffer("XML_Parse", "s", "len")
        .buffer("XML_CharacterDataHandler|XML_DefaultHandler", "s", "len")
        .borrowed("XML_(Start|End)ElementHandler", "name|atts")
        .non_null("XML_(Start|End)ElementHandler", "name")
        .non_null("XML_ProcessingInstructionHandler", "target|data")
        .non_null("XML_CommentHandler", "data")
        .generate_to_out_dir("expat_overridden.rs");
    // sandlink-build's test header (one of everything the generator
    // generates or skips), compiled here: the generated module must build
    // and bind (tests/generated_fixture.rs).
    sandlink_build::Bindings::new("Fixture")
        .header(dir.join("../build/tests/generate/fixture.h"))
        .cargo_warnings(false)
        .generate_to_out_dir("fixture_generated.rs");
}
