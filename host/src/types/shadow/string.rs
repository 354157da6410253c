//! Strings and `(pointer, length)` buffers, copied in and validated out.

use super::*;

fn lower_str<'a>(v: &str, f: &mut Frame<'_, 'a>) -> Result<u64> {
    if let Some(index) = v.bytes().position(|b| b == 0) {
        return Err(Error::InteriorNul {
            function: None,
            what: f.site().to_string(),
            index,
        });
    }
    f.temp(v.as_bytes(), true)
}

/// Reads the NUL-terminated string at `addr` and checks it is UTF-8: the one
/// place a C string becomes a Rust `String`.
///
/// # Safety
/// As for [`Memory::read_cstr_into`].
pub(crate) unsafe fn lift_str(addr: u64, mem: &dyn Memory, site: Site) -> Result<String> {
    let mut s = String::new();
    // SAFETY: the caller's promise.
    unsafe { append_str(addr, mem, site, &mut s) }?;
    Ok(s)
}

/// Appends the NUL-terminated string at `addr` to `buf`, checked as UTF-8,
/// and returns the range it took there; on failure `buf` is as it was.
/// [`lift_str`] and [`crate::Foreign::read_string_into`] are built on it.
///
/// # Safety
/// As for [`Memory::read_cstr_into`].
pub(crate) unsafe fn append_str(
    addr: u64,
    mem: &dyn Memory,
    site: Site,
    buf: &mut String,
) -> Result<std::ops::Range<usize>> {
    let start = buf.len();
    // Taken out (no copy), so a panic below leaves `buf` empty rather than
    // holding unchecked bytes.
    let mut bytes = std::mem::take(buf).into_bytes();
    // SAFETY: the caller's promise.
    let read = unsafe { mem.read_cstr_into(addr, &mut bytes) };
    let checked = read.and_then(|()| {
        std::str::from_utf8(&bytes[start..])
            .map(|_| ())
            .map_err(|e| Error::InvalidUtf8 {
                function: None,
                what: site.to_string(),
                address: addr,
                reason: e.to_string(),
            })
    });
    if checked.is_err() {
        bytes.truncate(start);
    }
    // SAFETY: `bytes[..start]` was a `String`'s (UTF-8, and `start` is its
    // length, so a character boundary); what follows was checked just
    // above, or cut off when the check or the read failed.
    *buf = unsafe { String::from_utf8_unchecked(bytes) };
    checked.map(|()| start..buf.len())
}

/// Shadow of `char *` as a NUL-terminated UTF-8 string: `&str` in, `String` out.
impl crate::types::sealed::Shadow for String {}
impl Shadow for String {
    type In<'a> = &'a str;
    type Out = String;
    type Meta = ();
    type Direct = NoDirect;
    const CAPTURE: Capture = Capture::String;
    fn lower<'a>(_: &Typ<Self>, v: &'a str, f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = lower_str(v, f)?;
        f.push(Raw(a));
        Ok(())
    }
    unsafe fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<String> {
        match one(raws, site)?.0 {
            0 => Err(Error::NullPointer {
                function: None,
                what: site.to_string(),
                c_type: t.c_name(),
            }),
            // SAFETY: the library produced a non-NULL `char *` declared as a
            // string: a NUL-terminated string (the caller's promise).
            a => unsafe { lift_str(a, mem, site) },
        }
    }
}

/// Shadow of a nullable `char *`: `None` is NULL.
impl crate::types::sealed::Shadow for Option<String> {}
impl Shadow for Option<String> {
    type In<'a> = Option<&'a str>;
    type Out = Option<String>;
    type Meta = ();
    type Direct = NoDirect;
    const CAPTURE: Capture = Capture::String;
    fn lower<'a>(_: &Typ<Self>, v: Option<&'a str>, f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = match v {
            Some(s) => lower_str(s, f)?,
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
    ) -> Result<Option<String>> {
        match one(raws, site)?.0 {
            0 => Ok(None),
            // SAFETY: as for `String`: a declared string from the library.
            a => unsafe { lift_str(a, mem, site) }.map(Some),
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

macro_rules! len_type {
    ($($t:ty),*) => {$(
        impl Typ<$t> {
            /// The same `(pointer, length)` pair with a length of C type
            /// `len` instead of `size_t`: zlib's `uInt`, a `uint32_t`, an
            /// `unsigned short`. A slice too long for it is an
            /// [`Error::OutOfRange`] going in, never a truncated length.
            ///
            /// ```
            /// use sandlink::types::*;
            /// let crc_input = buffer().len_type(&typedef(uint(), "uInt"));
            /// assert_eq!(crc_input.c_name(), "const char *, unsigned int");
            /// ```
            pub fn len_type<T: Integer>(self, len: &Typ<T>) -> Typ<$t> {
                // Every integer type is one scalar word.
                let prim = len.desc.scalar().unwrap_or(Prim::Size);
                Typ::new(CType::Buffer(prim))
            }
        }
    )*};
}

len_type!(Buffer, BufferMut, BytesRef);

/// Pushes a buffer pair's length, checked against the pair's length type.
pub(super) fn lower_len(len: usize, t: &CType, f: &mut Frame<'_, '_>) -> Result<()> {
    if let CType::Buffer(len_prim) = t.resolved() {
        len_prim.narrow_to(Raw(len as u64), f.model(), || f.site().to_string())?;
    }
    f.push(Raw(len as u64));
    Ok(())
}

/// The `(address, length)` of a buffer pair the library passed, checked:
/// two scalars, a length that is not negative, NULL only with length 0.
pub(super) fn buffer_pair(raws: &[Raw], site: Site) -> Result<(u64, u64)> {
    let [addr, len] = raws else {
        return Err(Error::InvalidValue {
            function: None,
            what: site.to_string(),
            reason: format!("a buffer is two scalars, got {}", raws.len()),
        });
    };
    let len = len.as_i64();
    if len < 0 {
        return Err(Error::InvalidValue {
            function: None,
            what: site.to_string(),
            reason: format!("negative buffer length {len}"),
        });
    }
    if addr.0 == 0 && len != 0 {
        return Err(Error::NullPointer {
            function: None,
            what: site.to_string(),
            c_type: format!("buffer of {len} bytes"),
        });
    }
    Ok((addr.0, len as u64))
}

/// # Safety
/// As for [`Shadow::lift`]: a buffer the library passed, `len` bytes at `addr`.
unsafe fn lift_buffer(raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Vec<u8>> {
    match buffer_pair(raws, site)? {
        (0, _) => Ok(Vec::new()),
        // SAFETY: the library passed `len` bytes at `addr` (the caller's promise).
        (addr, len) => unsafe { read_vec(mem, addr, len, site) },
    }
}

impl crate::types::sealed::Shadow for Buffer {}
impl Shadow for Buffer {
    type In<'a> = &'a [u8];
    type Out = Vec<u8>;
    type Meta = ();
    type Direct = NoDirect;
    const CAPTURE: Capture = Capture::Bytes;
    fn lower<'a>(t: &Typ<Self>, v: &'a [u8], f: &mut Frame<'_, 'a>) -> Result<()> {
        let a = f.temp(v, false)?;
        f.push(Raw(a));
        lower_len(v.len(), &t.desc, f)
    }
    unsafe fn lift(_: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Vec<u8>> {
        // SAFETY: forwarded from this function's own contract.
        unsafe { lift_buffer(raws, mem, site) }
    }
}

impl crate::types::sealed::Shadow for BufferMut {}
impl Shadow for BufferMut {
    type In<'a> = &'a mut [u8];
    type Out = Vec<u8>;
    type Meta = ();
    type Direct = NoDirect;
    fn lower<'a>(t: &Typ<Self>, v: &'a mut [u8], f: &mut Frame<'_, 'a>) -> Result<()> {
        let len = v.len();
        let a = f.temp_mut(v)?;
        f.push(Raw(a));
        lower_len(len, &t.desc, f)
    }
    unsafe fn lift(_: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<Vec<u8>> {
        // SAFETY: forwarded from this function's own contract.
        unsafe { lift_buffer(raws, mem, site) }
    }
}
