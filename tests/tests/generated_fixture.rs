//! The modules generated from real headers (cJSON's, Lua's) compile and
//! bind, with the constants their macros compute; and the module generated
//! from sandlink-build's test header
//! (`build/tests/generate/fixture.h`: a struct pointing at itself, an
//! untagged struct, a union, an incomplete struct, a bit-field, an enum,
//! arrays, callbacks) compiles, binds, and describes what the C compiler
//! lays out.

use sandlink::record::Recorder;
use sandlink::types::{DataModel, Named};

#[allow(dead_code)]
mod fixture {
    include!(concat!(env!("OUT_DIR"), "/fixture_generated.rs"));
}

/// cJSON.h, generated.
#[allow(dead_code)]
mod cjson {
    include!(concat!(env!("OUT_DIR"), "/cjson_generated.rs"));
}

/// lua.h, lauxlib.h and lualib.h, generated.
#[allow(dead_code)]
mod lua {
    include!(concat!(env!("OUT_DIR"), "/lua_generated.rs"));
}

#[test]
fn the_generated_module_binds_and_lays_out_as_c_does() {
    let rec = Recorder::new("fixture");
    let f = fixture::Fixture::bind(&rec).expect("the generated bindings bind");
    let _ = &f.fix_push;
    let spec = rec.spec().expect("spec");
    assert_eq!(spec.functions.len(), 14, "{:?}", spec.functions);
    // Layouts under both data models, as the compilers give them
    // (struct fix_node: two pointers, a pointer, an int, four chars).
    let (node, fields) = fixture::fix_node::describe().expect("fix_node");
    assert_eq!(node.size_align(DataModel::Lp64).expect("lp64"), (32, 8));
    assert_eq!(node.size_align(DataModel::Ilp32).expect("ilp32"), (20, 4));
    assert_eq!(fields.tag.offset(DataModel::Lp64).expect("offset"), 28);
    let word = fixture::fix_word::typ().expect("union");
    assert_eq!(word.size_align(DataModel::Ilp32).expect("ilp32"), (4, 4));
    assert_eq!(word.c_name(), "union fix_word");
    let point = fixture::fix_point::typ().expect("untagged struct");
    assert_eq!(point.size_align(DataModel::Lp64).expect("lp64"), (16, 8));
    // The incomplete ones have no layout to use.
    assert!(fixture::fix_flags::typ()
        .expect("incomplete")
        .size_align(DataModel::Lp64)
        .is_err());
    assert!(fixture::fix_handle::typ()
        .expect("incomplete")
        .size_align(DataModel::Lp64)
        .is_err());
    // Laid out for the stubs' check, the untagged struct by its typedef.
    for c in ["struct fix_node", "fix_point"] {
        assert!(
            spec.layouts.iter().any(|l| l.c_type == c),
            "{c}: {:?}",
            spec.layouts
        );
    }
    assert_eq!(fixture::FIX_ALIAS, fixture::FIX_ANSWER);
    assert_eq!(fixture::FIX_NAME, "fixture");
}

#[test]
fn real_headers_generate_bindings_that_bind() {
    let rec = Recorder::new("cjson");
    let c = cjson::GeneratedCJson::bind(&rec).expect("cJSON's generated bindings bind");
    let _ = &c.cJSON_Parse;
    assert_eq!(rec.spec().expect("spec").functions.len(), 78);
    // `#define cJSON_Object (1 << 6)`: evaluated by the compiler.
    assert_eq!(cjson::cJSON_Object, 64);
    let rec = Recorder::new("lua");
    let l = lua::GeneratedLua::bind(&rec).expect("Lua's generated bindings bind");
    let _ = &l.lua_pcallk;
    let spec = rec.spec().expect("spec");
    assert!(spec.functions.len() > 140, "{}", spec.functions.len());
    // `lua_CFunction` is a callback type: its trampolines are in the spec.
    let keys: Vec<&str> = spec.callbacks.iter().map(|c| c.key.as_str()).collect();
    assert!(
        keys.iter().any(|k| k.starts_with("int (*)(lua_State *)")),
        "{keys:#?}"
    );
    // `(-LUAI_MAXSTACK - 1000)`, and strings built by concatenation.
    assert_eq!(lua::LUA_REGISTRYINDEX, -1_001_000);
    assert_eq!(lua::LUA_VERSION, "Lua 5.4");
    assert_eq!(lua::LUA_MAXINTEGER, i64::MAX);
}
