//! Callbacks: C function pointers in the worker, forwarded to Rust closures
//! in the host. Each lives in a trampoline slot at a fixed address in the
//! worker, so it keeps its address when `reset()` re-creates it.

use std::sync::Arc;

use smallvec::SmallVec;

use super::wire::{self, frame, op, Payload, WireError};
use super::{Process, State, WireSig, MODEL};
use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{callback_dropped, run_batch, BatchTarget, SlotEntry};
use crate::strategy::CallbackFn;
use crate::types::{FnSig, Prim, Raw};

pub(super) struct CallbackEntry {
    pub(super) sig: Arc<FnSig>,
    pub(super) words: WireSig,
    pub(super) f: CallbackFn,
    /// For a batched callback, the capture code of each argument word.
    pub(super) captures: Option<Vec<u8>>,
}

impl BatchTarget for CallbackEntry {
    fn batch_words(&self) -> Option<usize> {
        self.captures.as_ref().map(|_| self.words.words.args.len())
    }
    fn signature(&self) -> &FnSig {
        &self.sig
    }
    fn closure(&self) -> &CallbackFn {
        &self.f
    }
}

impl Process {
    pub(super) fn install(&self, slot: usize, e: &CallbackEntry) -> Result<u64> {
        let w = &e.words;
        let slot = (slot as u64).to_le_bytes();
        // The slot is also the key the worker's upcalls name.
        let batched = [u8::from(e.captures.is_some())];
        let captures = e.captures.as_deref().unwrap_or_default();
        let parts: [&[u8]; 6] = [
            &slot,
            &slot,
            &[w.ret_code, w.codes.len() as u8],
            &w.codes,
            &batched,
            captures,
        ];
        match self.request_value(op::CLOSURE, &parts, "creating a callback")? {
            Ok(addr) => Ok(addr),
            Err(reason) => Err(Error::Refused {
                strategy: StrategyKind::Process,
                function: None,
                library: self.shared.name.clone(),
                what: format!("to create the callback `{}`", e.sig.c_prototype("(*)")),
                reason,
            }),
        }
    }

    /// Serves one `BATCH` upcall: runs the recorded calls in order, each as
    /// its own upcall would have run, then answers the worker. The batch
    /// stays pinned in the read cache meanwhile, so the rewritten pointer
    /// arguments read their copies whatever the closures do in between.
    pub(super) fn serve_batch(&self, st: &State, body: Vec<u8>, function: &str) -> Result<()> {
        let violation = |s: String| self.fail(st, function, WireError::Violation(s));
        if body.len() < 8 || body.len() - 8 > wire::BATCH_CAP {
            return Err(violation(format!(
                "a batch of {} bytes (8 to {} allowed)",
                body.len(),
                wire::BATCH_CAP + 8
            )));
        }
        let (base, records) = body.split_at(8);
        let base = u64::from_le_bytes(base.try_into().unwrap_or_default());
        let records: Arc<[u8]> = records.into();
        st.cache.borrow_mut().pin(base, records.clone());
        let r = self.run_batch(st, &records, function);
        st.cache.borrow_mut().unpin();
        r?;
        self.send(
            st,
            &frame(op::CALLBACK_RETURN, &[&0u64.to_le_bytes()]),
            function,
        )
    }

    /// Runs the batch's records ([`run_batch`]); a bad record is a
    /// protocol violation, which ends the worker.
    fn run_batch(&self, st: &State, records: &[u8], function: &str) -> Result<()> {
        let lift = |entry: &CallbackEntry, words: &[u8]| {
            Ok(entry
                .words
                .words
                .args
                .iter()
                .zip(words.chunks_exact(8))
                .map(|(prim, w)| {
                    let bits = u64::from_le_bytes(w.try_into().unwrap_or_default());
                    prim.widen(bits, MODEL)
                })
                .collect())
        };
        let dropped = |slot: u32| wire::slot_addr(u64::from(slot));
        // SAFETY: this thread holds the worker's lock (`st`) for the whole
        // run, the lock every callback of this worker runs under; `self` is
        // its memory.
        unsafe { run_batch(&st.calls, records, self, dropped, lift) }.map_err(|bad| {
            self.fail(
                st,
                function,
                WireError::Violation(format!(
                    "a batch record at byte {} of {} {}",
                    bad.at,
                    records.len(),
                    bad.what
                )),
            )
        })
    }

    /// Serves one upcall: runs the callback and answers the worker.
    pub(super) fn serve_callback(&self, st: &State, body: &[u8], function: &str) -> Result<()> {
        let violation = |s: String| self.fail(st, function, WireError::Violation(s));
        let mut p = Payload::new("callback", body);
        let (key, n) = match p.u64().and_then(|k| p.u8().map(|n| (k, n))) {
            Ok(v) => v,
            Err(e) => return Err(self.fail(st, function, e)),
        };
        let entry = match st.calls.lookup(key) {
            // SAFETY: the entry was in its slot just now, and leaves it only
            // in `CallState::remove`, which (under this lock, so on this
            // thread) hands it to `Pending::retire` while a callback runs:
            // kept until `take_retired` below, after the last use of the
            // reference. Nothing before the run executes user code.
            SlotEntry::Live(p) => unsafe { &*p },
            SlotEntry::Unknown => {
                return Err(violation(format!(
                    "an upcall to callback {key}, which does not exist"
                )));
            }
            SlotEntry::Dropped => {
                // A slot whose handle was dropped: C sees zero, and the
                // call in progress fails.
                st.calls
                    .pending
                    .record(callback_dropped(wire::slot_addr(key)));
                return self.send(
                    st,
                    &frame(op::CALLBACK_RETURN, &[&0u64.to_le_bytes()]),
                    function,
                );
            }
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
        // stays alive even if the closure drops its handle
        // (`Pending::retire`).
        let r = unsafe { st.calls.pending.run(&entry.f, &entry.sig, self, Ok(raws)) };
        let bits = match (words.words.ret, r) {
            (Some(_), Some(raw)) => raw.0,
            _ => 0,
        };
        // The last use of `entry` was just above. Entries retired during the
        // run go once no callback runs.
        drop(st.calls.pending.take_retired());
        self.send(
            st,
            &frame(op::CALLBACK_RETURN, &[&bits.to_le_bytes()]),
            function,
        )
    }
}
