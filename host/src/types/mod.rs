//! C type descriptions as values.
//!
//! Each constructor (`int()`, `string()`, `ptr(t)`, `structure::<Tag>("s")`, …)
//! returns a [`Typ<T>`]: a run-time C type description that knows its C name, its
//! layout under each [`DataModel`] and how it lowers to machine words, paired
//! with a Rust shadow type `T` that makes bound functions typed.

mod desc;

/// Seals [`Shadow`] and [`Params`]: every C type is made by this crate's
/// constructors, so no other crate implements them.
pub(crate) mod sealed {
    /// Implemented for every shadow type, and by nothing outside.
    pub trait Shadow {}
    /// Implemented for every parameter tuple, and by nothing outside.
    pub trait Params {}
}

mod func;
pub(crate) mod marshal;
mod shadow;

pub(crate) use shadow::{append_str, lift_str};

pub use crate::bindings::Named;
pub(crate) use desc::{Aggregate, CType, FnSig, Prim, Raw, WordClass};
pub use desc::{DataModel, Layout};
pub use func::{returning, returning_errno, FnType, ParamList, Params, Returning};
pub(crate) use marshal::{read_vec, Brand, Frame, Memory, Site};
pub(crate) use shadow::erased_sig as shadow_erased_sig;
#[doc(hidden)]
pub use shadow::Capture;
pub(crate) use shadow::Direct;
pub use shadow::{
    array, bool, buffer, buffer_erased, buffer_int, buffer_mut, bytes_ref, bytes_ref_int, char,
    const_, double, float, funptr, funptr_erased, funptr_opt, int, int16_t, int32_t, int64_t,
    int8_t, intptr_t, llong, long, ptr, ptr_opt, ptrdiff_t, schar, short, size_t, ssize_t,
    str_array_ref, str_owned, str_owned_opt, str_ref, str_ref_opt, string, string_opt, structure,
    typedef, uchar, uint, uint16_t, uint32_t, uint64_t, uint8_t, uintptr_t, ullong, ulong, union,
    ushort, view, void, Array, Buffer, BufferMut, BytesRef, CodePtr, Erased, Field, FunPtr,
    Integer, OwnedStr, Ptr, Scalar, Shadow, StrArrayRef, StrRef, Struct, StructBuilder, Typ, View,
    ViewMeta, Void,
};
