//! cJSON's API as Sandlink values: described once, bound with any strategy.

use sandlink::types::*;
use sandlink::{Foreign, Function, Ptr, Result};

/// Tag for `struct cJSON`.
pub enum CJson {}

/// A `cJSON *` item.
pub type Item = Ptr<Struct<CJson>>;

/// The fields of `struct cJSON` that a walk reads.
pub struct Fields {
    /// `struct cJSON *next`: the next item of the same array or object.
    pub next: Field<CJson, Option<Item>>,
    /// `struct cJSON *child`: the first item of an array or object.
    pub child: Field<CJson, Option<Item>>,
    /// `int type`: `cJSON_Number`, `cJSON_String`, … (bit flags).
    pub kind: Field<CJson, i32>,
    /// `char *valuestring`: a string's value.
    pub valuestring: Field<CJson, Option<String>>,
    /// `double valuedouble`: a number's value.
    pub valuedouble: Field<CJson, f64>,
    /// `char *string`: the item's key inside an object.
    pub key: Field<CJson, Option<String>>,
}

/// cJSON's functions, bound with strategy `L`.
pub struct CJsonLib<L: Foreign> {
    /// The library they are bound in.
    pub lib: L,
    /// `struct cJSON`'s fields.
    pub fields: Fields,
    /// `const char *cJSON_Version(void)`.
    pub version: Function<L, (), String>,
    /// `cJSON *cJSON_Parse(const char *value)`: NULL on a syntax error.
    pub parse: Function<L, (Ptr<i8>,), Option<Item>>,
    /// `const char *cJSON_GetErrorPtr(void)`: where the last parse failed.
    pub error_ptr: Function<L, (), Option<Ptr<i8>>>,
    /// `char *cJSON_Print(const cJSON *item)`: a string the caller frees
    /// (with `cJSON_free`), NULL when out of memory.
    pub print: Function<L, (Item,), Option<StrRef>>,
    /// `void cJSON_Delete(cJSON *item)`.
    pub delete: Function<L, (Item,), ()>,
    /// `void cJSON_free(void *object)`.
    pub free: Function<L, (Option<Ptr<()>>,), ()>,
}

impl<L: Foreign> CJsonLib<L> {
    /// Binds every function in `lib`; fails on the first missing or
    /// mismatched one.
    pub fn bind(lib: &L) -> Result<Self> {
        // `struct cJSON` points at itself: the pointer fields use a forward
        // declaration with the same tag (`struct cJSON;`).
        let forward = structure::<CJson>("cJSON").opaque();
        let mut s = structure::<CJson>("cJSON");
        let next = s.field("next", ptr_opt(forward.clone()));
        s.field("prev", ptr_opt(forward.clone()));
        let child = s.field("child", ptr_opt(forward));
        let kind = s.field("type", int());
        let valuestring = s.field("valuestring", string_opt());
        s.field("valueint", int());
        let valuedouble = s.field("valuedouble", double());
        let key = s.field("string", string_opt());
        let item = s.seal()?;
        Ok(CJsonLib {
            lib: lib.clone(),
            fields: Fields {
                next,
                child,
                kind,
                valuestring,
                valuedouble,
                key,
            },
            version: lib.function("cJSON_Version", &(void() >> returning(string())))?,
            parse: lib.function(
                "cJSON_Parse",
                &(ptr(char()) >> returning(ptr_opt(item.clone()))),
            )?,
            error_ptr: lib
                .function("cJSON_GetErrorPtr", &(void() >> returning(ptr_opt(char()))))?,
            print: lib.function(
                "cJSON_Print",
                &(ptr(item.clone()) >> returning(str_ref_opt(ptr_opt(char())))),
            )?,
            delete: lib.function("cJSON_Delete", &(ptr(item) >> returning(void())))?,
            free: lib.function("cJSON_free", &(ptr_opt(void()) >> returning(void())))?,
        })
    }
}
