//! Typed C type descriptions: [`Typ<T>`] pairs a run-time [`CType`] with the
//! Rust "shadow" type `T` that says what Rust values go in and come out.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::types::desc::{Aggregate, CType, DataModel, Layout, Prim, Raw, Spelling};
use crate::types::func::FnType;
use crate::types::func::Params;
use crate::types::marshal::{load_word, read_vec, Brand, Frame, Memory, Site};

/// The Rust side of a C type: which Rust value a call takes (`In`) and which
/// it gives back (`Out`), and how to lower and lift them.
///
/// Implemented by the shadow types that the constructors in
/// [`crate::types`] return; bindings rarely implement it themselves (use
/// [`view`] for custom conversions).
pub trait Shadow: crate::types::sealed::Shadow + Sized + 'static {
    /// What a caller passes, e.g. `&'a str` for `string`.
    type In<'a>;
    /// What the caller gets back, e.g. `String` for `string`.
    type Out;
    /// Per-type run-time data (a view's conversions, an element type).
    #[doc(hidden)]
    type Meta: Clone + Send + Sync + 'static;

    /// The Rust type with exactly this type's C ABI, for a direct call
    /// through a typed function pointer: the number itself, `*mut c_void`
    /// for a pointer, [`NoDirect`] for what is not one plain scalar.
    #[doc(hidden)]
    type Direct: Direct;

    /// What a batched callback's recorder copies for this type's first
    /// word when C makes the call ([`crate::Foreign::callback_batched`]):
    /// the bytes its lift reads later, so that it reads them as they were.
    #[doc(hidden)]
    const CAPTURE: Capture = Capture::Word;

    /// Lowers `v` into scalars pushed onto `f`.
    #[doc(hidden)]
    fn lower<'a>(t: &Typ<Self>, v: Self::In<'a>, f: &mut Frame<'_, 'a>) -> Result<()>;

    /// Lowers `v` as a [`Shadow::Direct`] argument of library `mem` (a
    /// pointer's library is checked here, as in [`Shadow::lower`]). Called
    /// only for types whose `Direct` is usable; the default refuses.
    #[doc(hidden)]
    fn to_direct<'a>(
        t: &Typ<Self>,
        v: Self::In<'a>,
        mem: &dyn Memory,
        site: Site,
    ) -> Result<Self::Direct> {
        let _ = (v, mem);
        Err(Error::NotPassable {
            what: site.to_string(),
            c_type: t.desc.c_name(),
            reason: "not passed as a direct argument".into(),
        })
    }

    /// Lifts this type's scalars (validated: this is where untrusted values
    /// from the library are checked).
    ///
    /// # Safety
    /// `raws` are a value of type `t` that the library `mem` produced: a
    /// return value, a callback's arguments, or words [`Shadow::load`] read.
    /// Unless `mem` is [`crate::strategy::Isolated`], pointers among them
    /// point where `t` says (a string type's pointer at a NUL-terminated
    /// string, a buffer's at that many bytes), as the library promises.
    #[doc(hidden)]
    unsafe fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Self::Out>;

    /// Reads a value of this type stored at `addr` in library memory.
    ///
    /// # Safety
    /// Unless `mem` is [`crate::strategy::Isolated`], `addr` holds a live
    /// value of type `t` in the library's memory.
    #[doc(hidden)]
    unsafe fn load(t: &Typ<Self>, addr: u64, mem: &dyn Memory) -> Result<Self::Out> {
        let site = Site::Memory(addr);
        let prim = t.desc.scalar().ok_or_else(|| Error::NotPassable {
            what: site.to_string(),
            c_type: t.desc.c_name(),
            reason: "it cannot be read as one value; read its fields or elements".into(),
        })?;
        // SAFETY: the caller promises a `t`, which is that scalar, at `addr`.
        let raw = unsafe { load_word(mem, prim, addr) }?;
        // SAFETY: the words of a `t` stored in the library's memory.
        unsafe { Self::lift(t, &[raw], mem, site) }
    }
}

/// What the recorder of a batched callback copies for one argument word
/// at the moment C makes the call, so that the closure, run later, reads
/// it as it was then. The recorder rewrites a copied argument's pointer to
/// its copy in the batch; the codes are shared with the C recorders.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Capture {
    /// The word alone (a number, or a pointer the closure reads as the
    /// library's memory is when the batch is delivered).
    Word = 0,
    /// The NUL-terminated string the word points at (NULL: nothing).
    String = 1,
    /// The bytes the word points at, as many as the next word (the pair's
    /// length) says.
    Bytes = 2,
    /// The NULL-terminated array of NUL-terminated strings it points at.
    StrArray = 3,
}

/// A shadow type whose results can be passed straight back in: numbers,
/// `bool`, pointers, views. Callbacks return these, and [`crate::Foreign::write`] stores them.
pub trait Scalar: Shadow {
    /// Turns a lifted value back into a lowerable one.
    #[doc(hidden)]
    fn to_in<'a>(v: Self::Out) -> Self::In<'a>;
}

/// An integer type (`int()`, `uint()`, `size_t()`, a typedef of one, …):
/// what a `(pointer, length)` pair's length may be (see
/// [`Typ::len_type`](Typ#method.len_type)).
pub trait Integer: Scalar {}

/// A C type description with its Rust shadow type `T`.
pub struct Typ<T: Shadow> {
    pub(crate) desc: Arc<CType>,
    pub(crate) meta: T::Meta,
    nwords: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Shadow> Clone for Typ<T> {
    fn clone(&self) -> Self {
        Typ {
            desc: self.desc.clone(),
            meta: self.meta.clone(),
            nwords: self.nwords,
            _t: PhantomData,
        }
    }
}

impl<T: Shadow> fmt::Debug for Typ<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Typ({})", self.desc.c_name())
    }
}

impl<T: Shadow> Typ<T> {
    pub(crate) fn with_meta(desc: CType, meta: T::Meta) -> Typ<T> {
        Self::from_arc(Arc::new(desc), meta)
    }

    pub(crate) fn from_arc(desc: Arc<CType>, meta: T::Meta) -> Typ<T> {
        let nwords = desc.words().map(|w| w.len()).unwrap_or(0);
        Typ {
            desc,
            meta,
            nwords,
            _t: PhantomData,
        }
    }

    /// The run-time description.
    pub fn desc(&self) -> &Arc<CType> {
        &self.desc
    }

    /// The C spelling of the type.
    pub fn c_name(&self) -> String {
        self.desc.c_name()
    }

    /// `sizeof` and `_Alignof` under `model`.
    pub fn size_align(&self, model: DataModel) -> Result<(u64, u64)> {
        self.desc.size_align(model)
    }

    /// How many scalars a value of this type lowers to.
    pub(crate) fn nwords(&self) -> usize {
        self.nwords
    }
}

impl<T: Shadow<Meta = ()>> Typ<T> {
    pub(crate) fn new(desc: CType) -> Typ<T> {
        Self::with_meta(desc, ())
    }
}

#[inline]
fn one(raws: &[Raw], site: Site) -> Result<Raw> {
    match raws {
        [r] => Ok(*r),
        _ => Err(not_one(raws.len(), site)),
    }
}

/// `one`'s error, built out of line so the check itself inlines.
#[cold]
#[inline(never)]
fn not_one(n: usize, site: Site) -> Error {
    Error::InvalidValue {
        function: None,
        what: site.to_string(),
        reason: format!("expected one scalar, got {n}"),
    }
}

mod aggregate;
mod borrowed;
mod ctors;
mod direct;
mod erased;
mod funptr;
mod pointer;
mod scalar;
mod string;
mod view;

pub use aggregate::*;
pub use borrowed::*;
pub use ctors::*;
pub use direct::*;
pub(crate) use erased::erased_sig;
pub use erased::*;
pub use funptr::*;
pub use pointer::*;
pub use string::*;
pub(crate) use string::{append_str, lift_str};
pub use view::*;
