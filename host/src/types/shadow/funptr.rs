//! Function pointers: a [`crate::Callback`] goes in, a [`CodePtr`] comes out.

use super::*;

/// Shadow of a function pointer: a [`crate::Callback`] goes in, a
/// [`CodePtr`] comes out.
pub struct FunPtr<A, R>(PhantomData<fn(A) -> R>, Infallible);

/// A C function pointer the library returned: its code address, the
/// library instance (and reset generation) it came from, and its declared
/// type. Bind it with [`crate::Foreign::function_at`] to call it; using it
/// with another library, or after that library was reset, is an
/// [`Error::ForeignPointer`] or [`Error::StalePointer`].
pub struct CodePtr<A: Params, R: Shadow> {
    addr: u64,
    brand: Brand,
    ty: Arc<FnType<A, R>>,
}

impl<A: Params, R: Shadow> CodePtr<A, R> {
    /// The code address, as the library sees it (a wasm table index in the
    /// Sandbox), for passing on as an integer.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The function type the pointer was declared with.
    pub fn fn_type(&self) -> &FnType<A, R> {
        &self.ty
    }

    /// The library instance and generation it came from.
    pub(crate) fn brand(&self) -> Brand {
        self.brand
    }

    /// What the library returned, branded with it.
    fn lifted(ty: &Arc<FnType<A, R>>, addr: u64, mem: &dyn Memory) -> CodePtr<A, R> {
        CodePtr {
            addr,
            brand: mem.brand(),
            ty: ty.clone(),
        }
    }
}

impl<A: Params, R: Shadow> Clone for CodePtr<A, R> {
    fn clone(&self) -> Self {
        CodePtr {
            addr: self.addr,
            brand: self.brand,
            ty: self.ty.clone(),
        }
    }
}

impl<A: Params, R: Shadow> PartialEq for CodePtr<A, R> {
    fn eq(&self, o: &Self) -> bool {
        self.addr == o.addr && self.brand == o.brand
    }
}
impl<A: Params, R: Shadow> Eq for CodePtr<A, R> {}

impl<A: Params, R: Shadow> fmt::Debug for CodePtr<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CodePtr({} at {:#x})",
            self.ty.sig().c_prototype("(*)"),
            self.addr
        )
    }
}

impl<A: Params, R: Shadow> crate::types::sealed::Shadow for FunPtr<A, R> {}
impl<A: Params, R: Shadow> Shadow for FunPtr<A, R> {
    type In<'a> = &'a crate::Callback<A, R>;
    type Out = CodePtr<A, R>;
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
    unsafe fn lift(
        t: &Typ<Self>,
        raws: &[Raw],
        mem: &dyn Memory,
        site: Site,
    ) -> Result<CodePtr<A, R>> {
        match one(raws, site)?.0 {
            0 => Err(Error::NullPointer {
                function: None,
                what: site.to_string(),
                c_type: t.c_name(),
            }),
            a => Ok(CodePtr::lifted(&t.meta, a, mem)),
        }
    }
}

impl<A: Params, R: Shadow> crate::types::sealed::Shadow for Option<FunPtr<A, R>> {}
impl<A: Params, R: Shadow> Shadow for Option<FunPtr<A, R>> {
    type In<'a> = Option<&'a crate::Callback<A, R>>;
    type Out = Option<CodePtr<A, R>>;
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
        t: &Typ<Self>,
        raws: &[Raw],
        mem: &dyn Memory,
        site: Site,
    ) -> Result<Option<CodePtr<A, R>>> {
        Ok(match one(raws, site)?.0 {
            0 => None,
            a => Some(CodePtr::lifted(&t.meta, a, mem)),
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
