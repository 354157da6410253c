//! Function pointers: a [`crate::Callback`] goes in, a code address comes out.

use super::*;

/// Shadow of a function pointer: a [`crate::Callback`] goes in, an address
/// comes out.
pub struct FunPtr<A, R>(PhantomData<fn(A) -> R>, Infallible);

/// The address of a C function in the library's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodePtr(pub u64);

impl<A: Params, R: Shadow> crate::types::sealed::Shadow for FunPtr<A, R> {}
impl<A: Params, R: Shadow> Shadow for FunPtr<A, R> {
    type In<'a> = &'a crate::Callback<A, R>;
    type Out = CodePtr;
    type Meta = Arc<FnType<A, R>>;
    type Direct = Option<CFn>;
    fn to_direct(
        _: &Typ<Self>,
        v: &crate::Callback<A, R>,
        mem: &dyn Memory,
        site: Site,
    ) -> Result<Option<CFn>> {
        Ok(code_ptr(v.addr_for(mem, site)?))
    }
    fn lower<'a>(_: &Typ<Self>, v: &'a crate::Callback<A, R>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = v.addr_in(f)?;
        f.push(Raw(a));
        Ok(())
    }
    unsafe fn lift(t: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<CodePtr> {
        match one(raws, site)?.0 {
            0 => Err(Error::NullPointer {
                function: None,
                what: site.to_string(),
                c_type: t.c_name(),
            }),
            a => Ok(CodePtr(a)),
        }
    }
}

impl<A: Params, R: Shadow> crate::types::sealed::Shadow for Option<FunPtr<A, R>> {}
impl<A: Params, R: Shadow> Shadow for Option<FunPtr<A, R>> {
    type In<'a> = Option<&'a crate::Callback<A, R>>;
    type Out = Option<CodePtr>;
    type Meta = Arc<FnType<A, R>>;
    type Direct = Option<CFn>;
    fn to_direct(
        _: &Typ<Self>,
        v: Option<&crate::Callback<A, R>>,
        mem: &dyn Memory,
        site: Site,
    ) -> Result<Option<CFn>> {
        match v {
            Some(c) => Ok(code_ptr(c.addr_for(mem, site)?)),
            None => Ok(None),
        }
    }
    fn lower<'a>(
        _: &Typ<Self>,
        v: Option<&'a crate::Callback<A, R>>,
        f: &mut Frame<'_, 'a>,
    ) -> Result<()> {
        let a = match v {
            Some(c) => c.addr_in(f)?,
            None => 0,
        };
        f.push(Raw(a));
        Ok(())
    }
    unsafe fn lift(
        _: &Typ<Self>,
        raws: &[Raw],
        _: &dyn Memory,
        site: Site,
    ) -> Result<Option<CodePtr>> {
        Ok(match one(raws, site)?.0 {
            0 => None,
            a => Some(CodePtr(a)),
        })
    }
}

/// A code address as a C function pointer, for a direct call's argument
/// (the callee calls it only with the type the description gives it).
fn code_ptr(addr: u64) -> Option<CFn> {
    // The callback's code pointer was exposed when its address was taken.
    let p = std::ptr::with_exposed_provenance::<u8>(addr as usize);
    // SAFETY: a function pointer has a raw pointer's size and
    // representation, and `Option` of one the same with NULL as `None`; the
    // pointer is only passed on to C, never called from Rust.
    unsafe { std::mem::transmute::<*const u8, Option<CFn>>(p) }
}

impl<A: Params, R: Shadow> Typ<FunPtr<A, R>> {
    /// The function type this pointer points at.
    pub fn fn_type(&self) -> &FnType<A, R> {
        &self.meta
    }
}
