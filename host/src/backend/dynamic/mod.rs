//! The `Dynamic` strategy: `dlopen`/`dlsym`; a function whose arguments and
//! result are all plain scalars is called through a typed `extern "C"`
//! pointer ([`crate::types::Direct`]), any other through a libffi call
//! interface prepared once at bind time; callbacks through libffi closures.
//!
//! There is no isolation: the library shares the host's address space. This
//! is the baseline, and the "no-op sandbox" to migrate from.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_void, OsStr};
use std::marker::PhantomData;
use std::sync::Arc;

use libffi_sys as ffi;
use libloading::os::unix::Library;
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::backend::native::{self, errno_location, MODEL};
use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{
    call_locked, callback_dropped, lookup_symbol, release, run_and_release, CallLock, Lowered,
    NativeCore,
};
use crate::strategy::{CallbackFn, ErasedFn, Strategy};
use crate::types::{FnSig, Prim, Raw, WordClass};

/// A shared library loaded in-process with `dlopen`.
///
/// A handle is `Send`: it (and functions bound from it) may move to another
/// thread. Calls into the library are serialised, one at a time (a callback
/// may call in again on the calling thread), across every handle on the
/// same loaded library (`dlopen` gives them one handle). It is not `Sync`;
/// clones share the library.
#[derive(Clone)]
pub struct Dynamic {
    inner: Arc<Inner>,
    _not_sync: PhantomData<Cell<()>>,
}

struct Inner {
    lib: Library,
    /// Name, brand and call lock; the lock is shared with the library's
    /// callback slots, which outlive the handle.
    core: NativeCore,
    /// Callback slots whose handles were dropped, for reuse.
    parked: Mutex<Vec<&'static Slot>>,
}

impl std::fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dynamic({})", self.inner.core.name)
    }
}

impl Dynamic {
    /// Loads a shared library by path (`./libfoo.so`) or by name as `dlopen`
    /// searches for it (`libexpat.so.1`).
    ///
    /// # Safety
    /// There is no isolation: the library's initialisers run now, and its
    /// code runs in this process. The caller promises, for as long as the
    /// handle and anything made from it live:
    /// - the library's code is sound, and so are its initialisers;
    /// - the descriptions used with it are right: each function's
    ///   signature, each struct's fields and layout, each array's length
    ///   and each global's type match the library's real ones;
    /// - every call made through a binding, with any arguments its types
    ///   accept, is one the library's documentation allows (a binding of
    ///   `free` or `memcpy` turns that into a promise at each call site);
    /// - every pointer the library returns or passes to a callback points at
    ///   what its declared type says (a `string` at a NUL-terminated string,
    ///   a buffer at that many bytes) while the host uses it;
    /// - the library may be called from any thread, one call at a time (the
    ///   handle serialises calls), and it calls a callback only during a
    ///   call into it, on the calling thread.
    ///
    /// Pointer arithmetic and host-chosen lengths are not covered: those are
    /// `unsafe` on `Dynamic` (crate docs, "Soundness"). Use the Sandbox
    /// strategy for a library you do not trust.
    pub unsafe fn open(path: impl AsRef<OsStr>) -> Result<Dynamic> {
        let path = path.as_ref();
        // SAFETY: the caller trusts the library (see above).
        let lib = unsafe { Library::new(path) }.map_err(|e| Error::Load {
            strategy: StrategyKind::Dynamic,
            library: path.to_string_lossy().into_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self::from_library(lib, path.to_string_lossy().into_owned()))
    }

    /// The running process's own symbols (libc's `puts`, say).
    ///
    /// # Safety
    /// As for [`Dynamic::open`], for every library already loaded in the
    /// process.
    pub unsafe fn this_process() -> Dynamic {
        Self::from_library(Library::this(), "<this process>".into())
    }

    fn from_library(lib: Library, name: String) -> Dynamic {
        // `dlopen` gives every open of one shared object the same handle:
        // the instance whose call lock the handles share.
        let raw = lib.into_raw();
        // SAFETY: `raw` is the handle `into_raw` just took out of a live
        // `Library`, given back once.
        let lib = unsafe { Library::from_raw(raw) };
        Dynamic {
            inner: Arc::new(Inner {
                lib,
                core: NativeCore::new(name, raw as usize),
                parked: Mutex::new(Vec::new()),
            }),
            _not_sync: PhantomData,
        }
    }

    fn symbol(&self, name: &str) -> Result<u64> {
        lookup_symbol(Self::NAME, &self.inner.core.name, name, || {
            // SAFETY: the symbol is read as an address only, never as a
            // typed value.
            let sym = unsafe { self.inner.lib.get::<*mut c_void>(name.as_bytes()) };
            Ok(sym.map(|s| *s as u64).map_err(|e| e.to_string()))
        })
    }
}

fn ffi_type(p: Prim) -> *mut ffi::ffi_type {
    // Only the addresses of libffi's type descriptors are taken.
    {
        match p.class(MODEL) {
            WordClass::F32 => &raw mut ffi::ffi_type_float,
            WordClass::F64 => &raw mut ffi::ffi_type_double,
            WordClass::Int { .. } if p == Prim::Pointer => &raw mut ffi::ffi_type_pointer,
            WordClass::Int { size, signed } => match (size, signed) {
                (1, true) => &raw mut ffi::ffi_type_sint8,
                (1, false) => &raw mut ffi::ffi_type_uint8,
                (2, true) => &raw mut ffi::ffi_type_sint16,
                (2, false) => &raw mut ffi::ffi_type_uint16,
                (4, true) => &raw mut ffi::ffi_type_sint32,
                (4, false) => &raw mut ffi::ffi_type_uint32,
                (_, true) => &raw mut ffi::ffi_type_sint64,
                (_, false) => &raw mut ffi::ffi_type_uint64,
            },
        }
    }
}

/// A prepared libffi call interface; boxed so its address stays put.
struct Cif {
    cif: ffi::ffi_cif,
    _atypes: Box<[*mut ffi::ffi_type]>,
    words: Lowered,
}

// SAFETY: after `ffi_prep_cif` a cif is never written again (calls use a
// copy); its pointers lead to `_atypes`, owned alongside it, and to libffi's
// immutable static type descriptors. Moving or sharing it between threads
// is therefore sound.
unsafe impl Send for Cif {}
// SAFETY: as for `Send`: nothing in it is mutated after preparation.
unsafe impl Sync for Cif {}

impl Cif {
    fn new(sig: &FnSig) -> Result<Box<Cif>> {
        Cif::lowered(sig, Lowered::new(sig)?)
    }

    /// The call interface for `sig`, already lowered to `words`.
    fn lowered(sig: &FnSig, words: Lowered) -> Result<Box<Cif>> {
        let mut atypes: Box<[*mut ffi::ffi_type]> =
            words.args.iter().map(|p| ffi_type(*p)).collect();
        let rtype = words.ret.map_or(&raw mut ffi::ffi_type_void, ffi_type);
        let mut cif = Box::new(Cif {
            // SAFETY: ffi_cif is plain data; ffi_prep_cif fills it in.
            cif: unsafe { std::mem::zeroed() },
            _atypes: Box::new([]),
            words,
        });
        // SAFETY: `atypes` outlives the cif (moved into the same box below).
        let status = unsafe {
            ffi::ffi_prep_cif(
                &mut cif.cif,
                ffi::ffi_abi_FFI_DEFAULT_ABI,
                atypes.len() as u32,
                rtype,
                atypes.as_mut_ptr(),
            )
        };
        cif._atypes = atypes;
        if status != ffi::ffi_status_FFI_OK {
            return Err(Error::NotPassable {
                what: "signature".into(),
                c_type: sig.c_prototype("(*)"),
                reason: format!("libffi cannot prepare a call of this type (status {status})"),
            });
        }
        Ok(cif)
    }
}

/// A function resolved by `dlsym`, with its prepared call interface.
#[derive(Clone)]
pub struct DynFunc {
    code: unsafe extern "C" fn(),
    cif: Arc<Cif>,
    errno: bool,
}

impl DynFunc {
    /// The function at `addr`, called through `cif`.
    ///
    /// # Safety
    /// `addr` is the (non-NULL) address of a function of the library whose
    /// C signature is the one `cif` was built from.
    unsafe fn at(addr: u64, cif: Box<Cif>, errno: bool) -> DynFunc {
        let p = std::ptr::with_exposed_provenance::<c_void>(addr as usize);
        // SAFETY: a function pointer has a data pointer's size; `p` is not
        // NULL and is code (the caller's promise).
        let code = unsafe { std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(p) };
        DynFunc {
            code,
            cif: Arc::from(cif),
            errno,
        }
    }
}

native::native_memory!(Dynamic);

// SAFETY: `resolve` prepares a libffi call interface from the lowered
// signature (failing for what does not lower) and `invoke` calls the symbol
// through it with exactly the given words; a callback's closure lives in a
// slot that is never freed (parked for reuse by the same library when its
// handle drops), whose trampoline runs the erased function only while the
// slot holds it, under the library's call lock, through `CallbackFn::run`;
// a slot whose handle was dropped runs nothing.
unsafe impl Strategy for Dynamic {
    type Func = DynFunc;

    const NAME: StrategyKind = StrategyKind::Dynamic;

    fn library_name(&self) -> String {
        self.inner.core.name.clone()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<DynFunc> {
        // Lowering the signature first: a type that cannot be passed is
        // reported whether or not the symbol exists.
        let cif = Cif::new(sig)?;
        let addr = self.symbol(name)?;
        // SAFETY: a non-NULL code address of the library (`lookup_symbol`
        // refuses NULL); it is only called through a cif built from the
        // declared signature (dlsym cannot check it).
        Ok(unsafe { DynFunc::at(addr, cif, errno) })
    }

    unsafe fn resolve_code(
        &self,
        addr: u64,
        sig: &Arc<FnSig>,
        errno: bool,
        _name: &str,
    ) -> Result<DynFunc> {
        let cif = Cif::new(sig)?;
        // SAFETY: the caller's promise: a function pointer of type `sig`
        // that the library returned (lifting refuses NULL).
        Ok(unsafe { DynFunc::at(addr, cif, errno) })
    }

    unsafe fn invoke(&self, f: &DynFunc, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        let cif = &f.cif;
        // Each slot holds one scalar's bits; little-endian, so a pointer to the
        // slot is a pointer to the value for every C scalar size.
        let mut slots = cif.words.narrow(args, MODEL)?;
        let mut ptrs: SmallVec<[*mut c_void; 8]> = slots
            .iter_mut()
            .map(|s| s as *mut u64 as *mut c_void)
            .collect();
        let mut ret: u64 = 0;
        let errno = errno_location();
        let mut cif_copy = cif.cif;
        // One call at a time per library; a callback re-enters on this thread.
        // SAFETY: the cif matches the slots (checked above); the callee is
        // trusted (Dynamic has no isolation) and `args` are words lowered for
        // its signature (the caller's promise). `ret` has room for ffi_arg or
        // double. errno is written and read on this thread only.
        let saved_errno = call_locked(&self.inner.core.calls, || unsafe {
            if f.errno {
                *errno = 0;
            }
            ffi::ffi_call(
                &mut cif_copy,
                Some(f.code),
                &mut ret as *mut u64 as *mut c_void,
                ptrs.as_mut_ptr(),
            );
            f.errno.then(|| *errno)
        })?;
        Ok((cif.words.ret.map(|p| p.widen(ret, MODEL)), saved_errno))
    }

    fn direct_code(&self, f: &DynFunc) -> Option<unsafe extern "C" fn()> {
        // errno is read right after the call, inside `invoke`.
        (!f.errno).then_some(f.code)
    }

    unsafe fn invoke_direct(&self, _: &DynFunc, call: &mut dyn FnMut()) -> Result<()> {
        // One call at a time per library; a callback re-enters on this thread.
        call_locked(&self.inner.core.calls, call)
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        self.symbol(name)
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
        let state = Box::new(CallbackState {
            sig: sig.clone(),
            f: CallbackFn::new(f),
            lib: self.clone(),
        });
        let parked = {
            let mut parked = self.inner.parked.lock();
            // The same C type, not only the same machine words: C may still
            // call through a parked slot with the arguments of its old
            // type, which the new closure must read as what they are.
            let i = parked.iter().position(|s| s.sig.same_type(sig));
            i.map(|i| parked.swap_remove(i))
        };
        let slot = match parked {
            Some(slot) => slot,
            None => Slot::new(sig, words, self.inner.core.calls.clone())?,
        };
        let pending = self.inner.core.calls.lock();
        // SAFETY: `live` is accessed only under the library's call lock,
        // held here; the slot was parked (or is new), so it holds nothing.
        unsafe { *slot.live.get() = Some(state) };
        drop(pending);
        Ok((slot.code, Box::new(ClosureGuard { slot })))
    }
}

/// A libffi closure of one lowered signature, made for a library and never
/// freed: when its callback's handle is dropped it is emptied and parked
/// for the library's next callback of the same C type
/// ([`FnSig::same_type`]). C may keep its
/// address (expat keeps its handlers), and a call through it then runs
/// nothing instead of a freed closure. What a library's parked slots cost
/// after the library is dropped (one closure and call interface each, as
/// many as it had callbacks alive at once) is kept for the life of the
/// process: another handle may keep the same shared object loaded, and so
/// its copy of the address.
struct Slot {
    /// The library's call lock, under which `live` is read and written.
    calls: Arc<CallLock>,
    /// The C type the slot was made for, the only one it is reused for.
    sig: Arc<FnSig>,
    cif: Box<Cif>,
    /// The closure's code address, which C calls.
    code: u64,
    /// The callback C reaches through this slot, if its handle is alive.
    live: UnsafeCell<Option<Box<CallbackState>>>,
}

// SAFETY: `live` is read and written only under `calls` (the library's call
// lock), whose acquire/release orders those accesses between threads; the
// state in it is `Send`. The other fields are immutable after `Slot::new`.
unsafe impl Sync for Slot {}
// SAFETY: as for `Sync`; no field is tied to a thread.
unsafe impl Send for Slot {}

impl Slot {
    /// A new closure for `sig`, prepared once; leaked, since C may call it
    /// for as long as the process runs.
    fn new(sig: &Arc<FnSig>, words: Lowered, calls: Arc<CallLock>) -> Result<&'static Slot> {
        let cif = Cif::lowered(sig, words)?;
        let mut code: *mut c_void = std::ptr::null_mut();
        // SAFETY: libffi allocates a writable closure and its executable alias.
        let closure =
            unsafe { ffi::ffi_closure_alloc(std::mem::size_of::<ffi::ffi_closure>(), &mut code) }
                as *mut ffi::ffi_closure;
        if closure.is_null() {
            return Err(Error::Alloc {
                function: None,
                size: std::mem::size_of::<ffi::ffi_closure>() as u64,
                reason: "libffi could not allocate a closure".into(),
            });
        }
        let slot = Box::new(Slot {
            calls,
            sig: sig.clone(),
            cif,
            code: code as u64,
            live: UnsafeCell::new(None),
        });
        let cif_ptr = &slot.cif.cif as *const ffi::ffi_cif as *mut ffi::ffi_cif;
        let ud = &*slot as *const Slot as *mut c_void;
        // SAFETY: the cif and user data live in the slot, whose box is leaked
        // below when this succeeds, so both outlive the closure.
        let status =
            unsafe { ffi::ffi_prep_closure_loc(closure, cif_ptr, Some(trampoline), ud, code) };
        if status != ffi::ffi_status_FFI_OK {
            // SAFETY: allocated above, never handed out.
            unsafe { ffi::ffi_closure_free(closure as *mut c_void) };
            return Err(Error::NotPassable {
                what: "callback".into(),
                c_type: sig.c_prototype("(*)"),
                reason: format!("libffi cannot prepare a closure of this type (status {status})"),
            });
        }
        Ok(Box::leak(slot))
    }
}

/// What a callback's trampoline needs while its handle lives: owned by its
/// slot, borrowed by each run; a closure that drops its own handle retires
/// it (`Pending::retire`), so the running trampoline's borrow stays valid.
struct CallbackState {
    sig: Arc<FnSig>,
    f: CallbackFn,
    /// The library: a callback keeps it loaded for as long as its handle
    /// lives.
    lib: Dynamic,
}

/// Keeps a callback in its slot; dropping it empties the slot and parks it.
struct ClosureGuard {
    slot: &'static Slot,
}

impl Drop for ClosureGuard {
    fn drop(&mut self) {
        let slot = self.slot;
        release(&slot.calls, || {
            // SAFETY: under the library's call lock (`release` holds it). A
            // trampoline running this callback on this thread copied the
            // state's address out before running it, and `release` retires
            // the state rather than dropping it while a callback runs.
            let state = unsafe { (*slot.live.get()).take() };
            if let Some(st) = &state {
                st.lib.inner.parked.lock().push(slot);
            }
            state
        });
    }
}

unsafe extern "C" fn trampoline(
    _cif: *mut ffi::ffi_cif,
    ret: *mut c_void,
    args: *mut *mut c_void,
    ud: *mut c_void,
) {
    // SAFETY: `ud` is the leaked slot this closure was prepared with.
    let slot: &'static Slot = unsafe { &*(ud as *const Slot) };
    let words = &slot.cif.words;
    let mut raws: SmallVec<[Raw; 8]> = SmallVec::with_capacity(words.args.len());
    for (i, p) in words.args.iter().enumerate() {
        // SAFETY: libffi passes one pointer per declared argument, each to a
        // value of that argument's C type, whose size `p.size` gives; read
        // at exactly that width (no `memcpy` call of a variable length).
        let bits = unsafe {
            let src = *args.add(i);
            match p.size(MODEL) {
                1 => u64::from((src as *const u8).read_unaligned()),
                2 => u64::from((src as *const u16).read_unaligned()),
                4 => u64::from((src as *const u32).read_unaligned()),
                _ => (src as *const u64).read_unaligned(),
            }
        };
        raws.push(p.widen(bits, MODEL));
    }
    // Re-entrant: C calls back on the thread that called into it, which
    // holds this already (`Dynamic::open`'s contract).
    let pending = slot.calls.lock();
    // SAFETY: `live` is read under the call lock, held from here to the
    // end of the run; the address is copied out, so a handle dropped
    // during the run (which takes the state out of `live`) does not alias
    // a live reference.
    let state = unsafe {
        (*slot.live.get())
            .as_deref()
            .map(|s| s as *const CallbackState)
    };
    let result = match state {
        Some(st) => {
            // SAFETY: the state was in the slot just now, under the lock; a
            // handle dropped during the run hands it to `Pending::retire`,
            // and `run_and_release` frees what was retired only after the
            // run and after the lock guard.
            let st: &CallbackState = unsafe { &*st };
            // SAFETY: this thread holds the library's call lock for the
            // whole run, the lock every callback of this library runs under
            // (`slot.calls` is the library's); `st` lives until the run ends.
            unsafe { run_and_release(pending, &st.f, &st.sig, &st.lib, &raws) }
        }
        None => {
            // The handle was dropped: C sees zero, and the call in progress
            // fails with `Error::CallbackDropped`.
            pending.record(callback_dropped(slot.code));
            drop(pending);
            None
        }
    };
    let raw = result.unwrap_or_default();
    if let Some(p) = words.ret {
        // SAFETY: libffi gives room for an ffi_arg (integers are returned
        // widened to it) or the float type.
        unsafe {
            match p.class(MODEL) {
                WordClass::F32 => *(ret as *mut f32) = raw.as_f32(),
                WordClass::F64 => *(ret as *mut f64) = raw.as_f64(),
                WordClass::Int { .. } => *(ret as *mut u64) = raw.0,
            }
        }
    }
}
