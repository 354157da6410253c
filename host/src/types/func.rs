//! Function types as values: `string() >> int() >> returning(int())`.

use std::ops::Shr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::types::desc::{CType, DataModel, FnSig, Raw};
use crate::types::marshal::{Frame, Memory, Site};
use crate::types::shadow::{Capture, Direct, Shadow, Typ, Void};

/// A tuple of argument shadow types, e.g. `(String, i32)`. Implemented for
/// tuples of up to ten [`Shadow`] types, and `()` for no arguments.
pub trait Params: crate::types::sealed::Params + Sized + 'static {
    /// The tuple of argument descriptions.
    #[doc(hidden)]
    type Typs: Clone + Send + Sync + 'static;
    /// The tuple of Rust values a call takes.
    type In<'a>;
    /// The tuple of Rust values a callback receives.
    type Out;

    /// The run-time descriptions, in order.
    #[doc(hidden)]
    fn descs(t: &Self::Typs) -> Vec<Arc<CType>>;
    /// What a batched callback's recorder copies for each argument word.
    #[doc(hidden)]
    fn captures(t: &Self::Typs) -> Vec<Capture>;
    /// Lowers every argument onto the frame.
    #[doc(hidden)]
    fn lower<'a>(t: &Self::Typs, v: Self::In<'a>, f: &mut Frame<'_, 'a>) -> Result<()>;
    /// Lifts every argument from a callback's scalars.
    ///
    /// # Safety
    /// As for [`Shadow::lift`]: `raws` are the arguments the library passed
    /// to a callback of these parameter types.
    #[doc(hidden)]
    unsafe fn lift(t: &Self::Typs, raws: &[Raw], mem: &dyn Memory) -> Result<Self::Out>;

    /// Whether every parameter has a usable [`Shadow::Direct`] type that is
    /// its C type under `model`, so a call can go through a typed pointer.
    #[doc(hidden)]
    fn direct_ok(t: &Self::Typs, model: DataModel) -> bool;

    /// Calls `code` through a typed `extern "C"` pointer taking these
    /// parameters' [`Shadow::Direct`] types and returning `R`'s. The call
    /// itself is made inside `run` (the strategy's, which holds the
    /// library's call lock around it). Returns the result's word.
    ///
    /// # Safety
    /// `code` is the address of a function whose C signature is exactly
    /// these parameters' C types returning `R`'s (so [`Params::direct_ok`]
    /// and `R::Direct::matches` hold for them), callable in this process;
    /// `mem` is its library.
    #[doc(hidden)]
    unsafe fn call_direct<'a, R: Shadow>(
        t: &Self::Typs,
        v: Self::In<'a>,
        mem: &dyn Memory,
        code: unsafe extern "C" fn(),
        run: &mut dyn FnMut(&mut dyn FnMut()) -> Result<()>,
    ) -> Result<Option<Raw>>;
}

impl crate::types::sealed::Params for () {}
impl Params for () {
    type Typs = ();
    type In<'a> = ();
    type Out = ();
    fn descs(_: &()) -> Vec<Arc<CType>> {
        Vec::new()
    }
    fn captures(_: &()) -> Vec<Capture> {
        Vec::new()
    }
    fn lower<'a>(_: &(), _: (), _: &mut Frame<'_, 'a>) -> Result<()> {
        Ok(())
    }
    unsafe fn lift(_: &(), _: &[Raw], _: &dyn Memory) -> Result<()> {
        Ok(())
    }
    fn direct_ok(_: &(), _: DataModel) -> bool {
        true
    }
    unsafe fn call_direct<'a, R: Shadow>(
        _: &(),
        _: (),
        _: &dyn Memory,
        code: unsafe extern "C" fn(),
        run: &mut dyn FnMut(&mut dyn FnMut()) -> Result<()>,
    ) -> Result<Option<Raw>> {
        // SAFETY: the caller promises `code` is a function of no parameters
        // returning exactly `R::Direct`'s C type.
        let f = unsafe {
            std::mem::transmute::<unsafe extern "C" fn(), unsafe extern "C" fn() -> R::Direct>(code)
        };
        let mut out = None;
        // SAFETY: as above; `run` makes the call under the library's lock.
        run(&mut || out = Some(unsafe { f() }))?;
        Ok(out.and_then(Direct::to_raw))
    }
}

#[inline]
fn split<'r>(raws: &'r [Raw], at: &mut usize, n: usize, site: Site) -> Result<&'r [Raw]> {
    let Some(s) = raws.get(*at..*at + n) else {
        return Err(missing_scalars(raws.len(), *at + n, site));
    };
    *at += n;
    Ok(s)
}

/// `split`'s error, built out of line so the check itself inlines.
#[cold]
#[inline(never)]
fn missing_scalars(have: usize, need: usize, site: Site) -> Error {
    Error::InvalidValue {
        function: None,
        what: site.to_string(),
        reason: format!("missing scalars: have {have}, need {need}"),
    }
}

macro_rules! params_tuple {
    ($($n:tt $T:ident),+) => {
        impl<$($T: Shadow),+> crate::types::sealed::Params for ($($T,)+) {}
        impl<$($T: Shadow),+> Params for ($($T,)+) {
            type Typs = ($(Typ<$T>,)+);
            type In<'a> = ($($T::In<'a>,)+);
            type Out = ($($T::Out,)+);
            fn descs(t: &Self::Typs) -> Vec<Arc<CType>> {
                vec![$(t.$n.desc().clone()),+]
            }
            fn captures(t: &Self::Typs) -> Vec<Capture> {
                let mut v = Vec::new();
                $(
                    // The first word is the one a capture rewrites (a
                    // pair's pointer); the rest go as they are.
                    for i in 0..t.$n.nwords() {
                        v.push(if i == 0 { $T::CAPTURE } else { Capture::Word });
                    }
                )+
                v
            }
            fn lower<'a>(t: &Self::Typs, v: Self::In<'a>, f: &mut Frame<'_, 'a>) -> Result<()> {
                $(
                    f.site = Site::Arg($n + 1);
                    $T::lower(&t.$n, v.$n, f)?;
                )+
                Ok(())
            }
            unsafe fn lift(t: &Self::Typs, raws: &[Raw], mem: &dyn Memory) -> Result<Self::Out> {
                let mut at = 0;
                Ok(($(
                    {
                        let site = Site::Arg($n + 1);
                        let words = split(raws, &mut at, t.$n.nwords(), site)?;
                        // SAFETY: argument n's words of the library's
                        // arguments (this function's own contract).
                        unsafe { $T::lift(&t.$n, words, mem, site) }?
                    },
                )+))
            }
            fn direct_ok(t: &Self::Typs, model: DataModel) -> bool {
                $(
                    <$T::Direct as Direct>::USABLE
                        && <$T::Direct as Direct>::matches(t.$n.desc().scalar(), model)
                )&&+
            }
            unsafe fn call_direct<'a, R: Shadow>(
                t: &Self::Typs,
                v: Self::In<'a>,
                mem: &dyn Memory,
                code: unsafe extern "C" fn(),
                run: &mut dyn FnMut(&mut dyn FnMut()) -> Result<()>,
            ) -> Result<Option<Raw>> {
                // Lowered (and pointers' libraries checked) before the call.
                let args = ($($T::to_direct(&t.$n, v.$n, mem, Site::Arg($n + 1))?,)+);
                // SAFETY: the caller promises `code` is a function of exactly
                // these parameters' C types returning `R`'s, which the
                // `Direct` types have the ABI of.
                let f = unsafe {
                    std::mem::transmute::<
                        unsafe extern "C" fn(),
                        unsafe extern "C" fn($($T::Direct),+) -> R::Direct,
                    >(code)
                };
                let mut out = None;
                // SAFETY: as above, with arguments of those types; `run`
                // makes the call under the library's lock.
                run(&mut || out = Some(unsafe { f($(args.$n),+) }))?;
                Ok(out.and_then(Direct::to_raw))
            }
        }
    };
}

params_tuple!(0 A);
params_tuple!(0 A, 1 B);
params_tuple!(0 A, 1 B, 2 C);
params_tuple!(0 A, 1 B, 2 C, 3 D);
params_tuple!(0 A, 1 B, 2 C, 3 D, 4 E);
params_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
params_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
params_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
params_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
params_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);

/// A C function type: argument descriptions `A`, return description `R`.
pub struct FnType<A: Params, R: Shadow> {
    pub(crate) args: A::Typs,
    pub(crate) ret: Typ<R>,
    sig: Arc<FnSig>,
    errno: bool,
}

impl<A: Params, R: Shadow> Clone for FnType<A, R> {
    fn clone(&self) -> Self {
        FnType {
            args: self.args.clone(),
            ret: self.ret.clone(),
            sig: self.sig.clone(),
            errno: self.errno,
        }
    }
}

impl<A: Params, R: Shadow> std::fmt::Debug for FnType<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FnType({})", self.sig.c_prototype("(*)"))
    }
}

impl<A: Params, R: Shadow> FnType<A, R> {
    fn new(args: A::Typs, ret: Returning<R>) -> FnType<A, R> {
        let sig = Arc::new(FnSig {
            args: A::descs(&args),
            ret: ret.ret.desc().clone(),
        });
        FnType {
            args,
            ret: ret.ret,
            sig,
            errno: ret.errno,
        }
    }

    /// The run-time signature.
    pub fn sig(&self) -> &Arc<FnSig> {
        &self.sig
    }

    /// Whether calls capture `errno` (built with [`returning_errno`]).
    pub fn captures_errno(&self) -> bool {
        self.errno
    }
}

/// The return part of a function type; see [`returning`].
pub struct Returning<R: Shadow> {
    ret: Typ<R>,
    errno: bool,
}

/// Ends a function type: `int() >> returning(double())`.
pub fn returning<R: Shadow>(t: impl Into<Typ<R>>) -> Returning<R> {
    Returning {
        ret: t.into(),
        errno: false,
    }
}

/// Like [`returning`], and each call also reports the `errno` the function
/// left (`Function::call_errno`), as ctypes' `returning_checking_errno`.
pub fn returning_errno<R: Shadow>(t: impl Into<Typ<R>>) -> Returning<R> {
    Returning {
        ret: t.into(),
        errno: true,
    }
}

/// Argument descriptions collected so far by `>>`.
pub struct ParamList<P: Params>(P::Typs);

impl<A: Shadow, R: Shadow> Shr<Returning<R>> for Typ<A> {
    type Output = FnType<(A,), R>;
    fn shr(self, r: Returning<R>) -> FnType<(A,), R> {
        FnType::new((self,), r)
    }
}

impl<R: Shadow> Shr<Returning<R>> for Void {
    type Output = FnType<(), R>;
    fn shr(self, r: Returning<R>) -> FnType<(), R> {
        FnType::new((), r)
    }
}

impl<A: Shadow, B: Shadow> Shr<Typ<B>> for Typ<A> {
    type Output = ParamList<(A, B)>;
    fn shr(self, b: Typ<B>) -> ParamList<(A, B)> {
        ParamList((self, b))
    }
}

macro_rules! params_chain {
    ($($n:tt $T:ident),+ ; $N:ident) => {
        impl<$($T: Shadow,)+ $N: Shadow> Shr<Typ<$N>> for ParamList<($($T,)+)> {
            type Output = ParamList<($($T,)+ $N)>;
            fn shr(self, n: Typ<$N>) -> Self::Output {
                ParamList(($(self.0.$n,)+ n))
            }
        }
        impl<$($T: Shadow,)+ Ret: Shadow> Shr<Returning<Ret>> for ParamList<($($T,)+)> {
            type Output = FnType<($($T,)+), Ret>;
            fn shr(self, r: Returning<Ret>) -> Self::Output {
                FnType::new(self.0, r)
            }
        }
    };
}

params_chain!(0 A, 1 B; C);
params_chain!(0 A, 1 B, 2 C; D);
params_chain!(0 A, 1 B, 2 C, 3 D; E);
params_chain!(0 A, 1 B, 2 C, 3 D, 4 E; F);
params_chain!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F; G);
params_chain!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G; H);
params_chain!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H; I);
params_chain!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I; J);

impl<
        A: Shadow,
        B: Shadow,
        C: Shadow,
        D: Shadow,
        E: Shadow,
        F: Shadow,
        G: Shadow,
        H: Shadow,
        I: Shadow,
        J: Shadow,
        Ret: Shadow,
    > Shr<Returning<Ret>> for ParamList<(A, B, C, D, E, F, G, H, I, J)>
{
    type Output = FnType<(A, B, C, D, E, F, G, H, I, J), Ret>;
    fn shr(self, r: Returning<Ret>) -> Self::Output {
        FnType::new(self.0, r)
    }
}
