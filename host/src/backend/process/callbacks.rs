//! Callbacks: C function pointers in the worker, forwarded to Rust closures
//! in the host. Each lives in a trampoline slot at a fixed address in the
//! worker, so it keeps its address when `reset()` re-creates it.

use std::sync::Arc;

use smallvec::SmallVec;

use super::wire::{self, frame, op, Payload, WireError};
use super::{Process, State, WireSig, MODEL};
use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{callback_dropped, SlotEntry};
use crate::strategy::CallbackFn;
use crate::types::{FnSig, Prim, Raw};

pub(super) struct CallbackEntry {
    pub(super) sig: Arc<FnSig>,
    pub(super) words: WireSig,
    pub(super) f: CallbackFn,
    /// For a batched callback, the capture code of each argument word.
    pub(super) captures: Option<Vec<u8>>,
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

    /// Checks every record and resolves its callback before any closure
    /// runs, then runs them. Resolving first means each record reaches the
    /// callback that was live when C made the call: a closure of this batch
    /// may drop a handle whose calls are queued here, and a new callback
    /// may take its slot meanwhile.
    fn run_batch(&self, st: &State, records: &[u8], function: &str) -> Result<()> {
        let violation = |s: String| self.fail(st, function, WireError::Violation(s));
        // (words, the entry, or the key of a dropped slot)
        let mut calls: Vec<(&[u8], std::result::Result<*const CallbackEntry, u32>)> = Vec::new();
        let mut at = 0;
        while at < records.len() {
            let Some(head) = records.get(at..at + 8) else {
                return Err(violation(format!("a batch record cut short at byte {at}")));
            };
            let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let key = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            if size < 8 || !size.is_multiple_of(8) || size > records.len() - at {
                return Err(violation(format!(
                    "a batch record of {size} bytes at byte {at} of {}",
                    records.len()
                )));
            }
            let record = &records[at + 8..at + size];
            at += size;
            let p = match st.calls.lookup(u64::from(key)) {
                SlotEntry::Live(p) => p,
                SlotEntry::Unknown => {
                    return Err(violation(format!(
                        "a batched call of callback {key}, which does not exist"
                    )));
                }
                SlotEntry::Dropped => {
                    calls.push((record, Err(key)));
                    continue;
                }
            };
            // SAFETY: live in its slot just now, under this lock; no user
            // code has run since the lookup.
            let entry = unsafe { &*p };
            let words = entry.words.words.args.len();
            if entry.captures.is_none() || record.len() < 8 * words {
                return Err(violation(format!(
                    "a batched call of `{}`, which {}",
                    entry.sig.c_prototype("(*)"),
                    if entry.captures.is_none() {
                        "is not batched".to_string()
                    } else {
                        format!("takes {words} argument words")
                    }
                )));
            }
            calls.push((record, Ok(p)));
        }
        for (record, entry) in calls {
            let entry = match entry {
                // SAFETY: resolved above while live in its slot, under this
                // lock, held since. An entry leaves its slot only through
                // `CallState::remove` under this lock; user code runs only
                // inside `Pending::run` below, so a handle dropped by it (or
                // by anything it calls) is retired, not freed, and is
                // released by the one `take_retired` after this loop, which
                // nothing else empties while this batch runs (a nested run
                // finds a callback still running).
                Ok(p) => unsafe { &*p },
                Err(key) => {
                    st.calls
                        .pending
                        .record(callback_dropped(wire::slot_addr(u64::from(key))));
                    continue;
                }
            };
            let raws: SmallVec<[Raw; 8]> = entry
                .words
                .words
                .args
                .iter()
                .zip(record.chunks_exact(8))
                .map(|(prim, w)| {
                    let bits = u64::from_le_bytes(w.try_into().unwrap_or_default());
                    prim.widen(bits, MODEL)
                })
                .collect();
            // SAFETY: this thread holds the worker's lock (`st`) for the
            // whole run, the lock every callback of this worker runs under;
            // `entry` stays alive until after the loop (above).
            unsafe { st.calls.pending.run(&entry.f, &entry.sig, self, Ok(raws)) };
        }
        drop(st.calls.pending.take_retired());
        Ok(())
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
