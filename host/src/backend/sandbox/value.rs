//! The wasm value ABI: how C scalars travel as wasm values under wasm32's
//! ILP32 data model, checked both ways.

use smallvec::SmallVec;
use wasmtime::{ValRaw, ValType};

use super::MODEL;
use crate::error::{Error, Result};
use crate::types::{Prim, Raw, WordClass};

pub(super) fn wasm_type(p: Prim) -> ValType {
    match p.class(MODEL) {
        WordClass::F32 => ValType::F32,
        WordClass::F64 => ValType::F64,
        WordClass::Int { size: 8, .. } => ValType::I64,
        WordClass::Int { .. } => ValType::I32,
    }
}

/// A lowered C signature's wasm parameter and result types.
pub(super) fn wasm_signature(args: &[Prim], ret: Option<Prim>) -> (Vec<ValType>, Vec<ValType>) {
    (
        args.iter().map(|p| wasm_type(*p)).collect(),
        ret.iter().map(|p| wasm_type(*p)).collect(),
    )
}

pub(super) fn describe(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(params), list(results))
}

/// Narrows `raw` to C type `p` (failing, not truncating, when it does not
/// fit) as an untyped [`ValRaw`] of wasm type [`wasm_type`]`(p)`: for
/// `Func::call_unchecked` and callback results.
#[inline]
pub(super) fn to_raw(p: Prim, raw: Raw, site: &dyn Fn() -> String) -> Result<ValRaw> {
    let bits = p.narrow_to(raw, MODEL, site)?;
    Ok(match wasm_type(p) {
        ValType::F32 => ValRaw::f32(bits as u32),
        ValType::F64 => ValRaw::f64(bits),
        ValType::I64 => ValRaw::i64(bits as i64),
        // The wasm C ABI passes small signed integers sign-extended to i32.
        _ if p.signed() => ValRaw::i32(raw.0 as i64 as i32),
        _ => ValRaw::i32(bits as u32 as i32),
    })
}

/// Widens a wasm value of type [`wasm_type`]`(p)` (the function's checked
/// signature says which) to a [`Raw`] for C type `p`, rejecting values a
/// correct compiler could not have produced (an `i32` holding a `char` must
/// already be extended): the library's values are untrusted.
#[inline]
pub(super) fn from_raw(p: Prim, v: ValRaw, site: &dyn Fn() -> String) -> Result<Raw> {
    match p.class(MODEL) {
        WordClass::F32 => Ok(Raw(u64::from(v.get_f32()))),
        WordClass::F64 => Ok(Raw(v.get_f64())),
        WordClass::Int { size: 8, .. } => Ok(Raw(v.get_i64() as u64)),
        WordClass::Int { signed, .. } => {
            let x = v.get_i32();
            let raw = p.widen(x as u32 as u64, MODEL);
            let as_i32 = if signed {
                raw.0 as i64 as i32
            } else {
                raw.0 as u32 as i32
            };
            if as_i32 == x {
                Ok(raw)
            } else {
                Err(not_extended(p, x, site))
            }
        }
    }
}

/// A callback's arguments, one wasm value per parameter, widened by
/// [`from_raw`]; the first that fails is the error. A plain loop: collecting
/// an iterator of results costs more here (`BENCHMARKS.md`).
#[inline]
pub(super) fn lift_args(
    args: &[Prim],
    vals: impl Iterator<Item = ValRaw>,
) -> Result<SmallVec<[Raw; 8]>> {
    let mut words = SmallVec::with_capacity(args.len());
    for (i, (p, v)) in args.iter().zip(vals).enumerate() {
        words.push(from_raw(*p, v, &|| format!("callback argument {}", i + 1))?);
    }
    Ok(words)
}

/// `from_raw`'s error, built out of line so the conversion itself inlines.
#[cold]
#[inline(never)]
fn not_extended(p: Prim, x: i32, site: &dyn Fn() -> String) -> Error {
    Error::InvalidValue {
        function: None,
        what: site(),
        reason: format!("the library produced i32 {x} for a C `{}`", p.c_name()),
    }
}

/// A zero of wasm type [`wasm_type`]`(p)`.
pub(super) fn zero_raw(p: Prim) -> ValRaw {
    match wasm_type(p) {
        ValType::F32 => ValRaw::f32(0),
        ValType::F64 => ValRaw::f64(0),
        ValType::I64 => ValRaw::i64(0),
        _ => ValRaw::i32(0),
    }
}
