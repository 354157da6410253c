//! Callbacks: C function pointers in the worker, forwarded to Rust closures
//! in the host. Each lives in a trampoline slot at a fixed address in the
//! worker, so it keeps its address when `reset()` re-creates it.

use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use smallvec::SmallVec;

use super::wire::{self, frame, op, Payload, WireError};
use super::{Process, Shared, State, WireSig, MODEL};
use crate::error::{Error, Result};
use crate::protocol::callback_dropped;
use crate::strategy::CallbackFn;
use crate::types::{FnSig, Prim, Raw};

pub(super) struct CallbackEntry {
    pub(super) sig: Arc<FnSig>,
    pub(super) words: WireSig,
    pub(super) f: CallbackFn,
}

/// Keeps a callback's slot alive; dropping it empties the slot for reuse. It
/// does not keep the worker alive: when the last handle goes, so does the
/// worker. The worker's trampoline stays in place: a call through the
/// address the library kept comes up as an upcall to an empty slot, which
/// the host answers with zero, failing the call in progress with
/// `Error::CallbackDropped`.
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
        let removed = match st.callbacks.borrow_mut().get_mut(self.slot) {
            Some(e) => e.take(),
            None => None,
        };
        // A running callback (on this thread: the lock is held) may be this
        // one; it holds its own `Arc`, so the entry may go at once.
        drop(removed);
    }
}

impl Process {
    pub(super) fn install(&self, slot: usize, e: &CallbackEntry) -> Result<u64> {
        let w = &e.words;
        let slot = (slot as u64).to_le_bytes();
        // The slot is also the key the worker's upcalls name.
        let parts: [&[u8]; 4] = [&slot, &slot, &[w.ret_code, w.codes.len() as u8], &w.codes];
        match self.request_value(op::CLOSURE, &parts, "creating a callback")? {
            Ok(addr) => Ok(addr),
            Err(reason) => Err(Error::Refused {
                function: None,
                library: self.shared.name.clone(),
                what: format!("to create the callback `{}`", e.sig.c_prototype("(*)")),
                reason,
            }),
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
        let (entry, known) = {
            let cbs = st.callbacks.borrow();
            let known = usize::try_from(key).is_ok_and(|k| k < cbs.len());
            (cbs.get(key as usize).cloned().flatten(), known)
        };
        let Some(entry) = entry else {
            if !known {
                return Err(violation(format!(
                    "an upcall to callback {key}, which does not exist"
                )));
            }
            // A slot whose handle was dropped: C sees zero, and the call
            // in progress fails.
            st.pending.record(callback_dropped(wire::slot_addr(key)));
            return self.send(
                st,
                &frame(op::CALLBACK_RETURN, &[&0u64.to_le_bytes()]),
                function,
            );
        };
        let words = &entry.words;
        if usize::from(n) != words.words.args.len() {
            return Err(violation(format!(
                "an upcall to `{}` with {n} arguments",
                entry.sig.c_prototype("(*)")
            )));
        }
        let mut raws: SmallVec<[Raw; 8]> = SmallVec::new();
        for prim in words.words.args.iter() {
            match p.u64() {
                Ok(bits) => raws.push(prim.widen(bits, MODEL)),
                Err(e) => return Err(self.fail(st, function, e)),
            }
        }
        // The bytes the worker sent along for each pointer argument: the
        // library is paused now, so they are what a read would return.
        let mut prefetched = Vec::new();
        for (raw, prim) in raws.iter().zip(words.words.args.iter()) {
            if *prim != Prim::Pointer {
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
        let bits = match (words.words.ret, r) {
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
