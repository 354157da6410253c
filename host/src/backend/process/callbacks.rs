//! Callbacks: C function pointers in the worker, forwarded to Rust closures
//! in the host. Each lives in a trampoline slot at a fixed address in the
//! worker, so it keeps its address when `reset()` re-creates it.

use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use smallvec::SmallVec;

use super::wire::{self, frame, op, reply, Payload, WireError};
use super::{Process, Shared, State, MODEL};
use crate::error::{Error, Result};
use crate::strategy::CallbackFn;
use crate::types::{FnSig, Prim, Raw};

pub(super) struct CallbackEntry {
    pub(super) sig: Arc<FnSig>,
    pub(super) args: Vec<Prim>,
    pub(super) codes: Vec<u8>,
    pub(super) ret: Option<Prim>,
    pub(super) f: CallbackFn,
}

/// Keeps a callback's slot alive; dropping it frees the slot. It does not
/// keep the worker alive: when the last handle goes, so does the worker.
pub(super) struct CallbackGuard {
    pub(super) shared: Weak<Shared>,
    pub(super) slot: usize,
}

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        // With every handle gone, the worker is gone too: nothing to free.
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let p = Process {
            shared,
            _not_sync: PhantomData,
        };
        let st = p.lock();
        if let Some(e) = st.callbacks.borrow_mut().get_mut(self.slot) {
            *e = None;
        }
        if st.conn.borrow().is_some() && st.poisoned.borrow().is_none() {
            // A failure here poisons the handle; nothing else to do.
            let _ = p.request(
                op::CLOSURE_FREE,
                &[&(self.slot as u64).to_le_bytes()],
                "freeing a callback",
            );
        }
    }
}

impl Process {
    pub(super) fn install(&self, st: &State, slot: usize, e: &CallbackEntry) -> Result<u64> {
        let what = "creating a callback";
        self.send(
            st,
            &frame(
                op::CLOSURE,
                &[
                    &(slot as u64).to_le_bytes(),
                    &(slot as u64).to_le_bytes(),
                    &[
                        e.ret.map_or(wire::VOID, |p| wire::type_code(p, MODEL)),
                        e.codes.len() as u8,
                    ],
                    &e.codes,
                ],
            ),
            what,
        )?;
        let (k, body) = self.recv(st, what)?;
        match k {
            reply::VALUE => {
                let mut p = Payload::new("value", &body);
                p.u64()
                    .and_then(|v| p.end().map(|()| v))
                    .map_err(|e| self.fail(st, what, e))
            }
            reply::ERROR => Err(Error::Unsupported(format!(
                "the worker cannot create the callback `{}`: {}",
                e.sig.c_prototype("(*)"),
                String::from_utf8_lossy(&body)
            ))),
            k => Err(self.fail(
                st,
                what,
                WireError::Violation(format!("reply kind {k} to {what}")),
            )),
        }
    }

    /// Serves one upcall: runs the callback and answers the worker.
    pub(super) fn serve_callback(&self, st: &State, body: &[u8], function: &str) -> Result<()> {
        let violation = |s: String| self.fail(st, function, WireError::Violation(s));
        let mut p = Payload::new("callback", body);
        let (key, n) = match p.u64().and_then(|k| p.u8().map(|n| (k, n))) {
            Ok(v) => v,
            Err(e) => return Err(self.fail(st, function, e)),
        };
        let entry = st.callbacks.borrow().get(key as usize).cloned().flatten();
        let Some(entry) = entry else {
            return Err(violation(format!(
                "an upcall to callback {key}, which does not exist"
            )));
        };
        if usize::from(n) != entry.args.len() {
            return Err(violation(format!(
                "an upcall to `{}` with {n} arguments",
                entry.sig.c_prototype("(*)")
            )));
        }
        let mut raws: SmallVec<[Raw; 8]> = SmallVec::new();
        for prim in &entry.args {
            match p.u64() {
                Ok(bits) => raws.push(prim.widen(bits, MODEL)),
                Err(e) => return Err(self.fail(st, function, e)),
            }
        }
        // The bytes the worker sent along for each pointer argument: the
        // library is paused now, so they are what a read would return.
        let mut prefetched = Vec::new();
        for (raw, code) in raws.iter().zip(&entry.codes) {
            if *code != wire::type_code(Prim::Pointer, MODEL) {
                continue;
            }
            let bytes = p.bytes(2).and_then(|n| {
                let n = u16::from_le_bytes([n[0], n[1]]);
                if usize::from(n) > wire::PREFETCH {
                    return Err(WireError::Violation(format!(
                        "{n} bytes sent along with a pointer (at most {})",
                        wire::PREFETCH
                    )));
                }
                p.bytes(usize::from(n))
            });
            match bytes {
                Ok(b) if !b.is_empty() => prefetched.push((raw.0, b.to_vec())),
                Ok(_) => {}
                Err(e) => return Err(self.fail(st, function, e)),
            }
        }
        if let Err(e) = p.end() {
            return Err(self.fail(st, function, e));
        }
        {
            let mut cache = st.cache.borrow_mut();
            for (addr, bytes) in prefetched {
                cache.insert(addr, bytes);
            }
        }
        // SAFETY: this thread holds the worker's lock (`st`) for the whole
        // run, the lock every callback of this worker runs under; `entry`
        // is an `Arc` clone, alive even if the closure drops its handle.
        let r = unsafe { st.pending.run(&entry.f, &entry.sig, self, Ok(raws)) };
        let bits = match (entry.ret, r) {
            (Some(_), Some(raw)) => raw.0,
            _ => 0,
        };
        self.send(
            st,
            &frame(op::CALLBACK_RETURN, &[&bits.to_le_bytes()]),
            function,
        )
    }
}
