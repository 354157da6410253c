//! [`Ptr`]: branded addresses in the library's memory.

use super::*;
use std::ffi::c_void;

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

    /// Pointers that came out of the library (or its allocator) are as
    /// trustworthy as the library: this is where the pointer invariant is
    /// granted (crate docs, "Soundness").
    /// A pointer the library made (`addr` is not 0), with its brand.
    pub(crate) fn from_parts(addr: u64, brand: Brand) -> Ptr<T> {
        Ptr {
            addr,
            brand,
            _t: PhantomData,
        }
    }

    /// The library instance and generation this pointer belongs to.
    pub(crate) fn brand(self) -> Brand {
        self.brand
    }

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

    /// The same address as a `void *` (C's implicit conversion). Safe on
    /// every strategy: nothing can be read or written through a `void *`.
    pub fn to_void(self) -> Ptr<()> {
        // SAFETY: a `Ptr<()>` cannot be loaded or stored (`void` has no
        // scalar), only passed to C as the `void *` it is.
        unsafe { self.cast() }
    }

    /// The same address seen as a pointer to `U` (a C cast). On an
    /// [`crate::Isolated`] library, [`crate::Foreign::cast_ptr`] is the safe form.
    ///
    /// # Safety
    /// Unless the pointer's library is [`crate::Isolated`], the result is
    /// read, written or passed to C only if a `U` lives at the address.
    pub unsafe fn cast<U>(self) -> Ptr<U> {
        Ptr {
            addr: self.addr,
            brand: self.brand,
            _t: PhantomData,
        }
    }

    /// The address `bytes` further on (checked against overflow). On an
    /// [`crate::Isolated`] library, [`crate::Foreign::offset_ptr`] is the
    /// safe form.
    ///
    /// # Safety
    /// Unless the pointer's library is [`crate::Isolated`], the result is
    /// read, written or passed to C only if it points at a `T` inside the
    /// same live object as `self`.
    pub unsafe fn byte_add(self, bytes: u64) -> Result<Ptr<T>> {
        let addr = self
            .addr
            .checked_add(bytes)
            .ok_or_else(|| Error::InvalidValue {
                function: None,
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

impl<T: 'static> crate::types::sealed::Shadow for Ptr<T> {}
impl<T: 'static> Shadow for Ptr<T> {
    type In<'a> = Ptr<T>;
    type Out = Ptr<T>;
    type Meta = ();
    type Direct = *mut c_void;
    fn to_direct<'a>(
        _: &Typ<Self>,
        v: Ptr<T>,
        mem: &dyn Memory,
        site: Site,
    ) -> Result<*mut c_void> {
        Ok(v.addr_in(mem, || site.to_string())? as usize as *mut c_void)
    }
    fn lower<'a>(_: &Typ<Self>, v: Ptr<T>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let site = f.site();
        let a = v.addr_in(f.memory(), || site.to_string())?;
        f.push(Raw(a));
        Ok(())
    }
    unsafe fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Ptr<T>> {
        Ptr::from_library(one(raws, site)?.0, mem.brand()).ok_or_else(|| Error::NullPointer {
            function: None,
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

impl<T: 'static> crate::types::sealed::Shadow for Option<Ptr<T>> {}
impl<T: 'static> Shadow for Option<Ptr<T>> {
    type In<'a> = Option<Ptr<T>>;
    type Out = Option<Ptr<T>>;
    type Meta = ();
    type Direct = *mut c_void;
    fn to_direct<'a>(
        _: &Typ<Self>,
        v: Option<Ptr<T>>,
        mem: &dyn Memory,
        site: Site,
    ) -> Result<*mut c_void> {
        Ok(match v {
            Some(p) => p.addr_in(mem, || site.to_string())? as usize as *mut c_void,
            None => std::ptr::null_mut(),
        })
    }
    fn lower<'a>(_: &Typ<Self>, v: Option<Ptr<T>>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let site = f.site();
        let a = match v {
            Some(p) => p.addr_in(f.memory(), || site.to_string())?,
            None => 0,
        };
        f.push(Raw(a));
        Ok(())
    }
    unsafe fn lift(
        _: &Typ<Self>,
        raws: &[Raw],
        mem: &dyn Memory,
        site: Site,
    ) -> Result<Option<Ptr<T>>> {
        Ok(Ptr::from_library(one(raws, site)?.0, mem.brand()))
    }
}

impl<T: 'static> Scalar for Option<Ptr<T>> {
    fn to_in<'a>(v: Option<Ptr<T>>) -> Self::In<'a> {
        v
    }
}
