//! C type descriptions as values.
//!
//! Each constructor (`int()`, `string()`, `ptr(t)`, `structure::<Tag>("s")`, …)
//! returns a [`Typ<T>`]: a run-time [`CType`] that knows its C name, its
//! layout under each [`DataModel`] and how it lowers to machine words, paired
//! with a Rust shadow type `T` that makes bound functions typed.

mod desc;
mod func;
pub(crate) mod marshal;
mod shadow;

pub(crate) use shadow::{append_str, lift_str};

pub use desc::{Aggregate, CType, DataModel, FnSig, Layout, Prim, Raw, WordClass};
pub use func::{returning, returning_errno, FnType, ParamList, Params, Returning};
pub(crate) use marshal::read_vec;
pub use marshal::{Brand, Frame, Memory, Site, MAX_TRANSFER};
pub use shadow::{
    array, bool, buffer, buffer_int, buffer_mut, char, const_, double, float, funptr, funptr_opt,
    int, int16_t, int32_t, int64_t, int8_t, intptr_t, llong, long, ptr, ptr_opt, ptrdiff_t, schar,
    short, size_t, ssize_t, string, string_opt, structure, typedef, uchar, uint, uint16_t,
    uint32_t, uint64_t, uint8_t, uintptr_t, ullong, ulong, union, ushort, view, void, Array,
    Buffer, BufferMut, CodePtr, Direct, Field, FunPtr, NoDirect, Ptr, Scalar, Shadow, Struct,
    StructBuilder, Typ, View, ViewMeta, Void,
};
