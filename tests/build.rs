//! Generates expat's bindings from `expat.h` with sandlink-build's header
//! generator, for `tests/generated_expat.rs`, which compares them with
//! `sandlink-expat`'s hand-written ones; and the generator's test header's,
//! cJSON's and Lua's, for `tests/generated_fixture.rs`, which compiles and
//! binds them.

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
    // Two more real headers, as Debian ships them (scripts/setup.sh fetches
    // both): cJSON's and Lua's, which has many macros that are expressions.
    let examples = dir.join("../examples");
    let cjson = examples.join("own-library/.deps/cjson");
    sandlink_build::Bindings::new("GeneratedCJson")
        .header(cjson.join("cJSON.h"))
        .include(&cjson)
        .cargo_warnings(false)
        .generate_to_out_dir("cjson_generated.rs");
    let lua = examples.join("lua/.deps/lua5.4/src");
    // luaconf.h includes the header Debian's packaging generates.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    std::fs::write(
        out.join("lua5.4-deb-multiarch.h"),
        "#define DEB_HOST_MULTIARCH \"x86_64-linux-gnu\"\n",
    )
    .expect("write lua5.4-deb-multiarch.h");
    sandlink_build::Bindings::new("GeneratedLua")
        .header(lua.join("lua.h"))
        .header(lua.join("lauxlib.h"))
        .header(lua.join("lualib.h"))
        .include(&lua)
        .include(&out)
        .cargo_warnings(false)
        .generate_to_out_dir("lua_generated.rs");
}
