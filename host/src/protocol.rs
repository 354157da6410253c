//! The call protocol every strategy shares, written once: the lowered
//! signature and its argument checks, the end of a call (the first callback
//! error, or a call of a dropped callback), the tail of a native callback
//! trampoline, and the release of a callback's state.
//!
//! A strategy is a transport: it says how words reach the C function and
//! come back, and how library memory is read and written. What happens
//! around that is here.

// Each item serves some strategies; a build with only some of their
// features leaves the others' unused.
#![cfg_attr(
    not(all(
        feature = "dynamic",
        feature = "sandbox",
        feature = "process",
        feature = "stubs"
    )),
    allow(dead_code)
)]

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use smallvec::SmallVec;

use crate::error::{Error, Result, StrategyKind};
use crate::strategy::{CallbackFn, Memory, Pending};
use crate::types::{Brand, DataModel, FnSig, Prim, Raw};

/// A signature lowered to machine words, once per bound function or
/// callback: what every strategy's call and trampoline walks.
#[derive(Clone, Debug)]
pub(crate) struct Lowered {
    /// One scalar per argument word.
    pub args: Arc<[Prim]>,
    /// The result's scalar, `None` for `void`.
    pub ret: Option<Prim>,
}

impl Lowered {
    /// Lowers `sig`, failing for a type that cannot be passed or returned.
    pub fn new(sig: &FnSig) -> Result<Lowered> {
        Ok(Lowered {
            args: sig.arg_words()?.into(),
            ret: sig.ret_word()?,
        })
    }

    /// Checks a call's words against the parameters under `model`: one word
    /// per parameter, each in its C type's range. Returns each word's bits
    /// as the C type holds them (zero-extended).
    #[inline]
    pub fn narrow(&self, args: &[Raw], model: DataModel) -> Result<SmallVec<[u64; 8]>> {
        self.check_arity(args)?;
        let mut out = SmallVec::with_capacity(args.len());
        for (i, (raw, prim)) in args.iter().zip(self.args.iter()).enumerate() {
            out.push(prim.narrow_to(*raw, model, || format!("argument {}", i + 1))?);
        }
        Ok(out)
    }

    /// [`Lowered::narrow`]'s checks alone, for a transport that passes the
    /// words as they are (a word that fits its C type is already what C
    /// reads: narrowing then widening gives it back).
    #[inline]
    pub fn check(&self, args: &[Raw], model: DataModel) -> Result<()> {
        self.check_arity(args)?;
        for (i, (raw, prim)) in args.iter().zip(self.args.iter()).enumerate() {
            prim.narrow_to(*raw, model, || format!("argument {}", i + 1))?;
        }
        Ok(())
    }

    /// Checks that a call got one word per parameter (what
    /// `Strategy::invoke`'s contract promises; checked all the same, since
    /// a short slice would otherwise be read past its end).
    #[inline]
    pub fn check_arity(&self, args: &[Raw]) -> Result<()> {
        if args.len() == self.args.len() {
            return Ok(());
        }
        Err(Error::InvalidValue {
            function: None,
            what: "arguments".into(),
            reason: format!("{} scalars for {} parameters", args.len(), self.args.len()),
        })
    }
}

thread_local! {
    /// The address of a dropped callback that C called on this thread
    /// during the call in progress, for a strategy whose dead trampoline
    /// cannot reach the library's [`Pending`] (Stubs' pools are shared by
    /// every handle of a table).
    static DEAD_CALLED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Whether any dead trampoline ever ran in this process: until one does,
/// [`finish`] need not look at the thread-local (a relaxed load of a line
/// that is never written again, instead of a thread-local access per call).
static ANY_DEAD_CALLED: AtomicBool = AtomicBool::new(false);

/// Notes that C called the callback at `addr` after its handle was dropped:
/// the call in progress on this thread fails with
/// [`Error::CallbackDropped`] when it returns (see [`finish`]).
pub(crate) fn dead_callback_called(addr: u64) {
    ANY_DEAD_CALLED.store(true, Ordering::Relaxed);
    DEAD_CALLED.with(|d| {
        if d.get().is_none() {
            d.set(Some(addr));
        }
    });
}

/// The error for a call of the dropped callback at `addr`.
pub(crate) fn callback_dropped(addr: u64) -> Error {
    Error::CallbackDropped {
        function: None,
        address: addr,
    }
}

/// The end of every call into a library, on every strategy: the first error
/// a callback raised during it, else the call of a dropped callback, else
/// nothing. Called by the thread that made the call, still holding the
/// library's call lock.
#[inline]
pub(crate) fn finish(pending: &Pending) -> Result<()> {
    // The flag is set on this thread before the dead trampoline returns to
    // C, so this thread sees it (program order) when the call returns.
    let dead = match ANY_DEAD_CALLED.load(Ordering::Relaxed) {
        true => DEAD_CALLED.with(Cell::take),
        false => None,
    };
    match (pending.take(), dead) {
        (Some(e), _) => Err(e),
        (None, Some(addr)) => Err(callback_dropped(addr)),
        (None, None) => Ok(()),
    }
}

/// A native library's call lock: held by the calling thread for the whole of
/// each call (re-entrantly, so a callback may call in again); its data is
/// the current call's [`Pending`] state.
pub(crate) type CallLock = ReentrantMutex<Pending>;

/// Runs a native call under `lock` and ends it with [`finish`].
#[inline]
pub(crate) fn call_locked<T>(lock: &CallLock, call: impl FnOnce() -> T) -> Result<T> {
    let pending = lock.lock();
    let r = call();
    finish(&pending).map(|()| r)
}

/// The tail of a native trampoline (Dynamic's libffi closure, Stubs'
/// generated C): runs the callback under the call lock the caller took, then
/// releases the lock and, after it, whatever handles dropped during the run
/// retired (one of which may hold the last reference to the library, and so
/// to the lock itself).
///
/// # Safety
/// As for [`Pending::run`]: `pending` guards the call lock of the library
/// that `f` belongs to, and `f` stays alive until this returns (it is owned
/// by a live handle, or retired into `pending`).
#[inline]
pub(crate) unsafe fn run_and_release(
    pending: ReentrantMutexGuard<'_, Pending>,
    f: &CallbackFn,
    sig: &FnSig,
    mem: &dyn Memory,
    raws: &[Raw],
) -> Option<Raw> {
    // SAFETY: the caller's promise, passed on.
    let result = unsafe { pending.run(f, sig, mem, Ok(raws)) };
    // `f` is not used from here on.
    let retired = pending.take_retired();
    drop(pending);
    drop(retired);
    result
}

/// Releases a callback's state when its handle is dropped: under the
/// library's call lock, `take` takes the state out of where the trampoline
/// finds it (after which the callback's address runs a dead trampoline),
/// and the state is handed to [`Pending::retire`] (kept while a callback
/// runs on this thread, since the running trampoline may be borrowing it),
/// then dropped after the lock.
///
/// Holding the lock matters: a call in progress on another thread may be
/// about to run this callback (C has its address), so nothing is released
/// until that call is over.
pub(crate) fn release<T: Send + 'static>(lock: &CallLock, take: impl FnOnce() -> Option<T>) {
    let pending = lock.lock();
    let state = take().and_then(|s| pending.retire(s));
    drop(pending);
    drop(state);
}

/// A library handle's identity across resets: the brand every pointer and
/// callback it makes carries. The generation moves on at each reset of an
/// isolated strategy, so pointers into the old instance are refused.
#[derive(Debug)]
pub(crate) struct Identity {
    lib: u64,
    generation: AtomicU64,
}

impl Identity {
    /// A new library instance's identity.
    pub fn fresh() -> Identity {
        Identity {
            lib: Brand::fresh().lib,
            generation: AtomicU64::new(0),
        }
    }

    /// The brand of what the handle makes now.
    #[inline]
    pub fn brand(&self) -> Brand {
        Brand {
            lib: self.lib,
            generation: self.generation(),
        }
    }

    /// The current reset generation.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// A reset happened: what was made before is stale.
    pub fn next_generation(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why an isolated library is poisoned (it trapped, exited, crashed or
/// broke the protocol), if it is: kept under the library's lock, cleared by
/// a reset.
#[derive(Debug, Default)]
pub(crate) struct Poison(RefCell<Option<String>>);

impl Poison {
    /// Fails with [`Error::Poisoned`] naming `library` (on `strategy`) if
    /// poisoned.
    pub fn check(&self, strategy: StrategyKind, library: &str) -> Result<()> {
        match &*self.0.borrow() {
            Some(reason) => Err(Error::Poisoned {
                strategy,
                function: None,
                library: library.to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Poisons the library with `err`, which is returned.
    pub fn set(&self, err: Error) -> Error {
        *self.0.borrow_mut() = Some(err.to_string());
        err
    }

    /// Why it is poisoned.
    pub fn reason(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// A reset cleared it.
    pub fn clear(&self) {
        *self.0.borrow_mut() = None;
    }
}

/// What an isolated strategy keeps per instance, under the instance's
/// lock: poisoning, the current call's nesting depth and first callback
/// error, and the live callbacks by slot. The transport (a wasm table, a
/// worker's trampolines) only installs an entry at its slot's address; slot
/// allocation, release when a handle drops, and re-installation after a
/// reset are here.
pub(crate) struct CallState<E> {
    /// Set when the library trapped, crashed or broke the protocol.
    pub poisoned: Poison,
    /// The first error a callback raised during the current call.
    pub pending: Pending,
    /// Calls into the library in progress on the lock holder's thread.
    pub depth: Cell<u32>,
    /// Live callbacks by slot; `None` for a slot whose handle dropped.
    slots: RefCell<Vec<Option<Arc<E>>>>,
}

/// What a slot holds, for a transport's callback entry point.
pub(crate) enum SlotEntry<E> {
    /// A live callback. The pointer stays valid until after the caller's
    /// [`Pending::take_retired`] following its run (a handle dropped
    /// meanwhile retires the entry there), provided the caller holds the
    /// instance's lock from the lookup through that call.
    Live(*const E),
    /// A slot whose handle was dropped: C kept its address.
    Dropped,
    /// No such slot was ever handed out.
    Unknown,
}

impl<E: Send + Sync + 'static> Default for CallState<E> {
    fn default() -> Self {
        CallState {
            poisoned: Poison::default(),
            pending: Pending::default(),
            depth: Cell::new(0),
            slots: RefCell::new(Vec::new()),
        }
    }
}

impl<E: Send + Sync + 'static> CallState<E> {
    /// Puts `entry` in the first free slot, at most `max` slots (else
    /// `full()`), and installs it there with the transport's `install`;
    /// the slot is freed again if that fails.
    pub fn add<T>(
        &self,
        entry: Arc<E>,
        max: usize,
        full: impl FnOnce() -> Error,
        install: impl FnOnce(usize, &E) -> Result<T>,
    ) -> Result<(usize, T)> {
        let idx = {
            let mut slots = self.slots.borrow_mut();
            let idx = match slots.iter().position(Option::is_none) {
                Some(i) => i,
                None if slots.len() < max => {
                    slots.push(None);
                    slots.len() - 1
                }
                None => return Err(full()),
            };
            slots[idx] = Some(entry.clone());
            idx
        };
        match install(idx, &entry) {
            Ok(t) => Ok((idx, t)),
            Err(e) => {
                self.slots.borrow_mut()[idx] = None;
                Err(e)
            }
        }
    }

    /// What slot `idx` holds.
    pub fn lookup(&self, idx: u64) -> SlotEntry<E> {
        let slots = self.slots.borrow();
        match usize::try_from(idx).ok().and_then(|i| slots.get(i)) {
            Some(Some(e)) => SlotEntry::Live(Arc::as_ptr(e)),
            Some(None) => SlotEntry::Dropped,
            None => SlotEntry::Unknown,
        }
    }

    /// The live callback in slot `idx`, shared: it stays alive while the
    /// caller holds it, whatever runs meanwhile.
    #[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
    pub fn get(&self, idx: usize) -> Option<Arc<E>> {
        self.slots.borrow().get(idx).cloned().flatten()
    }

    /// Empties slot `idx` when its handle drops. A callback running now
    /// (on this thread, since the caller holds the lock) may be this one
    /// and borrow its entry: the entry is then kept until the run's
    /// [`Pending::take_retired`].
    pub fn remove(&self, idx: usize) {
        let removed = self.slots.borrow_mut().get_mut(idx).and_then(Option::take);
        // The borrow ended above: dropping the entry drops its closure,
        // which may own other callbacks, whose guards come back here.
        drop(removed.and_then(|e| self.pending.retire(e)));
    }

    /// Starts a reset of the instance `what` names: refused during a call
    /// into it; otherwise poisoning and any pending error are cleared.
    pub fn start_reset(&self, what: impl FnOnce() -> String) -> Result<()> {
        if self.depth.get() > 0 {
            return Err(Error::Busy {
                function: None,
                what: what(),
                reason: "reset() cannot run while a call into the library is in progress".into(),
            });
        }
        self.poisoned.clear();
        self.pending.take();
        Ok(())
    }

    /// Installs every slot again in a new instance, at the same index
    /// (`None` for an emptied one), with the transport's `install`.
    pub fn reinstall(
        &self,
        mut install: impl FnMut(usize, Option<&E>) -> Result<()>,
    ) -> Result<()> {
        let n = self.slots.borrow().len();
        for idx in 0..n {
            let entry = self.slots.borrow()[idx].clone();
            install(idx, entry.as_deref())?;
        }
        Ok(())
    }
}

/// A callback entry that batch records can name: what [`run_batch`] needs
/// of a strategy's entry.
pub(crate) trait BatchTarget {
    /// The argument words a record for it carries, or `None` if it is not
    /// batched (then no record may name it).
    fn batch_words(&self) -> Option<usize>;
    /// Its C signature.
    fn signature(&self) -> &FnSig;
    /// Its closure.
    fn closure(&self) -> &CallbackFn;
}

/// A batch record's fixed part: its `u32` size and `u32` slot.
pub(crate) const RECORD_HEAD: usize = 8;

/// Why a batch was refused: the offset of its first bad record, and what is
/// wrong with it. No closure of the batch ran.
pub(crate) struct BadRecord {
    /// The record's byte offset in the batch.
    pub at: usize,
    /// What is wrong, to follow "a record at ...".
    pub what: String,
}

/// Runs a batch of recorded callback calls, each record `[u32 size | u32
/// slot | u64 word per argument | copies]` (little-endian, `size` a
/// multiple of 8 counting the whole record), the one format the Process
/// worker and the Sandbox's recorders write.
///
/// Every record is checked and its callback resolved before any closure
/// runs, so a bad record anywhere refuses the whole batch, and each record
/// reaches the callback that was live when C made the call (a closure may
/// drop a handle whose calls are queued here, and a new callback take its
/// slot). Then each live record runs in order through [`Pending::run`],
/// with the words `lift` turns its argument words into; a record for a
/// dropped slot fails the call with [`Error::CallbackDropped`] at
/// `dropped(slot)`. Handles retired meanwhile are released at the end.
///
/// # Safety
/// The calling thread holds the instance's lock, the one every callback of
/// `calls` runs under, for the whole call (as [`Pending::run`] requires);
/// `mem` is that instance's memory; `dropped` and `lift` only convert
/// values and run no user code (the entries resolved up front stay valid
/// because user code runs only inside [`Pending::run`]).
pub(crate) unsafe fn run_batch<E: BatchTarget + Send + Sync + 'static>(
    calls: &CallState<E>,
    bytes: &[u8],
    mem: &dyn Memory,
    dropped: impl Fn(u32) -> u64,
    lift: impl Fn(&E, &[u8]) -> Result<SmallVec<[Raw; 8]>>,
) -> std::result::Result<(), BadRecord> {
    // (argument words, the entry, or the slot of a dropped one)
    let mut runs: Vec<(&[u8], std::result::Result<*const E, u32>)> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let bad = |what: String| BadRecord { at, what };
        let Some(head) = bytes.get(at..at + RECORD_HEAD) else {
            return Err(bad("cut short".into()));
        };
        let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let slot = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if size < RECORD_HEAD || !size.is_multiple_of(8) || size > bytes.len() - at {
            return Err(bad(format!(
                "of {size} bytes, with {} left",
                bytes.len() - at
            )));
        }
        let record = &bytes[at + RECORD_HEAD..at + size];
        let p = match calls.lookup(u64::from(slot)) {
            SlotEntry::Live(p) => p,
            SlotEntry::Dropped => {
                runs.push((record, Err(slot)));
                at += size;
                continue;
            }
            SlotEntry::Unknown => {
                return Err(bad(format!("for callback slot {slot}, never handed out")));
            }
        };
        // SAFETY: live in its slot just now, under the caller's lock; no
        // user code has run since the lookup.
        let entry = unsafe { &*p };
        match entry.batch_words() {
            Some(n) if record.len() >= 8 * n => {}
            n => {
                return Err(bad(format!(
                    "for `{}`, which {}",
                    entry.signature().c_prototype("(*)"),
                    match n {
                        None => "is not batched".to_string(),
                        Some(n) => format!("takes {n} argument words"),
                    }
                )));
            }
        }
        runs.push((record, Ok(p)));
        at += size;
    }
    for (record, entry) in runs {
        let entry = match entry {
            // SAFETY: resolved above while live in its slot, under the
            // caller's lock, held since. An entry leaves its slot only
            // through `CallState::remove` under that lock; user code runs
            // only inside `Pending::run` below, so a handle dropped by it (or
            // by anything it calls) is retired, not freed, and released by
            // the one `take_retired` after this loop, which nothing else
            // empties while this batch runs (a nested one finds a callback
            // still running).
            Ok(p) => unsafe { &*p },
            Err(slot) => {
                calls.pending.record(callback_dropped(dropped(slot)));
                continue;
            }
        };
        let raws = lift(entry, record);
        // SAFETY: the caller holds the lock every callback of this instance
        // runs under, for the whole batch; `entry` stays alive until after
        // the loop (above).
        unsafe {
            calls
                .pending
                .run(entry.closure(), entry.signature(), mem, raws)
        };
    }
    drop(calls.pending.take_retired());
    Ok(())
}

/// The instance behind an isolated strategy's callback handles: how a
/// dropped handle reaches the [`CallState`] under the instance's lock.
pub(crate) trait SlotOwner: Send + Sync + 'static {
    /// A callback entry.
    type Entry: Send + Sync + 'static;
    /// Runs `f` on the call state with the instance's lock held.
    fn with_calls(&self, f: &mut dyn FnMut(&CallState<Self::Entry>));
}

/// A callback handle's hold on its slot: dropping it empties the slot. It
/// does not keep the instance alive (when the last library handle goes, so
/// do the instance and every slot). The slot's code stays where C may have
/// kept it, and a call through it finds [`SlotEntry::Dropped`].
pub(crate) struct SlotGuard<O: SlotOwner> {
    owner: std::sync::Weak<O>,
    idx: usize,
}

impl<O: SlotOwner> SlotGuard<O> {
    /// The guard of slot `idx` of `owner`.
    pub fn new(owner: &Arc<O>, idx: usize) -> SlotGuard<O> {
        SlotGuard {
            owner: Arc::downgrade(owner),
            idx,
        }
    }
}

impl<O: SlotOwner> Drop for SlotGuard<O> {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.with_calls(&mut |calls| calls.remove(self.idx));
        }
    }
}

/// Looks `symbol` up in `library` with the transport's `find` (`dlsym`
/// here or in a worker), which gives the address or the loader's reason.
/// A name with a NUL byte (which `dlsym` would cut short and so find
/// another symbol) and a NULL address are errors too.
pub(crate) fn lookup_symbol(
    strategy: StrategyKind,
    library: &str,
    symbol: &str,
    find: impl FnOnce() -> Result<std::result::Result<u64, String>>,
) -> Result<u64> {
    let missing = |reason: String| Error::MissingSymbol {
        strategy,
        library: library.to_string(),
        symbol: symbol.to_string(),
        reason,
    };
    if symbol.as_bytes().contains(&0) {
        return Err(missing("the name contains a NUL byte".into()));
    }
    match find()? {
        Ok(0) => Err(missing("the symbol's address is NULL".into())),
        Ok(addr) => Ok(addr),
        Err(reason) => Err(missing(reason)),
    }
}

/// What a native library handle (Dynamic, Stubs) holds besides its
/// transport: its name, its brand (a native library is never reset) and
/// its call lock, which the library's callback trampolines share.
pub(crate) struct NativeCore {
    /// The library's name, for messages.
    pub name: String,
    /// What its pointers and callbacks carry.
    pub brand: Brand,
    /// Held by the calling thread for the whole of each call.
    pub calls: Arc<CallLock>,
}

impl NativeCore {
    /// The core of a newly opened handle on the library instance `instance`
    /// (its `dlopen` handle, its stub table's address): handles on one
    /// instance share its call lock, since they share its C state.
    pub fn new(name: String, instance: usize) -> NativeCore {
        NativeCore {
            name,
            brand: Brand::fresh(),
            calls: instance_lock(instance),
        }
    }
}

/// The call lock of the native library instance `instance`, shared by every
/// handle opened on it. Two `Dynamic::open`s of one shared object, or two
/// `Stubs::open`s of one table, reach one copy of the library's C state (its
/// globals, the callback pointers it keeps, its stub slots): with a lock
/// each, calls through the two handles could run in the library at once,
/// and a callback slot could be written under one lock while the library
/// calls it under the other.
fn instance_lock(instance: usize) -> Arc<CallLock> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, Weak};
    static LOCKS: OnceLock<Mutex<HashMap<usize, Weak<CallLock>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(lock) = locks.get(&instance).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, l| l.strong_count() > 0);
    let lock = Arc::new(CallLock::new(Pending::default()));
    locks.insert(instance, Arc::downgrade(&lock));
    lock
}
