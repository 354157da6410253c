//! Memory in the host's own address space, for the strategies that run the
//! library in-process without isolation (`Dynamic` and `Stubs`): libc's
//! allocator (which is the library's) and plain copies.

use std::ffi::c_void;

use crate::error::{Error, Result};
use crate::types::marshal::MAX_TRANSFER;
use crate::types::DataModel;

/// The data model: the host's, which is the library's.
pub(crate) const MODEL: DataModel = DataModel::host();

/// `malloc`, or `posix_memalign` for alignments above 16.
pub(crate) fn alloc(size: u64, align: u64) -> Result<u64> {
    let fail = |reason: &str| Error::Alloc {
        function: None,
        size,
        reason: reason.into(),
    };
    let size_usize = usize::try_from(size).map_err(|_| fail("larger than the address space"))?;
    let p = if align <= 16 {
        // SAFETY: plain malloc.
        unsafe { libc::malloc(size_usize) }
    } else {
        let mut out = std::ptr::null_mut();
        // SAFETY: `align` is a power of two from a C layout.
        match unsafe { libc::posix_memalign(&mut out, align as usize, size_usize) } {
            0 => out,
            _ => std::ptr::null_mut(),
        }
    };
    if p.is_null() {
        return Err(fail("malloc returned NULL"));
    }
    Ok(p as u64)
}

/// `free`.
///
/// # Safety
/// `addr` is a live block of libc's allocator, freed once.
pub(crate) unsafe fn free(addr: u64) {
    // SAFETY: the caller's promise.
    unsafe { libc::free(addr as *mut c_void) };
}

/// Copies `out.len()` bytes from `addr`.
///
/// # Safety
/// `out.len()` bytes at `addr` are live.
pub(crate) unsafe fn read(addr: u64, out: &mut [u8]) -> Result<()> {
    check_addr(addr, out.len())?;
    // SAFETY: the caller's promise.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, out.as_mut_ptr(), out.len()) };
    Ok(())
}

/// Appends the `len` bytes at `addr` to `out` (one copy, no zeroing first).
///
/// # Safety
/// `len` bytes at `addr` are live.
pub(crate) unsafe fn append(addr: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
    check_addr(addr, len)?;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: the caller promises `len` live bytes at `addr`, which is not
    // NULL (checked); they are copied out at once.
    out.extend_from_slice(unsafe { std::slice::from_raw_parts(addr as *const u8, len) });
    Ok(())
}

/// Copies `data` to `addr`.
///
/// # Safety
/// `data.len()` bytes at `addr` are live and writable, and no Rust reference
/// covers them.
pub(crate) unsafe fn write(addr: u64, data: &[u8]) -> Result<()> {
    check_addr(addr, data.len())?;
    // SAFETY: the caller's promise.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
    Ok(())
}

/// The NUL-terminated string at `addr`, without the NUL, up to
/// [`MAX_TRANSFER`] bytes.
///
/// # Safety
/// `addr` starts a NUL-terminated string in live memory.
pub(crate) unsafe fn read_cstr_into(addr: u64, out: &mut Vec<u8>) -> Result<()> {
    check_addr(addr, 1)?;
    // SAFETY: the caller promises a NUL-terminated string at `addr`;
    // strnlen stops at the NUL (or the limit).
    let len = unsafe { libc::strnlen(addr as *const libc::c_char, MAX_TRANSFER as usize) };
    if len as u64 == MAX_TRANSFER {
        return Err(Error::Unterminated {
            function: None,
            address: addr,
            limit: MAX_TRANSFER,
        });
    }
    // SAFETY: the `len` bytes before that NUL are live (the caller's
    // promise, and strnlen found the NUL after them).
    unsafe { append(addr, len, out) }
}

/// This thread's `errno`.
#[cfg(feature = "dynamic")]
pub(crate) fn errno_location() -> *mut i32 {
    // SAFETY: glibc's errno accessor has no preconditions.
    unsafe { libc::__errno_location() }
}

fn check_addr(addr: u64, len: usize) -> Result<()> {
    if addr == 0 && len > 0 {
        return Err(Error::NullPointer {
            function: None,
            what: "memory access".into(),
            c_type: format!("{len} bytes"),
        });
    }
    Ok(())
}

/// Implements [`crate::types::Memory`] for an in-process strategy whose
/// handle has `self.inner.core.brand`: host memory through the functions above.
macro_rules! native_memory {
    ($strategy:ty) => {
        // SAFETY: the brand is fresh per handle (the strategy is never
        // reset), the model is the host's, which is the library's, and each
        // raw method touches exactly the range it is given (libc's
        // `malloc`/`free`, a copy of `len` bytes, `strnlen` bounded by
        // `MAX_TRANSFER`).
        unsafe impl $crate::types::Memory for $strategy {
            fn model(&self) -> $crate::types::DataModel {
                $crate::backend::native::MODEL
            }

            fn brand(&self) -> $crate::types::Brand {
                self.inner.core.brand
            }

            fn alloc_raw(&self, size: u64, align: u64) -> $crate::Result<u64> {
                $crate::backend::native::alloc(size, align)
            }

            unsafe fn free_raw(&self, addr: u64) -> $crate::Result<()> {
                // SAFETY: the caller promises a live block of this allocator
                // (libc's, which is the library's), freed once.
                unsafe { $crate::backend::native::free(addr) };
                Ok(())
            }

            unsafe fn read_raw(&self, addr: u64, out: &mut [u8]) -> $crate::Result<()> {
                // SAFETY: the caller promises `out.len()` live bytes at `addr`.
                unsafe { $crate::backend::native::read(addr, out) }
            }

            unsafe fn read_append_raw(
                &self,
                addr: u64,
                len: usize,
                out: &mut Vec<u8>,
            ) -> $crate::Result<()> {
                // SAFETY: the caller promises `len` live bytes at `addr`.
                unsafe { $crate::backend::native::append(addr, len, out) }
            }

            unsafe fn write_raw(&self, addr: u64, data: &[u8]) -> $crate::Result<()> {
                // SAFETY: the caller promises `data.len()` live, writable
                // bytes at `addr` that no Rust reference covers.
                unsafe { $crate::backend::native::write(addr, data) }
            }

            unsafe fn read_cstr_into(&self, addr: u64, out: &mut Vec<u8>) -> $crate::Result<()> {
                // SAFETY: the caller promises a NUL-terminated string at `addr`.
                unsafe { $crate::backend::native::read_cstr_into(addr, out) }
            }
        }
    };
}
pub(crate) use native_memory;
