//! The guest ABI: the export names a sandboxed module provides, defined once.
//! The guest shim (`guest-shim/shim.c`) exports the `sandlink_*` functions
//! under these names; the link recipe exports the memory and the table.

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
