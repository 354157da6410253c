//! Numbers, `_Bool` and `void`: one scalar each way.

use super::*;

macro_rules! int_shadow {
    ($($t:ty => $via:ty),* $(,)?) => {$(
        impl crate::types::sealed::Shadow for $t {}
        impl Shadow for $t {
            type In<'a> = $t;
            type Out = $t;
            type Meta = ();
            type Direct = $t;
            fn lower<'a>(_: &Typ<Self>, v: $t, f: &mut Frame<'_, 'a>) -> Result<()> {
                f.push(Raw(v as $via as u64));
                Ok(())
            }
            fn to_direct<'a>(_: &Typ<Self>, v: $t, _: &dyn Memory, _: Site) -> Result<$t> {
                Ok(v)
            }
            unsafe fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<$t> {
                // The strategy widened the scalar from its C type, whose
                // range is within the Rust type's (checked when the
                // constructors pair them), so this cannot truncate.
                Ok(one(raws, site)?.0 as $t)
            }
        }
        impl Scalar for $t {
            fn to_in<'a>(v: $t) -> Self::In<'a> { v }
        }
        impl Integer for $t {}
    )*};
}

int_shadow!(i8 => i64, i16 => i64, i32 => i64, i64 => i64, u8 => u64, u16 => u64, u32 => u64, u64 => u64);

impl crate::types::sealed::Shadow for f32 {}
impl Shadow for f32 {
    type In<'a> = f32;
    type Out = f32;
    type Meta = ();
    type Direct = f32;
    fn to_direct<'a>(_: &Typ<Self>, v: f32, _: &dyn Memory, _: Site) -> Result<f32> {
        Ok(v)
    }
    fn lower<'a>(_: &Typ<Self>, v: f32, f: &mut Frame<'_, 'a>) -> Result<()> {
        f.push(Raw::from_f32(v));
        Ok(())
    }
    unsafe fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<f32> {
        Ok(one(raws, site)?.as_f32())
    }
}

impl Scalar for f32 {
    fn to_in<'a>(v: f32) -> Self::In<'a> {
        v
    }
}

impl crate::types::sealed::Shadow for f64 {}
impl Shadow for f64 {
    type In<'a> = f64;
    type Out = f64;
    type Meta = ();
    type Direct = f64;
    fn to_direct<'a>(_: &Typ<Self>, v: f64, _: &dyn Memory, _: Site) -> Result<f64> {
        Ok(v)
    }
    fn lower<'a>(_: &Typ<Self>, v: f64, f: &mut Frame<'_, 'a>) -> Result<()> {
        f.push(Raw::from_f64(v));
        Ok(())
    }
    unsafe fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<f64> {
        Ok(one(raws, site)?.as_f64())
    }
}

impl Scalar for f64 {
    fn to_in<'a>(v: f64) -> Self::In<'a> {
        v
    }
}

impl crate::types::sealed::Shadow for bool {}
impl Shadow for bool {
    type In<'a> = bool;
    type Out = bool;
    type Meta = ();
    // A `_Bool` from C is checked to be 0 or 1 before it is a `bool`.
    type Direct = NoDirect;
    fn lower<'a>(_: &Typ<Self>, v: bool, f: &mut Frame<'_, 'a>) -> Result<()> {
        f.push(Raw(u64::from(v)));
        Ok(())
    }
    unsafe fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<bool> {
        match one(raws, site)?.0 {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::InvalidValue {
                function: None,
                what: site.to_string(),
                reason: format!("{v} is not a valid _Bool (0 or 1)"),
            }),
        }
    }
}

impl Scalar for bool {
    fn to_in<'a>(v: bool) -> Self::In<'a> {
        v
    }
}

/// `void`: no value. As a return type it gives `()`.
impl crate::types::sealed::Shadow for () {}
impl Shadow for () {
    type In<'a> = ();
    type Out = ();
    type Meta = ();
    type Direct = ();
    fn to_direct<'a>(_: &Typ<Self>, _: (), _: &dyn Memory, _: Site) -> Result<()> {
        Ok(())
    }
    fn lower<'a>(_: &Typ<Self>, _: (), _: &mut Frame<'_, 'a>) -> Result<()> {
        Ok(())
    }
    unsafe fn lift(_: &Typ<Self>, _: &[Raw], _: &dyn Memory, _: Site) -> Result<()> {
        Ok(())
    }
}

impl Scalar for () {
    fn to_in<'a>(_: ()) -> Self::In<'a> {}
}
