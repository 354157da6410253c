//! The library's memory, by request: reads, writes, allocation, and the
//! read-ahead cache that saves round trips.

use std::sync::Arc;

use super::wire::{self, frame, op, reply, WireError};
use super::worker::expect_ok;
use super::{Process, MODEL};
use crate::error::{Error, Result};
use crate::types::marshal::MAX_TRANSFER;
use crate::types::{Brand, DataModel, Memory};

/// A few windows of library memory, as last read. Any request that can
/// change the library's memory (a call, a callback's return, a write, an
/// allocation) empties it first, so a hit gives what a round trip would.
///
/// A batch of recorded callbacks is *pinned* while its closures run: the
/// copies its records point at stay readable across requests (a closure may
/// call into the library), and a nested batch shadows it until it ends.
#[derive(Default)]
pub(super) struct ReadCache {
    windows: Vec<(u64, Vec<u8>)>,
    next: usize,
    pinned: Vec<(u64, Arc<[u8]>)>,
}

/// How many bytes past a small read the worker sends along.
pub(super) const READ_AHEAD: u64 = 512;

/// Windows kept (a callback's pointer arguments, strings, the arrays
/// pointing at them, a struct).
pub(super) const WINDOWS: usize = 8;

impl ReadCache {
    pub(super) fn clear(&mut self) {
        self.windows.clear();
        self.next = 0;
    }

    pub(super) fn insert(&mut self, addr: u64, bytes: Vec<u8>) {
        if self.windows.len() < WINDOWS {
            self.windows.push((addr, bytes));
        } else {
            self.windows[self.next] = (addr, bytes);
            self.next = (self.next + 1) % WINDOWS;
        }
    }

    /// Keeps `bytes`, the worker's memory at `addr` when a batch was sent,
    /// until the matching [`ReadCache::unpin`].
    pub(super) fn pin(&mut self, addr: u64, bytes: Arc<[u8]>) {
        self.pinned.push((addr, bytes));
    }

    /// Drops the batch pinned last.
    pub(super) fn unpin(&mut self) {
        self.pinned.pop();
    }

    /// The cached bytes from `addr` to the end of its window: the innermost
    /// pinned batch first.
    pub(super) fn from(&self, addr: u64) -> Option<&[u8]> {
        let within = |start: u64, bytes: &[u8]| {
            let off = addr.checked_sub(start)?;
            (off < bytes.len() as u64).then_some(off as usize)
        };
        if let Some((start, bytes)) = self.pinned.last() {
            if let Some(off) = within(*start, bytes) {
                return Some(&bytes[off..]);
            }
        }
        self.windows
            .iter()
            .find_map(|(start, bytes)| Some(&bytes[within(*start, bytes)?..]))
    }
}

// SAFETY: every raw method is a request to the worker, which copies through
// the kernel and answers a bad address with an error; nothing the worker
// sends is used before it is checked; no host memory is touched but the
// host's own buffers. The brand is fresh per worker handle and its
// generation advances on every reset; the model is the worker's, which is
// this machine's.
unsafe impl Memory for Process {
    fn model(&self) -> DataModel {
        MODEL
    }

    fn brand(&self) -> Brand {
        self.shared.id.brand()
    }

    fn alloc_raw(&self, size: u64, align: u64) -> Result<u64> {
        let parts: [&[u8]; 2] = [&size.to_le_bytes(), &align.to_le_bytes()];
        self.malloc(op::ALLOC, &parts, size)
    }

    unsafe fn free_raw(&self, addr: u64) -> Result<()> {
        // Not waited for: `free` has no result, and a crash in it shows as
        // the worker's failure at the next request.
        let st = self.lock();
        self.send(&st, &frame(op::FREE, &[&addr.to_le_bytes()]), "free")
    }

    fn alloc_copy(&self, bytes: &[u8], nul: bool) -> Result<u64> {
        let size = bytes.len() as u64 + u64::from(nul);
        self.malloc(op::ALLOC_COPY, &[&[u8::from(nul)], bytes], size)
    }

    unsafe fn read_raw(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        let len = out.len() as u64;
        let st = self.lock();
        if let Some(hit) = st.cache.borrow().from(addr) {
            if hit.len() >= out.len() {
                out.copy_from_slice(&hit[..out.len()]);
                return Ok(());
            }
        }
        let out_of = |reason: String| Error::InvalidValue {
            function: None,
            what: format!("reading {len} bytes at {addr:#x} in the worker"),
            reason,
        };
        let ahead = if len <= READ_AHEAD { READ_AHEAD } else { 0 };
        let parts: [&[u8]; 3] = [
            &addr.to_le_bytes(),
            &len.to_le_bytes(),
            &ahead.to_le_bytes(),
        ];
        match self.request_data(op::READ, &parts, len + ahead, "read")? {
            Ok(data) if data.len() >= out.len() && data.len() as u64 <= len + ahead => {
                out.copy_from_slice(&data[..out.len()]);
                if ahead > 0 {
                    st.cache.borrow_mut().insert(addr, data);
                }
                Ok(())
            }
            Ok(data) => Err(self.fail(
                &st,
                "read",
                WireError::Violation(format!("{} bytes for a read of {len}", data.len())),
            )),
            Err((reply::ERROR, msg)) => Err(out_of(wire::message(&msg))),
            Err((k, _)) => Err(self.unexpected(&st, "read", k)),
        }
    }

    unsafe fn write_raw(&self, addr: u64, data: &[u8]) -> Result<()> {
        let (k, body) = self.request(op::WRITE, &[&addr.to_le_bytes(), data], "write")?;
        expect_ok(k, &body, "write").map_err(|reason| Error::InvalidValue {
            function: None,
            what: format!("writing {} bytes at {addr:#x} in the worker", data.len()),
            reason,
        })
    }

    unsafe fn read_cstr_into(&self, addr: u64, out: &mut Vec<u8>) -> Result<()> {
        if addr == 0 {
            return Err(Error::NullPointer {
                function: None,
                what: "string read".into(),
                c_type: "char *".into(),
            });
        }
        let st = self.lock();
        if let Some(hit) = st.cache.borrow().from(addr) {
            if let Some(n) = memchr_nul(hit) {
                out.extend_from_slice(&hit[..n]);
                return Ok(());
            }
        }
        let parts: [&[u8]; 2] = [&addr.to_le_bytes(), &MAX_TRANSFER.to_le_bytes()];
        match self.request_data(op::CSTR, &parts, MAX_TRANSFER + 4096, "string read")? {
            Ok(bytes) => match memchr_nul(&bytes) {
                // The string, its NUL, and the rest of the page.
                Some(n) if n as u64 <= MAX_TRANSFER && bytes.len() - n <= 4096 => {
                    out.extend_from_slice(&bytes[..n]);
                    st.cache.borrow_mut().insert(addr, bytes);
                    Ok(())
                }
                _ => Err(self.fail(
                    &st,
                    "string read",
                    WireError::Violation("a string reply without its NUL, or too long".into()),
                )),
            },
            Err((reply::VALUE, _)) => Err(Error::Unterminated {
                function: None,
                address: addr,
                limit: MAX_TRANSFER,
            }),
            Err((reply::ERROR, msg)) => Err(Error::InvalidValue {
                function: None,
                what: format!("the string at {addr:#x} in the worker"),
                reason: wire::message(&msg),
            }),
            Err((k, _)) => Err(self.unexpected(&st, "string read", k)),
        }
    }
}

impl Process {
    /// An allocation request (`ALLOC` or `ALLOC_COPY`) for `size` bytes.
    fn malloc(&self, kind: u8, parts: &[&[u8]], size: u64) -> Result<u64> {
        match self.request_value(kind, parts, "malloc")? {
            Ok(0) => Err(Error::Alloc {
                function: None,
                size,
                reason: "the worker's malloc returned NULL".into(),
            }),
            Ok(addr) => Ok(addr),
            Err(reason) => Err(Error::Alloc {
                function: None,
                size,
                reason,
            }),
        }
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}
