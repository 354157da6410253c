//! Typed C type descriptions: [`Typ<T>`] pairs a run-time [`CType`] with the
//! Rust "shadow" type `T` that says what Rust values go in and come out.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::types::desc::{Aggregate, CType, DataModel, Prim, Raw};
use crate::types::func::FnType;
use crate::types::func::Params;
use crate::types::marshal::{read_vec, Brand, Frame, Memory, Site};

/// The Rust side of a C type: which Rust value a call takes (`In`) and which
/// it gives back (`Out`), and how to lower and lift them.
///
/// Implemented by the shadow types that the constructors in
/// [`crate::types`] return; bindings rarely implement it themselves (use
/// [`view`] for custom conversions).
pub trait Shadow: Sized + 'static {
    /// What a caller passes, e.g. `&'a str` for `string`.
    type In<'a>;
    /// What the caller gets back, e.g. `String` for `string`.
    type Out;
    /// Per-type run-time data (a view's conversions, an element type).
    type Meta: Clone + 'static;

    /// Lowers `v` into scalars pushed onto `f`.
    fn lower<'a>(t: &Typ<Self>, v: Self::In<'a>, f: &mut Frame<'_, 'a>) -> Result<()>;

    /// Lifts this type's scalars (validated: this is where untrusted values
    /// from the library are checked).
    fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Self::Out>;

    /// Reads a value of this type stored at `addr` in library memory.
    fn load(t: &Typ<Self>, addr: u64, mem: &dyn Memory) -> Result<Self::Out> {
        let site = Site::Memory(addr);
        let prim = t.desc.scalar().ok_or_else(|| {
            Error::Unsupported(format!(
                "{site}: a `{}` cannot be read as one value; read its fields or elements",
                t.desc.c_name()
            ))
        })?;
        let model = mem.model();
        let mut buf = [0u8; 8];
        let n = prim.size(model) as usize;
        mem.read_raw(addr, &mut buf[..n])?;
        let raw = prim.widen(u64::from_le_bytes(buf), model);
        Self::lift(t, &[raw], mem, site)
    }
}

/// A shadow type whose results can be passed straight back in: numbers,
/// `bool`, pointers, views. Callbacks return these, and [`crate::Foreign::write`] stores them.
pub trait Scalar: Shadow {
    /// Turns a lifted value back into a lowerable one.
    fn to_in<'a>(v: Self::Out) -> Self::In<'a>;
}

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

fn one(raws: &[Raw], site: Site) -> Result<Raw> {
    match raws {
        [r] => Ok(*r),
        _ => Err(Error::InvalidValue {
            what: site.to_string(),
            reason: format!("expected one scalar, got {}", raws.len()),
        }),
    }
}

macro_rules! int_shadow {
    ($($t:ty => $via:ty),* $(,)?) => {$(
        impl Shadow for $t {
            type In<'a> = $t;
            type Out = $t;
            type Meta = ();
            fn lower<'a>(_: &Typ<Self>, v: $t, f: &mut Frame<'_, 'a>) -> Result<()> {
                f.push(Raw(v as $via as u64));
                Ok(())
            }
            fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<$t> {
                // The strategy widened the scalar from its C type, whose
                // range is within the Rust type's (checked when the
                // constructors pair them), so this cannot truncate.
                Ok(one(raws, site)?.0 as $t)
            }
        }
        impl Scalar for $t {
            fn to_in<'a>(v: $t) -> Self::In<'a> { v }
        }
    )*};
}

int_shadow!(i8 => i64, i16 => i64, i32 => i64, i64 => i64, u8 => u64, u16 => u64, u32 => u64, u64 => u64);

impl Shadow for f32 {
    type In<'a> = f32;
    type Out = f32;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: f32, f: &mut Frame<'_, 'a>) -> Result<()> {
        f.push(Raw::from_f32(v));
        Ok(())
    }
    fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<f32> {
        Ok(one(raws, site)?.as_f32())
    }
}

impl Scalar for f32 {
    fn to_in<'a>(v: f32) -> Self::In<'a> {
        v
    }
}

impl Shadow for f64 {
    type In<'a> = f64;
    type Out = f64;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: f64, f: &mut Frame<'_, 'a>) -> Result<()> {
        f.push(Raw::from_f64(v));
        Ok(())
    }
    fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<f64> {
        Ok(one(raws, site)?.as_f64())
    }
}

impl Scalar for f64 {
    fn to_in<'a>(v: f64) -> Self::In<'a> {
        v
    }
}

impl Shadow for bool {
    type In<'a> = bool;
    type Out = bool;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: bool, f: &mut Frame<'_, 'a>) -> Result<()> {
        f.push(Raw(u64::from(v)));
        Ok(())
    }
    fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<bool> {
        match one(raws, site)?.0 {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::InvalidValue {
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
impl Shadow for () {
    type In<'a> = ();
    type Out = ();
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, _: (), _: &mut Frame<'_, 'a>) -> Result<()> {
        Ok(())
    }
    fn lift(_: &Typ<Self>, _: &[Raw], _: &dyn Memory, _: Site) -> Result<()> {
        Ok(())
    }
}

impl Scalar for () {
    fn to_in<'a>(_: ()) -> Self::In<'a> {}
}

fn lower_str<'a>(v: &str, f: &mut Frame<'_, 'a>) -> Result<u64> {
    if let Some(index) = v.bytes().position(|b| b == 0) {
        return Err(Error::InteriorNul {
            what: f.site().to_string(),
            index,
        });
    }
    f.temp(v.as_bytes(), true)
}

fn lift_str(addr: u64, mem: &dyn Memory, site: Site) -> Result<String> {
    let bytes = mem.read_cstr(addr)?;
    String::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        what: site.to_string(),
        address: addr,
        reason: e.utf8_error().to_string(),
    })
}

/// Shadow of `char *` as a NUL-terminated UTF-8 string: `&str` in, `String` out.
impl Shadow for String {
    type In<'a> = &'a str;
    type Out = String;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: &'a str, f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = lower_str(v, f)?;
        f.push(Raw(a));
        Ok(())
    }
    fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<String> {
        match one(raws, site)?.0 {
            0 => Err(Error::NullPointer {
                what: site.to_string(),
                c_type: t.c_name(),
            }),
            a => lift_str(a, mem, site),
        }
    }
}

/// Shadow of a nullable `char *`: `None` is NULL.
impl Shadow for Option<String> {
    type In<'a> = Option<&'a str>;
    type Out = Option<String>;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: Option<&'a str>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = match v {
            Some(s) => lower_str(s, f)?,
            None => 0,
        };
        f.push(Raw(a));
        Ok(())
    }
    fn lift(_: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Option<String>> {
        match one(raws, site)?.0 {
            0 => Ok(None),
            a => lift_str(a, mem, site).map(Some),
        }
    }
}

/// Shadow of a `(const char *, length)` pair read-only buffer: `&[u8]` in,
/// `Vec<u8>` out (when a callback receives one).
#[derive(Debug)]
pub enum Buffer {}

/// Shadow of a `(char *, length)` pair that the C side may write into: the
/// bytes are copied in, and copied back into the `&mut [u8]` after the call.
#[derive(Debug)]
pub enum BufferMut {}

fn lower_len(len: usize, t: &CType, f: &mut Frame<'_, '_>) -> Result<()> {
    if let CType::Buffer(len_prim) = t.resolved() {
        len_prim
            .narrow(Raw(len as u64), f.model())
            .map_err(|reason| Error::OutOfRange {
                what: f.site().to_string(),
                c_type: len_prim.c_name().into(),
                model: f.model(),
                reason,
            })?;
    }
    f.push(Raw(len as u64));
    Ok(())
}

fn lift_buffer(raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Vec<u8>> {
    let [addr, len] = raws else {
        return Err(Error::InvalidValue {
            what: site.to_string(),
            reason: format!("a buffer is two scalars, got {}", raws.len()),
        });
    };
    let len = len.as_i64();
    if len < 0 {
        return Err(Error::InvalidValue {
            what: site.to_string(),
            reason: format!("negative buffer length {len}"),
        });
    }
    if addr.0 == 0 {
        return if len == 0 {
            Ok(Vec::new())
        } else {
            Err(Error::NullPointer {
                what: site.to_string(),
                c_type: format!("buffer of {len} bytes"),
            })
        };
    }
    read_vec(mem, addr.0, len as u64, site)
}

impl Shadow for Buffer {
    type In<'a> = &'a [u8];
    type Out = Vec<u8>;
    type Meta = ();
    fn lower<'a>(t: &Typ<Self>, v: &'a [u8], f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = f.temp(v, false)?;
        f.push(Raw(a));
        lower_len(v.len(), &t.desc, f)
    }
    fn lift(_: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Vec<u8>> {
        lift_buffer(raws, mem, site)
    }
}

impl Shadow for BufferMut {
    type In<'a> = &'a mut [u8];
    type Out = Vec<u8>;
    type Meta = ();
    fn lower<'a>(t: &Typ<Self>, v: &'a mut [u8], f: &mut Frame<'_, 'a>) -> Result<()> {
        let len = v.len();
        let a = f.temp_mut(v)?;
        f.push(Raw(a));
        lower_len(len, &t.desc, f)
    }
    fn lift(_: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Vec<u8>> {
        lift_buffer(raws, mem, site)
    }
}

/// A non-NULL address in the library's address space, pointing at a `T`,
/// branded with the library instance (and reset generation) it came from.
///
/// The host never dereferences it: reads and writes go through the strategy
/// (see [`crate::Foreign::read`]), which bounds-checks where it can. Using it
/// with another library, or after that library was reset, is an
/// [`Error::ForeignPointer`] or [`Error::StalePointer`], never an access.
pub struct Ptr<T> {
    addr: u64,
    brand: Brand,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Ptr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ptr<T> {}
impl<T> PartialEq for Ptr<T> {
    fn eq(&self, o: &Self) -> bool {
        self.addr == o.addr && self.brand == o.brand
    }
}
impl<T> Eq for Ptr<T> {}
impl<T> std::hash::Hash for Ptr<T> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.addr.hash(h);
        self.brand.hash(h);
    }
}
impl<T> fmt::Debug for Ptr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ptr({:#x})", self.addr)
    }
}

impl<T> Ptr<T> {
    /// Makes a pointer into `lib` from an address in its address space;
    /// `None` for 0.
    ///
    /// # Safety
    /// With the `Dynamic` strategy, library memory is host memory: reading or
    /// writing through the pointer is sound only if `addr` points at a live
    /// `T`. Strategies that isolate the library (Sandbox) check every access,
    /// so any address is harmless there.
    pub unsafe fn from_addr(lib: &dyn Memory, addr: u64) -> Option<Ptr<T>> {
        Ptr::from_library(addr, lib.brand())
    }

    /// Pointers that came out of the library are as trustworthy as the library.
    pub(crate) fn from_library(addr: u64, brand: Brand) -> Option<Ptr<T>> {
        (addr != 0).then_some(Ptr {
            addr,
            brand,
            _t: PhantomData,
        })
    }

    /// The address.
    pub fn addr(self) -> u64 {
        self.addr
    }

    /// The address, if this pointer may be used with `lib`: same library
    /// instance, same reset generation.
    pub fn addr_in(self, lib: &dyn Memory, what: impl FnOnce() -> String) -> Result<u64> {
        self.brand.admit(lib.brand(), self.addr, what, false)?;
        Ok(self.addr)
    }

    /// The same address seen as a pointer to `U` (a C cast).
    pub fn cast<U>(self) -> Ptr<U> {
        Ptr {
            addr: self.addr,
            brand: self.brand,
            _t: PhantomData,
        }
    }

    /// The address `bytes` further on (checked against overflow).
    pub fn byte_add(self, bytes: u64) -> Result<Ptr<T>> {
        let addr = self
            .addr
            .checked_add(bytes)
            .ok_or_else(|| Error::InvalidValue {
                what: format!("pointer {:#x}", self.addr),
                reason: format!("adding {bytes} overflows the address space"),
            })?;
        Ok(Ptr {
            addr,
            brand: self.brand,
            _t: PhantomData,
        })
    }
}

impl<T: 'static> Shadow for Ptr<T> {
    type In<'a> = Ptr<T>;
    type Out = Ptr<T>;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: Ptr<T>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let site = f.site();
        let a = v.addr_in(f.memory(), || site.to_string())?;
        f.push(Raw(a));
        Ok(())
    }
    fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Ptr<T>> {
        Ptr::from_library(one(raws, site)?.0, mem.brand()).ok_or_else(|| Error::NullPointer {
            what: site.to_string(),
            c_type: t.c_name(),
        })
    }
}

impl<T: 'static> Scalar for Ptr<T> {
    fn to_in<'a>(v: Ptr<T>) -> Self::In<'a> {
        v
    }
}

impl<T: 'static> Shadow for Option<Ptr<T>> {
    type In<'a> = Option<Ptr<T>>;
    type Out = Option<Ptr<T>>;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: Option<Ptr<T>>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let site = f.site();
        let a = match v {
            Some(p) => p.addr_in(f.memory(), || site.to_string())?,
            None => 0,
        };
        f.push(Raw(a));
        Ok(())
    }
    fn lift(_: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Option<Ptr<T>>> {
        Ok(Ptr::from_library(one(raws, site)?.0, mem.brand()))
    }
}

impl<T: 'static> Scalar for Option<Ptr<T>> {
    fn to_in<'a>(v: Option<Ptr<T>>) -> Self::In<'a> {
        v
    }
}

/// Shadow of a C struct or union tagged by the Rust type `Tag`. It is used
/// through pointers and fields; it cannot be passed by value.
pub struct Struct<Tag>(PhantomData<fn() -> Tag>, Infallible);

impl<Tag: 'static> Shadow for Struct<Tag> {
    type In<'a> = Infallible;
    type Out = Infallible;
    type Meta = ();
    fn lower<'a>(_: &Typ<Self>, v: Infallible, _: &mut Frame<'_, 'a>) -> Result<()> {
        match v {}
    }
    fn lift(t: &Typ<Self>, _: &[Raw], _: &dyn Memory, site: Site) -> Result<Infallible> {
        Err(Error::Unsupported(format!(
            "{site}: `{}` cannot be read by value; read its fields",
            t.c_name()
        )))
    }
}

/// Shadow of a C array `T[n]`: read as a `Vec` of its elements.
pub struct Array<T>(PhantomData<fn() -> T>, Infallible);

impl<T: Shadow> Shadow for Array<T> {
    type In<'a> = Infallible;
    type Out = Vec<T::Out>;
    type Meta = (Typ<T>, u64);
    fn lower<'a>(_: &Typ<Self>, v: Infallible, _: &mut Frame<'_, 'a>) -> Result<()> {
        match v {}
    }
    fn lift(t: &Typ<Self>, _: &[Raw], _: &dyn Memory, site: Site) -> Result<Vec<T::Out>> {
        Err(Error::Unsupported(format!(
            "{site}: array `{}` is not a scalar; read it from memory",
            t.c_name()
        )))
    }
    fn load(t: &Typ<Self>, addr: u64, mem: &dyn Memory) -> Result<Vec<T::Out>> {
        let (elem, n) = &t.meta;
        let (size, _) = elem.size_align(mem.model())?;
        (0..*n)
            .map(|i| T::load(elem, addr + i * size, mem))
            .collect()
    }
}

/// Shadow of a function pointer: a [`crate::Callback`] goes in, an address
/// comes out.
pub struct FunPtr<A, R>(PhantomData<fn(A) -> R>, Infallible);

/// The address of a C function in the library's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodePtr(pub u64);

impl<A: Params, R: Shadow> Shadow for FunPtr<A, R> {
    type In<'a> = &'a crate::Callback<A, R>;
    type Out = CodePtr;
    type Meta = Arc<FnType<A, R>>;
    fn lower<'a>(_: &Typ<Self>, v: &'a crate::Callback<A, R>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = v.addr_in(f)?;
        f.push(Raw(a));
        Ok(())
    }
    fn lift(t: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<CodePtr> {
        match one(raws, site)?.0 {
            0 => Err(Error::NullPointer {
                what: site.to_string(),
                c_type: t.c_name(),
            }),
            a => Ok(CodePtr(a)),
        }
    }
}

impl<A: Params, R: Shadow> Shadow for Option<FunPtr<A, R>> {
    type In<'a> = Option<&'a crate::Callback<A, R>>;
    type Out = Option<CodePtr>;
    type Meta = Arc<FnType<A, R>>;
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
    fn lift(_: &Typ<Self>, raws: &[Raw], _: &dyn Memory, site: Site) -> Result<Option<CodePtr>> {
        Ok(match one(raws, site)?.0 {
            0 => None,
            a => Some(CodePtr(a)),
        })
    }
}

impl<A: Params, R: Shadow> Typ<FunPtr<A, R>> {
    /// The function type this pointer points at.
    pub fn fn_type(&self) -> &FnType<A, R> {
        &self.meta
    }
}

/// Shadow of a [`view`]: a C scalar `B` seen from Rust as a `V`.
pub struct View<V, B>(PhantomData<fn(B) -> V>, Infallible);

type ViewRead<V, B> = Arc<dyn Fn(<B as Shadow>::Out) -> std::result::Result<V, String>>;
type ViewWrite<V, B> = Arc<dyn Fn(&V) -> <B as Shadow>::Out>;

/// Conversions of a [`view`].
pub struct ViewMeta<V, B: Shadow> {
    base: Typ<B>,
    read: ViewRead<V, B>,
    write: ViewWrite<V, B>,
}

impl<V, B: Shadow> Clone for ViewMeta<V, B> {
    fn clone(&self) -> Self {
        ViewMeta {
            base: self.base.clone(),
            read: self.read.clone(),
            write: self.write.clone(),
        }
    }
}

impl<V: 'static, B: Scalar> Shadow for View<V, B> {
    type In<'a> = V;
    type Out = V;
    type Meta = ViewMeta<V, B>;
    fn lower<'a>(t: &Typ<Self>, v: V, f: &mut Frame<'_, 'a>) -> Result<()> {
        let b = (t.meta.write)(&v);
        B::lower(&t.meta.base, B::to_in(b), f)
    }
    fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<V> {
        let b = B::lift(&t.meta.base, raws, mem, site)?;
        (t.meta.read)(b).map_err(|reason| Error::InvalidValue {
            what: format!("{site} (view of `{}`)", t.c_name()),
            reason,
        })
    }
}

impl<V: 'static, B: Scalar> Scalar for View<V, B> {
    fn to_in<'a>(v: V) -> Self::In<'a> {
        v
    }
}

// ---------------------------------------------------------------------------
// Constructors, named as in ctypes.

macro_rules! prim_ctors {
    ($($(#[$m:meta])* $name:ident: $prim:ident => $t:ty;)*) => {$(
        $(#[$m])*
        pub fn $name() -> Typ<$t> {
            // The Rust type is as wide as the C type under the widest data model.
            const _: () = assert!(Prim::$prim.size(DataModel::Lp64) as usize == std::mem::size_of::<$t>());
            Typ::new(CType::Prim(Prim::$prim))
        }
    )*};
}

prim_ctors! {
    /// C `_Bool`.
    bool: Bool => bool;
    /// C `char` (signed on x86-64 and wasm32).
    char: Char => i8;
    /// C `signed char`.
    schar: SChar => i8;
    /// C `unsigned char`.
    uchar: UChar => u8;
    /// C `short`.
    short: Short => i16;
    /// C `unsigned short`.
    ushort: UShort => u16;
    /// C `int`.
    int: Int => i32;
    /// C `unsigned int`.
    uint: UInt => u32;
    /// C `long`: `i64` in Rust; checked into 32 bits under ILP32.
    long: Long => i64;
    /// C `unsigned long`: `u64` in Rust; checked into 32 bits under ILP32.
    ulong: ULong => u64;
    /// C `long long`.
    llong: LLong => i64;
    /// C `unsigned long long`.
    ullong: ULLong => u64;
    /// C `int8_t`.
    int8_t: I8 => i8;
    /// C `int16_t`.
    int16_t: I16 => i16;
    /// C `int32_t`.
    int32_t: I32 => i32;
    /// C `int64_t`.
    int64_t: I64 => i64;
    /// C `uint8_t`.
    uint8_t: U8 => u8;
    /// C `uint16_t`.
    uint16_t: U16 => u16;
    /// C `uint32_t`.
    uint32_t: U32 => u32;
    /// C `uint64_t`.
    uint64_t: U64 => u64;
    /// C `size_t`: `u64` in Rust; checked into 32 bits under ILP32.
    size_t: Size => u64;
    /// C `ssize_t`.
    ssize_t: SSize => i64;
    /// C `intptr_t`.
    intptr_t: IntPtr => i64;
    /// C `uintptr_t`.
    uintptr_t: UIntPtr => u64;
    /// C `ptrdiff_t`.
    ptrdiff_t: PtrDiff => i64;
    /// C `float`.
    float: Float => f32;
    /// C `double`.
    double: Double => f64;
}

/// C `void`, as a return type or pointee (`ptr(void())`), or alone before
/// `>> returning(...)` for a function with no arguments.
#[derive(Clone, Copy, Debug)]
pub struct Void;

/// C `void`.
pub fn void() -> Void {
    Void
}

impl From<Void> for Typ<()> {
    fn from(_: Void) -> Typ<()> {
        Typ::new(CType::Void)
    }
}

/// A NUL-terminated `char *` string: `&str` in, `String` out. An interior NUL
/// going in, NULL, invalid UTF-8 or a missing terminator coming out are errors.
pub fn string() -> Typ<String> {
    Typ::new(CType::String)
}

/// Like [`string`], with NULL as `None`.
pub fn string_opt() -> Typ<Option<String>> {
    Typ::new(CType::String)
}

/// A `(const char *, size_t)` argument pair, passed as one `&[u8]`.
pub fn buffer() -> Typ<Buffer> {
    Typ::new(CType::Buffer(Prim::Size))
}

/// A `(const char *, int)` pair, as expat's character-data handlers receive.
pub fn buffer_int() -> Typ<Buffer> {
    Typ::new(CType::Buffer(Prim::Int))
}

/// A `(char *, size_t)` pair the C side may write: copied in, copied back.
pub fn buffer_mut() -> Typ<BufferMut> {
    Typ::new(CType::Buffer(Prim::Size))
}

/// `T *`, never NULL (NULL coming out of the library is an error).
pub fn ptr<T: Shadow>(t: impl Into<Typ<T>>) -> Typ<Ptr<T>> {
    Typ::new(CType::Pointer(t.into().desc))
}

/// `T *` that may be NULL (`None`).
pub fn ptr_opt<T: Shadow>(t: impl Into<Typ<T>>) -> Typ<Option<Ptr<T>>> {
    Typ::new(CType::Pointer(t.into().desc))
}

/// `T[n]`.
pub fn array<T: Shadow>(n: u64, t: Typ<T>) -> Typ<Array<T>> {
    Typ::with_meta(CType::Array(n, t.desc.clone()), (t, n))
}

/// A `typedef` name for `t`: the same type, spelled `name` in C.
pub fn typedef<T: Shadow>(t: Typ<T>, name: &str) -> Typ<T> {
    Typ::from_arc(Arc::new(CType::Typedef(name.into(), t.desc)), t.meta)
}

/// A custom conversion: the C scalar `base` seen from Rust as a `V`. `read`
/// may reject a value from the library (a bad enum tag, say) with a reason.
pub fn view<V: 'static, B: Scalar>(
    base: Typ<B>,
    read: impl Fn(B::Out) -> std::result::Result<V, String> + 'static,
    write: impl Fn(&V) -> B::Out + 'static,
) -> Typ<View<V, B>> {
    let desc = Arc::new(CType::View(base.desc.clone()));
    Typ::from_arc(
        desc,
        ViewMeta {
            base,
            read: Arc::new(read),
            write: Arc::new(write),
        },
    )
}

/// A pointer to a function of type `f`, for callbacks.
pub fn funptr<A: Params, R: Shadow>(f: FnType<A, R>) -> Typ<FunPtr<A, R>> {
    Typ::with_meta(CType::FunPtr(f.sig().clone()), Arc::new(f))
}

/// Like [`funptr`], where NULL (`None`) is allowed: "no handler".
pub fn funptr_opt<A: Params, R: Shadow>(f: FnType<A, R>) -> Typ<Option<FunPtr<A, R>>> {
    Typ::with_meta(CType::FunPtr(f.sig().clone()), Arc::new(f))
}

/// A struct being described: add fields, then [`StructBuilder::seal`] it.
/// [`StructBuilder::opaque`] gives an incomplete type usable only behind
/// pointers.
pub struct StructBuilder<Tag> {
    agg: Arc<Aggregate>,
    _t: PhantomData<fn() -> Tag>,
}

/// `struct name`, tagged in Rust by `Tag` (usually an empty enum).
pub fn structure<Tag: 'static>(name: &str) -> StructBuilder<Tag> {
    StructBuilder {
        agg: Arc::new(Aggregate::new(name, false)),
        _t: PhantomData,
    }
}

/// `union name`, tagged in Rust by `Tag`: every field at offset 0.
pub fn union<Tag: 'static>(name: &str) -> StructBuilder<Tag> {
    StructBuilder {
        agg: Arc::new(Aggregate::new(name, true)),
        _t: PhantomData,
    }
}

impl<Tag: 'static> StructBuilder<Tag> {
    /// Appends a field; the returned handle reads and writes it.
    pub fn field<T: Shadow>(&mut self, name: &str, t: Typ<T>) -> Field<Tag, T> {
        let mut fields = match self.agg.fields.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        fields.push((name.to_string(), t.desc.clone()));
        Field {
            agg: self.agg.clone(),
            index: fields.len() - 1,
            name: name.to_string(),
            typ: t,
            _t: PhantomData,
        }
    }

    /// Completes the type: computes its layout under every data model.
    pub fn seal(self) -> Result<Typ<Struct<Tag>>> {
        let layouts = [
            self.agg.compute_layout(DataModel::Lp64)?,
            self.agg.compute_layout(DataModel::Ilp32)?,
        ];
        // `seal` consumes the only builder, so the cell is still empty.
        let _ = self.agg.layouts.set(layouts);
        Ok(Typ::new(CType::Aggregate(self.agg)))
    }

    /// Leaves the type incomplete (`struct name;`), usable behind pointers.
    pub fn opaque(self) -> Typ<Struct<Tag>> {
        Typ::new(CType::Aggregate(self.agg))
    }
}

/// A field of a struct or union: its name, type and (once sealed) offsets.
pub struct Field<Tag, T: Shadow> {
    agg: Arc<Aggregate>,
    index: usize,
    name: String,
    typ: Typ<T>,
    _t: PhantomData<fn() -> Tag>,
}

impl<Tag, T: Shadow> Clone for Field<Tag, T> {
    fn clone(&self) -> Self {
        Field {
            agg: self.agg.clone(),
            index: self.index,
            name: self.name.clone(),
            typ: self.typ.clone(),
            _t: PhantomData,
        }
    }
}

impl<Tag, T: Shadow> Field<Tag, T> {
    /// The field's byte offset under `model`.
    pub fn offset(&self, model: DataModel) -> Result<u64> {
        let l = self.agg.layout(model)?;
        l.offsets
            .get(self.index)
            .copied()
            .ok_or_else(|| Error::Layout {
                c_type: self.agg.c_name(),
                reason: format!("field `{}` was added after the type was sealed", self.name),
            })
    }

    /// The field's type.
    pub fn typ(&self) -> &Typ<T> {
        &self.typ
    }

    /// The field's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<Tag: 'static> Typ<Struct<Tag>> {
    /// The layout under `model` (an error for an opaque type).
    pub fn layout(&self, model: DataModel) -> Result<crate::types::Layout> {
        match &*self.desc {
            CType::Aggregate(a) => a.layout(model).cloned(),
            other => Err(Error::Layout {
                c_type: other.c_name(),
                reason: "not a struct or union".into(),
            }),
        }
    }
}
