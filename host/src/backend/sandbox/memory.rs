//! The library's linear memory as the host sees it: every access
//! bounds-checked, allocation through the guest shim.

use wasmtime::StoreContextMut;

use super::{abi, Live, Sandbox, State, MODEL};
use crate::error::{Error, Result};
use crate::types::marshal::MAX_TRANSFER;
use crate::types::{Brand, DataModel, Memory};

impl Sandbox {
    /// `addr .. addr + len` as indices into linear memory, if it lies inside.
    pub(super) fn check_range(
        &self,
        live: &Live,
        ctx: &StoreContextMut<'_, State>,
        addr: u64,
        len: u64,
        what: &str,
    ) -> Result<(usize, usize)> {
        let size = live.memory.data_size(ctx) as u64;
        match addr.checked_add(len) {
            Some(end) if end <= size => Ok((addr as usize, end as usize)),
            _ => Err(Error::OutOfBounds {
                function: None,
                what: what.to_string(),
                address: addr,
                len,
                size,
            }),
        }
    }
}

// SAFETY: the brand is the instance's id and reset generation; the model is
// wasm32's; every raw method checks its whole range against the current
// linear memory before touching it, so any address is harmless (this is
// what makes the Sandbox `Isolated`).
unsafe impl Memory for Sandbox {
    fn model(&self) -> DataModel {
        MODEL
    }

    fn brand(&self) -> Brand {
        self.shared.id.brand()
    }

    fn alloc_raw(&self, size: u64, align: u64) -> Result<u64> {
        let fail = |reason: String| Error::Alloc {
            function: None,
            size,
            reason,
        };
        let size32 = u32::try_from(size).map_err(|_| fail("larger than wasm32 memory".into()))?;
        let align32 = u32::try_from(align).map_err(|_| fail(format!("alignment {align}")))?;
        let addr = self.run_guest(abi::MALLOC, |ctx, live| {
            live.malloc.call(ctx, (size32, align32))
        })?;
        if addr == 0 {
            return Err(fail(format!(
                "the library's malloc returned NULL (memory limit {} bytes)",
                self.shared.config.memory_limit
            )));
        }
        // The library's allocator is untrusted too: the block must be in bounds.
        self.with_ctx(|ctx, live| {
            self.check_range(
                live,
                &ctx,
                u64::from(addr),
                size,
                "block from the library's malloc",
            )
        })?;
        Ok(u64::from(addr))
    }

    unsafe fn free_raw(&self, addr: u64) -> Result<()> {
        let addr32 = u32::try_from(addr).map_err(|_| Error::OutOfBounds {
            function: None,
            what: "free".into(),
            address: addr,
            len: 0,
            size: 1 << 32,
        })?;
        self.run_guest(abi::FREE, |ctx, live| live.free.call(ctx, addr32))
    }

    unsafe fn read_raw(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        self.with_ctx(|ctx, live| {
            let (a, b) = self.check_range(live, &ctx, addr, out.len() as u64, "read")?;
            out.copy_from_slice(&live.memory.data(&ctx)[a..b]);
            Ok(())
        })
    }

    unsafe fn read_append_raw(&self, addr: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        self.with_ctx(|ctx, live| {
            let (a, b) = self.check_range(live, &ctx, addr, len as u64, "read")?;
            out.extend_from_slice(&live.memory.data(&ctx)[a..b]);
            Ok(())
        })
    }

    unsafe fn write_raw(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.with_ctx(|mut ctx, live| {
            let (a, b) = self.check_range(live, &ctx, addr, data.len() as u64, "write")?;
            live.memory.data_mut(&mut ctx)[a..b].copy_from_slice(data);
            Ok(())
        })
    }

    unsafe fn read_cstr_into(&self, addr: u64, out: &mut Vec<u8>) -> Result<()> {
        self.with_ctx(|ctx, live| {
            let mem = live.memory.data(&ctx);
            let size = mem.len() as u64;
            if addr >= size {
                return Err(Error::OutOfBounds {
                    function: None,
                    what: "string".into(),
                    address: addr,
                    len: 1,
                    size,
                });
            }
            let limit = (size - addr).min(MAX_TRANSFER) as usize;
            let start = addr as usize;
            // memchr: the word-at-a-time search, not a byte loop.
            match memchr::memchr(0, &mem[start..start + limit]) {
                Some(n) => {
                    out.extend_from_slice(&mem[start..start + n]);
                    Ok(())
                }
                None => Err(Error::Unterminated {
                    function: None,
                    address: addr,
                    limit: limit as u64,
                }),
            }
        })
    }
}
