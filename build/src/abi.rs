//! The guest ABI: the export names a sandboxed module provides, defined once.
//! The guest shim (`shim/shim.c`, compiled with these names as macros)
//! exports the `sandlink_*` functions; the link recipe exports the memory,
//! the table and the reactor's initialiser. The Sandbox runtime looks the
//! same names up.

/// The module's linear memory.
pub const MEMORY: &str = "memory";
/// The function table callbacks are appended to (`-Wl,--export-table`).
pub const TABLE: &str = "__indirect_function_table";
/// The reactor's initialiser (`-mexec-model=reactor`), run once per instance.
pub const INITIALIZE: &str = "_initialize";
/// `void *sandlink_malloc(size_t size, size_t align)`.
pub const MALLOC: &str = "sandlink_malloc";
/// `void sandlink_free(void *p)`.
pub const FREE: &str = "sandlink_free";
/// `int sandlink_errno_get(void)`.
pub const ERRNO_GET: &str = "sandlink_errno_get";
/// `void sandlink_errno_set(int e)`.
pub const ERRNO_SET: &str = "sandlink_errno_set";

/// The shim's exports as the C macros it is compiled with
/// (`-DSANDLINK_ABI_MALLOC="sandlink_malloc"`, …).
pub const SHIM_MACROS: [(&str, &str); 4] = [
    ("SANDLINK_ABI_MALLOC", MALLOC),
    ("SANDLINK_ABI_FREE", FREE),
    ("SANDLINK_ABI_ERRNO_GET", ERRNO_GET),
    ("SANDLINK_ABI_ERRNO_SET", ERRNO_SET),
];
