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

use std::cell::Cell;
use std::sync::Arc;

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::strategy::{CallbackFn, Memory, Pending};
use crate::types::{DataModel, FnSig, Prim, Raw};

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

/// Notes that C called the callback at `addr` after its handle was dropped:
/// the call in progress on this thread fails with
/// [`Error::CallbackDropped`] when it returns (see [`finish`]).
pub(crate) fn dead_callback_called(addr: u64) {
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
    let dead = DEAD_CALLED.with(Cell::take);
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
