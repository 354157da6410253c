//! What Sandlink's runtime (`sandlink`) and its build library
//! (`sandlink-build`) share, so that neither depends on the other:
//!
//! - [`SHIM_C`], the guest shim: C linked into every wasm module the
//!   Sandbox strategy runs (an allocator and errno access for the host);
//! - [`abi`], the names the shim and the link recipe export, which the
//!   runtime looks up, and the layout of the Stubs strategy's generated
//!   table;
//! - [`spec`], the stub specification the runtime's recorder produces from
//!   a binding module and the build library turns into checked C stubs.
//!
//! It has no dependencies; users never need it directly.

pub mod abi;
pub mod spec;

/// The guest shim's C source, embedded so that a build needs nothing beside
/// this crate. `sandlink-build` compiles it with [`abi::SHIM_MACROS`] as
/// macros.
pub const SHIM_C: &str = include_str!("../shim/shim.c");

/// `<setjmp.h>` for wasm32-wasi (Debian's wasi-libc has none):
/// `sandlink-build` puts it ahead of the sysroot's headers.
pub const SETJMP_H: &str = include_str!("../shim/include/setjmp.h");

/// The runtime clang's setjmp/longjmp lowering calls (`__wasm_setjmp`,
/// `__wasm_setjmp_test`, `__wasm_longjmp`), compiled into every module with
/// wasm exception handling; the linker drops it when nothing uses it.
pub const SJLJ_C: &str = include_str!("../shim/sjlj.c");

/// Weak ENOSYS definitions of what wasi-libc declares but does not define
/// (`system`, `tmpfile`, …), so such calls link and fail at run time.
pub const GAPS_C: &str = include_str!("../shim/gaps.c");

/// The functions [`GAPS_C`] defines.
pub const GAPS: [&str; 14] = [
    "system",
    "tmpfile",
    "tmpnam",
    "vfork",
    "flock",
    "getlogin",
    "gethostname",
    "ctermid",
    "cuserid",
    "mlock",
    "munlock",
    "mprotect",
    "msync",
    "madvise",
];
