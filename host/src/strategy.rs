//! The strategy interface: what a linking strategy implements.
//!
//! Bindings never need this module: they are written against
//! [`crate::Foreign`], the binding vocabulary, which every [`Strategy`]
//! gets for free. A new strategy implements [`Strategy`] and [`Memory`],
//! both `unsafe` to implement because the soundness of every safe binding
//! call rests on them, and [`Isolated`] if it checks every access.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{Error, Result};
pub(crate) use crate::types::marshal::Memory;
use crate::types::{CType, FnSig, Raw};

/// A callback's closure with its types erased: lifts the scalars C passed,
/// runs the Rust closure, lowers its result.
///
/// The closure lifts its arguments with [`crate::types::Shadow::lift`], so
/// it may be called only as [`Strategy::make_callback`] says.
pub type ErasedFn = Box<dyn FnMut(&dyn Memory, &[Raw]) -> Result<Option<Raw>> + Send>;

/// A linking strategy (Dynamic, Sandbox, …): resolves and calls functions,
/// turns closures into C function pointers, and exposes the library's memory.
///
/// # Safety
/// Implementing it promises, besides [`Memory`]'s contract:
/// - [`Strategy::resolve`] fails for a signature that does not lower
///   (`sig.arg_words()`, `sig.ret_word()`), and what it returns calls that
///   symbol with exactly that signature;
/// - [`Strategy::make_callback`] calls the [`ErasedFn`] only while C calls
///   the code address it returned, with the words C passed for `sig`'s
///   parameters and this library's [`Memory`], never re-entrantly for the
///   same closure unless through [`CallbackFn::run`], and never after the
///   guard is dropped; the address stays safe for the library to call
///   after that (C may have kept it): it then runs no closure, C sees zero,
///   and the call in progress fails with [`Error::CallbackDropped`];
/// - values coming back from the library (results, callback arguments) are
///   passed on unchanged as the words of their declared type;
/// - [`Strategy::direct_code`] gives only the code of a function resolved
///   with that signature, callable from this process with the declared C
///   types exactly, and only for a library whose declarations the user
///   vouched for (a non-[`Isolated`] strategy opened through an `unsafe`
///   constructor); [`Strategy::invoke_direct`] runs the call as
///   [`Strategy::invoke`] would (the library's call lock held, a failed
///   callback's error returned).
pub unsafe trait Strategy: Memory + Clone + Send + 'static {
    /// A resolved function, ready to call; cloned with the [`crate::Function`]
    /// that holds it.
    type Func: Clone + Send + 'static;

    /// The strategy's name, for messages: `Dynamic`, `Stubs`, `Sandbox`,
    /// `Process`, or the build-time `Recorder` ([`Error::strategy`]).
    const NAME: crate::StrategyKind;

    /// The library's name, for messages.
    fn library_name(&self) -> String;

    /// Resolves `name` and checks it against `sig` where the strategy can.
    /// Must fail for a signature that does not lower (`sig.arg_words()`,
    /// `sig.ret_word()`).
    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<Self::Func>;

    /// Binds the code address `addr`, a function pointer of type `sig` that
    /// this library returned, as [`Strategy::resolve`] binds a symbol (and
    /// with the same promises); `name` names it in messages. A strategy
    /// that cannot call through a pointer fails with
    /// [`Error::Unsupported`].
    ///
    /// # Safety
    /// `addr` is a value this library instance, in its current reset
    /// generation, returned as a function pointer of type `sig`. (Unless the
    /// strategy is [`Isolated`], a wrong address is a wild jump.)
    unsafe fn resolve_code(
        &self,
        addr: u64,
        sig: &Arc<FnSig>,
        errno: bool,
        name: &str,
    ) -> Result<Self::Func>;

    /// Calls a resolved function with lowered arguments. Returns the raw
    /// result (widened from its C type) and `errno` when it was asked for.
    ///
    /// # Safety
    /// `f` was resolved by this library with signature `sig`, and `args` are
    /// what [`crate::types::Params::lower`] made for `sig`'s parameters on a
    /// [`Frame`] of this library, whose temporaries are still alive. (Unless
    /// the strategy is [`Isolated`], a wrong word here is a wild pointer in
    /// C.)
    unsafe fn invoke(&self, f: &Self::Func, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)>;

    /// For a strategy that runs the library's native code in this process:
    /// `f`'s code, for a direct call through a typed `extern "C"` pointer
    /// when every argument and the result is a plain scalar (see
    /// [`crate::types::Direct`]). `None` (the default) keeps every call on
    /// [`Strategy::invoke`].
    fn direct_code(&self, f: &Self::Func) -> Option<unsafe extern "C" fn()> {
        let _ = f;
        None
    }

    /// Runs `call`, which calls `f`'s code directly, the way
    /// [`Strategy::invoke`] runs a call: under the library's call lock, and
    /// failing with the error of a callback that failed during it.
    ///
    /// # Safety
    /// `f` was resolved by this library and [`Strategy::direct_code`] gave
    /// its code; `call` calls only that code, with arguments of its declared
    /// C types lowered for this library.
    unsafe fn invoke_direct(&self, f: &Self::Func, call: &mut dyn FnMut()) -> Result<()> {
        let _ = (f, call);
        Err(Error::Unsupported(format!(
            "library `{}`: this strategy makes no direct calls",
            self.library_name()
        )))
    }

    /// The address of a global (data) symbol.
    fn symbol_addr(&self, name: &str) -> Result<u64>;

    /// The value of the C constant `name` (a `#define` or an enum value) of
    /// scalar type `ty`, as the C compiler evaluated it when `sandlink-build`
    /// built the library: the symbol `sandlink_const_<name>` holds it.
    fn constant_raw(&self, name: &str, ty: &CType) -> Result<Raw> {
        let prim = ty.scalar().ok_or_else(|| Error::NotPassable {
            what: format!("constant `{name}`"),
            c_type: ty.c_name(),
            reason: "a constant is a scalar".into(),
        })?;
        let symbol = sandlink_guest_shim::abi::const_symbol(name);
        let addr = self.symbol_addr(&symbol).map_err(|e| match e {
            Error::MissingSymbol {
                library, strategy, ..
            } => Error::MissingSymbol {
                strategy,
                library,
                symbol: name.into(),
                reason: format!(
                    "no `{symbol}` in the library: constants come with a build by \
                     sandlink-build whose binding module declares them (`.stubs(..)`)"
                ),
            },
            e => e,
        })?;
        // SAFETY: `sandlink_const_<name>` is the constant sandlink-build
        // compiled into the library with the declared type (an Isolated
        // strategy checks the range; on the others it is the promise of
        // opening the library).
        unsafe { crate::types::marshal::load_word(self, prim, addr) }
    }

    /// Makes `f` callable from C as a function of type `sig` (failing, as
    /// `resolve` does, for a signature that does not lower). Returns the
    /// code address and a guard that releases it when dropped.
    fn make_callback(
        &self,
        sig: &Arc<FnSig>,
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)>;

    /// Takes the library's call lock for the calling thread until the
    /// guard drops ([`crate::Foreign::hold`]): calls on this thread then
    /// re-enter it, with no atomic read-modify-write.
    fn hold(&self) -> Box<dyn HeldLock + '_>;

    /// [`Strategy::make_callback`] for a `void` callback whose calls the
    /// library's side may record and deliver later, in order, in one
    /// crossing (`Foreign::callback_batched`'s contract). `captures` says,
    /// per argument word, what the recorder copies at the call. A strategy
    /// whose callback is no costlier than a recorded one delivers each call
    /// at once: the default.
    fn make_batched_callback(
        &self,
        sig: &Arc<FnSig>,
        captures: &[crate::types::Capture],
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        let _ = captures;
        self.make_callback(sig, f)
    }
}

/// A strategy's call lock, held for [`crate::Foreign::hold`]: any guard.
pub trait HeldLock {}
impl<T> HeldLock for T {}

/// A value only this crate can make. A method that takes one cannot be
/// called from outside, even on a type parameter whose bounds reach it.
#[derive(Clone, Copy)]
pub struct Internal(());

impl Internal {
    /// The one value.
    pub(crate) const TOKEN: Internal = Internal(());
}

/// How this crate reaches the strategy behind a binding handle: the sealed
/// supertrait of [`crate::Foreign`]. The strategy interface is not a
/// supertrait of `Foreign`, so binding code written over `L: Foreign` sees
/// the binding vocabulary and nothing else.
pub trait HasStrategy {
    /// The strategy (the handle's own type).
    type Strategy: Strategy;
    /// The strategy, for this crate only.
    fn strategy(&self, _: Internal) -> &Self::Strategy;
}

impl<S: Strategy> HasStrategy for S {
    type Strategy = S;
    #[inline(always)]
    fn strategy(&self, _: Internal) -> &S {
        self
    }
}

/// The strategy behind `lib`.
#[inline(always)]
pub(crate) fn st<L: HasStrategy>(lib: &L) -> &L::Strategy {
    lib.strategy(Internal::TOKEN)
}

/// A resolved function of the strategy behind `L`.
pub(crate) type FuncOf<L> = <<L as HasStrategy>::Strategy as Strategy>::Func;

/// A strategy that checks every access the host makes to library memory
/// against the library's own memory, and lets nothing the library does reach
/// host memory: any address, length or word is harmless there. Pointer
/// arithmetic, casts and host-chosen lengths are safe on such a strategy
/// (the [`crate::Foreign`] methods that require `Self: Isolated`).
///
/// Implemented by [`crate::Sandbox`] and [`crate::Process`]; sealed, like
/// [`crate::Foreign`].
///
/// # Safety
/// Implementing it promises that the raw memory methods and `invoke` of the
/// strategy behind the handle are sound for every argument, not only for
/// those their `# Safety` sections describe.
pub unsafe trait Isolated: crate::Foreign {
    /// Replaces the library's instance with a fresh one (a new wasm
    /// instance, a new worker process): its memory and state start over,
    /// poisoning is cleared, and live callbacks are re-installed at the same
    /// addresses. Bound functions and callbacks keep working; pointers into
    /// the old instance become [`crate::Error::StalePointer`]. Fails with
    /// [`crate::Error::Busy`] during a call into the library.
    fn reset(&self) -> crate::Result<()>;

    /// Why the library is poisoned, if it is: after it trapped, exited,
    /// crashed or broke the protocol, every call fails with
    /// [`crate::Error::Poisoned`] until [`Isolated::reset`].
    fn poisoned(&self) -> Option<String>;
}

/// An erased callback as a strategy keeps it: the closure and a flag that
/// refuses re-entry of the same closure.
///
/// It is `Sync`, so that callback state can be shared, but the closure runs
/// only through [`CallbackFn::run`], whose callers hold the library's call
/// lock: that lock, not this type, keeps two threads out, and it orders one
/// thread's run before the next (no atomic read-modify-write per callback).
pub struct CallbackFn {
    busy: Cell<bool>,
    f: UnsafeCell<ErasedFn>,
}

// SAFETY: `busy` and `f` are touched only by `run`, whose contract has the
// calling thread hold the library's call lock for its whole length, the same
// lock for every run of this value; the lock's acquire/release orders them.
// `ErasedFn` is `Send`, so the closure may run on whichever thread holds it.
unsafe impl Sync for CallbackFn {}

impl CallbackFn {
    /// Wraps a closure for [`Strategy::make_callback`]'s state.
    #[cfg_attr(
        not(any(
            feature = "dynamic",
            feature = "sandbox",
            feature = "process",
            feature = "stubs"
        )),
        allow(dead_code)
    )]
    pub fn new(f: ErasedFn) -> CallbackFn {
        CallbackFn {
            busy: Cell::new(false),
            f: UnsafeCell::new(f),
        }
    }

    /// Runs the closure for a strategy's trampoline: refuses re-entry of the
    /// same closure, catches panics at the C boundary, and names the
    /// callback in any error.
    ///
    /// # Safety
    /// The calling thread holds the library's call lock (the one that
    /// serialises calls into the library this callback belongs to) from
    /// before this call until after it returns, and every run of this value
    /// is made under that same lock. The caller also keeps `self` alive for
    /// the whole run, even if the closure drops the callback's handle.
    pub unsafe fn run(&self, sig: &FnSig, mem: &dyn Memory, raws: &[Raw]) -> Result<Option<Raw>> {
        let name = || sig.c_prototype("(*)");
        if self.busy.get() {
            return Err(Error::Callback {
                function: None,
                callback: name(),
                source: Box::new(Error::Busy {
                    function: None,
                    what: format!("callback `{}`", name()),
                    reason: "the callback was re-entered while it was running".into(),
                }),
            });
        }
        self.busy.set(true);
        // SAFETY: under the lock (the caller's promise) and with `busy` set,
        // no other reference to the closure exists until `busy` is cleared:
        // a re-entrant run on this thread returned above.
        let f = unsafe { &mut *self.f.get() };
        let r = catch_unwind(AssertUnwindSafe(|| f(mem, raws)));
        self.busy.set(false);
        match r {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(Error::Callback {
                function: None,
                callback: name(),
                source: Box::new(e),
            }),
            Err(payload) => Err(Error::CallbackPanicked {
                function: None,
                callback: name(),
                message: payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into()),
            }),
        }
    }
}

/// The first error a callback raised during the current call into the
/// library. C cannot unwind, so a failing callback returns zero to C, later
/// callbacks of the same call do no Rust work, and the call returns this
/// error when C returns.
///
/// It also keeps callback state alive while callbacks run: a trampoline
/// borrows its callback's state (no reference count per run), so a handle
/// dropped during a run [`retire`](Pending::retire)s its state here, and the
/// trampoline frees it with [`take_retired`](Pending::take_retired) once no
/// callback runs.
#[derive(Default)]
pub struct Pending {
    error: RefCell<Option<Error>>,
    /// Callback runs in progress (nested ones included).
    running: Cell<u32>,
    retired: RefCell<Vec<Box<dyn Any + Send>>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("error", &self.error)
            .field("running", &self.running.get())
            .field("retired", &self.retired.borrow().len())
            .finish()
    }
}

impl Pending {
    /// Runs a callback for the current call: nothing if the call is failing
    /// already, else [`CallbackFn::run`], recording its error. `None` is what
    /// C then sees as zero.
    ///
    /// # Safety
    /// As for [`CallbackFn::run`].
    pub unsafe fn run<W: AsRef<[Raw]>>(
        &self,
        f: &CallbackFn,
        sig: &FnSig,
        mem: &dyn Memory,
        raws: Result<W>,
    ) -> Option<Raw> {
        if self.error.borrow().is_some() {
            return None;
        }
        self.running.set(self.running.get() + 1);
        // SAFETY: the caller's promise, passed on.
        let r = raws.and_then(|raws| unsafe { f.run(sig, mem, raws.as_ref()) });
        self.running.set(self.running.get() - 1);
        match r {
            Ok(r) => r,
            Err(e) => {
                self.record(e);
                None
            }
        }
    }

    /// Records `e` unless an earlier error is recorded already.
    pub fn record(&self, e: Error) {
        self.error.borrow_mut().get_or_insert(e);
    }

    /// The recorded error, clearing it: called when the call returns.
    pub fn take(&self) -> Option<Error> {
        self.error.borrow_mut().take()
    }

    /// Called with the library's call lock held, when a callback's handle
    /// is dropped: if a callback is running (on this thread, since the lock
    /// is held), `state` is kept until [`Pending::take_retired`] after the
    /// outermost run, because the running trampoline may be borrowing it;
    /// otherwise it is handed back, to be dropped at once.
    pub fn retire<T: Send + 'static>(&self, state: T) -> Option<T> {
        if self.running.get() == 0 {
            return Some(state);
        }
        self.retired.borrow_mut().push(Box::new(state));
        None
    }

    /// What [`Pending::retire`] kept, once no callback runs (empty before):
    /// a trampoline calls it after its run and drops the result after its
    /// last use of the state it borrowed (and of the lock guard, if the
    /// state may own the library).
    pub fn take_retired(&self) -> Vec<Box<dyn Any + Send>> {
        if self.running.get() != 0 {
            return Vec::new();
        }
        std::mem::take(&mut *self.retired.borrow_mut())
    }
}
