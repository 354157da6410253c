//! Direct calls: the Rust types whose C ABI is exactly that of a C scalar,
//! so that a strategy running native code in this process can call a
//! function through a typed `extern "C"` pointer instead of libffi.

use std::ffi::c_void;

use crate::types::desc::{DataModel, Prim, Raw, WordClass};

/// A Rust type with exactly the C ABI of the C scalars it [`matches`]: a
/// function declared with those C types can be called through an
/// `unsafe extern "C" fn` pointer taking and returning this type.
///
/// [`matches`]: Direct::matches
///
/// # Safety
/// For every `prim` (and `model`) for which [`Direct::matches`] is true,
/// `Self` has the same size, alignment and calling-convention class as the
/// C type `prim` under `model`, and is ABI-compatible with the Rust type
/// that C type maps to (so a call through such a pointer is well defined);
/// [`Direct::to_raw`] gives the word that type's `lift` expects.
pub unsafe trait Direct: Copy + 'static {
    /// Whether values of this type can be passed directly at all.
    const USABLE: bool;
    /// Whether this type is the C type `prim` under `model` (`None`: `void`).
    fn matches(prim: Option<Prim>, model: DataModel) -> bool;
    /// The value as the lowered word its shadow type lifts from (`None` for `void`).
    fn to_raw(self) -> Option<Raw>;
}

/// The [`Shadow::Direct`](crate::types::Shadow::Direct) of a type that is
/// never passed directly (strings, buffers, structs, callbacks, views,
/// `_Bool`): calls with it go through the strategy's general path.
#[derive(Clone, Copy, Debug)]
pub enum NoDirect {}

// SAFETY: `matches` is never true, so no call is ever made with it.
unsafe impl Direct for NoDirect {
    const USABLE: bool = false;
    fn matches(_: Option<Prim>, _: DataModel) -> bool {
        false
    }
    fn to_raw(self) -> Option<Raw> {
        match self {}
    }
}

macro_rules! direct_int {
    ($($t:ty => $via:ty),* $(,)?) => {$(
        // SAFETY: a C integer type of this size and signedness (not a
        // pointer or `_Bool`) has exactly this Rust type's ABI; the word is the value
        // sign- or zero-extended, as the shadow's `lift` expects.
        unsafe impl Direct for $t {
            const USABLE: bool = true;
            fn matches(prim: Option<Prim>, model: DataModel) -> bool {
                match prim {
                    // `_Bool` is Rust's `bool`, not an integer.
                    Some(Prim::Pointer | Prim::Bool) | None => false,
                    Some(p) => {
                        p.class(model)
                            == WordClass::Int {
                                size: std::mem::size_of::<$t>() as u8,
                                signed: <$t>::MIN != 0,
                            }
                    }
                }
            }
            fn to_raw(self) -> Option<Raw> {
                Some(Raw(self as $via as u64))
            }
        }
    )*};
}

direct_int!(i8 => i64, i16 => i64, i32 => i64, i64 => i64, u8 => u64, u16 => u64, u32 => u64, u64 => u64);

// SAFETY: C `float` is Rust `f32`; the word is its bits in the low half.
unsafe impl Direct for f32 {
    const USABLE: bool = true;
    fn matches(prim: Option<Prim>, model: DataModel) -> bool {
        prim.is_some_and(|p| p.class(model) == WordClass::F32)
    }
    fn to_raw(self) -> Option<Raw> {
        Some(Raw::from_f32(self))
    }
}

// SAFETY: C `double` is Rust `f64`; the word is its bits.
unsafe impl Direct for f64 {
    const USABLE: bool = true;
    fn matches(prim: Option<Prim>, model: DataModel) -> bool {
        prim.is_some_and(|p| p.class(model) == WordClass::F64)
    }
    fn to_raw(self) -> Option<Raw> {
        Some(Raw::from_f64(self))
    }
}

// SAFETY: a C object pointer is a Rust raw pointer; the word is its address.
unsafe impl Direct for *mut c_void {
    const USABLE: bool = true;
    fn matches(prim: Option<Prim>, _: DataModel) -> bool {
        prim == Some(Prim::Pointer)
    }
    fn to_raw(self) -> Option<Raw> {
        Some(Raw(self as usize as u64))
    }
}

/// A C function pointer of any signature, as a direct call passes one (any
/// two `extern "C"` function pointer types share their ABI).
pub type CFn = unsafe extern "C" fn();

// SAFETY: a C function pointer (described as a pointer) is an `extern "C"`
// function pointer, `Option` of one the same with NULL as `None`; the word
// is its address.
unsafe impl Direct for Option<CFn> {
    const USABLE: bool = true;
    fn matches(prim: Option<Prim>, _: DataModel) -> bool {
        prim == Some(Prim::Pointer)
    }
    fn to_raw(self) -> Option<Raw> {
        Some(Raw(self.map_or(0, |f| f as usize as u64)))
    }
}

// SAFETY: `void` as a return type: Rust's `()` return; no word.
unsafe impl Direct for () {
    const USABLE: bool = true;
    fn matches(prim: Option<Prim>, _: DataModel) -> bool {
        prim.is_none()
    }
    fn to_raw(self) -> Option<Raw> {
        None
    }
}
