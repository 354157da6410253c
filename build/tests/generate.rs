//! The header generator, on a header with one of everything it handles or
//! refuses (`tests/generate/fixture.h`).
#![cfg(feature = "generate")]

use std::path::PathBuf;

use sandlink_build::{Bindings, Generated};

fn fixture() -> Bindings {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/generate");
    let mut b = Bindings::new("Fixture");
    b.header(dir.join("fixture.h")).include(&dir);
    b
}

fn generate(b: &Bindings) -> Generated {
    match b.generate() {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

fn function_line<'a>(g: &'a Generated, name: &str) -> &'a str {
    let needle = format!("pub fn {name}(");
    g.source
        .lines()
        .find(|l| l.trim_start().starts_with(&needle))
        .unwrap_or_else(|| panic!("no `{name}` in:\n{}", g.source))
        .trim()
}

fn skipped_reason<'a>(g: &'a Generated, what: &str) -> &'a str {
    &g.skipped
        .iter()
        .find(|s| s.what == what)
        .unwrap_or_else(|| panic!("{what} not skipped: {:?}", g.skipped))
        .reason
}

#[test]
fn functions_take_the_documented_defaults() {
    let g = generate(&fixture());
    // `const char *` in: a string; out: a string or NULL.
    assert_eq!(
        function_line(&g, "fix_name"),
        "pub fn fix_name() -> string_opt;"
    );
    assert_eq!(
        function_line(&g, "fix_strdup"),
        "pub fn fix_strdup(string) -> ptr_opt(char);"
    );
    // A struct pointer parameter is never NULL; a result may be; a
    // `void *` parameter may be; a callback may be NULL.
    assert_eq!(
        function_line(&g, "fix_push"),
        "pub fn fix_push(ptr(typedef(\"fix_node\", fix_node)), string, int) \
         -> ptr_opt(typedef(\"fix_node\", fix_node));"
    );
    assert_eq!(
        function_line(&g, "fix_walk"),
        "pub fn fix_walk(ptr(const_(typedef(\"fix_node\", fix_node))), typedef(\"fix_visit\", \
         funptr_opt(fn(ptr_opt(void), string_opt, int) -> int)), ptr_opt(void)) -> int;"
    );
    // An enum is its underlying integer, spelled `enum tag`.
    assert_eq!(
        function_line(&g, "fix_kind_of"),
        "pub fn fix_kind_of(int) -> typedef(\"enum fix_kind\", uint);"
    );
    // `off_t` has a fixed width whatever the target's `long`.
    assert_eq!(
        function_line(&g, "fix_open"),
        "pub fn fix_open(string, typedef(\"off_t\", int64_t)) -> ptr_opt(fix_handle);"
    );
    // Each generated function is in the spec, keyed as the runtime renders it.
    for f in &g.functions {
        assert!(
            g.spec.functions.iter().any(|s| s.name == *f),
            "{f} not in the spec"
        );
    }
    assert_eq!(g.spec.functions.len(), g.functions.len());
    // The callback type is in the spec for the stubs' trampolines.
    assert!(g
        .spec
        .callbacks
        .iter()
        .any(|c| c.key.starts_with("int (*)(void *")));
}

#[test]
fn what_cannot_be_bound_is_skipped_with_its_reason() {
    let g = generate(&fixture());
    assert!(skipped_reason(&g, "function `fix_log`").contains("variadic"));
    assert!(skipped_reason(&g, "function `fix_vlog`").contains("va_list"));
    assert!(skipped_reason(&g, "function `fix_origin`").contains("passed by value"));
    assert!(skipped_reason(&g, "function `fix_eleven`").contains("at most 10"));
    assert!(skipped_reason(&g, "function `fix_inline`").contains("static"));
    assert!(skipped_reason(&g, "macro `FIX_MAX`").contains("function-like"));
    assert!(skipped_reason(&g, "macro `FIX_TYPE`").contains("not a constant expression"));
    // An expression whose value depends on the data model is left to
    // `lib.constant`, which reads the library's own build.
    let ptr_size = skipped_reason(&g, "macro `FIX_PTR_SIZE`");
    assert!(
        ptr_size.contains("differs by data model") && ptr_size.contains("x86-64: 8, wasm32: 4"),
        "{ptr_size}"
    );
    for name in [
        "fix_log",
        "fix_vlog",
        "fix_origin",
        "fix_eleven",
        "fix_inline",
    ] {
        assert!(!g.functions.iter().any(|f| f == name), "{name} generated");
        assert!(
            g.source.contains(&format!("function `{name}`")),
            "{name} not listed in the file"
        );
    }
    // A struct with a bit-field is incomplete, with a warning naming it.
    assert!(g.source.contains("pub struct fix_flags = \"fix_flags\";"));
    assert!(g
        .warnings
        .iter()
        .any(|w| w.contains("struct fix_flags") && w.contains("bit-field `ready`")));
}

#[test]
fn types_and_constants_are_generated() {
    let g = generate(&fixture());
    let s = &g.source;
    // A struct pointing at itself, through its typedef and its tag.
    assert!(s.contains("pub struct fix_node = \"fix_node\" {"), "{s}");
    assert!(
        s.contains("pub next: ptr_opt(typedef(\"fix_node\", fix_node)),"),
        "{s}"
    );
    assert!(s.contains("pub prev: ptr_opt(fix_node),"));
    assert!(s.contains("pub label: string_opt,"));
    assert!(s.contains("pub tag: array(4, uchar),"));
    // An untagged struct is named by its typedef; a union is a union.
    assert!(s.contains("pub struct fix_point = \"\" {"), "{s}");
    assert!(s.contains("pub union fix_word = \"fix_word\" {"));
    assert!(s.contains("pub struct fix_handle = \"fix_handle\";"));
    assert!(s.contains("pub type fix_len = typedef(\"fix_len\", uint);"));
    assert!(s.contains("pub const FIX_ANSWER: i32 = 42;"));
    assert!(s.contains("pub const FIX_NEG: i32 = -7;"));
    assert!(s.contains("pub const FIX_BIG: i64 = 4294967296;"));
    assert!(s.contains("pub const FIX_MASK: u32 = 4294967295;"));
    assert!(s.contains("pub const FIX_NAME: &str = \"fixture\";"));
    assert!(s.contains("pub const FIX_ALIAS: i32 = FIX_ANSWER;"));
    // Expressions, as the compiler evaluates them (for both targets).
    assert!(s.contains("pub const FIX_EXPR: i32 = 43;"), "{s}");
    assert!(s.contains("pub const FIX_SHIFTED: i32 = 32;"));
    assert!(s.contains("pub const FIX_GREETING: &str = \"fixture fixture\";"));
    assert!(s.contains("pub const FIX_RATIO: f64 = 5.25;"));
    assert!(s.contains("pub const FIX_B: u32 = 5;"));
    assert!(s.contains("pub const FIX_C: u32 = 6;"));
    // The described layouts go to the stubs' check.
    let node = g
        .spec
        .layouts
        .iter()
        .find(|l| l.c_type == "struct fix_node");
    let node = node.unwrap_or_else(|| panic!("no layout: {:?}", g.spec.layouts));
    assert_eq!(node.lp64.0, 32);
    assert_eq!(node.ilp32.0, 20);
}

#[test]
fn overrides_change_the_defaults_and_say_so() {
    let mut b = fixture();
    b.buffer("fix_sum", "buf", "len")
        .owned("fix_strdup")
        .string("fix_free", "s")
        .nullable("fix_push", "head")
        .non_null("fix_name", "return")
        .pointer("fix_open", "path")
        .nullable("fix_nothing", "x");
    let g = generate(&b);
    assert_eq!(
        function_line(&g, "fix_sum"),
        "pub fn fix_sum(buffer_len(fix_len)) -> int;"
    );
    assert!(g.source.contains("`buf`, `len`: one `&[u8]`, copied in,"));
    assert_eq!(
        function_line(&g, "fix_strdup"),
        "pub fn fix_strdup(string) -> str_owned_opt(ptr_opt(char));"
    );
    assert_eq!(
        function_line(&g, "fix_free"),
        "pub fn fix_free(string) -> void;"
    );
    assert_eq!(
        function_line(&g, "fix_push"),
        "pub fn fix_push(ptr_opt(typedef(\"fix_node\", fix_node)), string, int) \
         -> ptr_opt(typedef(\"fix_node\", fix_node));"
    );
    assert_eq!(
        function_line(&g, "fix_name"),
        "pub fn fix_name() -> string;"
    );
    assert!(function_line(&g, "fix_open").starts_with("pub fn fix_open(ptr(const_(char)),"));
    // The override that matched nothing is a warning.
    assert!(
        g.warnings.iter().any(|w| w.contains("fix_nothing")),
        "{:?}",
        g.warnings
    );
}

#[test]
fn callback_arguments_take_overrides_by_the_typedef_s_parameter_names() {
    let defaults = generate(&fixture());
    assert_eq!(
        function_line(&defaults, "fix_on_chunk"),
        "pub fn fix_on_chunk(typedef(\"fix_chunk\", funptr_opt(fn(ptr_opt(void), string_opt, \
         int) -> void)), ptr_opt(void)) -> void;"
    );
    let mut b = fixture();
    b.buffer("fix_chunk", "data", "len")
        .borrowed("fix_open_tag", "name|atts")
        .non_null("fix_open_tag", "name");
    let g = generate(&b);
    assert_eq!(
        function_line(&g, "fix_on_chunk"),
        "pub fn fix_on_chunk(typedef(\"fix_chunk\", funptr_opt(fn(ptr_opt(void), bytes_ref_int) \
         -> void)), ptr_opt(void)) -> void;"
    );
    assert_eq!(
        function_line(&g, "fix_on_tag"),
        "pub fn fix_on_tag(typedef(\"fix_open_tag\", funptr_opt(fn(ptr_opt(void), \
         str_ref(ptr(const_(char))), str_array_ref(ptr(ptr_opt(const_(char))))) -> void))) \
         -> void;"
    );
    // The callback type's alias takes them too, to make callbacks with.
    assert!(g.source.contains(
        "pub type fix_chunk = typedef(\"fix_chunk\", funptr(fn(ptr_opt(void), bytes_ref_int) \
         -> void));"
    ));
    assert!(
        !g.warnings.iter().any(|w| w.contains("fix_chunk")),
        "{:?}",
        g.warnings
    );
    // A pair must be two neighbours: the function that takes a callback
    // whose override cannot apply is skipped, saying why.
    let mut bad = fixture();
    bad.buffer("fix_visit", "ctx", "value");
    let g = generate(&bad);
    assert!(skipped_reason(&g, "function `fix_walk`").contains("right after"));
}

#[test]
fn allowlists_and_blocklists_filter() {
    let mut b = fixture();
    b.allow_function("fix_(sum|name)")
        .allow_constant("FIX_A.*")
        .block("fix_name");
    let g = generate(&b);
    assert_eq!(g.functions, ["fix_sum"]);
    assert!(skipped_reason(&g, "function `fix_name`").contains("blocked"));
    // A macro naming another constant comes after every literal one.
    assert_eq!(g.constants, ["FIX_ANSWER", "FIX_A", "FIX_ALIAS"]);
}

#[test]
fn a_header_that_does_not_compile_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("sandlink-gen-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let h = dir.join("bad.h");
    std::fs::write(&h, "int broken(;\n").expect("write");
    let err = Bindings::new("Bad")
        .header(&h)
        .generate()
        .expect_err("a broken header generates nothing");
    let msg = err.to_string();
    assert!(
        msg.contains("do not compile") && msg.contains("bad.h"),
        "{msg}"
    );
    let missing = Bindings::new("Missing")
        .header(dir.join("nope.h"))
        .generate();
    assert!(missing
        .expect_err("no header")
        .to_string()
        .contains("nope.h"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_cannot_be_lowered_is_skipped_and_the_rest_generated() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/generate");
    let mut b = Bindings::new("Skips");
    b.header(dir.join("skips.h")).string("skip_name", "return");
    let g = generate(&b);
    // A struct holding a struct with bit-fields by value is incomplete,
    // with a warning; a function taking a `jmp_buf` callback is skipped with
    // the reason; the rest is generated, `jmp_buf` holders included.
    assert!(
        g.warnings
            .iter()
            .any(|w| w.contains("skip_packet") && w.contains("incomplete")),
        "{:?}",
        g.warnings
    );
    assert!(function_line(&g, "skip_send").contains("ptr(typedef(\"skip_packet\""));
    assert!(
        skipped_reason(&g, "function `skip_set_longjmp_fn`").contains("jmp_buf"),
        "{:?}",
        g.skipped
    );
    assert!(function_line(&g, "skip_uses_with_jb").contains("ptr(typedef(\"skip_with_jb\""));
    assert_eq!(
        function_line(&g, "skip_plain"),
        "pub fn skip_plain(int) -> void;"
    );
    // The untagged struct reached through its pointer typedef is the one
    // its own typedef names, spelled through it.
    assert!(
        function_line(&g, "skip_image_begin").contains("ptr(typedef(\"skip_image\", skip_image))"),
        "{}",
        g.source
    );
    assert!(
        g.source.contains("pub struct skip_image = \"\" {"),
        "{}",
        g.source
    );
    // `string` on an `unsigned char *` result changes nothing, and says so.
    assert!(function_line(&g, "skip_name").contains("ptr_opt(const_(uchar))"));
    assert!(
        g.warnings
            .iter()
            .any(|w| w.contains("`string` override") && w.contains("skip_name")),
        "{:?}",
        g.warnings
    );
}
