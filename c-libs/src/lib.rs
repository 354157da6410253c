//! Paths to the C libraries built by this crate's build script.
//!
//! - `testlib`: a C library written for Sandlink's conformance suite; every
//!   function exercises one kind of C type.
//! - `hostile`: a C library that misbehaves on purpose (wild pointers, endless
//!   loops, `exit`, …), built for wasm32-wasi only.
//! - `expat`: expat 2.5.0 from Debian's source package, built natively and
//!   for wasm32-wasi with the same compiler (clang-19) and flags.

/// The native `testlib` shared object (x86-64, LP64).
pub const TESTLIB_SO: &str = env!("SANDLINK_TESTLIB_SO");

/// The directory holding `testlib`'s C source and header.
pub const TESTLIB_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testlib");

/// `testlib` compiled to a wasm32-wasi reactor module, linked with the guest shim.
pub const TESTLIB_WASM: &str = env!("SANDLINK_TESTLIB_WASM");

/// `uses-libm/uses_libm.c` as a shared object that names libm
/// (`.link_lib("m")`).
pub const USES_LIBM_SO: &str = env!("SANDLINK_USES_LIBM_SO");

/// The same shared object without libm among its dependencies.
pub const FORGETS_LIBM_SO: &str = env!("SANDLINK_FORGETS_LIBM_SO");

/// `hostile` compiled to a wasm32-wasi reactor module.
pub const HOSTILE_WASM: &str = env!("SANDLINK_HOSTILE_WASM");

/// `hostile` as a native shared library, for the Process strategy's worker
/// only: loaded into the host (Dynamic), it would crash it.
pub const HOSTILE_SO: &str = env!("SANDLINK_HOSTILE_SO");

/// A shared object whose initialiser attempts one act a confined worker
/// must refuse, before any function is called: `act` is one of `write` (a
/// file at [`HOSTILE_INIT_WRITES`]), `read` (`/etc/passwd`), `socket`,
/// `fork`, `exec` (`/bin/true`), `signal` (signal 0 to its parent),
/// `setown` (its parent as the owner of descriptor 4), `memory` (touches
/// 512 MiB), `procmem` (reads `/proc/<parent>/environ`) and `sibling`
/// (opens another file of its own directory). Its one function,
/// `int hi_outcome(void)`, returns 0 if the act succeeded, else its
/// `errno`; but for `prlimit`, the number of other processes it can name
/// with `prlimit64` (pids below 65536), and `fds`, the mask of descriptors
/// 0 to 30 open while it runs.
pub fn hostile_init_so(act: &str) -> String {
    format!(
        "{}/libhostile_init_{act}.so",
        env!("SANDLINK_HOSTILE_INIT_DIR")
    )
}

/// The file the `write` act of [`hostile_init_so`] creates when nothing
/// stops it.
pub const HOSTILE_INIT_WRITES: &str = env!("SANDLINK_HOSTILE_INIT_WRITES");

/// expat 2.5.0 built natively as a shared object (clang-19, same flags as the
/// wasm build).
pub const EXPAT_SO: &str = env!("SANDLINK_EXPAT_SO");

/// expat 2.5.0 compiled to a wasm32-wasi reactor module.
pub const EXPAT_WASM: &str = env!("SANDLINK_EXPAT_WASM");

/// The seed's tree printer written in C against [`EXPAT_SO`] (same clang,
/// `-O2`): the reference point for `expat_tree`.
pub const C_TREE: &str = env!("SANDLINK_C_TREE");

/// The system's expat, as `dlopen` finds it (Debian's `libexpat1`).
pub const SYSTEM_EXPAT: &str = "libexpat.so.1";

/// expat's Stubs-strategy wrappers: generated at build time from the
/// `sandlink-expat` binding module, checked against `expat.h`, and linked
/// into this crate with expat itself. `stub_table()` is what
/// `sandlink::Stubs::open` takes.
pub mod expat_stubs {
    include!(env!("SANDLINK_EXPAT_STUBS"));
}

/// testlib's Stubs-strategy wrappers, generated from the `sandlink-testlib`
/// binding module and checked against `testlib.h` (see [`expat_stubs`]).
pub mod testlib_stubs {
    include!(env!("SANDLINK_TESTLIB_STUBS"));
}
