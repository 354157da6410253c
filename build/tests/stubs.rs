//! The Stubs generator against the real compiler: descriptions recorded
//! from binding code are checked against a header, and each kind of
//! mismatch fails the build with an error naming the function and what is
//! wrong.

use std::path::{Path, PathBuf};

use sandlink::record::Recorder;
use sandlink::types::*;
use sandlink::Foreign;
use sandlink_build::{Error, Library};

const HEADER: &str = "\
int add(int a, int b);
const char *name(int i);
float scale(double x, float f);
void each(void (*f)(void *ud, const char *s), void *ud);
extern int counter;
struct pt { char tag; long n; double y; };
void move(struct pt *p);
#define M_BIG 5000000000LL
enum { M_ONE = 1 };
typedef unsigned int uInt;
typedef unsigned long uLong;
struct zs { uInt avail_in; uLong total_in; };
void zs_use(struct zs *z);
struct ev { int kind; union { int i; double d; } data; struct { short a, b; } pair[2]; };
void ev_use(struct ev *e);
struct outer { struct inner { short a; long b; } in; int c; };
void outer_use(struct outer *o);
";

const SOURCE: &str = "\
#include \"m.h\"
int counter;
int add(int a, int b) { return a + b; }
const char *name(int i) { return i ? \"one\" : \"zero\"; }
float scale(double x, float f) { return (float)x * f; }
void each(void (*f)(void *ud, const char *s), void *ud) { f(ud, \"x\"); }
void move(struct pt *p) { p->y += 1.0; }
void zs_use(struct zs *z) { z->total_in += z->avail_in; }
void ev_use(struct ev *e) { e->kind = e->data.i; }
void outer_use(struct outer *o) { o->c = o->in.a; }
";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sandlink-build-stubs-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    write(&dir.join("m.h"), HEADER);
    write(&dir.join("m.c"), SOURCE);
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Records what `declare` binds, then builds `m` with stubs from it.
fn build_with(
    name: &str,
    declare: impl FnOnce(&Recorder) -> sandlink::Result<()>,
) -> Result<sandlink_build::Built, Error> {
    let dir = scratch(name);
    let rec = Recorder::new("m");
    declare(&rec).unwrap_or_else(|e| panic!("recording: {e}"));
    let spec = rec.spec().unwrap_or_else(|e| panic!("{e}"));
    Library::new("m")
        .file(dir.join("m.c"))
        .include(&dir)
        .exports(["add"])
        .stub_header("m.h")
        .stubs(spec)
        .out_dir(dir.join("out"))
        .cargo_metadata(false)
        .build()
}

fn mismatch(name: &str, declare: impl FnOnce(&Recorder) -> sandlink::Result<()>) -> String {
    match build_with(name, declare) {
        Ok(_) => panic!("{name}: a wrong declaration built"),
        Err(e @ Error::StubMismatch(_)) => e.to_string(),
        Err(e) => panic!("{name}: not a stub mismatch: {e}"),
    }
}

#[test]
fn declarations_that_match_the_header_build_an_archive_and_a_table() {
    let built = build_with("ok", |r| {
        r.function("add", &(int() >> int() >> returning(int())))?;
        r.function("name", &(int() >> returning(string())))?;
        r.function("scale", &(double() >> float() >> returning(float())))?;
        let cb = funptr(ptr_opt(void()) >> string() >> returning(void()));
        r.function("each", &(cb >> ptr_opt(void()) >> returning(void())))?;
        r.global("counter", &int())?;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rust = built.stubs.unwrap_or_else(|| panic!("no stubs file"));
    let text = std::fs::read_to_string(&rust).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("sandlink_stubs_m"), "{text}");
    assert_eq!(built.stubs_env.as_deref(), Some("SANDLINK_M_STUBS"));
    let archive = rust.with_file_name("libsandlink_stubs_m.a");
    assert!(archive.is_file(), "{}", archive.display());
}

/// The table offers a function's own address for direct calls only when
/// the compiler found its type exactly the declared one: a declaration the
/// wrapper's call merely converts (`short` for `int`) gets NULL. Checked
/// by a C program linked with the archive, which prints each entry's
/// verdict.
#[test]
fn only_a_function_of_exactly_the_declared_type_gets_a_direct_address() {
    let built = build_with("direct", |r| {
        r.function("add", &(int() >> int() >> returning(int())))?;
        r.function("add", &(short() >> int() >> returning(int())))?;
        r.function("scale", &(double() >> float() >> returning(float())))?;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rust = built.stubs.unwrap_or_else(|| panic!("no stubs file"));
    let archive = rust.with_file_name("libsandlink_stubs_m.a");
    let dir = rust.with_file_name("");
    let driver = dir.join("driver.c");
    write(
        &driver,
        &format!(
            "#include <stdint.h>\n#include <stdio.h>\n{}\n\
             extern const struct sandlink_stub_table sandlink_stubs_m;\n\
             int main(void) {{\n\
               for (uint32_t i = 0; i < sandlink_stubs_m.nfns; i++)\n\
                 printf(\"%s|%d\\n\", sandlink_stubs_m.fns[i].key,\n\
                        sandlink_stubs_m.fns[i].direct != 0);\n\
               return 0;\n\
             }}\n",
            sandlink_guest_shim::abi::stubs::C_DEFINITIONS
        ),
    );
    let exe = dir.join("driver");
    let cc = std::process::Command::new("cc")
        .arg(&driver)
        .arg(&archive)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running cc: {e}"));
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = std::process::Command::new(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running the driver: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let verdict = |prototype: &str| {
        text.lines()
            .find(|l| l.starts_with(prototype))
            .and_then(|l| l.rsplit('|').next())
            .unwrap_or_else(|| panic!("no entry for {prototype}: {text}"))
            .to_string()
    };
    assert_eq!(verdict("int add(int, int)"), "1", "{text}");
    assert_eq!(verdict("int add(short, int)"), "0", "{text}");
    assert_eq!(verdict("float scale(double, float)"), "1", "{text}");
}

#[test]
fn a_wrong_argument_type_names_the_function_and_the_argument() {
    let e = mismatch("arg", |r| {
        r.function("add", &(string() >> int() >> returning(int())))?;
        Ok(())
    });
    assert!(e.contains("`add`"), "{e}");
    assert!(
        e.contains("wrong type for argument 1: declared `const char *`"),
        "{e}"
    );
    assert!(e.contains("int"), "the compiler's message is kept: {e}");
}

#[test]
fn a_narrowing_argument_is_a_wrong_type_too() {
    // `double` where the header has `float`: C would convert silently.
    let e = mismatch("narrow", |r| {
        r.function("scale", &(double() >> double() >> returning(float())))?;
        Ok(())
    });
    assert!(
        e.contains("`scale`") && e.contains("wrong type for argument 2: declared `double`"),
        "{e}"
    );
}

#[test]
fn a_wrong_arity_names_the_function() {
    let e = mismatch("arity", |r| {
        r.function("add", &(int() >> returning(int())))?;
        Ok(())
    });
    assert!(
        e.contains("`add`") && e.contains("wrong number of arguments: 1 declared"),
        "{e}"
    );
    assert!(e.contains("too few arguments"), "{e}");
}

#[test]
fn a_wrong_return_type_names_the_function() {
    let e = mismatch("ret", |r| {
        r.function("name", &(int() >> returning(double())))?;
        Ok(())
    });
    assert!(
        e.contains("`name`") && e.contains("wrong return type: declared `double`"),
        "{e}"
    );
}

#[test]
fn a_wrong_callback_type_is_a_wrong_argument_type() {
    let e = mismatch("callback", |r| {
        let cb = funptr(ptr_opt(void()) >> int() >> returning(void()));
        r.function("each", &(cb >> ptr_opt(void()) >> returning(void())))?;
        Ok(())
    });
    assert!(
        e.contains("`each`") && e.contains("wrong type for argument 1"),
        "{e}"
    );
}

#[test]
fn a_function_or_global_the_header_lacks_is_named() {
    let e = mismatch("undeclared", |r| {
        r.function("nothere", &(int() >> returning(int())))?;
        Ok(())
    });
    assert!(
        e.contains("`nothere`") && e.contains("not declared by the headers"),
        "{e}"
    );
    let e = mismatch("global", |r| {
        r.global("nowhere", &int())?;
        Ok(())
    });
    assert!(
        e.contains("`nowhere`") && e.contains("global is not declared"),
        "{e}"
    );
}

/// Binds `move` with `struct pt` described by `fields`.
fn with_pt(r: &Recorder, fields: &[(&str, &str)]) -> sandlink::Result<()> {
    enum Pt {}
    let mut pt = structure::<Pt>("pt");
    for (name, ty) in fields {
        match *ty {
            "char" => drop(pt.field(name, char())),
            "long" => drop(pt.field(name, long())),
            "int64_t" => drop(pt.field(name, int64_t())),
            "double" => drop(pt.field(name, double())),
            other => panic!("no such test type {other}"),
        }
    }
    let pt = pt.seal()?;
    r.function("move", &(ptr(pt) >> returning(void())))?;
    Ok(())
}

#[test]
fn a_struct_laid_out_as_the_header_says_builds() {
    build_with("layout-ok", |r| {
        with_pt(r, &[("tag", "char"), ("n", "long"), ("y", "double")])
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_field_at_another_offset_or_missing_is_named() {
    let e = mismatch("layout-order", |r| {
        with_pt(r, &[("tag", "char"), ("y", "double"), ("n", "long")])
    });
    assert!(
        e.contains("`struct pt`") && e.contains("field `y` is at another offset"),
        "{e}"
    );
    let e = mismatch("layout-missing", |r| {
        with_pt(r, &[("tag", "char"), ("n", "long"), ("z", "double")])
    });
    assert!(
        e.contains("`struct pt`") && e.contains("has no field `z`"),
        "{e}"
    );
}

#[test]
fn a_layout_that_differs_only_under_ilp32_fails_the_wasm_check() {
    // `int64_t` for a `long`: the same on x86-64, not on wasm32.
    let e = mismatch("layout-ilp32", |r| {
        with_pt(r, &[("tag", "char"), ("n", "int64_t"), ("y", "double")])
    });
    assert!(
        e.contains("`struct pt`") && e.contains("wasm32-wasi build"),
        "{e}"
    );
}

#[test]
fn constants_are_compiled_into_every_build_and_checked() {
    let built = build_with("const-ok", |r| {
        assert_eq!(
            r.constant("M_ONE", &int())?,
            0,
            "the recorder's placeholder"
        );
        r.constant("M_BIG", &llong())?;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let wasm = std::fs::read(&built.wasm).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&wasm);
    assert!(text.contains("sandlink_const_M_ONE"), "not exported");
    let e = mismatch("const-narrow", |r| {
        r.constant("M_BIG", &int())?;
        Ok(())
    });
    assert!(
        e.contains("`M_BIG`") && e.contains("does not fit the declared type `int`"),
        "{e}"
    );
    let e = mismatch("const-missing", |r| {
        r.constant("M_NONE", &int())?;
        Ok(())
    });
    assert!(
        e.contains("`M_NONE`") && e.contains("not defined by the headers"),
        "{e}"
    );
}

enum Zs {}
enum Ev {}
enum EvData {}
enum EvPair {}
enum Outer {}
enum Inner {}

/// `struct zs` with `avail_in` described as `avail`.
fn with_zs<T: Shadow>(r: &Recorder, avail: Typ<T>) -> sandlink::Result<()> {
    let mut zs = structure::<Zs>("zs");
    zs.field("avail_in", avail);
    zs.field("total_in", typedef(ulong(), "uLong"));
    r.function("zs_use", &(ptr(zs.seal()?) >> returning(void())))?;
    Ok(())
}

#[test]
fn a_field_of_another_type_is_named_with_both_types() {
    // The right typedef builds; `uLong` for a `uInt` (8 bytes written into
    // a 4-byte field) does not, nor does a plain `unsigned long`.
    build_with("field-type-ok", |r| with_zs(r, typedef(uint(), "uInt")))
        .unwrap_or_else(|e| panic!("{e}"));
    let e = mismatch("field-type-typedef", |r| {
        with_zs(r, typedef(ulong(), "uLong"))
    });
    assert!(
        e.contains("`struct zs`")
            && e.contains(
                "field `avail_in` has another type in the header than the described `uLong`"
            )
            && e.contains("uInt"),
        "{e}"
    );
    let e = mismatch("field-type-plain", |r| with_zs(r, ulong()));
    assert!(
        e.contains("field `avail_in`") && e.contains("unsigned long"),
        "{e}"
    );
}

/// `struct ev`, with its anonymous union member `data` holding `d` as
/// `d_type`, and its array of anonymous structs.
fn with_ev<T: Shadow>(r: &Recorder, d_type: Typ<T>) -> sandlink::Result<()> {
    let mut data = union::<EvData>("");
    data.field("i", int());
    data.field("d", d_type);
    let data = data.seal()?;
    let mut pair = structure::<EvPair>("");
    pair.field("a", short());
    pair.field("b", short());
    let pair = pair.seal()?;
    let mut ev = structure::<Ev>("ev");
    ev.field("kind", int());
    ev.field("data", data);
    ev.field("pair", array(2, pair));
    r.function("ev_use", &(ptr(ev.seal()?) >> returning(void())))?;
    Ok(())
}

#[test]
fn anonymous_unions_and_structs_are_described_and_checked() {
    build_with("anon-ok", |r| with_ev(r, double())).unwrap_or_else(|e| panic!("{e}"));
    let e = mismatch("anon-wrong", |r| with_ev(r, float()));
    assert!(
        e.contains("__typeof__(((struct ev *)0)->data)") && e.contains("field `d`"),
        "{e}"
    );
}

/// `struct outer` with its nested `struct inner`, whose `b` is `b_type`.
fn with_outer<T: Shadow>(r: &Recorder, b_type: Typ<T>) -> sandlink::Result<()> {
    let mut inner = structure::<Inner>("inner");
    inner.field("a", short());
    inner.field("b", b_type);
    let mut outer = structure::<Outer>("outer");
    outer.field("in", inner.seal()?);
    outer.field("c", int());
    r.function("outer_use", &(ptr(outer.seal()?) >> returning(void())))?;
    Ok(())
}

#[test]
fn a_nested_struct_is_checked_field_by_field() {
    build_with("nested-ok", |r| with_outer(r, long())).unwrap_or_else(|e| panic!("{e}"));
    let e = mismatch("nested-wrong", |r| with_outer(r, int()));
    assert!(
        e.contains("`struct inner`") && e.contains("field `b`"),
        "{e}"
    );
}

#[test]
fn a_const_string_is_spelled_const_char_pointer() {
    assert_eq!(const_(string()).c_name(), "const char *");
    assert_eq!(const_(ptr(int())).c_name(), "int * const");
    // `const char *add_name(...)`-style: a parameter and a result.
    build_with("const-string", |r| {
        r.function("name", &(int() >> returning(const_(string()))))?;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn storage_sized_by_the_compiler_is_spelled_as_its_c_type() {
    // Recorded, `opaque_sized` is the named type (incomplete until a
    // library measures it), so a function taking it is checked as taking
    // `struct pt *`.
    build_with("sized", |r| {
        enum SizedPt {}
        let pt = r.opaque_sized::<SizedPt>("struct pt")?;
        assert_eq!(pt.c_name(), "struct pt");
        r.function("move", &(ptr(pt) >> returning(void())))?;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
}
