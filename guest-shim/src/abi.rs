//! The guest ABI: the export names a sandboxed module provides, defined once.
//! The guest shim ([`crate::SHIM_C`], compiled with these names as macros)
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

/// The prefix of a constant's symbol: a C constant (`#define` or enum value)
/// `NAME` that a binding module reads is compiled, with its declared type,
/// into every build of the library as `sandlink_const_NAME`.
pub const CONST_PREFIX: &str = "sandlink_const_";

/// The symbol holding the constant `expr`: [`CONST_PREFIX`] and `expr`,
/// with each character that cannot be in a C identifier written as
/// `_xHH_` (`sizeof(yaml_parser_t)` is
/// `sandlink_const_sizeof_x28_yaml_parser_t_x29_`).
pub fn const_symbol(expr: &str) -> String {
    let mut s = String::from(CONST_PREFIX);
    for c in expr.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            s.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                s.push_str(&format!("_x{b:02x}_"));
            }
        }
    }
    s
}

/// The shim's exports as the C macros it is compiled with
/// (`-DSANDLINK_ABI_MALLOC="sandlink_malloc"`, …).
pub const SHIM_MACROS: [(&str, &str); 4] = [
    ("SANDLINK_ABI_MALLOC", MALLOC),
    ("SANDLINK_ABI_FREE", FREE),
    ("SANDLINK_ABI_ERRNO_GET", ERRNO_GET),
    ("SANDLINK_ABI_ERRNO_SET", ERRNO_SET),
];

/// The Stubs strategy's table ABI: what the generated C file defines
/// (written from these definitions by `sandlink-build`'s stub generator) and what the
/// runtime reads. One definition for both sides: the C text below and the
/// `#[repr(C)]` types beside it are kept together, and [`stubs::VERSION`]
/// changes whenever either does.
pub mod stubs {
    use std::ffi::{c_char, c_void};

    /// The table layout's version; the runtime refuses any other.
    pub const VERSION: u32 = 3;

    /// The C symbol of library `name`'s table: `sandlink_stubs_<name>`
    /// (letters, digits and `_` kept, anything else turned into `_`).
    pub fn table_symbol(name: &str) -> String {
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("sandlink_stubs_{name}")
    }

    /// A generated wrapper: unpacks one word per C parameter into the
    /// declared types, calls the real function with `errno` cleared, stores
    /// the result widened to a word and the `errno` it left.
    pub type CallFn = unsafe extern "C" fn(args: *const u64, ret: *mut u64, err: *mut i32);

    /// What a callback trampoline calls: the slot's context, one word per
    /// argument, and room for the result word.
    pub type RunFn = unsafe extern "C" fn(ctx: *mut c_void, args: *const u64, ret: *mut u64);

    /// A generated caller for one function pointer type: calls `code` (a
    /// function of that type) as [`CallFn`] calls its function.
    pub type ViaFn = unsafe extern "C" fn(
        code: unsafe extern "C" fn(),
        args: *const u64,
        ret: *mut u64,
        err: *mut i32,
    );

    /// One bound function.
    #[repr(C)]
    pub struct StubFn {
        /// The C name (NUL-terminated).
        pub name: *const c_char,
        /// The declared prototype the stub was generated from (NUL-terminated);
        /// the runtime binds only a description that renders to the same text.
        pub key: *const c_char,
        /// The wrapper.
        pub call: CallFn,
        /// The function itself, for a call through a pointer of the
        /// declared type, when the compiler found that type compatible with
        /// the function's own (`__builtin_types_compatible_p`); NULL when it
        /// is not (a difference a call converts, such as `int` for `long`),
        /// or when the name is a macro.
        pub direct: Option<unsafe extern "C" fn()>,
    }

    /// A callback slot: written by the runtime, read by its trampoline.
    #[repr(C)]
    pub struct StubSlot {
        /// Run by the trampoline; never NULL once the slot was handed out.
        pub run: Option<RunFn>,
        /// Passed to `run`.
        pub ctx: *mut c_void,
    }

    /// The trampolines of one callback signature, one per slot.
    #[repr(C)]
    pub struct StubPool {
        /// The signature, as `ret (*)(args)` (NUL-terminated).
        pub key: *const c_char,
        /// How many slots (and trampolines).
        pub nslots: u32,
        /// The slots, `nslots` of them, in writable C data.
        pub slots: *mut StubSlot,
        /// The trampolines' code addresses, `nslots` of them.
        pub codes: *const Option<unsafe extern "C" fn()>,
        /// Calls a function pointer of this type that the library returned.
        pub call: ViaFn,
    }

    /// A global variable: its name and address.
    #[repr(C)]
    pub struct StubGlobal {
        /// The C name (NUL-terminated).
        pub name: *const c_char,
        /// Its address (`&name`).
        pub addr: *const c_void,
    }

    /// A library's generated table.
    #[repr(C)]
    pub struct StubTable {
        /// [`VERSION`].
        pub version: u32,
        /// How many functions.
        pub nfns: u32,
        /// The functions.
        pub fns: *const StubFn,
        /// How many callback signatures.
        pub npools: u32,
        /// The callback pools.
        pub pools: *const StubPool,
        /// The library's name (NUL-terminated).
        pub library: *const c_char,
        /// How many globals.
        pub nglobals: u32,
        /// The globals.
        pub globals: *const StubGlobal,
    }

    /// The same types in C, for the generated file.
    pub const C_DEFINITIONS: &str = "\
struct sandlink_stub_fn {
  const char *name;
  const char *key;
  void (*call)(const uint64_t *args, uint64_t *ret, int *err);
  void (*direct)(void);
};
struct sandlink_stub_slot {
  void (*run)(void *ctx, const uint64_t *args, uint64_t *ret);
  void *ctx;
};
struct sandlink_stub_pool {
  const char *key;
  uint32_t nslots;
  struct sandlink_stub_slot *slots;
  void (*const *codes)(void);
  void (*call)(void (*code)(void), const uint64_t *args, uint64_t *ret, int *err);
};
struct sandlink_stub_global {
  const char *name;
  const void *addr;
};
struct sandlink_stub_table {
  uint32_t version;
  uint32_t nfns;
  const struct sandlink_stub_fn *fns;
  uint32_t npools;
  const struct sandlink_stub_pool *pools;
  const char *library;
  uint32_t nglobals;
  const struct sandlink_stub_global *globals;
};
";
}
