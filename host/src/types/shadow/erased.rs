//! Descriptions whose Rust type is not known when they are made: the header
//! generator's, which records them at build time and never calls with them.

use super::*;
use crate::types::desc::FnSig;

/// The shadow of a description built at run time from data (a parsed C
/// header): it says nothing about Rust values, so nothing can be passed as
/// or read from one. `sandlink-build`'s generator records the functions it
/// generates with such descriptions ([`crate::record::Recorder::declare`]),
/// so that their stubs come from the same renderer as hand-written ones.
pub struct Erased(Infallible);

impl crate::types::sealed::Shadow for Erased {}
impl Shadow for Erased {
    type In<'a> = Infallible;
    type Out = Infallible;
    type Meta = ();
    type Direct = NoDirect;
    fn lower<'a>(_: &Typ<Self>, v: Infallible, _: &mut Frame<'_, 'a>) -> Result<()> {
        match v {}
    }
    unsafe fn lift(t: &Typ<Self>, _: &[Raw], _: &dyn Memory, site: Site) -> Result<Infallible> {
        Err(Error::NotPassable {
            what: site.to_string(),
            c_type: t.c_name(),
            reason: "an erased description records a declaration; it passes no values".into(),
        })
    }
}

impl<T: Shadow> Typ<T> {
    /// The same description without its Rust type, for recording.
    pub fn erase(&self) -> Typ<Erased> {
        Typ::from_arc(self.desc.clone(), ())
    }
}

/// A function pointer type built from erased argument and result
/// descriptions (`ret` `None` for `void`), nullable like [`funptr_opt`].
pub fn funptr_erased(args: &[Typ<Erased>], ret: Option<&Typ<Erased>>) -> Typ<Erased> {
    Typ::new(CType::FunPtr(erased_sig(args, ret)))
}

/// A `(pointer, length)` pair whose length has the erased type `len`, as
/// `buffer().len_type(..)` (or `buffer_mut`, `bytes_ref`: the description
/// is the same, only the Rust type differs) makes it. `None` when `len` is
/// not an integer.
pub fn buffer_erased(len: &Typ<Erased>) -> Option<Typ<Erased>> {
    match len.desc.scalar()? {
        Prim::Bool | Prim::Float | Prim::Double | Prim::Pointer => None,
        prim => Some(Typ::new(CType::Buffer(prim))),
    }
}

/// The signature of erased argument and result descriptions.
pub(crate) fn erased_sig(args: &[Typ<Erased>], ret: Option<&Typ<Erased>>) -> Arc<FnSig> {
    Arc::new(FnSig {
        args: args.iter().map(|a| a.desc.clone()).collect(),
        ret: ret.map_or_else(|| Arc::new(CType::Void), |r| r.desc.clone()),
    })
}
