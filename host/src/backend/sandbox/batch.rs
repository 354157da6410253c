//! Batched callbacks recorded inside the instance.
//!
//! A batched callback's table slot holds a *recorder*: a small wasm function
//! of the callback's exact type, from a module generated here per (wasm
//! signature, capture codes) and instantiated once per slot in the
//! library's store. Called by C, it appends a record to a buffer in the
//! library's linear memory and returns, with no crossing to the host:
//!
//! ```text
//! u32 size (a multiple of 8) | u32 slot | u64 word per argument | copies
//! ```
//!
//! A string or byte-pair argument is copied behind the words and its word
//! rewritten to the copy, so the closure reads it as it was at the call.
//! The host delivers the records ([`Sandbox::drain`]) when the buffer fills
//! (the recorder calls the host's `flush`), when an unbatched callback
//! crosses (`host_call` drains first) and when a call into the library
//! returns, so the order with every other crossing is C's.
//!
//! A call the recorder cannot copy (a string with no NUL before the end of
//! memory, a byte range outside it, or a record larger than the buffer) goes
//! to the slot's ordinary host function instead, after the records before
//! it: the host then reports the bad pointer as for any callback.
//!
//! The buffer lies in memory the library can write, so the host trusts
//! nothing in it: every record is checked before any closure runs, and the
//! words are validated like any callback's. The recorders' globals (where
//! the buffer ends, the slot) are imported from the host and out of the
//! library's reach. Where the next record goes is a word just before the
//! buffer, which the library could overwrite as well, so the host checks
//! it too (a recorder misled by it writes only into linear memory, as any
//! of the library's own code may).
//!
//! Deliveries nest: while the records in `[lo, hi)` are delivered, the
//! library's calls from those closures record above `hi`, and are delivered
//! (and their space given back) when those calls return.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};

use wasmtime::{
    AsContext, AsContextMut, Caller, Extern, Func, FuncType, Global, GlobalType, Instance, Module,
    Mutability, StoreContextMut, Val, ValRaw, ValType,
};

use super::callbacks::{in_host, CallbackEntry, SharedPtr};
use super::engine::EngineKey;
use super::value::{lift_args, wasm_type};
use super::{Inner, Live, Sandbox, State};
use crate::error::{Error, Result};
use crate::protocol::{run_batch, BatchTarget, RECORD_HEAD};
use crate::strategy::CallbackFn;
use crate::types::{Capture, FnSig};

/// The record buffer's size in the library's memory.
const BUFFER: u32 = 64 << 10;

/// Recorder instances per store: each takes one instance of the engine's
/// pool. A batched callback beyond them is delivered at once instead.
pub(crate) const MAX_RECORDERS: u32 = 32;

/// The batching state of one store, made with its first recorder.
pub(super) struct Batch {
    memory: wasmtime::Memory,
    /// The address of the `u32` saying where the next record goes (shared
    /// by every recorder of the store), and the same as a global for them.
    cell: u32,
    cell_global: Global,
    /// The buffer, `base .. end`, in the library's memory, just after the
    /// cell.
    base: u32,
    end: u32,
    /// The buffer's end as the recorders see it.
    end_global: Global,
    /// The host function recorders call when the buffer is full.
    flush: Func,
    /// Where undelivered records start: those below belong to deliveries
    /// in progress further up the stack.
    floor: Cell<u32>,
    /// Recorder instances made in this store.
    recorders: Cell<u32>,
}

impl Sandbox {
    /// The recorder for callback `entry` in slot `idx`, made (or reused)
    /// in the current store, or `None` when the callback is to be delivered
    /// at once instead: it copies string arrays (not recorded here), the
    /// store has no recorder left, the buffer cannot be allocated, or its
    /// signature's recorder module is not compiled yet and the callback has
    /// not been called [`SandboxConfig::record_batched_after`] times.
    /// `direct` is the slot's host function, which the recorder calls for
    /// what it cannot record.
    pub(super) fn recorder(
        &self,
        inner: &Inner,
        ctx: &mut StoreContextMut<'_, State>,
        live: &Live,
        idx: usize,
        entry: &CallbackEntry,
        direct: Func,
    ) -> Option<Func> {
        let captures = entry.captures.as_deref()?;
        if captures.contains(&Capture::StrArray) {
            return None;
        }
        let key = format!("{} {captures:?}", entry.key);
        {
            let recs = inner.slot_recorders.borrow();
            if let Some(Some((k, f))) = recs.get(idx) {
                if *k == key {
                    return Some(*f);
                }
            }
        }
        let batch = inner.batch.borrow();
        let batch = batch.as_ref()?;
        if batch.recorders.get() >= MAX_RECORDERS {
            return None;
        }
        let compile =
            entry.calls.load(Ordering::Relaxed) >= self.shared.config.record_batched_after;
        let module = recorder_module(
            &self.shared.module.engine,
            self.shared.module.key,
            &key,
            compile,
            {
                let params: Vec<ValType> = entry.args.iter().map(|p| wasm_type(*p)).collect();
                move || recorder_wat(&params, captures)
            },
        )?;
        let id = Global::new(
            &mut *ctx,
            GlobalType::new(ValType::I32, Mutability::Const),
            Val::I32(idx as i32),
        )
        .ok()?;
        let imports: [Extern; 6] = [
            live.memory.into(),
            batch.flush.into(),
            direct.into(),
            batch.cell_global.into(),
            batch.end_global.into(),
            id.into(),
        ];
        // Fails when the engine's pool or the store's instance limit is
        // exhausted: the callback is then delivered at once.
        let instance = Instance::new(&mut *ctx, &module, &imports).ok()?;
        let rec = instance.get_func(&mut *ctx, "rec")?;
        batch.recorders.set(batch.recorders.get() + 1);
        let mut recs = inner.slot_recorders.borrow_mut();
        if recs.len() <= idx {
            recs.resize(idx + 1, None);
        }
        recs[idx] = Some((key, rec));
        Some(rec)
    }

    /// Counts a call of batched callback `entry` delivered one by one:
    /// whether it is the one that reaches the threshold, after which the
    /// caller installs the slot's recorder ([`Sandbox::install_recorder`]).
    pub(super) fn count_unrecorded(&self, entry: &CallbackEntry) -> bool {
        let calls = entry
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        calls == self.shared.config.record_batched_after.max(1)
    }

    /// Installs slot `idx`'s callback again, with its recorder now that it
    /// has been called often enough, so the following calls are recorded.
    /// Holds the entry by its `Arc` meanwhile (installing runs the
    /// library's malloc). A failure leaves the slot as it was: delivered
    /// one by one.
    pub(super) fn install_recorder(&self, inner: &Inner, idx: usize) {
        if let Some(entry) = inner.calls.get(idx) {
            let _ = self.install(idx, Some(&entry));
        }
    }

    /// Makes the store's batching state (the buffer, the shared globals
    /// and the `flush` function) unless it exists or `captures` could not
    /// use it. A failure to allocate the buffer leaves batching off: each
    /// call is then delivered at once.
    pub(super) fn prepare_batch(&self, inner: &Inner, captures: &[Capture]) {
        if inner.batch.borrow().is_some() || captures.contains(&Capture::StrArray) {
            return;
        }
        let size = u64::from(BUFFER) + 8;
        let Ok(cell) = crate::types::Memory::alloc_raw(self, size, 8) else {
            return;
        };
        // `alloc_raw` checked the block lies inside memory.
        let cell = cell as u32;
        let (base, end) = (cell + 8, cell + 8 + BUFFER);
        let ptr = SharedPtr::of(self);
        let made = Self::with_ctx_in(inner, |mut ctx, live| {
            let fixed = GlobalType::new(ValType::I32, Mutability::Const);
            let fail = |e: wasmtime::Error| Error::Alloc {
                function: None,
                size: 4,
                reason: format!("cannot make a global for batched callbacks: {e:#}"),
            };
            let cell_global =
                Global::new(&mut ctx, fixed.clone(), Val::I32(cell as i32)).map_err(fail)?;
            let end_global = Global::new(&mut ctx, fixed, Val::I32(end as i32)).map_err(fail)?;
            let ty = FuncType::new(ctx.engine(), [], []);
            let flush = Func::new(&mut ctx, ty, move |caller, _, _| flush(ptr, caller));
            let batch = Batch {
                memory: live.memory,
                cell,
                cell_global,
                base,
                end,
                end_global,
                flush,
                floor: Cell::new(base),
                recorders: Cell::new(0),
            };
            batch.set_next(&mut ctx, base);
            Ok(batch)
        });
        if let Ok(batch) = made {
            *inner.batch.borrow_mut() = Some(batch);
        }
    }

    /// Whether records wait for delivery (an unchanged next-record word
    /// means none were made since the last delivery).
    pub(super) fn batch_pending(inner: &Inner, ctx: impl AsContext) -> bool {
        match &*inner.batch.borrow() {
            Some(b) => b.next(&ctx) != Some(b.floor.get()),
            None => false,
        }
    }

    /// Delivers the undelivered records, in order, to their closures:
    /// every record is checked and its callback resolved before any closure
    /// runs (a closure may drop a handle whose calls are queued, and a new
    /// callback may take its slot). A corrupt buffer fails the current call.
    /// Runs with the store reachable through `with_ctx` (inside a host
    /// call, or after a guest call returned) and nothing borrowed from it.
    pub(super) fn drain(&self, inner: &Inner) {
        // (the records' start, then their end and a copy of them)
        let read = Self::with_ctx_in(inner, |ctx, _| {
            let batch = inner.batch.borrow();
            let Some(b) = batch.as_ref() else {
                return Ok(None);
            };
            let lo = b.floor.get();
            let hi = b.next(&ctx).unwrap_or(0);
            if hi == lo {
                return Ok(None);
            }
            // The word is the library's to overwrite: checked.
            let bytes = match b.base <= lo && lo <= hi && hi <= b.end {
                true => b.memory.data(&ctx).get(lo as usize..hi as usize),
                false => None,
            };
            let Some(bytes) = bytes else {
                let e = corrupt(lo, format!("the next record would go at {hi:#x}"));
                return Ok(Some((lo, Err(e))));
            };
            // Deliveries nest above the records taken now.
            b.floor.set(hi);
            Ok(Some((lo, Ok(bytes.to_vec()))))
        });
        let (lo, bytes) = match read {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => return inner.calls.pending.record(e),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                inner.calls.pending.record(e);
                self.give_back(inner, lo);
                return;
            }
        };
        if let Err(e) = self.deliver(inner, lo, &bytes) {
            inner.calls.pending.record(e);
        }
        self.give_back(inner, lo);
    }

    /// Gives the buffer from `lo` back for the next records. (A reset
    /// meanwhile, refused during a delivery since the call's depth is above
    /// zero, would have replaced the state.)
    fn give_back(&self, inner: &Inner, lo: u32) {
        let _ = Self::with_ctx_in(inner, |mut ctx, _| {
            if let Some(b) = &*inner.batch.borrow() {
                b.floor.set(lo);
                b.set_next(&mut ctx, lo);
            }
            Ok(())
        });
    }

    /// Checks and runs the records in `bytes` (copied from `lo`).
    fn deliver(&self, inner: &Inner, lo: u32, bytes: &[u8]) -> Result<()> {
        let lift = |entry: &CallbackEntry, words: &[u8]| {
            // The recorder stored each parameter's bits, an `i32`
            // zero-extended: read back as the wasm value it was.
            let vals = entry.args.iter().zip(words.chunks_exact(8)).map(|(p, w)| {
                let bits = u64::from_le_bytes(w.try_into().unwrap_or_default());
                match wasm_type(*p) {
                    ValType::I64 => ValRaw::i64(bits as i64),
                    ValType::F32 => ValRaw::f32(bits as u32),
                    ValType::F64 => ValRaw::f64(bits),
                    _ => ValRaw::i32(bits as u32 as i32),
                }
            });
            lift_args(&entry.args, vals)
        };
        let dropped = |slot: u32| self.shared.table_base + u64::from(slot);
        // SAFETY: this thread holds the sandbox's lock (`inner`) for the
        // whole delivery, the lock every callback of this sandbox runs
        // under; `self` is its memory.
        unsafe { run_batch(&inner.calls, bytes, self, dropped, lift) }.map_err(|bad| {
            let addr = lo as usize + bad.at;
            corrupt(lo, format!("a record at {addr:#x} {}", bad.what))
        })
    }

    /// Delivers what the library recorded during a call that just returned,
    /// as part of that call: its depth stays counted (so a closure cannot
    /// reset the instance under it), and an outermost call's delivery gets
    /// a fresh deadline for the library calls its closures make.
    pub(super) fn drain_after_call(&self, inner: &Inner) {
        let pending = inner.batch.borrow().is_some()
            && Self::with_ctx_in(inner, |ctx, _| Ok(Self::batch_pending(inner, &ctx)))
                .unwrap_or(false);
        if !pending {
            return;
        }
        let depth = inner.calls.depth.get();
        if depth == 0 {
            let now = self.ticks();
            let _ = Self::with_ctx_in(inner, |mut ctx, _| {
                self.start_budget(inner, &mut ctx, now);
                Ok(())
            });
        }
        inner.calls.depth.set(depth + 1);
        self.drain(inner);
        inner.calls.depth.set(depth);
    }
}

impl BatchTarget for CallbackEntry {
    fn batch_words(&self) -> Option<usize> {
        self.captures.as_ref().map(|_| self.args.len())
    }
    fn signature(&self) -> &FnSig {
        &self.sig
    }
    fn closure(&self) -> &CallbackFn {
        &self.f
    }
}

impl Batch {
    /// Where the next record goes, as the word in memory says.
    fn next(&self, ctx: &impl AsContext) -> Option<u32> {
        let at = self.cell as usize;
        let word = self.memory.data(ctx).get(at..at + 4)?;
        Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
    }

    /// Sets where the next record goes.
    fn set_next(&self, ctx: &mut impl AsContextMut, to: u32) {
        let at = self.cell as usize;
        if let Some(word) = self.memory.data_mut(ctx).get_mut(at..at + 4) {
            word.copy_from_slice(&to.to_le_bytes());
        }
    }
}

/// The host function recorders call when the buffer is full.
fn flush(ptr: SharedPtr, mut caller: Caller<'_, State>) -> wasmtime::Result<()> {
    let sandbox = ptr.borrow();
    let inner = sandbox.lock();
    in_host(&sandbox, &inner, &mut caller, || sandbox.drain(&inner));
    Ok(())
}

/// The error for a batch buffer the library overwrote.
fn corrupt(lo: u32, what: String) -> Error {
    Error::InvalidValue {
        function: None,
        what: format!("the batched callback records at {lo:#x} in the library's memory"),
        reason: format!("{what}: the library wrote over them"),
    }
}

/// Recorder modules compiled per engine, by signature and captures.
type Recorders = Mutex<HashMap<(EngineKey, String), Module>>;

/// The recorder module for `key` in `engine`, compiled from `text()` (WAT)
/// the first time if `compile` (a few milliseconds; not cached on disk).
fn recorder_module(
    engine: &wasmtime::Engine,
    engine_key: EngineKey,
    key: &str,
    compile: bool,
    text: impl FnOnce() -> String,
) -> Option<Module> {
    static MODULES: OnceLock<Recorders> = OnceLock::new();
    let modules = MODULES.get_or_init(Default::default);
    let cache_key = (engine_key, key.to_string());
    if let Some(m) = modules
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&cache_key)
    {
        return Some(m.clone());
    }
    if !compile {
        return None;
    }
    let module = Module::new(engine, wat::parse_str(text()).ok()?).ok()?;
    modules
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(cache_key, module.clone());
    Some(module)
}

/// The text of a recorder module for a callback with wasm parameters
/// `params`, copying per `captures` (one code per parameter).
fn recorder_wat(params: &[ValType], captures: &[Capture]) -> String {
    let n = params.len();
    // What is copied for each parameter: a string, the bytes its next
    // parameter counts, or nothing. Only an `i32` (a wasm32 pointer) is
    // copied; a pair's length may be either integer type.
    let copy: Vec<Capture> = (0..n)
        .map(|i| match (captures.get(i), &params[i]) {
            (Some(Capture::String), ValType::I32) => Capture::String,
            (Some(Capture::Bytes), ValType::I32)
                if matches!(params.get(i + 1), Some(ValType::I32 | ValType::I64)) =>
            {
                Capture::Bytes
            }
            _ => Capture::Word,
        })
        .collect();
    let list = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let args: String = (0..n).map(|i| format!(" (local.get {i})")).collect();
    let direct = format!("(call $direct{args}) (return)");
    let mut w = String::new();
    let _ = writeln!(
        w,
        "(module\n\
         (import \"s\" \"memory\" (memory 0))\n\
         (import \"s\" \"flush\" (func $flush))\n\
         (import \"s\" \"direct\" (func $direct (param {})))\n\
         (import \"s\" \"cell\" (global $cell i32))\n\
         (import \"s\" \"end\" (global $end i32))\n\
         (import \"s\" \"id\" (global $id i32))",
        list(params)
    );
    // The length of the string at $p, NUL excluded, or -1 if memory ends
    // first.
    w.push_str(
        "(func $strlen (param $p i32) (result i64) (local $i i64) (local $lim i64)\n\
         (local.set $lim (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))\n\
         (local.set $i (i64.extend_i32_u (local.get $p)))\n\
         (block $out (loop $next\n\
           (br_if $out (i64.ge_u (local.get $i) (local.get $lim)))\n\
           (if (i32.eqz (i32.load8_u (i32.wrap_i64 (local.get $i))))\n\
             (then (return (i64.sub (local.get $i) (i64.extend_i32_u (local.get $p))))))\n\
           (local.set $i (i64.add (local.get $i) (i64.const 1)))\n\
           (br $next)))\n\
         (i64.const -1))\n",
    );
    let _ = writeln!(w, "(func (export \"rec\") (param {})", list(params));
    // Locals after the parameters: the record's size, where it goes, the
    // copy cursor, the memory's size, then one length per parameter.
    let (size, at, cur, lim) = (n, n + 1, n + 2, n + 3);
    let len = |i: usize| n + 4 + i;
    let _ = writeln!(
        w,
        "(local i64 i32 i32 i64) (local{})",
        " i64".repeat(n.max(1))
    );
    let _ = writeln!(w, "(local.set {size} (i64.const {}))", RECORD_HEAD + 8 * n);
    let _ = writeln!(
        w,
        "(local.set {lim} (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))"
    );
    let round = |i: usize| {
        format!(
            "(i64.and (i64.add (local.get {}) (i64.const 7)) (i64.const -8))",
            len(i)
        )
    };
    for (i, c) in copy.iter().enumerate() {
        let measure = match c {
            Capture::String => format!(
                "(local.set {l} (call $strlen (local.get {i})))\n\
                 (if (i64.lt_s (local.get {l}) (i64.const 0)) (then {direct}))\n\
                 (local.set {l} (i64.add (local.get {l}) (i64.const 1)))",
                l = len(i)
            ),
            Capture::Bytes => {
                let count = match params[i + 1] {
                    ValType::I64 => format!("(local.get {})", i + 1),
                    _ => format!("(i64.extend_i32_u (local.get {}))", i + 1),
                };
                format!(
                    "(local.set {l} {count})\n\
                     (if (i64.gt_u (local.get {l}) (local.get {lim})) (then {direct}))\n\
                     (if (i64.gt_u (i64.add (i64.extend_i32_u (local.get {i})) (local.get {l})) \
                     (local.get {lim})) (then {direct}))",
                    l = len(i)
                )
            }
            _ => continue,
        };
        let _ = writeln!(
            w,
            "(if (local.get {i}) (then {measure}\n\
             (local.set {size} (i64.add (local.get {size}) {}))))",
            round(i)
        );
    }
    let room = "(i64.extend_i32_u (i32.sub (global.get $end) (i32.load (global.get $cell))))";
    let _ = writeln!(
        w,
        "(if (i64.gt_u (local.get {size}) {room}) (then (call $flush)\n\
         (if (i64.gt_u (local.get {size}) {room}) (then {direct}))))"
    );
    let _ = writeln!(
        w,
        "(local.set {at} (i32.load (global.get $cell)))\n\
         (i32.store (local.get {at}) (i32.wrap_i64 (local.get {size})))\n\
         (i32.store offset=4 (local.get {at}) (global.get $id))\n\
         (local.set {cur} (i32.add (local.get {at}) (i32.const {})))",
        RECORD_HEAD + 8 * n
    );
    for (i, (c, t)) in copy.iter().zip(params).enumerate() {
        let offset = RECORD_HEAD + 8 * i;
        let store = |v: &str| format!("(i64.store offset={offset} (local.get {at}) {v})");
        let bits = match t {
            ValType::I64 => format!("(local.get {i})"),
            ValType::F64 => format!("(i64.reinterpret_f64 (local.get {i}))"),
            ValType::F32 => format!("(i64.extend_i32_u (i32.reinterpret_f32 (local.get {i})))"),
            _ => format!("(i64.extend_i32_u (local.get {i}))"),
        };
        match c {
            Capture::String | Capture::Bytes => {
                let _ = writeln!(
                    w,
                    "(if (local.get {i}) (then\n\
                     (memory.copy (local.get {cur}) (local.get {i}) (i32.wrap_i64 (local.get {l})))\n\
                     {}\n\
                     (local.set {cur} (i32.add (local.get {cur}) (i32.wrap_i64 {})))\n\
                     ) (else {}))",
                    store(&format!("(i64.extend_i32_u (local.get {cur}))")),
                    round(i),
                    store("(i64.const 0)"),
                    l = len(i)
                );
            }
            _ => {
                let _ = writeln!(w, "{}", store(&bits));
            }
        }
    }
    let _ = writeln!(
        w,
        "(i32.store (global.get $cell) (i32.add (local.get {at}) (i32.wrap_i64 (local.get {size})))))\n)"
    );
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_text_parses_for_every_capture_shape() {
        let shapes: &[(&[ValType], &[Capture])] = &[
            (&[], &[]),
            (
                &[ValType::I32, ValType::I32],
                &[Capture::Word, Capture::String],
            ),
            (
                &[ValType::I32, ValType::I32, ValType::I32],
                &[Capture::Word, Capture::Bytes, Capture::Word],
            ),
            (
                &[ValType::I32, ValType::I64, ValType::F32, ValType::F64],
                &[Capture::Bytes, Capture::Word, Capture::Word, Capture::Word],
            ),
            // A pair at the end has no length: copied as a word.
            (&[ValType::I32], &[Capture::Bytes]),
        ];
        let engine = wasmtime::Engine::default();
        for (params, captures) in shapes {
            let text = recorder_wat(params, captures);
            if let Err(e) = wat::parse_str(&text)
                .map_err(Into::into)
                .and_then(|b| Module::new(&engine, b))
            {
                panic!("{e:#}\n{text}");
            }
        }
    }
}
