//! The strategy-independent half of marshalling: the [`Memory`] a strategy
//! exposes, and the per-call [`Frame`] that lowered arguments go into.

use std::fmt;

use crate::error::{Error, Result};
use crate::types::{DataModel, Prim, Raw};

/// The largest single transfer out of library memory (guards host allocations
/// against a hostile length).
pub const MAX_TRANSFER: u64 = 1 << 30;

/// The library's address space, as a strategy exposes it: part of the
/// strategy interface ([`crate::strategy`]), not of the binding vocabulary.
/// Bindings read and write through [`crate::Foreign`]'s typed methods.
///
/// Addresses are the library's own (host addresses for `Dynamic`, offsets in
/// linear memory for `Sandbox`).
///
/// # Safety
/// Implementing it promises that [`Memory::brand`] is unique to this library
/// instance and its reset generation, that [`Memory::model`] is the data
/// model the library's code was compiled for, and that each raw method
/// touches nothing but the `len` bytes it is given when its own `# Safety`
/// contract is kept. A strategy that checks every address against the
/// library's own memory (the Sandbox) also implements
/// [`crate::strategy::Isolated`].
pub unsafe trait Memory {
    /// The library's C data model.
    fn model(&self) -> DataModel;
    /// Which library instance (and which reset generation of it) this is:
    /// pointers and callbacks carry it, and are refused anywhere else.
    fn brand(&self) -> Brand;
    /// Allocates `size` bytes aligned to `align` with the library's allocator.
    fn alloc_raw(&self, size: u64, align: u64) -> Result<u64>;
    /// Frees memory from [`Memory::alloc_raw`].
    ///
    /// # Safety
    /// `addr` is the start of a live block of this library's allocator, and
    /// nothing uses the block afterwards.
    unsafe fn free_raw(&self, addr: u64) -> Result<()>;
    /// Copies `out.len()` bytes at `addr` out of the library's memory.
    ///
    /// # Safety
    /// Unless the strategy is [`crate::strategy::Isolated`], the range
    /// `addr .. addr + out.len()` is live memory of the library.
    unsafe fn read_raw(&self, addr: u64, out: &mut [u8]) -> Result<()>;
    /// Copies `data` into the library's memory at `addr`.
    ///
    /// # Safety
    /// Unless the strategy is [`crate::strategy::Isolated`], the range
    /// `addr .. addr + data.len()` is live, writable memory of the library
    /// that nothing in the host holds a Rust reference into.
    unsafe fn write_raw(&self, addr: u64, data: &[u8]) -> Result<()>;
    /// Appends the NUL-terminated string at `addr` (without the NUL) to
    /// `out`, failing when no NUL comes within the strategy's string limit.
    /// On failure `out` is as it was. A buffer reused across calls reads
    /// strings with no allocation once it has grown.
    ///
    /// # Safety
    /// Unless the strategy is [`crate::strategy::Isolated`], `addr` starts a
    /// NUL-terminated string in live memory of the library.
    unsafe fn read_cstr_into(&self, addr: u64, out: &mut Vec<u8>) -> Result<()>;

    /// Reads the NUL-terminated string at `addr` (without the NUL) into a
    /// new vector: [`Memory::read_cstr_into`] on an empty one.
    ///
    /// # Safety
    /// As for [`Memory::read_cstr_into`].
    unsafe fn read_cstr(&self, addr: u64) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        // SAFETY: the caller's promise, passed on unchanged.
        unsafe { self.read_cstr_into(addr, &mut v) }?;
        Ok(v)
    }

    /// Appends the `len` bytes at `addr` to `out`; on failure `out` is as
    /// it was. The default grows `out` with zeroes and reads into them; the
    /// in-process strategies copy straight from the source, once.
    ///
    /// # Safety
    /// As for [`Memory::read_raw`] over `addr .. addr + len`.
    unsafe fn read_append_raw(&self, addr: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.resize(start + len, 0);
        // SAFETY: the caller's promise, for exactly this range.
        let read = unsafe { self.read_raw(addr, &mut out[start..]) };
        if read.is_err() {
            out.truncate(start);
        }
        read
    }

    /// Allocates a block holding `bytes`, followed by a NUL when `nul`: a
    /// call's temporary string or buffer. The default allocates and then
    /// writes; a strategy where each step is a round trip does it in one.
    fn alloc_copy(&self, bytes: &[u8], nul: bool) -> Result<u64> {
        let len = bytes.len() as u64 + u64::from(nul);
        let addr = self.alloc_raw(len.max(1), 1)?;
        // SAFETY: `addr` is a fresh block of at least `len` bytes from the
        // library's allocator (`alloc_raw`'s promise, part of this trait's
        // contract); both writes stay inside it and nothing else refers to
        // it yet.
        let written = unsafe {
            self.write_raw(addr, bytes).and_then(|()| {
                if nul {
                    self.write_raw(addr + bytes.len() as u64, &[0])
                } else {
                    Ok(())
                }
            })
        };
        if let Err(e) = written {
            // SAFETY: the block allocated above, freed once, unused after.
            let _ = unsafe { self.free_raw(addr) };
            return Err(e);
        }
        Ok(addr)
    }
}

/// The identity of one library instance: a number unique in the process,
/// and how many times it was reset. A [`crate::Ptr`] carries the brand of the
/// library it came from; using it with another library, or after a reset
/// replaced the memory it pointed into, is an error instead of an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Brand {
    pub(crate) lib: u64,
    pub(crate) generation: u64,
}

impl Brand {
    /// A brand for a newly opened library instance.
    pub(crate) fn fresh() -> Brand {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Brand {
            lib: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            generation: 0,
        }
    }

    /// Checks that a pointer or callback branded `self` may be used with the
    /// library branded `current`. Callbacks survive resets (they are
    /// re-installed), so they compare libraries only.
    pub(crate) fn admit(
        self,
        current: Brand,
        address: u64,
        what: impl FnOnce() -> String,
        across_resets: bool,
    ) -> Result<()> {
        if self.lib != current.lib {
            return Err(Error::ForeignPointer {
                function: None,
                what: what(),
                address,
            });
        }
        if !across_resets && self.generation != current.generation {
            return Err(Error::StalePointer {
                function: None,
                what: what(),
                address,
                generation: self.generation,
                current: current.generation,
            });
        }
        Ok(())
    }
}

/// Reads one scalar of type `prim` stored at `addr` in library memory,
/// widened into a [`Raw`] for the library's data model.
///
/// # Safety
/// As for [`Memory::read_raw`] over the scalar's bytes at `addr`.
pub(crate) unsafe fn load_word(mem: &dyn Memory, prim: Prim, addr: u64) -> Result<Raw> {
    let model = mem.model();
    let mut buf = [0u8; 8];
    let n = prim.size(model) as usize;
    // SAFETY: the caller's promise, for these `n` bytes.
    unsafe { mem.read_raw(addr, &mut buf[..n]) }?;
    Ok(prim.widen(u64::from_le_bytes(buf), model))
}

/// Reads `len` bytes at `addr` into a new vector, refusing absurd lengths
/// before allocating anything on the host.
///
/// # Safety
/// As for [`Memory::read_raw`] over `addr .. addr + len`.
pub unsafe fn read_vec(mem: &dyn Memory, addr: u64, len: u64, site: Site) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    // SAFETY: the caller's promise, for exactly this range.
    unsafe { append_vec(mem, addr, len, site, &mut v) }?;
    Ok(v)
}

/// Appends `len` bytes at `addr` to `out` ([`Memory::read_append_raw`]),
/// refusing a length over [`MAX_TRANSFER`] before anything is allocated on
/// the host for it.
///
/// # Safety
/// As for [`Memory::read_raw`] over `addr .. addr + len`.
pub(crate) unsafe fn append_vec(
    mem: &dyn Memory,
    addr: u64,
    len: u64,
    site: Site,
    out: &mut Vec<u8>,
) -> Result<()> {
    if len > MAX_TRANSFER {
        return Err(Error::InvalidValue {
            function: None,
            what: site.to_string(),
            reason: format!(
                "length {len} exceeds the {MAX_TRANSFER}-byte transfer limit (buffer at {addr:#x})"
            ),
        });
    }
    out.reserve(len as usize);
    // SAFETY: the caller's promise, for exactly this range.
    unsafe { mem.read_append_raw(addr, len as usize, out) }
}

/// Where a value is going or coming from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The n-th argument (1-based) of a call or callback.
    Arg(usize),
    /// A return value.
    Return,
    /// A value in library memory at this address.
    Memory(u64),
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Arg(n) => write!(f, "argument {n}"),
            Site::Return => f.write_str("return value"),
            Site::Memory(a) => write!(f, "value at {a:#x}"),
        }
    }
}

/// One call's lowered arguments plus the temporaries they need in library
/// memory (copied strings and buffers). Temporaries live until the call's
/// result has been lifted, then mutable buffers are copied back and all are
/// freed.
///
/// `'m` is the borrow of the library; `'a` is how long the caller's
/// arguments live (mutable buffers are written back into them).
pub struct Frame<'m, 'a> {
    mem: &'m dyn Memory,
    /// Inline for up to eight words: no heap allocation for most calls.
    pub(crate) words: smallvec::SmallVec<[Raw; 8]>,
    temps: Vec<u64>,
    copy_back: Vec<(u64, &'a mut [u8])>,
    pub(crate) site: Site,
    temps_allowed: bool,
}

impl<'m, 'a> Frame<'m, 'a> {
    /// A frame for a call, where strings and buffers may be copied in.
    #[inline]
    pub fn for_call(mem: &'m dyn Memory) -> Frame<'m, 'a> {
        Frame {
            mem,
            words: smallvec::SmallVec::new(),
            temps: Vec::new(),
            copy_back: Vec::new(),
            site: Site::Arg(1),
            temps_allowed: true,
        }
    }

    /// A frame for one value (a store or a callback's result), where nothing
    /// can be copied in because nothing would free it.
    #[inline]
    pub fn for_value(mem: &'m dyn Memory, site: Site) -> Frame<'m, 'a> {
        Frame {
            mem,
            words: smallvec::SmallVec::new(),
            temps: Vec::new(),
            copy_back: Vec::new(),
            site,
            temps_allowed: false,
        }
    }

    /// The library's data model.
    #[inline]
    pub fn model(&self) -> DataModel {
        self.mem.model()
    }

    /// The library the values are going to.
    pub fn memory(&self) -> &dyn Memory {
        self.mem
    }

    /// Where the value being lowered is going.
    #[inline]
    pub fn site(&self) -> Site {
        self.site
    }

    /// Appends one lowered scalar.
    #[inline]
    pub fn push(&mut self, raw: Raw) {
        self.words.push(raw);
    }

    /// The lowered scalars so far.
    #[inline]
    pub fn words(&self) -> &[Raw] {
        &self.words
    }

    /// Copies `bytes` (plus a NUL when `nul`) into library memory for the
    /// duration of the call and returns its address.
    pub fn temp(&mut self, bytes: &[u8], nul: bool) -> Result<u64> {
        if !self.temps_allowed {
            return Err(Error::Usage {
                function: None,
                what: format!("{}: a string or buffer", self.site),
                reason: "it can be copied into library memory only as a call argument; \
                         allocate it with `alloc_string`/`alloc` to store it"
                    .into(),
            });
        }
        let addr = self.mem.alloc_copy(bytes, nul)?;
        self.temps.push(addr);
        Ok(addr)
    }

    /// Like [`Frame::temp`], and copies the library's changes back into
    /// `buf` after the call.
    pub fn temp_mut(&mut self, buf: &'a mut [u8]) -> Result<u64> {
        let addr = self.temp(buf, false)?;
        self.copy_back.push((addr, buf));
        Ok(addr)
    }

    /// Copies mutable buffers back and frees the temporaries.
    ///
    /// By reference, not by value: the frame is large (its words are
    /// inline) and moving it cost a `memcpy` per call.
    #[inline]
    pub fn finish(&mut self) -> Result<()> {
        if self.copy_back.is_empty() && self.temps.is_empty() {
            return Ok(());
        }
        self.release()
    }

    /// [`Frame::finish`]'s work when there is some.
    #[inline(never)]
    fn release(&mut self) -> Result<()> {
        let mut first_err = None;
        for (addr, buf) in std::mem::take(&mut self.copy_back) {
            // SAFETY: `addr` is this frame's temporary of `buf.len()` bytes
            // (made by `temp_mut`), not freed until the loop below.
            if let Err(e) = unsafe { self.mem.read_raw(addr, buf) } {
                first_err.get_or_insert(e);
            }
        }
        for addr in std::mem::take(&mut self.temps) {
            // SAFETY: each temporary was allocated by this frame and is
            // freed once: `take` empties the list, so `Drop` frees nothing.
            if let Err(e) = unsafe { self.mem.free_raw(addr) } {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Frame<'_, '_> {
    #[inline]
    fn drop(&mut self) {
        // On an error path: release what was allocated; the error being
        // returned already says what went wrong.
        for addr in self.temps.drain(..) {
            // SAFETY: as in `finish`: the frame's own blocks, freed once.
            let _ = unsafe { self.mem.free_raw(addr) };
        }
    }
}
