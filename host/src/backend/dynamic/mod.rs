//! The `Dynamic` strategy: `dlopen`/`dlsym`; a function whose arguments and
//! result are all plain scalars is called through a typed `extern "C"`
//! pointer ([`crate::types::Direct`]), any other through a libffi call
//! interface prepared once at bind time; callbacks through libffi closures.
//!
//! There is no isolation: the library shares the host's address space. This
//! is the baseline, and the "no-op sandbox" to migrate from.

use std::any::Any;
use std::cell::Cell;
use std::ffi::{c_void, OsStr};
use std::marker::PhantomData;
use std::sync::Arc;

use libffi_sys as ffi;
use libloading::os::unix::Library;
use parking_lot::ReentrantMutex;
use smallvec::SmallVec;

use crate::backend::native::{self, errno_location, MODEL};
use crate::error::{Error, Result};
use crate::strategy::{check_arity, CallbackFn, ErasedFn, Pending, Strategy};
use crate::types::{Brand, FnSig, Prim, Raw, WordClass};

/// A shared library loaded in-process with `dlopen`.
///
/// A handle is `Send`: it (and functions bound from it) may move to another
/// thread. Calls into the library are serialised per library, one at a
/// time (a callback may call in again on the calling thread). It is not
/// `Sync`; clones share the library.
#[derive(Clone)]
pub struct Dynamic {
    inner: Arc<Inner>,
    _not_sync: PhantomData<Cell<()>>,
}

struct Inner {
    lib: Library,
    name: String,
    brand: Brand,
    /// Held for the length of each call into the library (re-entrantly by
    /// the calling thread, for callbacks that call in again); holds the
    /// first error raised by a callback during the current call.
    calls: ReentrantMutex<Pending>,
}

impl std::fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dynamic({})", self.inner.name)
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
        Dynamic {
            inner: Arc::new(Inner {
                lib,
                name,
                brand: Brand::fresh(),
                calls: ReentrantMutex::new(Pending::default()),
            }),
            _not_sync: PhantomData,
        }
    }

    fn symbol(&self, name: &str) -> Result<*mut c_void> {
        let missing = |reason: String| Error::MissingSymbol {
            library: self.inner.name.clone(),
            symbol: name.to_string(),
            reason,
        };
        if name.as_bytes().contains(&0) {
            return Err(missing("the name contains a NUL byte".into()));
        }
        // SAFETY: the symbol is read as an address only, never as a typed value.
        let sym = unsafe { self.inner.lib.get::<*mut c_void>(name.as_bytes()) }
            .map_err(|e| missing(e.to_string()))?;
        let addr = *sym;
        if addr.is_null() {
            return Err(missing("the symbol's address is NULL".into()));
        }
        Ok(addr)
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
    args: Vec<Prim>,
    ret: Option<Prim>,
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
        let args = sig.arg_words()?;
        let ret = sig.ret_word()?;
        let mut atypes: Box<[*mut ffi::ffi_type]> = args.iter().map(|p| ffi_type(*p)).collect();
        let rtype = ret.map_or(&raw mut ffi::ffi_type_void, ffi_type);
        let mut cif = Box::new(Cif {
            // SAFETY: ffi_cif is plain data; ffi_prep_cif fills it in.
            cif: unsafe { std::mem::zeroed() },
            _atypes: Box::new([]),
            args,
            ret,
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
            return Err(Error::Unsupported(format!(
                "libffi cannot prepare a call for `{}` (status {status})",
                sig.c_prototype("f")
            )));
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

native::native_memory!(Dynamic);

// SAFETY: `resolve` prepares a libffi call interface from the lowered
// signature (failing for what does not lower) and `invoke` calls the symbol
// through it with exactly the given words; the closure trampoline runs the
// erased function only while C calls it, with C's arguments, through
// `CallbackFn::run`, and the last of the guard and any running trampoline
// frees the closure.
unsafe impl Strategy for Dynamic {
    type Func = DynFunc;

    fn library_name(&self) -> String {
        self.inner.name.clone()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<DynFunc> {
        // Lowering the signature first: a type that cannot be passed is
        // reported whether or not the symbol exists.
        let cif = Cif::new(sig)?;
        let addr = self.symbol(name)?;
        // SAFETY: a non-NULL code address; it is only called through a cif
        // built from the declared signature (dlsym cannot check it).
        let code = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn()>(addr) };
        Ok(DynFunc {
            code,
            cif: Arc::from(cif),
            errno,
        })
    }

    unsafe fn invoke(&self, f: &DynFunc, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        let cif = &f.cif;
        check_arity(args, cif.args.len())?;
        // Each slot holds one scalar's bits; little-endian, so a pointer to the
        // slot is a pointer to the value for every C scalar size.
        let mut slots: SmallVec<[u64; 8]> = SmallVec::with_capacity(args.len());
        for (i, (raw, prim)) in args.iter().zip(&cif.args).enumerate() {
            slots.push(prim.narrow_to(*raw, MODEL, || format!("argument {}", i + 1))?);
        }
        let mut ptrs: SmallVec<[*mut c_void; 8]> = slots
            .iter_mut()
            .map(|s| s as *mut u64 as *mut c_void)
            .collect();
        let mut ret: u64 = 0;
        let errno = errno_location();
        let mut cif_copy = cif.cif;
        // One call at a time per library; a callback re-enters on this thread.
        let pending = self.inner.calls.lock();
        // SAFETY: the cif matches the slots (checked above); the callee is
        // trusted (Dynamic has no isolation) and `args` are words lowered for
        // its signature (the caller's promise). `ret` has room for ffi_arg or
        // double. errno is written and read on this thread only.
        let saved_errno = unsafe {
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
        };
        if let Some(e) = pending.take() {
            return Err(e);
        }
        Ok((cif.ret.map(|p| p.widen(ret, MODEL)), saved_errno))
    }

    fn direct_code(&self, f: &DynFunc) -> Option<unsafe extern "C" fn()> {
        // errno is read right after the call, inside `invoke`.
        (!f.errno).then_some(f.code)
    }

    unsafe fn invoke_direct(&self, _: &DynFunc, call: &mut dyn FnMut()) -> Result<()> {
        // One call at a time per library; a callback re-enters on this thread.
        let pending = self.inner.calls.lock();
        call();
        match pending.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        Ok(self.symbol(name)? as u64)
    }

    fn make_callback(
        &self,
        sig: &Arc<FnSig>,
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        let cif = Cif::new(sig)?;
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
        // From here on the state owns the closure and frees it when dropped.
        let state = Arc::new(CallbackState {
            cif,
            sig: sig.clone(),
            f: CallbackFn::new(f),
            lib: self.clone(),
            closure,
        });
        let cif_ptr = &state.cif.cif as *const ffi::ffi_cif as *mut ffi::ffi_cif;
        let ud = Arc::as_ptr(&state) as *mut c_void;
        // SAFETY: the cif and user data live in `state`, which owns the
        // closure and so outlives it; the guard below holds `state`.
        let status =
            unsafe { ffi::ffi_prep_closure_loc(closure, cif_ptr, Some(trampoline), ud, code) };
        if status != ffi::ffi_status_FFI_OK {
            return Err(Error::Unsupported(format!(
                "libffi cannot prepare a closure for `{}` (status {status})",
                sig.c_prototype("(*)")
            )));
        }
        Ok((code as u64, Box::new(ClosureGuard { state: Some(state) })))
    }
}

/// What a callback's trampoline needs, owned by its guard and borrowed by
/// each run of the trampoline; a closure that drops its own handle retires
/// it (`Pending::retire`), so the running trampoline's borrow stays valid.
struct CallbackState {
    cif: Box<Cif>,
    sig: Arc<FnSig>,
    f: CallbackFn,
    /// The library: a callback keeps it loaded (and its lock reachable)
    /// for as long as C may call the callback.
    lib: Dynamic,
    closure: *mut ffi::ffi_closure,
}

// SAFETY: the closure pointer is owned (freed once, in `Drop`, which libffi
// allows from any thread); every other field is `Send + Sync` itself.
unsafe impl Send for CallbackState {}
// SAFETY: a shared state gives no access to the closure pointer but `Drop`.
unsafe impl Sync for CallbackState {}

impl Drop for CallbackState {
    fn drop(&mut self) {
        // SAFETY: allocated by ffi_closure_alloc and freed once, here. C may
        // not call it after the handle is dropped (the `Callback` handle
        // documents that); a run in progress holds its own `Arc` to this
        // state and is past libffi's stub, which the free may recycle.
        unsafe { ffi::ffi_closure_free(self.closure as *mut c_void) };
    }
}

/// Keeps a callback alive; dropping it releases the guard's share of the
/// state (the closure is freed when no run of it is in progress).
struct ClosureGuard {
    /// `Some` until dropped.
    state: Option<Arc<CallbackState>>,
}

impl Drop for ClosureGuard {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        // Under the library's call lock: a call in progress on another
        // thread may be about to run this callback (C has its address), so
        // the share is released only once that call is over. On the thread
        // making the call (the closure dropping its own handle), the lock is
        // re-entered and the running trampoline, which borrows the state,
        // gets it to release after its run.
        let lib = state.lib.clone();
        let calls = lib.inner.calls.lock();
        let state = calls.retire(state);
        drop(calls);
        drop(state);
    }
}

unsafe extern "C" fn trampoline(
    _cif: *mut ffi::ffi_cif,
    ret: *mut c_void,
    args: *mut *mut c_void,
    ud: *mut c_void,
) {
    let ud = ud as *const CallbackState;
    // SAFETY: `ud` is `Arc::as_ptr` of the state registered with this
    // closure; C calls the closure only while its guard, which holds an
    // `Arc`, is alive (`Dynamic::open`'s contract). A guard dropped during
    // the run (the closure dropping its own handle) hands its share to
    // `Pending::retire` under the call lock, and it is released only by
    // `take_retired` below, after the last use of `st` and of the guard
    // borrowed from it.
    let st: &CallbackState = unsafe { &*ud };
    let mut raws: SmallVec<[Raw; 8]> = SmallVec::with_capacity(st.cif.args.len());
    for (i, p) in st.cif.args.iter().enumerate() {
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
    let pending = st.lib.inner.calls.lock();
    let ret_prim = st.cif.ret;
    // SAFETY: this thread holds the library's call lock (`pending`) for the
    // whole run, the lock every callback of this library runs under; `st`
    // stays alive until `take_retired` below.
    let result = unsafe { pending.run(&st.f, &st.sig, &st.lib, Ok(raws.as_slice())) };
    // `st` is not used from here on; what was retired (perhaps `st`, which
    // may hold the last handle on the library and so its lock) is dropped
    // after the guard.
    let retired = pending.take_retired();
    drop(pending);
    drop(retired);
    let raw = result.unwrap_or_default();
    if let Some(p) = ret_prim {
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
