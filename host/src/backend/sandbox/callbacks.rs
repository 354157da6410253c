//! Callbacks: Rust closures in slots of the instance's function table, and
//! the host function through which C calls them.

use std::any::Any;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use wasmtime::{AsContextMut, Caller, Func, FuncType, Ref, ValRaw};

use super::engine::TABLE_ELEMENTS;
use super::value::{describe, lift_args, to_raw, wasm_signature, zero_raw};
use super::{CallerPtr, Inner, Sandbox, Shared, State};
use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{callback_dropped, SlotEntry, SlotGuard};
use crate::strategy::{CallbackFn, ErasedFn};
use crate::types::{Capture, FnSig, Prim};

/// A callback in a table slot.
pub(super) struct CallbackEntry {
    pub(super) sig: Arc<FnSig>,
    pub(super) args: Vec<Prim>,
    ret: Option<Prim>,
    /// Its wasm signature, `describe`d: the host function in its slot must
    /// have been made for exactly this.
    pub(super) key: Arc<str>,
    pub(super) f: CallbackFn,
    /// For a batched callback, what its recorder copies per argument word.
    pub(super) captures: Option<Vec<Capture>>,
    /// Calls delivered one by one (counted for a batched callback only).
    pub(super) calls: AtomicU32,
}

/// `*const Shared` made sendable for wasmtime's host-function closures.
#[derive(Clone, Copy)]
pub(super) struct SharedPtr(*const Shared);

impl SharedPtr {
    /// The pointer for `sandbox`'s host functions.
    pub(super) fn of(sandbox: &Sandbox) -> SharedPtr {
        SharedPtr(Arc::as_ptr(&sandbox.shared))
    }

    /// The handle, borrowed by a host function of the store for the length
    /// of its call.
    pub(super) fn borrow(self) -> ManuallyDrop<Sandbox> {
        // SAFETY: see `SharedPtr`: the `Shared` is alive while its store
        // runs, kept so by the `Sandbox` making the guest call below us on
        // this thread. The handle borrows that reference: `ManuallyDrop`
        // never releases it, so the count needs no atomic update either way
        // (closures see only `&dyn Memory` and cannot take ownership).
        ManuallyDrop::new(Sandbox {
            shared: unsafe { Arc::from_raw(self.0) },
            _not_sync: PhantomData,
        })
    }
}

// SAFETY: a `SharedPtr` is dereferenced only by a host function of the
// store inside that `Shared`, and host functions run only during a guest
// call, which the calling thread makes holding `Shared::inner` with a live
// `Sandbox` (so the `Shared`, which owns the store, is alive). `Shared` is
// `Sync`, so the shared reference may be used from whichever thread that is.
unsafe impl Send for SharedPtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedPtr {}

impl Sandbox {
    /// Adds callback `f` of type `sig` in a free table slot; batched, with
    /// what its recorder copies, if `captures` is given.
    pub(super) fn add_callback(
        &self,
        sig: &Arc<FnSig>,
        captures: Option<&[Capture]>,
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        let args = sig.arg_words()?;
        let ret = sig.ret_word()?;
        let (params, results) = wasm_signature(&args, ret);
        let entry = Arc::new(CallbackEntry {
            sig: sig.clone(),
            key: describe(&params, &results).into(),
            args,
            ret,
            f: CallbackFn::new(f),
            captures: captures.map(<[Capture]>::to_vec),
            calls: AtomicU32::new(0),
        });
        let inner = self.lock();
        if let Some(c) = captures {
            self.prepare_batch(&inner, c);
        }
        let max = TABLE_ELEMENTS.saturating_sub(self.shared.table_base as usize);
        let full = || Error::LimitReached {
            strategy: StrategyKind::Sandbox,
            function: None,
            library: self.shared.module.name.clone(),
            limit: format!("{max} live callbacks"),
            setting: "the number of live callbacks (drop unused ones)",
            reason: format!("the function table holds at most {TABLE_ELEMENTS} entries"),
        };
        let (idx, ()) = inner
            .calls
            .add(entry, max, full, |idx, e| self.install(idx, Some(e)))?;
        let guard = SlotGuard::new(&self.shared, idx);
        Ok((self.shared.table_base + idx as u64, Box::new(guard)))
    }

    /// Puts callback `idx` (or a NULL entry) in its table slot.
    pub(super) fn install(&self, idx: usize, entry: Option<&CallbackEntry>) -> Result<()> {
        let slot = self.shared.table_base + idx as u64;
        let ptr = SharedPtr::of(self);
        let inner = self.lock();
        if let Some(c) = entry.and_then(|e| e.captures.as_deref()) {
            // After a reset, the new store's buffer.
            self.prepare_batch(&inner, c);
        }
        self.with_ctx(|mut ctx, live| {
            let value = match entry {
                None => Ref::Func(None),
                Some(e) => {
                    let mut funcs = inner.slot_funcs.borrow_mut();
                    if funcs.len() <= idx {
                        funcs.resize(idx + 1, None);
                    }
                    let func = match &funcs[idx] {
                        Some((k, f)) if *k == e.key => *f,
                        _ => {
                            let (params, results) = wasm_signature(&e.args, e.ret);
                            let returns = !results.is_empty();
                            let ty = FuncType::new(ctx.engine(), params, results);
                            let key = e.key.clone();
                            let made = key.clone();
                            // SAFETY: `host_call` reads and writes `space`
                            // only after checking that the slot's current
                            // callback has exactly this wasm signature
                            // (`made`, from the same `wasm_type` lowering
                            // as `ty`), so each slot is read as the type
                            // wasmtime wrote and the result written as the
                            // type it expects.
                            let f = unsafe {
                                Func::new_unchecked(&mut ctx, ty, move |caller, space| {
                                    host_call(ptr, idx, &made, returns, caller, space)
                                })
                            };
                            funcs[idx] = Some((key, f));
                            f
                        }
                    };
                    drop(funcs);
                    // A batched callback's slot holds its recorder, which
                    // calls the host function for what it cannot record.
                    let func = self
                        .recorder(&inner, &mut ctx, live, idx, e, func)
                        .unwrap_or(func);
                    Ref::Func(Some(func))
                }
            };
            let size = live.table.size(&ctx);
            let fail = |e: wasmtime::Error| Error::Alloc {
                function: None,
                size: 1,
                reason: format!("cannot place a callback in the function table: {e:#}"),
            };
            if slot < size {
                live.table.set(&mut ctx, slot, value).map_err(fail)
            } else {
                // Slots are filled in order, so the new one is at `slot`;
                // anything between stays NULL.
                if slot > size {
                    live.table
                        .grow(&mut ctx, slot - size, Ref::Func(None))
                        .map_err(fail)?;
                }
                live.table
                    .grow(&mut ctx, 1, value)
                    .map_err(fail)
                    .map(|_| ())
            }
        })
    }
}

/// Runs `f`, host code inside a guest call that reached the host through
/// `caller`: the store is reached through `caller` meanwhile, and the
/// host's time does not count against the library's deadline.
pub(super) fn in_host<R>(
    sandbox: &Sandbox,
    inner: &Inner,
    caller: &mut Caller<'_, State>,
    f: impl FnOnce() -> R,
) -> R {
    // SAFETY (for the pointer's later use in `with_ctx`): `caller` lives on
    // the caller's frame until after the pop below, and is not used
    // through the `&mut` meanwhile.
    let caller_ptr = CallerPtr((&raw mut *caller).cast());
    let outermost = inner.callers.borrow().is_empty();
    let started = sandbox.ticks();
    if outermost {
        inner.nested_guest.set(0);
        inner.host_since.set(started);
    }
    inner.callers.borrow_mut().push(caller_ptr);
    let r = f();
    inner.callers.borrow_mut().pop();
    if outermost {
        // The host's time in the callback does not count against the
        // library's deadline; the library's nested calls do.
        // Measured in epoch ticks: a callback shorter than a tick is
        // charged a whole one when it crosses a tick boundary and nothing
        // otherwise, which is right on average and costs two atomic loads.
        let now = sandbox.ticks();
        let host = now
            .saturating_sub(started)
            .saturating_sub(inner.nested_guest.get());
        if host > 0 {
            let at = inner.deadline_at.get() + host;
            inner.deadline_at.set(at);
            super::lifecycle::set_deadline(
                &mut caller.as_context_mut(),
                now,
                at.saturating_sub(now).max(1),
            );
        }
    }
    r
}

/// The body of every callback's host function: `space` holds the
/// parameters of wasm signature `made` (which has a result if `returns`) on
/// entry, and the result on return.
fn host_call(
    ptr: SharedPtr,
    idx: usize,
    made: &str,
    returns: bool,
    mut caller: Caller<'_, State>,
    space: &mut [MaybeUninit<ValRaw>],
) -> wasmtime::Result<()> {
    let sandbox = ptr.borrow();
    let sandbox: &Sandbox = &sandbox;
    // This thread holds the lock already (it is running the guest call).
    let inner = sandbox.lock();
    let recorded = Sandbox::batch_pending(&inner, &caller);
    in_host(sandbox, &inner, &mut caller, || {
        // Calls recorded before this one are delivered first. Before the
        // lookup: their closures may drop this callback's handle.
        if recorded {
            sandbox.drain(&inner);
        }
        run_callback(sandbox, &inner, idx, made, returns, space)
    })
}

/// Runs the callback in slot `idx` (see `host_call`).
fn run_callback(
    sandbox: &Sandbox,
    inner: &Inner,
    idx: usize,
    made: &str,
    returns: bool,
    space: &mut [MaybeUninit<ValRaw>],
) -> wasmtime::Result<()> {
    let entry = match inner.calls.lookup(idx as u64) {
        // SAFETY: the entry was in its slot just now, and leaves it only in
        // `CallState::remove`, which (under this lock, so on this thread)
        // hands it to `Pending::retire` while a callback runs: kept until
        // `take_retired` below, after the run and after the last use of the
        // reference. Nothing between here and the run executes user code
        // that could drop a handle.
        SlotEntry::Live(p) => Some(unsafe { &*p }),
        // Every slot with a host function was handed out once.
        SlotEntry::Dropped | SlotEntry::Unknown => None,
    };
    let Some(entry) = entry else {
        // The handle was dropped: C sees zero (the same bits for every wasm
        // value type), and the call in progress fails.
        if returns {
            if let Some(slot) = space.first_mut() {
                *slot = MaybeUninit::new(ValRaw::i64(0));
            }
        }
        inner
            .calls
            .pending
            .record(callback_dropped(sandbox.shared.table_base + idx as u64));
        return Ok(());
    };
    // A batched callback without a recorder (yet): counted; the recorder
    // is installed at the end, after the last use of `entry` (installing
    // runs the library's malloc, which could run callbacks that drop it).
    let promote = entry.captures.is_some() && sandbox.count_unrecorded(entry);
    // The slot's host function was made for this entry's own key in the
    // common case (the same `Arc`): compare addresses before contents.
    let same_type = std::ptr::eq(&*entry.key, made) || *entry.key == *made;
    if !same_type || space.len() < entry.args.len().max(usize::from(entry.ret.is_some())) {
        return Err(wasmtime::Error::msg(format!(
            "callback slot {} holds a callback of type {} but was called as {made}",
            sandbox.shared.table_base + idx as u64,
            entry.key
        )));
    }
    let raws = lift_args(
        &entry.args,
        space.iter().map(|v| {
            // SAFETY: wasmtime initialised one parameter of signature
            // `made` (checked equal to the entry's) in each leading slot,
            // and `lift_args` reads only as many as the entry has.
            unsafe { v.assume_init() }
        }),
    );
    // C sees zero unless the closure returns a value.
    if let Some(p) = entry.ret {
        space[0] = MaybeUninit::new(zero_raw(p));
    }
    let ret = entry.ret;
    // SAFETY: this thread holds the sandbox's lock (`inner`) for the whole
    // run, the lock every callback of this sandbox runs under; `entry`
    // stays alive even if the closure drops its handle (`Pending::retire`).
    let result = unsafe { inner.calls.pending.run(&entry.f, &entry.sig, sandbox, raws) };
    // The last use of `entry` was in the run. Entries retired meanwhile go
    // once no callback runs (their closures may own other callbacks, whose
    // drop then frees them at once). The `Shared` they reach only weakly
    // stays alive: the `Sandbox` making this guest call holds it.
    drop(inner.calls.pending.take_retired());
    if let (Some(raw), Some(p)) = (result, ret) {
        match to_raw(p, raw, &|| "callback return value".into()) {
            Ok(v) => space[0] = MaybeUninit::new(v),
            Err(e) => inner.calls.pending.record(e),
        }
    }
    if promote {
        sandbox.install_recorder(inner, idx);
    }
    Ok(())
}
