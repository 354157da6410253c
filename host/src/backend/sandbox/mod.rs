//! The `Sandbox` strategy: a C library compiled to wasm32-wasi, run by
//! wasmtime inside this process.
//!
//! The library sees only its linear memory: every pointer it hands back is an
//! offset that the host bounds-checks before touching it. Execution deadlines
//! (epoch interruption), a linear-memory cap and a wasm stack limit bound what
//! it can consume. WASI is given no capabilities: no files, no environment, no
//! arguments; stdout and stderr go to capped in-memory pipes.
//!
//! A trap (or `exit`) poisons the sandbox: later calls fail fast until
//! [`Sandbox::reset`] gives it a fresh instance.

pub mod abi;
mod config;
mod engine;
mod memory;
mod trap;
mod value;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{
    AsContextMut, Caller, Func, FuncType, Instance, Ref, Store, StoreContextMut, StoreLimits,
    StoreLimitsBuilder, Table, TypedFunc, Val, ValType, WasmBacktrace,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

pub use config::SandboxConfig;
pub use engine::{default_cache_dir, CompiledModule, EPOCH_TICK, SLOT_RESERVATION};

use trap::{instantiation_error, trap_kind};
use value::{describe, from_val, to_val, wasm_type};

use crate::error::{Error, Result};
use crate::strategy::{run_callback, ErasedFn, Isolated, Strategy};
use crate::types::{Brand, DataModel, FnSig, Prim, Raw};

const MODEL: DataModel = DataModel::Ilp32;

/// Per-store data: the WASI context and the resource limits.
pub struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// A wasm32-wasi C library running in an isolated wasmtime instance.
#[derive(Clone)]
pub struct Sandbox {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sandbox({})", self.inner.module.name)
    }
}

/// Handles into the current instance; replaced on reset.
struct Live {
    instance: Instance,
    memory: wasmtime::Memory,
    table: Table,
    malloc: TypedFunc<(u32, u32), u32>,
    free: TypedFunc<u32, ()>,
    errno_get: Option<TypedFunc<(), i32>>,
    errno_set: Option<TypedFunc<i32, ()>>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

struct CallbackEntry {
    sig: Arc<FnSig>,
    args: Vec<Prim>,
    ret: Option<Prim>,
    f: RefCell<ErasedFn>,
}

struct Inner {
    module: Arc<CompiledModule>,
    config: SandboxConfig,
    store: RefCell<Store<State>>,
    live: RefCell<Live>,
    /// Host-call contexts active on the stack, innermost last: while a
    /// callback runs, the store is reached through its `Caller`.
    callers: RefCell<Vec<*mut Caller<'static, State>>>,
    poisoned: RefCell<Option<String>>,
    /// The first error raised by a callback during the current call.
    pending: RefCell<Option<Error>>,
    /// Callbacks by slot, counted from `table_base`.
    callbacks: RefCell<Vec<Option<Rc<CallbackEntry>>>>,
    /// The function table's size before any callback was added.
    table_base: u64,
    /// Host functions made for callback slots in the current store, by slot,
    /// with their wasm signature. A store never frees host functions, so a
    /// slot's function is reused by later callbacks of the same signature
    /// (it finds its callback by slot when called).
    slot_funcs: RefCell<Vec<Option<(String, Func)>>>,
    generation: Cell<u64>,
    /// This instance's identity; its generation is `generation`.
    lib_id: u64,
    depth: Cell<u32>,
    /// When the outermost call's deadline falls, in ticks of the engine's
    /// epoch counter. It moves later by the time spent in host callbacks:
    /// the budget is for the library's own code, so a slow consumer of
    /// callback results (a pager on stdout) cannot make a healthy library
    /// trap.
    deadline_at: Cell<u64>,
    /// Time spent in guest calls made from inside callbacks during the
    /// current outermost callback, in ticks: it counts against the deadline.
    nested_guest: Cell<u64>,
}

impl Inner {
    /// The engine's epoch count now.
    fn ticks(&self) -> u64 {
        self.module.ticks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `*const Inner` made sendable for wasmtime's host-function closures. They
/// only run during a call on the owning store, on the owning thread (a
/// `Sandbox` is neither `Send` nor `Sync`), while the `Inner` is alive.
#[derive(Clone, Copy)]
struct InnerPtr(*const Inner);
// SAFETY: see the type's documentation.
unsafe impl Send for InnerPtr {}
// SAFETY: see the type's documentation.
unsafe impl Sync for InnerPtr {}

impl Sandbox {
    /// Opens the module at `path` with the default [`SandboxConfig`].
    pub fn open(path: impl AsRef<Path>) -> Result<Sandbox> {
        SandboxConfig::default().open(path)
    }

    /// The configuration this sandbox runs under.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    fn new_store(module: &CompiledModule, config: &SandboxConfig) -> Result<(Store<State>, Live)> {
        let stdout = MemoryOutputPipe::new(config.output_limit);
        let stderr = MemoryOutputPipe::new(config.output_limit);
        // No preopens, no environment, no arguments, no network.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build_p1();
        let memory_limit = usize::try_from(config.memory_limit).unwrap_or(usize::MAX);
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .table_elements(engine::TABLE_ELEMENTS)
            .instances(1)
            .memories(1)
            .tables(1)
            .build();
        let mut store = Store::new(&module.engine, State { wasi, limits });
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(config.deadline));
        let name = &module.name;
        let err = |what: &str, e: wasmtime::Error| engine::load_error(name, what, e);
        let instance = module
            .pre
            .instantiate(&mut store)
            .map_err(|e| instantiation_error(module, config, e))?;
        let need = |what: &str| engine::load_error(name, "missing export", what);
        let memory = instance
            .get_memory(&mut store, abi::MEMORY)
            .ok_or_else(|| need("`memory`"))?;
        let table = instance
            .get_table(&mut store, abi::TABLE)
            .ok_or_else(|| need("`__indirect_function_table` (link with -Wl,--export-table)"))?;
        let malloc = instance
            .get_typed_func::<(u32, u32), u32>(&mut store, abi::MALLOC)
            .map_err(|e| err("the guest shim's `sandlink_malloc` is missing", e))?;
        let free = instance
            .get_typed_func::<u32, ()>(&mut store, abi::FREE)
            .map_err(|e| err("the guest shim's `sandlink_free` is missing", e))?;
        let errno_get = instance.get_typed_func(&mut store, abi::ERRNO_GET).ok();
        let errno_set = instance.get_typed_func(&mut store, abi::ERRNO_SET).ok();
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, abi::INITIALIZE) {
            init.call(&mut store, ())
                .map_err(|e| err("the module's `_initialize` failed", e))?;
        }
        Ok((
            store,
            Live {
                instance,
                memory,
                table,
                malloc,
                free,
                errno_get,
                errno_set,
                stdout,
                stderr,
            },
        ))
    }

    fn instantiate(module: Arc<CompiledModule>, config: SandboxConfig) -> Result<Sandbox> {
        let (store, live) = Self::new_store(&module, &config)?;
        let table_base = live.table.size(&store);
        Ok(Sandbox {
            inner: Rc::new(Inner {
                module,
                config,
                store: RefCell::new(store),
                live: RefCell::new(live),
                callers: RefCell::new(Vec::new()),
                poisoned: RefCell::new(None),
                pending: RefCell::new(None),
                callbacks: RefCell::new(Vec::new()),
                table_base,
                slot_funcs: RefCell::new(Vec::new()),
                generation: Cell::new(0),
                lib_id: Brand::fresh().lib,
                depth: Cell::new(0),
                deadline_at: Cell::new(0),
                nested_guest: Cell::new(0),
            }),
        })
    }

    /// Replaces the instance with a fresh one from the same module: memory,
    /// globals and WASI state start over, poisoning is cleared, and live
    /// callbacks are re-installed at the same addresses. Bound functions
    /// keep working. Fails if called from inside a callback.
    pub fn reset(&self) -> Result<()> {
        let inner = &self.inner;
        if !inner.callers.borrow().is_empty() || inner.depth.get() > 0 {
            return Err(Error::Unsupported(
                "reset() cannot run while a call into the sandbox is in progress".into(),
            ));
        }
        let (store, live) = Self::new_store(&inner.module, &inner.config)?;
        *inner.store.borrow_mut() = store;
        *inner.live.borrow_mut() = live;
        inner.slot_funcs.borrow_mut().clear();
        inner.generation.set(inner.generation.get() + 1);
        *inner.poisoned.borrow_mut() = None;
        *inner.pending.borrow_mut() = None;
        let n = inner.callbacks.borrow().len();
        for idx in 0..n {
            let entry = inner.callbacks.borrow()[idx].clone();
            self.install(idx, entry.as_deref())?;
        }
        Ok(())
    }

    /// Why the sandbox is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.inner.poisoned.borrow().clone()
    }

    /// What the library wrote to stdout so far (since the last reset).
    pub fn stdout(&self) -> Vec<u8> {
        self.inner.live.borrow().stdout.contents().to_vec()
    }

    /// What the library wrote to stderr so far (since the last reset).
    pub fn stderr(&self) -> Vec<u8> {
        self.inner.live.borrow().stderr.contents().to_vec()
    }

    /// The current size of linear memory, in bytes.
    pub fn memory_size(&self) -> Result<u64> {
        self.with_ctx(|ctx, live| Ok(live.memory.data_size(ctx) as u64))
    }

    /// Runs `f` with the store: through the innermost active `Caller` while a
    /// callback runs, else by borrowing the store.
    fn with_ctx<R>(
        &self,
        f: impl FnOnce(StoreContextMut<'_, State>, &Live) -> Result<R>,
    ) -> Result<R> {
        let live = self
            .inner
            .live
            .try_borrow()
            .map_err(|_| Error::Unsupported("the sandbox is being reset".into()))?;
        let top = self.inner.callers.borrow().last().copied();
        match top {
            // SAFETY: the pointer is to the `Caller` of a host call that is
            // on the stack below us (pushed by `host_call`, popped before it
            // returns); no other reference to it is in use meanwhile.
            Some(caller) => f(unsafe { &mut *caller }.as_context_mut(), &live),
            None => {
                let mut store = self.inner.store.try_borrow_mut().map_err(|_| {
                    Error::Unsupported("the sandbox's store is already in use".into())
                })?;
                f(store.as_context_mut(), &live)
            }
        }
    }

    fn check_poisoned(&self) -> Result<()> {
        match &*self.inner.poisoned.borrow() {
            Some(reason) => Err(Error::Poisoned {
                library: self.inner.module.name.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Turns a failed guest call into an error, poisoning the sandbox.
    fn trapped(&self, e: wasmtime::Error, function: &str) -> Error {
        let err = if let Some(exit) = e.downcast_ref::<I32Exit>() {
            Error::Exited {
                function: function.to_string(),
                code: exit.0,
            }
        } else {
            let backtrace = e
                .downcast_ref::<WasmBacktrace>()
                .map(|bt| {
                    // Drop wasmtime's heading line; keep the frames.
                    let text = bt.to_string();
                    let frames: Vec<&str> = text
                        .lines()
                        .filter(|l| !l.starts_with("error while executing"))
                        .collect();
                    frames.join("\n")
                })
                .unwrap_or_default();
            Error::Trap {
                function: function.to_string(),
                kind: trap_kind(&e),
                backtrace,
            }
        };
        *self.inner.poisoned.borrow_mut() = Some(err.to_string());
        err
    }

    /// Runs guest code: checks poisoning, sets the deadline for an outermost
    /// call, turns traps into errors.
    fn run_guest<R>(
        &self,
        function: &str,
        f: impl FnOnce(&mut StoreContextMut<'_, State>, &Live) -> wasmtime::Result<R>,
    ) -> Result<R> {
        self.check_poisoned()?;
        let inner = &self.inner;
        let depth = inner.depth.get();
        let started = inner.ticks();
        inner.depth.set(depth + 1);
        let r = self.with_ctx(|mut ctx, live| {
            if depth == 0 {
                let budget = deadline_ticks(inner.config.deadline);
                inner.deadline_at.set(started + budget);
                ctx.set_epoch_deadline(budget);
            }
            Ok(f(&mut ctx, live))
        });
        inner.depth.set(depth);
        if depth == 1 {
            // A call from inside a callback: the library's time, charged to
            // the deadline (deeper calls are inside this span already).
            let spent = inner.ticks().saturating_sub(started);
            inner.nested_guest.set(inner.nested_guest.get() + spent);
        }
        match r? {
            Ok(v) => Ok(v),
            Err(e) => Err(self.trapped(e, function)),
        }
    }

    fn check_range(
        &self,
        live: &Live,
        ctx: &StoreContextMut<'_, State>,
        addr: u64,
        len: u64,
        what: &str,
    ) -> Result<(usize, usize)> {
        let size = live.memory.data_size(ctx) as u64;
        match addr.checked_add(len) {
            Some(end) if end <= size => Ok((addr as usize, end as usize)),
            _ => Err(Error::OutOfBounds {
                what: what.to_string(),
                address: addr,
                len,
                size,
            }),
        }
    }

    /// Puts callback `idx` (or a NULL entry) in its table slot.
    fn install(&self, idx: usize, entry: Option<&CallbackEntry>) -> Result<()> {
        let slot = self.inner.table_base + idx as u64;
        let ptr = InnerPtr(Rc::as_ptr(&self.inner));
        self.with_ctx(|mut ctx, live| {
            let value = match entry {
                None => Ref::Func(None),
                Some(e) => {
                    let params: Vec<ValType> = e.args.iter().map(|p| wasm_type(*p)).collect();
                    let results: Vec<ValType> = e.ret.iter().map(|p| wasm_type(*p)).collect();
                    let key = describe(&params, &results);
                    let mut funcs = self.inner.slot_funcs.borrow_mut();
                    if funcs.len() <= idx {
                        funcs.resize(idx + 1, None);
                    }
                    let func = match &funcs[idx] {
                        Some((k, f)) if *k == key => *f,
                        _ => {
                            let ty = FuncType::new(ctx.engine(), params, results);
                            let f = Func::new(&mut ctx, ty, move |caller, params, results| {
                                host_call(ptr, idx, caller, params, results)
                            });
                            funcs[idx] = Some((key, f));
                            f
                        }
                    };
                    Ref::Func(Some(func))
                }
            };
            let size = live.table.size(&ctx);
            let fail = |e: wasmtime::Error| Error::Alloc {
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

fn deadline_ticks(d: Duration) -> u64 {
    // One tick of slack: the epoch may advance just after the deadline is set.
    (d.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
}

/// The body of every callback's host function.
fn host_call(
    ptr: InnerPtr,
    idx: usize,
    mut caller: Caller<'_, State>,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    // SAFETY: see `InnerPtr`: the Inner is alive while its store runs. The
    // temporary Rc shares ownership for the duration of this call only.
    let sandbox = unsafe {
        Rc::increment_strong_count(ptr.0);
        Sandbox {
            inner: Rc::from_raw(ptr.0),
        }
    };
    let inner = &sandbox.inner;
    let entry = inner.callbacks.borrow().get(idx).cloned().flatten();
    let Some(entry) = entry else {
        return Err(wasmtime::Error::msg(format!(
            "the library called callback slot {} after its handle was dropped",
            inner.table_base + idx as u64
        )));
    };
    for r in results.iter_mut() {
        *r = match r {
            Val::I64(_) => Val::I64(0),
            Val::F32(_) => Val::F32(0),
            Val::F64(_) => Val::F64(0),
            _ => Val::I32(0),
        };
    }
    if inner.pending.borrow().is_some() {
        // The call is failing already; do no more Rust work for it.
        return Ok(());
    }
    let raws: Result<Vec<Raw>> = entry
        .args
        .iter()
        .zip(params)
        .enumerate()
        .map(|(i, (p, v))| from_val(*p, v, &|| format!("callback argument {}", i + 1)))
        .collect();
    // SAFETY (for the pointer's later use in `with_ctx`): `caller` lives on
    // this frame until after the pop below.
    let caller_ptr: *mut Caller<'static, State> = (&raw mut caller).cast();
    let outermost = inner.callers.borrow().is_empty();
    let started = inner.ticks();
    if outermost {
        inner.nested_guest.set(0);
    }
    inner.callers.borrow_mut().push(caller_ptr);
    let result = raws.and_then(|raws| run_callback(&entry.f, &entry.sig, &sandbox, &raws));
    inner.callers.borrow_mut().pop();
    if outermost {
        // The host's time in the callback does not count against the
        // library's deadline; the library's nested calls do.
        // Measured in epoch ticks: a callback shorter than a tick is
        // charged a whole one when it crosses a tick boundary and nothing
        // otherwise, which is right on average and costs two atomic loads.
        let now = inner.ticks();
        let host = now
            .saturating_sub(started)
            .saturating_sub(inner.nested_guest.get());
        if host > 0 {
            let at = inner.deadline_at.get() + host;
            inner.deadline_at.set(at);
            caller
                .as_context_mut()
                .set_epoch_deadline(at.saturating_sub(now).max(1));
        }
    }
    match result {
        Ok(Some(raw)) => {
            if let (Some(p), Some(slot)) = (entry.ret, results.first_mut()) {
                match to_val(p, raw, &|| "callback return value".into()) {
                    Ok(v) => *slot = v,
                    Err(e) => {
                        inner.pending.borrow_mut().get_or_insert(e);
                    }
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            inner.pending.borrow_mut().get_or_insert(e);
        }
    }
    Ok(())
}

/// A function export, checked against its declared signature; re-resolved
/// after a reset.
pub struct SandboxFunc {
    name: String,
    args: Vec<Prim>,
    ret: Option<Prim>,
    errno: bool,
    resolved: RefCell<(u64, Func)>,
}

impl Sandbox {
    fn lookup(
        &self,
        name: &str,
        args: &[Prim],
        ret: Option<Prim>,
        sig: Option<&FnSig>,
    ) -> Result<Func> {
        let library = self.inner.module.name.clone();
        self.with_ctx(|mut ctx, live| {
            let func =
                live.instance
                    .get_func(&mut ctx, name)
                    .ok_or_else(|| Error::MissingSymbol {
                        library: library.clone(),
                        symbol: name.to_string(),
                        reason:
                            "no function export of that name (is it in the library's exports.txt?)"
                                .into(),
                    })?;
            let ty = func.ty(&ctx);
            let declared_p: Vec<ValType> = args.iter().map(|p| wasm_type(*p)).collect();
            let declared_r: Vec<ValType> = ret.iter().map(|p| wasm_type(*p)).collect();
            let actual_p: Vec<ValType> = ty.params().collect();
            let actual_r: Vec<ValType> = ty.results().collect();
            let same = |a: &[ValType], b: &[ValType]| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| ValType::eq(x, y))
            };
            if !same(&declared_p, &actual_p) || !same(&declared_r, &actual_r) {
                return Err(Error::SignatureMismatch {
                    function: name.to_string(),
                    declared: format!(
                        "{} (lowered from `{}`)",
                        describe(&declared_p, &declared_r),
                        sig.map(|s| s.c_prototype(name)).unwrap_or_default()
                    ),
                    actual: describe(&actual_p, &actual_r),
                });
            }
            Ok(func)
        })
    }

    fn current(&self, f: &SandboxFunc) -> Result<Func> {
        let generation = self.inner.generation.get();
        let (g, func) = *f.resolved.borrow();
        if g == generation {
            return Ok(func);
        }
        let func = self.lookup(&f.name, &f.args, f.ret, None)?;
        *f.resolved.borrow_mut() = (generation, func);
        Ok(func)
    }
}

/// Releases a callback's slot when its handle is dropped.
struct CallbackGuard {
    inner: Weak<Inner>,
    idx: usize,
}

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        if let Ok(mut cbs) = inner.callbacks.try_borrow_mut() {
            if let Some(slot) = cbs.get_mut(self.idx) {
                *slot = None;
            }
        }
        // NULL the table slot so a later call through it traps as a call
        // through NULL. If the store is busy the slot keeps its host function,
        // which now finds no entry and traps with a clear message instead.
        let _ = Sandbox { inner }.install(self.idx, None);
    }
}

// SAFETY: `resolve` finds the export and checks its wasm type against the
// lowered signature; `invoke` converts each word with a range check and
// calls through wasmtime, which can touch nothing but the instance; the
// callback trampoline runs the erased function only from the host import C
// calls, with C's arguments, through `run_callback`; the guard clears the
// table slot.
unsafe impl Strategy for Sandbox {
    type Func = SandboxFunc;

    fn library_name(&self) -> String {
        self.inner.module.name.clone()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<SandboxFunc> {
        let args = sig.arg_words()?;
        let ret = sig.ret_word()?;
        if errno && self.inner.live.borrow().errno_get.is_none() {
            return Err(Error::Unsupported(format!(
                "`{name}` captures errno, but the module lacks the guest shim's errno exports"
            )));
        }
        let func = self.lookup(name, &args, ret, Some(sig))?;
        Ok(SandboxFunc {
            name: name.to_string(),
            args,
            ret,
            errno,
            resolved: RefCell::new((self.inner.generation.get(), func)),
        })
    }

    unsafe fn invoke(&self, f: &SandboxFunc, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        if args.len() != f.args.len() {
            return Err(Error::InvalidValue {
                what: "arguments".into(),
                reason: format!("{} scalars for {} parameters", args.len(), f.args.len()),
            });
        }
        let mut params = Vec::with_capacity(args.len());
        for (i, (raw, p)) in args.iter().zip(&f.args).enumerate() {
            params.push(to_val(*p, *raw, &|| format!("argument {}", i + 1))?);
        }
        let func = self.current(f)?;
        let mut results = [Val::I32(0)];
        let n = usize::from(f.ret.is_some());
        let errno = self.run_guest(&f.name, |ctx, live| {
            if f.errno {
                if let Some(set) = &live.errno_set {
                    set.call(&mut *ctx, 0)?;
                }
            }
            func.call(&mut *ctx, &params, &mut results[..n])?;
            match (&live.errno_get, f.errno) {
                (Some(get), true) => Ok(Some(get.call(&mut *ctx, ())?)),
                _ => Ok(None),
            }
        })?;
        if let Some(e) = self.inner.pending.borrow_mut().take() {
            return Err(e);
        }
        let ret = match f.ret {
            Some(p) => Some(from_val(p, &results[0], &|| "return value".into())?),
            None => None,
        };
        Ok((ret, errno))
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        let library = self.inner.module.name.clone();
        self.with_ctx(|mut ctx, live| {
            let missing = |reason: &str| Error::MissingSymbol {
                library: library.clone(),
                symbol: name.to_string(),
                reason: reason.to_string(),
            };
            let g = live
                .instance
                .get_global(&mut ctx, name)
                .ok_or_else(|| missing("no global export of that name (is it in exports.txt?)"))?;
            match g.get(&mut ctx) {
                Val::I32(a) => Ok(u64::from(a as u32)),
                other => Err(missing(&format!(
                    "the export is not an i32 address but {other:?}"
                ))),
            }
        })
    }

    fn make_callback(&self, sig: &Arc<FnSig>, f: ErasedFn) -> Result<(u64, Box<dyn Any>)> {
        let entry = Rc::new(CallbackEntry {
            sig: sig.clone(),
            args: sig.arg_words()?,
            ret: sig.ret_word()?,
            f: RefCell::new(f),
        });
        let idx = {
            let mut cbs = self.inner.callbacks.borrow_mut();
            match cbs.iter().position(Option::is_none) {
                Some(i) => {
                    cbs[i] = Some(entry.clone());
                    i
                }
                None => {
                    cbs.push(Some(entry.clone()));
                    cbs.len() - 1
                }
            }
        };
        if let Err(e) = self.install(idx, Some(&entry)) {
            self.inner.callbacks.borrow_mut()[idx] = None;
            return Err(e);
        }
        let guard = CallbackGuard {
            inner: Rc::downgrade(&self.inner),
            idx,
        };
        Ok((self.inner.table_base + idx as u64, Box::new(guard)))
    }
}

// SAFETY: every raw method checks its range against the instance's linear
// memory (`memory.rs`), and the library's code runs inside wasmtime, which
// confines it to that memory and table: no address, length or word passed
// here can reach host memory.
unsafe impl Isolated for Sandbox {}
