//! What C lends rather than gives: a string, a `(pointer, length)` buffer or
//! a NULL-terminated array of strings that is valid for the length of a
//! call or a callback. The description says what the pointer points at, so
//! reading it is safe on every strategy (on `Dynamic` and `Stubs` the
//! declaration is part of what opening the library vouches for, as for any
//! declared type); nothing is copied until the host reads it, into a buffer
//! it may reuse ([`crate::Foreign::read_str_into`],
//! [`crate::Foreign::read_bytes_ref_into`], [`crate::Foreign::for_each_str`]).

use super::*;
use crate::types::marshal::MAX_TRANSFER;

/// A NUL-terminated string that C lends (a callback's `const char *name`):
/// read it with [`crate::Foreign::read_str`] or
/// [`crate::Foreign::read_str_into`] while it is valid. It belongs to its
/// library and reset generation, as a [`Ptr`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrRef {
    pub(crate) addr: u64,
    pub(crate) brand: Brand,
}

impl StrRef {
    /// The address in the library's memory.
    pub fn addr(self) -> u64 {
        self.addr
    }

    /// The same address as a `void *`, to hand back to C (to the function
    /// that frees a string the library allocated, say): a `void *` claims
    /// nothing about what it points at.
    pub fn to_void(self) -> Ptr<()> {
        self.ptr()
    }

    /// An element of a borrowed string array, which the array's
    /// description says is a string.
    pub(crate) fn from_ptr(p: Ptr<i8>) -> StrRef {
        StrRef {
            addr: p.addr(),
            brand: p.brand(),
        }
    }
}

/// A NUL-terminated string the library allocated and hands over (a
/// `char *` result that the caller must free). It cannot be copied: read it
/// through [`OwnedStr::borrow`] and give it back to the library's free
/// function by value, or do both with [`crate::Foreign::take_str`], so it
/// is freed once and never read after. Dropping it without freeing it leaks
/// it in the library (nothing worse).
#[must_use = "a string the library allocated leaks unless it is given back to its free \
              function (Foreign::take_str)"]
#[derive(Debug, PartialEq, Eq)]
pub struct OwnedStr {
    pub(crate) addr: u64,
    pub(crate) brand: Brand,
}

impl OwnedStr {
    /// The address in the library's memory.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The string, lent for reading ([`crate::Foreign::read_str`]) while
    /// `self` is not yet freed.
    pub fn borrow(&self) -> StrRef {
        StrRef {
            addr: self.addr,
            brand: self.brand,
        }
    }
}

/// `len` bytes at an address that C lends (a callback's `(const char *s,
/// int len)` pair): read them with [`crate::Foreign::read_bytes_ref_into`]
/// while they are valid. The length was checked when the pair was received
/// (not negative, within the transfer limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BytesRef {
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) brand: Brand,
}

impl BytesRef {
    /// The number of bytes.
    pub fn len(self) -> u64 {
        self.len
    }

    /// Whether there are no bytes (a NULL pointer with length 0 is this).
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The address as a pointer of this library and generation.
    pub(crate) fn ptr<T>(self) -> Ptr<T> {
        Ptr::from_parts(self.addr, self.brand)
    }
}

/// A NULL-terminated array of NUL-terminated strings that C lends (expat's
/// `const XML_Char **atts`, an `argv`): walk it with
/// [`crate::Foreign::for_each_str`] while it is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrArrayRef {
    pub(crate) addr: u64,
    pub(crate) brand: Brand,
}

fn null(t: &CType, site: Site) -> Error {
    Error::NullPointer {
        function: None,
        what: site.to_string(),
        c_type: t.c_name(),
    }
}

/// A borrowed string, as its pointer type describes it in C
/// (`ptr(const_(char()))` for `const char *`, so stubs check it as that):
/// lifted without reading, read on demand.
pub fn str_ref(t: Typ<Ptr<i8>>) -> Typ<StrRef> {
    Typ::from_arc(t.desc, ())
}

/// A string the library allocated and the caller frees, as its pointer
/// type describes it in C (`ptr(char())` for `char *`): lifted without
/// reading, as an [`OwnedStr`]. The same description binds the function
/// that frees it, which then takes the `OwnedStr` by value:
///
/// ```
/// use sandlink::prelude::*;
/// let dup = string() >> returning(str_owned(ptr(char())));   // char *strdup(const char *)
/// let free = str_owned(ptr(char())) >> returning(void());    // void free(char *)
/// # let _ = (dup, free);
/// ```
pub fn str_owned(t: Typ<Ptr<i8>>) -> Typ<OwnedStr> {
    Typ::from_arc(t.desc, ())
}

/// Like [`str_owned`], with NULL as `None` (an allocation that failed; and
/// `free(NULL)` going back in).
pub fn str_owned_opt(t: Typ<Option<Ptr<i8>>>) -> Typ<Option<OwnedStr>> {
    Typ::from_arc(t.desc, ())
}

/// Like [`str_ref`], with NULL as `None`.
pub fn str_ref_opt(t: Typ<Option<Ptr<i8>>>) -> Typ<Option<StrRef>> {
    Typ::from_arc(t.desc, ())
}

/// A borrowed NULL-terminated array of strings, as its pointer type
/// describes it in C (`ptr(ptr_opt(const_(char())))` for `const char **`).
pub fn str_array_ref(t: Typ<Ptr<Option<Ptr<i8>>>>) -> Typ<StrArrayRef> {
    Typ::from_arc(t.desc, ())
}

/// A borrowed `(const char *, int)` pair: one parameter on the Rust side,
/// two in C, read on demand.
pub fn bytes_ref_int() -> Typ<BytesRef> {
    Typ::new(CType::Buffer(Prim::Int))
}

/// A borrowed `(const char *, size_t)` pair.
pub fn bytes_ref() -> Typ<BytesRef> {
    Typ::new(CType::Buffer(Prim::Size))
}

/// Lowers a borrowed value back into C (a callback handing it on): its
/// library must be the callee's.
fn lower_addr(addr: u64, brand: Brand, f: &mut Frame<'_, '_>) -> Result<()> {
    let site = f.site();
    brand.admit(f.memory().brand(), addr, || site.to_string(), false)?;
    f.push(Raw(addr));
    Ok(())
}

/// The shadow of a borrowed, never-NULL address (`StrRef`, `StrArrayRef`):
/// lowered back after its library is checked, lifted without reading.
macro_rules! borrowed_address {
    ($t:ident, $capture:ident) => {
        impl crate::types::sealed::Shadow for $t {}
        impl Shadow for $t {
            type In<'a> = $t;
            type Out = $t;
            type Meta = ();
            type Direct = NoDirect;
            const CAPTURE: Capture = Capture::$capture;
            fn lower<'a>(_: &Typ<Self>, v: $t, f: &mut Frame<'_, 'a>) -> Result<()> {
                lower_addr(v.addr, v.brand, f)
            }
            unsafe fn lift(
                t: &Typ<Self>,
                raws: &[Raw],
                mem: &dyn Memory,
                site: Site,
            ) -> Result<$t> {
                match one(raws, site)?.0 {
                    0 => Err(null(&t.desc, site)),
                    addr => Ok($t {
                        addr,
                        brand: mem.brand(),
                    }),
                }
            }
        }
    };
}

borrowed_address!(StrRef, String);
borrowed_address!(StrArrayRef, StrArray);
// The callee owns it: its address must reach the closure as it is.
borrowed_address!(OwnedStr, Word);

macro_rules! address_ptr {
    ($($t:ident),*) => {$(
        impl $t {
            /// The address as a pointer of this library and generation, for
            /// the reads the description vouches for.
            pub(crate) fn ptr<T>(self) -> Ptr<T> {
                Ptr::from_parts(self.addr, self.brand)
            }
        }
    )*};
}

address_ptr!(StrRef, StrArrayRef);

/// The shadow of a borrowed address that may be NULL (`None`).
macro_rules! borrowed_address_opt {
    ($t:ident, $capture:ident) => {
        impl crate::types::sealed::Shadow for Option<$t> {}
        impl Shadow for Option<$t> {
            type In<'a> = Option<$t>;
            type Out = Option<$t>;
            type Meta = ();
            type Direct = NoDirect;
            const CAPTURE: Capture = Capture::$capture;
            fn lower<'a>(_: &Typ<Self>, v: Option<$t>, f: &mut Frame<'_, 'a>) -> Result<()> {
                match v {
                    Some(s) => lower_addr(s.addr, s.brand, f),
                    None => {
                        f.push(Raw(0));
                        Ok(())
                    }
                }
            }
            unsafe fn lift(
                _: &Typ<Self>,
                raws: &[Raw],
                mem: &dyn Memory,
                site: Site,
            ) -> Result<Option<$t>> {
                Ok(match one(raws, site)?.0 {
                    0 => None,
                    addr => Some($t {
                        addr,
                        brand: mem.brand(),
                    }),
                })
            }
        }
    };
}

borrowed_address_opt!(StrRef, String);
borrowed_address_opt!(OwnedStr, Word);

impl crate::types::sealed::Shadow for BytesRef {}
impl Shadow for BytesRef {
    type In<'a> = BytesRef;
    type Out = BytesRef;
    type Meta = ();
    type Direct = NoDirect;
    const CAPTURE: Capture = Capture::Bytes;
    fn lower<'a>(t: &Typ<Self>, v: BytesRef, f: &mut Frame<'_, 'a>) -> Result<()> {
        lower_addr(v.addr, v.brand, f)?;
        super::string::lower_len(v.len as usize, &t.desc, f)
    }
    unsafe fn lift(_: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<BytesRef> {
        let (addr, len) = super::string::buffer_pair(raws, site)?;
        if len > MAX_TRANSFER {
            return Err(Error::InvalidValue {
                function: None,
                what: site.to_string(),
                reason: format!(
                    "a buffer of {len} bytes is past the transfer limit of {MAX_TRANSFER}"
                ),
            });
        }
        Ok(BytesRef {
            addr,
            len,
            brand: mem.brand(),
        })
    }
}
