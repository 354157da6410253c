//! The `Stubs` strategy (ctypes' Cstubs): calls through C wrappers that
//! `sandlink-build` generated from the binding module and compiled against
//! the library's headers, linked into the program. The C compiler checked
//! every declared signature at build time; a call is one indirect call of
//! the generated wrapper, with no libffi and no symbol lookup (or, for a
//! function of plain scalars whose type the compiler found to be exactly
//! the declared one, a direct call through a typed pointer, as Dynamic
//! makes); callbacks are generated C trampolines, one pool per callback
//! signature.
//!
//! Like `Dynamic`, there is no isolation: the library runs in the host's
//! address space.
//!
//! ```text
//! // build.rs
//! let rec = sandlink::record::Recorder::new("expat");
//! my_bindings::Expat::new(rec.clone())?;          // the same binding module
//! sandlink_build::Library::new("expat")
//!     .files(sources).include(dir).stub_header("expat.h")
//!     .stubs(rec.spec()?)
//!     .build()?;
//! // src/lib.rs
//! include!(env!("SANDLINK_EXPAT_STUBS"));          // defines `stub_table()`
//! let lib = unsafe { sandlink::Stubs::open(stub_table()) }?;
//! ```

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use sandlink_guest_shim::abi::stubs::{self as abi, CallFn, StubPool, StubSlot, ViaFn};
use smallvec::SmallVec;

pub use sandlink_guest_shim::abi::stubs::StubTable;

use crate::backend::native::{self, MODEL};
use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{
    call_locked, dead_callback_called, release, run_and_release, Lowered, NativeCore,
};
use crate::record::{callback_key, function_key, key_prototype};
use crate::strategy::{CallbackFn, ErasedFn, Strategy};
use crate::types::{FnSig, Raw};

/// A C library linked through generated stubs.
///
/// A handle is `Send`: it (and functions bound from it) may move to another
/// thread. Calls into the library are serialised, one at a time (a
/// callback may call in again on the calling thread), across every handle
/// opened on the same table, since they share one linked library. It is not
/// `Sync`; clones share the handle.
#[derive(Clone)]
pub struct Stubs {
    inner: Arc<Inner>,
    _not_sync: PhantomData<Cell<()>>,
}

struct Inner {
    /// Name, brand and call lock.
    core: NativeCore,
    /// Each function's stubs, by name: `(key, wrapper)`.
    fns: HashMap<String, Vec<StubEntry>>,
    /// Each callback signature's pool, by key.
    pools: HashMap<String, Pool>,
    /// Each global's address, by name.
    globals: HashMap<String, u64>,
}

/// A pool of trampolines in the generated C data.
#[derive(Clone, Copy)]
struct Pool {
    slots: *mut StubSlot,
    codes: *const Option<unsafe extern "C" fn()>,
    n: usize,
    /// Calls a function pointer of the pool's type.
    via: ViaFn,
}

// SAFETY: the pool's pointers lead to the generated table's static data; the
// slots are written only under `SLOTS` (see `Slots`), the codes never.
unsafe impl Send for Pool {}
// SAFETY: as for `Send`.
unsafe impl Sync for Pool {}

/// Which slots of each pool are taken, process-wide (two handles opened from
/// the same table share its pools), keyed by the slots' address.
static SLOTS: OnceLock<Mutex<HashMap<usize, Vec<bool>>>> = OnceLock::new();

fn slots() -> MutexGuard<'static, HashMap<usize, Vec<bool>>> {
    let m = SLOTS.get_or_init(|| Mutex::new(HashMap::new()));
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl std::fmt::Debug for Stubs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stubs({})", self.inner.core.name)
    }
}

/// Reads a string of the generated table.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that lives forever.
unsafe fn table_str(p: *const c_char, what: &str) -> Result<String> {
    if p.is_null() {
        return Err(Error::Load {
            strategy: StrategyKind::Stubs,
            library: "<stub table>".into(),
            reason: format!("the table's {what} is NULL"),
        });
    }
    // SAFETY: the caller's promise.
    let s = unsafe { CStr::from_ptr(p) };
    Ok(s.to_string_lossy().into_owned())
}

impl Stubs {
    /// Opens the library linked with the stubs in `table`, the function
    /// that `sandlink-build` generates (`include!(env!("SANDLINK_<NAME>_STUBS"))`
    /// defines `stub_table()`).
    ///
    /// # Safety
    /// There is no isolation: the library's code runs in this process. The
    /// caller promises what [`crate::Dynamic::open`] asks for, for this
    /// library: its code is sound; every call a binding makes, with any
    /// arguments its types accept, is one the library allows; every pointer
    /// it returns or passes to a callback points at what its declared type
    /// says; it calls a callback only during a call into it, on the calling
    /// thread. What the C compiler checked at build time is not part of the
    /// promise: each bound function's signature and each struct's layout
    /// agree with the headers (a description binds only if its full
    /// structure, every C type and struct field, is the one the stub was
    /// generated from). What a `void *`, an opaque struct
    /// or a global points at was not checked. And `table` is one that
    /// `sandlink-build` generated, of this version of Sandlink.
    pub unsafe fn open(table: &'static StubTable) -> Result<Stubs> {
        // SAFETY: the table is sandlink-build's (the caller's promise): its
        // strings are NUL-terminated and static.
        let name = unsafe { table_str(table.library, "library name") }?;
        if table.version != abi::VERSION {
            return Err(Error::Load {
                strategy: StrategyKind::Stubs,
                library: name,
                reason: format!(
                    "the stub table has ABI version {}, this Sandlink reads version {}: \
                     rebuild it with the same sandlink-build",
                    table.version,
                    abi::VERSION
                ),
            });
        }
        let mut fns: HashMap<String, Vec<StubEntry>> = HashMap::new();
        for i in 0..table.nfns as usize {
            // SAFETY: the table holds `nfns` entries (generated together).
            let f = unsafe { &*table.fns.add(i) };
            // SAFETY: as above: static, NUL-terminated strings.
            let (fname, key) = unsafe { (table_str(f.name, "name")?, table_str(f.key, "key")?) };
            fns.entry(fname).or_default().push(StubEntry {
                key,
                call: f.call,
                direct: f.direct,
            });
        }
        let mut pools = HashMap::new();
        for i in 0..table.npools as usize {
            // SAFETY: the table holds `npools` entries.
            let p: &StubPool = unsafe { &*table.pools.add(i) };
            // SAFETY: as above.
            let key = unsafe { table_str(p.key, "callback key") }?;
            pools.insert(
                key,
                Pool {
                    slots: p.slots,
                    codes: p.codes,
                    n: p.nslots as usize,
                    via: p.call,
                },
            );
        }
        let mut globals = HashMap::new();
        for i in 0..table.nglobals as usize {
            // SAFETY: the table holds `nglobals` entries.
            let g = unsafe { &*table.globals.add(i) };
            // SAFETY: as above.
            let gname = unsafe { table_str(g.name, "global name") }?;
            globals.insert(gname, g.addr as usize as u64);
        }
        Ok(Stubs {
            inner: Arc::new(Inner {
                // One linked library per table: handles on it share its lock.
                core: NativeCore::new(name, table as *const StubTable as usize),
                fns,
                pools,
                globals,
            }),
            _not_sync: PhantomData,
        })
    }

    /// The functions the stubs were generated for, with their declared
    /// prototypes.
    pub fn declared(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .fns
            .values()
            .flatten()
            .map(|e| key_prototype(&e.key).to_string())
            .collect();
        v.sort();
        v
    }
}

/// A function bound to its generated wrapper.
#[derive(Clone)]
pub struct StubFunc {
    call: Call,
    /// The function's code, when the compiler found the declared type
    /// compatible with its own (see [`abi::StubFn::direct`]).
    direct: Option<unsafe extern "C" fn()>,
    words: Lowered,
    errno: bool,
}

/// A generated stub of a function, from the table.
struct StubEntry {
    /// The declaration it was generated from (`function_key`).
    key: String,
    /// Its wrapper.
    call: CallFn,
    /// The function itself, for direct calls, if its type is the declared one.
    direct: Option<unsafe extern "C" fn()>,
}

/// How a bound function is reached.
#[derive(Clone, Copy)]
enum Call {
    /// The wrapper generated for the declared function.
    Wrapper(CallFn),
    /// A function pointer the library returned, through the caller
    /// generated for its type.
    Via(ViaFn, unsafe extern "C" fn()),
}

native::native_memory!(Stubs);

// SAFETY: `resolve` binds only a stub generated from a description of the
// same full structure (`function_key`: so the wrapper unpacks exactly the
// words `sig` lowers to) and fails for a signature that does not lower; `invoke`
// passes the words unchanged after range checks; `direct_code` gives only
// the code of a function whose type the C compiler found compatible with
// the declared one (the generated `__builtin_types_compatible_p` test), and
// `invoke_direct` runs it under the call lock as `invoke` does; a trampoline runs the
// erased function only through its slot, which the guard clears before the
// state can go, and a run in progress keeps the state (`Pending::retire`).
unsafe impl Strategy for Stubs {
    type Func = StubFunc;

    const NAME: StrategyKind = StrategyKind::Stubs;

    fn library_name(&self) -> String {
        self.inner.core.name.clone()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<StubFunc> {
        let words = Lowered::new(sig)?;
        let Some(candidates) = self.inner.fns.get(name) else {
            return Err(Error::MissingSymbol {
                strategy: StrategyKind::Stubs,
                library: self.inner.core.name.clone(),
                symbol: name.into(),
                reason: "no stub was generated for it: the binding module evaluated in \
                         build.rs does not declare it"
                    .into(),
            });
        };
        let key = function_key(name, sig);
        let Some(entry) = candidates.iter().find(|e| e.key == key) else {
            // The prototypes, for people; the full keys when only the
            // structure behind a name differs.
            let same_spelling = candidates
                .iter()
                .any(|e| key_prototype(&e.key) == key_prototype(&key));
            let show = |k: &str| {
                if same_spelling {
                    k.to_string()
                } else {
                    key_prototype(k).to_string()
                }
            };
            return Err(Error::SignatureMismatch {
                function: name.into(),
                declared: show(&key),
                actual: format!(
                    "{} (the stub was generated from that declaration: rebuild \
                     after changing the binding module)",
                    candidates
                        .iter()
                        .map(|e| show(&e.key))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            });
        };
        Ok(StubFunc {
            call: Call::Wrapper(entry.call),
            direct: entry.direct,
            words,
            errno,
        })
    }

    unsafe fn resolve_code(
        &self,
        addr: u64,
        sig: &Arc<FnSig>,
        errno: bool,
        name: &str,
    ) -> Result<StubFunc> {
        let words = Lowered::new(sig)?;
        let Some(pool) = self.inner.pools.get(&callback_key(sig)) else {
            return Err(Error::MissingSymbol {
                strategy: StrategyKind::Stubs,
                library: self.inner.core.name.clone(),
                symbol: name.into(),
                reason: "no caller was generated for this function pointer type: the binding \
                         module evaluated in build.rs declares no function that takes or \
                         returns it"
                    .into(),
            });
        };
        let p = std::ptr::with_exposed_provenance::<c_void>(addr as usize);
        // SAFETY: a function pointer has a data pointer's size; `p` is a
        // function of type `sig` that the library returned (the caller's
        // promise; lifting refuses NULL), called only through the caller
        // generated for exactly that type (the pool's key).
        let code = unsafe { std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(p) };
        Ok(StubFunc {
            call: Call::Via(pool.via, code),
            direct: None,
            words,
            errno,
        })
    }

    unsafe fn invoke(&self, f: &StubFunc, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        // A word that fits its C type is already what the wrapper reads
        // (a float's upper half is ignored), so the words pass as they are
        // once checked.
        f.words.check(args, MODEL)?;
        let mut ret: u64 = 0;
        let mut err: i32 = 0;
        let a = args.as_ptr().cast::<u64>();
        // SAFETY: the wrapper (or the caller, for a function pointer) was
        // generated for this declaration (checked in `resolve` and
        // `resolve_code`) and reads exactly `f.words.args.len()` words, which
        // is `args.len()` (checked above); `Raw` is a transparent `u64`, so
        // `args` is that array (a wrapper with no arguments reads none). The
        // callee is trusted (`Stubs::open`'s contract) and the words were
        // lowered for its signature (the caller's promise).
        call_locked(&self.inner.core.calls, || unsafe {
            match f.call {
                Call::Wrapper(call) => call(a, &mut ret, &mut err),
                Call::Via(via, code) => via(code, a, &mut ret, &mut err),
            }
        })?;
        Ok((
            f.words.ret.map(|p| p.widen(ret, MODEL)),
            f.errno.then_some(err),
        ))
    }

    fn direct_code(&self, f: &StubFunc) -> Option<unsafe extern "C" fn()> {
        // errno is read by the wrapper, right after the call.
        f.direct.filter(|_| !f.errno)
    }

    unsafe fn invoke_direct(&self, _: &StubFunc, call: &mut dyn FnMut()) -> Result<()> {
        // One call at a time per library; a callback re-enters on this thread.
        call_locked(&self.inner.core.calls, call)
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        match self.inner.globals.get(name) {
            Some(&addr) if addr != 0 => Ok(addr),
            _ => Err(Error::MissingSymbol {
                strategy: StrategyKind::Stubs,
                library: self.inner.core.name.clone(),
                symbol: name.into(),
                reason: "no stub table entry was generated for it: the binding module \
                         evaluated in build.rs does not take its address"
                    .into(),
            }),
        }
    }

    fn hold(&self) -> Box<dyn crate::strategy::HeldLock + '_> {
        Box::new(self.inner.core.calls.lock())
    }

    fn make_callback(
        &self,
        sig: &Arc<FnSig>,
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        let words = Lowered::new(sig)?;
        let key = callback_key(sig);
        let Some(pool) = self.inner.pools.get(&key).copied() else {
            return Err(Error::NotPassable {
                what: "callback".into(),
                c_type: sig.c_prototype("(*)"),
                reason: "no trampolines were generated for this type: the binding module \
                         evaluated in build.rs must declare a function that takes it"
                    .into(),
            });
        };
        let state = Arc::new(CallbackState {
            sig: sig.clone(),
            words,
            f: CallbackFn::new(f),
            lib: self.clone(),
        });
        // Under the library's call lock, as every write of a slot is: the
        // library may be calling this slot's stale address right now (a
        // callback dropped while C kept it), and it does so holding that
        // lock, on the thread making the call.
        let calls = self.inner.core.calls.lock();
        let mut taken = slots();
        let used = taken
            .entry(pool.slots as usize)
            .or_insert_with(|| vec![false; pool.n]);
        let Some(index) = used.iter().position(|u| !u) else {
            return Err(Error::LimitReached {
                strategy: StrategyKind::Stubs,
                function: None,
                library: self.inner.core.name.clone(),
                limit: format!(
                    "{} live callbacks of type `{}`",
                    pool.n,
                    sig.c_prototype("(*)")
                ),
                setting: "sandlink_build::Library::callback_slots",
                reason: "every generated trampoline of this type is in use".into(),
            });
        };
        // SAFETY: `index < pool.n`; the codes array has `n` entries.
        let code = unsafe { *pool.codes.add(index) };
        let Some(code) = code else {
            return Err(Error::Load {
                strategy: StrategyKind::Stubs,
                library: self.inner.core.name.clone(),
                reason: format!(
                    "trampoline {index} of `{}` is NULL in the stub table",
                    key_prototype(&key)
                ),
            });
        };
        used[index] = true;
        // SAFETY: slot `index` is free, and this thread holds the library's
        // call lock: the library calls a slot (a live one, or a stale one
        // that runs `dead`) only during a call into it, on the thread that
        // holds that lock (`Stubs::open`'s contract), so no trampoline reads
        // the slot while it is written; `SLOTS` keeps other writers out.
        unsafe {
            let slot = pool.slots.add(index);
            (*slot).ctx = Arc::as_ptr(&state) as *mut c_void;
            (*slot).run = Some(run);
        }
        drop(taken);
        drop(calls);
        Ok((
            code as usize as u64,
            Box::new(SlotGuard {
                state: Some(state),
                pool,
                index,
                code: code as usize as u64,
            }),
        ))
    }
}

/// What a trampoline's run needs; shared by the guard and each run.
struct CallbackState {
    sig: Arc<FnSig>,
    words: Lowered,
    f: CallbackFn,
    /// The library: its call lock is what the closure runs under.
    lib: Stubs,
}

// SAFETY: `lib`'s only non-`Sync` part is the marker that keeps the public
// handle on one thread at a time; what it shares (`Inner`: a reentrant
// mutex, immutable maps) is `Sync`. Through a shared state, `lib` is used
// only by `run`, under the library's call lock.
unsafe impl Sync for CallbackState {}

/// Holds a slot; dropping it clears the slot and frees it for reuse.
struct SlotGuard {
    /// `Some` until dropped.
    state: Option<Arc<CallbackState>>,
    pool: Pool,
    index: usize,
    /// The trampoline's address, which C may keep.
    code: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        let lib = state.lib.clone();
        release(&lib.inner.core.calls, || {
            let mut taken = slots();
            // SAFETY: the slot is this guard's (`index < n`), written under
            // `SLOTS`. A run in progress copied `ctx` already and borrows the
            // state, which `release` retires rather than drops while a
            // callback runs; a later call of the address runs `dead`, which
            // reads only its `ctx`, the address itself.
            unsafe {
                let slot = self.pool.slots.add(self.index);
                (*slot).run = Some(dead);
                (*slot).ctx = self.code as usize as *mut c_void;
            }
            if let Some(used) = taken.get_mut(&(self.pool.slots as usize)) {
                if let Some(u) = used.get_mut(self.index) {
                    *u = false;
                }
            }
            Some(state)
        });
    }
}

/// What a freed slot runs: C sees zero, and the call in progress on this
/// thread fails with `Error::CallbackDropped` (`ctx` is the slot's address).
unsafe extern "C" fn dead(ctx: *mut c_void, _args: *const u64, ret: *mut u64) {
    dead_callback_called(ctx as usize as u64);
    // SAFETY: the trampoline gives room for one word, whatever the type.
    unsafe { *ret = 0 };
}

/// The run function of every live slot.
unsafe extern "C" fn run(ctx: *mut c_void, args: *const u64, ret: *mut u64) {
    let ctx = ctx as *const CallbackState;
    // SAFETY: `ctx` is `Arc::as_ptr` of the state its slot was given, and the
    // slot is live (a freed slot runs `dead`), so its guard holds a share.
    // A guard dropped during the run (the closure dropping its own handle)
    // hands that share to `Pending::retire` under the call lock, released
    // only by `run_and_release` after the run and after the lock guard.
    let st: &CallbackState = unsafe { &*ctx };
    let words = &st.words;
    let mut raws: SmallVec<[Raw; 8]> = SmallVec::with_capacity(words.args.len());
    for (i, p) in words.args.iter().enumerate() {
        // SAFETY: the trampoline packs one word per declared parameter.
        let w = unsafe { *args.add(i) };
        raws.push(p.widen(w, MODEL));
    }
    let has_ret = words.ret.is_some();
    // Re-entrant: C calls back on the thread that called into it, which
    // holds this already (`Stubs::open`'s contract).
    let pending = st.lib.inner.core.calls.lock();
    // SAFETY: this thread holds the library's call lock for the whole run,
    // the lock every callback of this library runs under; `st` stays alive
    // until the run ends (above).
    let result = unsafe { run_and_release(pending, &st.f, &st.sig, &st.lib, &raws) };
    if has_ret {
        // SAFETY: the trampoline gives room for one word.
        unsafe { *ret = result.unwrap_or_default().0 };
    }
}
