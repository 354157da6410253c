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
//!
//! Files by concern: `config` (limits), `engine` (engines, compilation and
//! the module caches), `lifecycle` (store, instance, reset, running guest
//! code under the deadline), `function` (resolving and calling exports),
//! `callbacks` (table slots and the host function C calls), `memory`
//! (bounds-checked linear memory), `batch` (batched callbacks recorded in
//! the instance), `value` (the wasm value ABI), `trap`
//! (failures as errors). The guest's export names are
//! `sandlink_guest_shim::abi`, shared with the build recipe.

use sandlink_guest_shim::abi;
mod batch;
mod callbacks;
mod config;
mod engine;
mod function;
mod lifecycle;
mod memory;
mod trap;
mod value;
mod wasi;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use wasmtime::{Caller, Func, Instance, Store, Table, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

pub use config::{DirAccess, DirGrant, Precompiled, SandboxConfig};
pub use engine::CompiledModule;
use function::{SandboxFunc, Target};

use callbacks::CallbackEntry;

use crate::error::Result;
use crate::protocol::{CallState, Identity, SlotOwner};
use crate::strategy::{ErasedFn, Isolated, Strategy};
use crate::types::{DataModel, FnSig, Raw};

const MODEL: DataModel = DataModel::Ilp32;

/// Per-store data: the WASI context, the resource limits, and what the
/// bounded WASI functions (`wasi`) need.
pub struct State {
    wasi: WasiP1Ctx,
    limits: Limits,
    /// The engine's epoch count, as the host reads it.
    ticks: engine::Ticks,
    /// The epoch tick at which the running call's deadline falls (kept in
    /// step with the store's epoch deadline), for host calls that wait.
    deadline_tick: u64,
    /// Descriptors the library opened and has not closed.
    open_files: u32,
    /// [`SandboxConfig::max_open_files`].
    max_open_files: u32,
}

/// The store's resource limits: linear memory and the GC heap (exception
/// objects) share one budget, `SandboxConfig::memory_limit`.
struct Limits {
    /// The budget, in bytes.
    memory_limit: usize,
    /// Bytes of every memory of the store (linear memory, the GC heap) so
    /// far granted.
    memory_used: usize,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = desired.saturating_sub(current);
        let total = self.memory_used.saturating_add(grown);
        if total > self.memory_limit {
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= engine::TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        // The library, and the recorders of its batched callbacks.
        1 + batch::MAX_RECORDERS as usize
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

/// A wasm32-wasi C library running in an isolated wasmtime instance.
///
/// A handle is `Send`: it, and functions, callbacks and parsers built on it,
/// may move to another thread, so N sandboxes can work on N threads. It is
/// not `Sync`. Clones share one instance, and calls into it are serialised
/// (a callback may call in again on the calling thread).
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
    _not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sandbox({})", self.shared.module.name)
    }
}

/// What every clone of a sandbox shares: the immutable parts, the brand,
/// and the lock that guards the instance.
struct Shared {
    module: Arc<CompiledModule>,
    config: SandboxConfig,
    /// The function table's size before any callback was added.
    table_base: u64,
    /// This instance's identity and reset generation (an atomic, so
    /// `brand()` needs no lock).
    id: Identity,
    /// The instance and everything that changes with it. Held by the thread
    /// that runs a call for the whole call, re-entrantly: the library's
    /// callbacks run on that thread and may call in again.
    inner: ReentrantMutex<Inner>,
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

/// The `Caller` of a host call on the stack of the thread holding the lock.
#[derive(Clone, Copy)]
struct CallerPtr(*mut Caller<'static, State>);

// SAFETY: a `CallerPtr` is pushed by `host_call` and popped before that host
// call returns, all on the thread that holds `Shared::inner`; while it is in
// the list no other thread can take the lock, so none can see it. Moving
// the (then empty) list with the sandbox to another thread moves no pointer.
unsafe impl Send for CallerPtr {}

/// The state of the instance, reached only through `Shared::inner`'s lock.
struct Inner {
    store: RefCell<Store<State>>,
    live: RefCell<Live>,
    /// Host-call contexts active on the stack, innermost last: while a
    /// callback runs, the store is reached through its `Caller`.
    callers: RefCell<Vec<CallerPtr>>,
    /// Poisoning, the current call's depth and pending error, and the
    /// callbacks by slot (counted from `table_base`).
    calls: CallState<CallbackEntry>,
    /// Host functions made for callback slots in the current store, by slot,
    /// with their wasm signature. A store never frees host functions, so a
    /// slot's function is reused by later callbacks of the same signature
    /// (it finds its callback by slot when called).
    slot_funcs: RefCell<Vec<Option<(Arc<str>, Func)>>>,
    /// Batched callbacks' recorders in the current store, by slot, with
    /// their signature and captures (reused like `slot_funcs`).
    slot_recorders: RefCell<Vec<Option<(String, Func)>>>,
    /// The current store's record buffer, once a batched callback needs it.
    batch: RefCell<Option<batch::Batch>>,
    /// When the outermost call's deadline falls, in ticks of the engine's
    /// epoch counter. It moves later by the time spent in host callbacks:
    /// the budget is for the library's own code, so a slow consumer of
    /// callback results (a pager on stdout) cannot make a healthy library
    /// trap.
    deadline_at: Cell<u64>,
    /// Time spent in guest calls made from inside callbacks during the
    /// current outermost callback, in ticks: it counts against the deadline.
    nested_guest: Cell<u64>,
    /// When the current outermost callback (or delivery) started, in ticks:
    /// a call it makes into the library is charged none of the host's time
    /// since.
    host_since: Cell<u64>,
}

impl SlotOwner for Shared {
    type Entry = CallbackEntry;
    fn with_calls(&self, f: &mut dyn FnMut(&CallState<CallbackEntry>)) {
        f(&self.inner.lock().calls)
    }
}

impl Sandbox {
    /// Opens the module at `path` with the default [`SandboxConfig`].
    pub fn open(path: impl AsRef<Path>) -> Result<Sandbox> {
        SandboxConfig::default().open(path)
    }

    /// Instantiates a module from its bytes (binary or text) with the default
    /// [`SandboxConfig`]: for a library embedded in the binary with
    /// `include_bytes!`, so nothing is read from disk at run time. The
    /// compiled code is cached as for [`Sandbox::open`]. `name` is used in
    /// messages.
    pub fn open_bytes(wasm: &[u8], name: &str) -> Result<Sandbox> {
        SandboxConfig::default().open_bytes(wasm, name)
    }

    /// Instantiates a module compiled ahead of time with the default
    /// [`SandboxConfig`]: see [`SandboxConfig::open_precompiled`].
    pub fn open_precompiled(module: Precompiled<'_>, name: &str) -> Result<Sandbox> {
        SandboxConfig::default().open_precompiled(module, name)
    }

    /// The configuration this sandbox runs under.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Takes the instance's lock (re-entrantly, if this thread holds it).
    fn lock(&self) -> ReentrantMutexGuard<'_, Inner> {
        self.shared.inner.lock()
    }

    /// The engine's epoch count now.
    fn ticks(&self) -> u64 {
        self.shared.module.ticks.load(Ordering::Relaxed)
    }

    /// What the library wrote to stdout so far (since the last reset).
    pub fn stdout(&self) -> Vec<u8> {
        self.lock().live.borrow().stdout.contents().to_vec()
    }

    /// What the library wrote to stderr so far (since the last reset).
    pub fn stderr(&self) -> Vec<u8> {
        self.lock().live.borrow().stderr.contents().to_vec()
    }

    /// The current size of linear memory, in bytes.
    pub fn memory_size(&self) -> Result<u64> {
        self.with_ctx(|ctx, live| Ok(live.memory.data_size(ctx) as u64))
    }
}

// SAFETY: `resolve` finds the export and checks its wasm type against the
// lowered signature; `invoke` converts each word with a range check and
// calls through wasmtime, which can touch nothing but the instance; the
// callback trampoline runs the erased function only from the host import C
// calls, with C's arguments, through `CallbackFn::run`; the guard clears the
// table slot.
unsafe impl Strategy for Sandbox {
    type Func = SandboxFunc;

    const NAME: crate::StrategyKind = crate::StrategyKind::Sandbox;

    fn library_name(&self) -> String {
        self.shared.module.name.clone()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<SandboxFunc> {
        self.bind(name, Target::Export, sig, errno)
    }

    unsafe fn resolve_code(
        &self,
        addr: u64,
        sig: &Arc<FnSig>,
        errno: bool,
        name: &str,
    ) -> Result<SandboxFunc> {
        // A function pointer is a table index; whatever the slot holds is
        // checked against `sig` like an export, so any address is harmless.
        self.bind(name, Target::Table(addr), sig, errno)
    }

    unsafe fn invoke(&self, f: &SandboxFunc, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        self.call_export(f, args)
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        self.global_addr(name)
    }

    fn hold(&self) -> Box<dyn crate::strategy::HeldLock + '_> {
        Box::new(self.lock())
    }

    fn make_callback(
        &self,
        sig: &Arc<FnSig>,
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        self.add_callback(sig, None, f)
    }

    fn make_batched_callback(
        &self,
        sig: &Arc<FnSig>,
        captures: &[crate::types::Capture],
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        self.add_callback(sig, Some(captures), f)
    }
}

// SAFETY: every raw method checks its range against the instance's linear
// memory (`memory.rs`), and the library's code runs inside wasmtime, which
// confines it to that memory and table: no address, length or word passed
// here can reach host memory.
unsafe impl Isolated for Sandbox {
    fn reset(&self) -> Result<()> {
        self.reset_instance()
    }

    fn poisoned(&self) -> Option<String> {
        self.lock().calls.poisoned.reason()
    }
}
