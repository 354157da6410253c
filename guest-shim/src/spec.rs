//! The stub specification: plain data describing what a binding module
//! declares, produced by `sandlink::record::Recorder` when a build script
//! evaluates the binding module, and consumed by `sandlink-build`'s Stubs
//! generator. It lives here so that neither crate depends on the other.

/// How one C scalar travels between Rust and a stub: a 64-bit word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// An integer of `size` bytes, sign- or zero-extended.
    Int {
        /// Size in bytes.
        size: u8,
        /// Whether it is sign-extended.
        signed: bool,
    },
    /// A data or function pointer, as an address.
    Pointer,
    /// `float`, as its bits in the low half.
    F32,
    /// `double`, as its bits.
    F64,
}

/// One C parameter (or result) of a stub or trampoline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The C declarator with `@` where the name goes: `int @`,
    /// `const char *@`, `void (*@)(void *)`.
    pub decl: String,
    /// How it travels.
    pub word: Word,
}

/// A function to wrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubFunction {
    /// Its C name.
    pub name: String,
    /// The declared prototype, as the runtime renders it: the runtime binds
    /// a description to this stub only if it renders to the same text.
    pub key: String,
    /// One per C parameter (a buffer argument is two).
    pub params: Vec<Param>,
    /// The result, `None` for `void`. Its declarator receives the real
    /// function's result, so a pointer's pointee is `const`-qualified there
    /// (a `const char *` result may be received as a string).
    pub ret: Option<Param>,
}

/// A callback signature to make trampolines for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubCallback {
    /// The signature as the runtime renders it, `ret (*)(args)`.
    pub key: String,
    /// One per C parameter.
    pub params: Vec<Param>,
    /// The result, `None` for `void`.
    pub ret: Option<Param>,
}

/// Everything a binding module declared: what the generator needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StubSpec {
    /// The functions, each once.
    pub functions: Vec<StubFunction>,
    /// The callback signatures, each once.
    pub callbacks: Vec<StubCallback>,
    /// The globals whose address the bindings take, each once.
    pub globals: Vec<String>,
    /// The structs and unions the functions reach, with their described
    /// layouts: checked against the compiler's `sizeof`/`offsetof`.
    pub layouts: Vec<StubLayout>,
    /// The constants (`#define`s, enum values) the bindings read.
    pub constants: Vec<StubConstant>,
}

/// A C constant the bindings read: compiled into every build of the library
/// as `const <type> sandlink_const_<name> = <name>;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubConstant {
    /// The constant's C name.
    pub name: String,
    /// Its declared type's declarator, `@` where the name goes.
    pub decl: String,
}

/// A struct or union as the description lays it out, per data model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubLayout {
    /// `struct tag` or `union tag`.
    pub c_type: String,
    /// The fields' names, in order.
    pub fields: Vec<String>,
    /// Each field's described type as a declarator of a pointer to it, `@`
    /// where the name goes (`uLong *@`, `char (*@)[16]`): the check
    /// initialises one from the field's address, so the compiler compares
    /// the types. Empty when the description cannot be spelled.
    pub field_pointers: Vec<String>,
    /// `(size, align, offsets)` under LP64 (x86-64).
    pub lp64: (u64, u64, Vec<u64>),
    /// `(size, align, offsets)` under ILP32 (wasm32).
    pub ilp32: (u64, u64, Vec<u64>),
}
