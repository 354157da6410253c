//! The type constructors, named as in ctypes.

use super::*;

macro_rules! prim_ctors {
    ($($(#[$m:meta])* $name:ident: $prim:ident => $t:ty;)*) => {$(
        $(#[$m])*
        pub fn $name() -> Typ<$t> {
            // The Rust type is as wide as the C type under the widest data model.
            const _: () = assert!(Prim::$prim.size(DataModel::Lp64) as usize == std::mem::size_of::<$t>());
            Typ::new(CType::Prim(Prim::$prim))
        }
    )*};
}

prim_ctors! {
    /// C `_Bool`.
    bool: Bool => bool;
    /// C `char` (signed on x86-64 and wasm32).
    char: Char => i8;
    /// C `signed char`.
    schar: SChar => i8;
    /// C `unsigned char`.
    uchar: UChar => u8;
    /// C `short`.
    short: Short => i16;
    /// C `unsigned short`.
    ushort: UShort => u16;
    /// C `int`.
    int: Int => i32;
    /// C `unsigned int`.
    uint: UInt => u32;
    /// C `long`: `i64` in Rust; checked into 32 bits under ILP32.
    long: Long => i64;
    /// C `unsigned long`: `u64` in Rust; checked into 32 bits under ILP32.
    ulong: ULong => u64;
    /// C `long long`.
    llong: LLong => i64;
    /// C `unsigned long long`.
    ullong: ULLong => u64;
    /// C `int8_t`.
    int8_t: I8 => i8;
    /// C `int16_t`.
    int16_t: I16 => i16;
    /// C `int32_t`.
    int32_t: I32 => i32;
    /// C `int64_t`.
    int64_t: I64 => i64;
    /// C `uint8_t`.
    uint8_t: U8 => u8;
    /// C `uint16_t`.
    uint16_t: U16 => u16;
    /// C `uint32_t`.
    uint32_t: U32 => u32;
    /// C `uint64_t`.
    uint64_t: U64 => u64;
    /// C `size_t`: `u64` in Rust; checked into 32 bits under ILP32.
    size_t: Size => u64;
    /// C `ssize_t`.
    ssize_t: SSize => i64;
    /// C `intptr_t`.
    intptr_t: IntPtr => i64;
    /// C `uintptr_t`.
    uintptr_t: UIntPtr => u64;
    /// C `ptrdiff_t`.
    ptrdiff_t: PtrDiff => i64;
    /// C `float`.
    float: Float => f32;
    /// C `double`.
    double: Double => f64;
}

/// C `void`, as a return type or pointee (`ptr(void())`), or alone before
/// `>> returning(...)` for a function with no arguments.
#[derive(Clone, Copy, Debug)]
pub struct Void;

/// C `void`.
pub fn void() -> Void {
    Void
}

impl From<Void> for Typ<()> {
    fn from(_: Void) -> Typ<()> {
        Typ::new(CType::Void)
    }
}

/// A NUL-terminated `char *` string: `&str` in, `String` out. An interior NUL
/// going in, NULL, invalid UTF-8 or a missing terminator coming out are errors.
pub fn string() -> Typ<String> {
    Typ::new(CType::String)
}

/// Like [`string`], with NULL as `None`.
pub fn string_opt() -> Typ<Option<String>> {
    Typ::new(CType::String)
}

/// A `(const char *, size_t)` argument pair, passed as one `&[u8]`.
pub fn buffer() -> Typ<Buffer> {
    Typ::new(CType::Buffer(Prim::Size))
}

/// A `(const char *, int)` pair, as expat's character-data handlers receive.
pub fn buffer_int() -> Typ<Buffer> {
    Typ::new(CType::Buffer(Prim::Int))
}

/// A `(char *, size_t)` pair the C side may write: copied in, copied back.
pub fn buffer_mut() -> Typ<BufferMut> {
    Typ::new(CType::Buffer(Prim::Size))
}

/// `T *`, never NULL (NULL coming out of the library is an error).
pub fn ptr<T: Shadow>(t: impl Into<Typ<T>>) -> Typ<Ptr<T>> {
    Typ::new(CType::Pointer(t.into().desc))
}

/// `T *` that may be NULL (`None`).
pub fn ptr_opt<T: Shadow>(t: impl Into<Typ<T>>) -> Typ<Option<Ptr<T>>> {
    Typ::new(CType::Pointer(t.into().desc))
}

/// `T[n]`.
pub fn array<T: Shadow>(n: u64, t: Typ<T>) -> Typ<Array<T>> {
    Typ::with_meta(CType::Array(n, t.desc.clone()), (t, n))
}

/// A `typedef` name for `t`: the same type, spelled `name` in C.
pub fn typedef<T: Shadow>(t: Typ<T>, name: &str) -> Typ<T> {
    // `typedef struct { … } name;`: the typedef is how C names it.
    if let CType::Aggregate(a) = &*t.desc {
        if a.is_anonymous() {
            let _ = a.spelled.set(Spelling::Typedef(name.to_string()));
        }
    }
    Typ::from_arc(Arc::new(CType::Typedef(name.into(), t.desc)), t.meta)
}

/// `t`, `const`-qualified: `ptr(const_(char()))` is `const char *`. The
/// qualifier changes nothing at run time; it makes the C spelling match the
/// header, which generated stubs are checked against.
pub fn const_<T: Shadow>(t: Typ<T>) -> Typ<T> {
    Typ::from_arc(Arc::new(CType::Const(t.desc)), t.meta)
}

/// A pointer to a function of type `f`, for callbacks.
pub fn funptr<A: Params, R: Shadow>(f: FnType<A, R>) -> Typ<FunPtr<A, R>> {
    Typ::with_meta(CType::FunPtr(f.sig().clone()), Arc::new(f))
}

/// Like [`funptr`], where NULL (`None`) is allowed: "no handler".
pub fn funptr_opt<A: Params, R: Shadow>(f: FnType<A, R>) -> Typ<Option<FunPtr<A, R>>> {
    Typ::with_meta(CType::FunPtr(f.sig().clone()), Arc::new(f))
}
