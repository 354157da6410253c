//! cJSON's API as Sandlink values: described once, bound with any strategy.
//! Written by hand, the way cJSON.h reads (`sandlink::bindings!`); the
//! zlib example shows the other path, bindings generated from the header.

use sandlink::types::*;

/// A `cJSON *` item.
pub type Item = Ptr<Struct<CJson>>;

sandlink::bindings! {
    /// `struct cJSON`: the tag of an item, and a handle per field.
    pub struct CJson = "cJSON" {
        /// `struct cJSON *next`: the next item of the same array or object.
        /// A struct pointing at itself is described through a forward
        /// declaration, as C sees it there.
        pub next: ptr_opt(CJson),
        /// `struct cJSON *prev`.
        pub prev: ptr_opt(CJson),
        /// `struct cJSON *child`: the first item of an array or object.
        pub child: ptr_opt(CJson),
        /// `int type`: `cJSON_Number`, `cJSON_String`, … (bit flags).
        pub kind = "type": int,
        /// `char *valuestring`: a string's value.
        pub valuestring: string_opt,
        /// `int valueint`.
        pub valueint: int,
        /// `double valuedouble`: a number's value.
        pub valuedouble: double,
        /// `char *string`: the item's key inside an object.
        pub key = "string": string_opt,
    }

    /// cJSON's functions, bound with strategy `L`.
    pub struct CJsonLib<L> {
        /// `const char *cJSON_Version(void)`.
        pub fn version = "cJSON_Version"() -> string;
        /// `cJSON *cJSON_Parse(const char *value)`: NULL on a syntax error.
        /// The input is a pointer: the error pointer points into it.
        pub fn parse = "cJSON_Parse"(ptr(char)) -> ptr_opt(CJson);
        /// `const char *cJSON_GetErrorPtr(void)`: where the last parse failed.
        pub fn error_ptr = "cJSON_GetErrorPtr"() -> ptr_opt(char);
        /// `char *cJSON_Print(const cJSON *item)`: a string the caller frees
        /// (with `cJSON_free`), NULL when out of memory.
        pub fn print = "cJSON_Print"(ptr(CJson)) -> str_ref_opt(ptr_opt(char));
        /// `void cJSON_Delete(cJSON *item)`.
        pub fn delete = "cJSON_Delete"(ptr(CJson)) -> void;
        /// `void cJSON_free(void *object)`.
        pub fn free = "cJSON_free"(ptr_opt(void)) -> void;
    }
}
