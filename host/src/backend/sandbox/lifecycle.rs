//! The instance and its store: creating them, resetting them, reaching the
//! store (directly or through an active callback's `Caller`), and running
//! guest code under the deadline with traps turned into errors.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::ReentrantMutex;
use wasmtime::{AsContextMut, Store, StoreContextMut, WasmBacktrace};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::config::DirAccess;
use super::engine::{self, CompiledModule, EPOCH_TICK};
use super::trap::{instantiation_error, trap_kind};
use super::{abi, Inner, Limits, Live, Sandbox, SandboxConfig, Shared, State};
use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{CallState, Identity};
use crate::strategy::Strategy;

impl Sandbox {
    fn new_store(module: &CompiledModule, config: &SandboxConfig) -> Result<(Store<State>, Live)> {
        let stdout = MemoryOutputPipe::new(config.output_limit);
        let stderr = MemoryOutputPipe::new(config.output_limit);
        // No environment, no arguments, no network; only the directories
        // the configuration grants.
        let mut builder = WasiCtxBuilder::new();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        for d in &config.dirs {
            let perms = match d.access {
                DirAccess::ReadOnly => FsPerms::ReadOnly,
                DirAccess::ReadWrite => FsPerms::ReadWrite,
            };
            if !d.guest.starts_with('/') {
                return Err(Error::Usage {
                    function: None,
                    what: format!("granting {} to `{}`", d.host.display(), module.name),
                    reason: format!(
                        "the guest path {:?} is not absolute (write it as \"/{}\")",
                        d.guest, d.guest
                    ),
                });
            }
            refuse_cache_overlap(&d.host, config.cache_dir.as_deref(), &module.name)?;
            builder
                .preopened_dir(&d.host, &d.guest, perms)
                .map_err(|e| Error::Load {
                    strategy: StrategyKind::Sandbox,
                    library: module.name.clone(),
                    reason: format!(
                        "cannot grant the directory {} as {}: {e:#}",
                        d.host.display(),
                        d.guest
                    ),
                })?;
        }
        let wasi = builder.build_p1();
        let limits = Limits {
            memory_limit: usize::try_from(config.memory_limit).unwrap_or(usize::MAX),
            memory_used: 0,
        };
        let now = module.ticks.load(std::sync::atomic::Ordering::Relaxed);
        let state = State {
            wasi,
            limits,
            ticks: module.ticks.clone(),
            deadline_tick: 0,
            open_files: 0,
            max_open_files: config.max_open_files,
        };
        let mut store = Store::new(&module.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        set_deadline(
            &mut store.as_context_mut(),
            now,
            deadline_ticks(config.deadline),
        );
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
            init.call(&mut store, ()).map_err(|e| {
                // Its time counts against the deadline, like a call's.
                if trap_kind(&e) == crate::TrapKind::Deadline {
                    engine::load_error(
                        name,
                        "the module's `_initialize` failed",
                        format!(
                            "it ran past the deadline of {:?} (SandboxConfig::deadline)",
                            config.deadline
                        ),
                    )
                } else {
                    err("the module's `_initialize` failed", e)
                }
            })?;
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

    pub(super) fn instantiate(
        module: Arc<CompiledModule>,
        config: SandboxConfig,
    ) -> Result<Sandbox> {
        let (store, live) = Self::new_store(&module, &config)?;
        let table_base = live.table.size(&store);
        Ok(Sandbox {
            shared: Arc::new(Shared {
                module,
                config,
                table_base,
                id: Identity::fresh(),
                inner: ReentrantMutex::new(Inner {
                    store: RefCell::new(store),
                    live: RefCell::new(live),
                    callers: RefCell::new(Vec::new()),
                    calls: CallState::default(),
                    slot_funcs: RefCell::new(Vec::new()),
                    slot_recorders: RefCell::new(Vec::new()),
                    batch: RefCell::new(None),
                    deadline_at: Cell::new(0),
                    nested_guest: Cell::new(0),
                    host_since: Cell::new(0),
                }),
            }),
            _not_sync: PhantomData,
        })
    }

    /// [`Isolated::reset`](crate::Isolated::reset): a new instance of the
    /// same module, whose memory, globals and WASI state start over.
    pub(super) fn reset_instance(&self) -> Result<()> {
        let inner = self.lock();
        let shared = &self.shared;
        // A host call in progress is inside a guest call (depth > 0).
        inner
            .calls
            .start_reset(|| format!("sandbox `{}`", shared.module.name))?;
        let (store, live) = Self::new_store(&shared.module, &shared.config)?;
        *inner.store.borrow_mut() = store;
        *inner.live.borrow_mut() = live;
        inner.slot_funcs.borrow_mut().clear();
        inner.slot_recorders.borrow_mut().clear();
        *inner.batch.borrow_mut() = None;
        shared.id.next_generation();
        inner.calls.reinstall(|idx, entry| self.install(idx, entry))
    }

    /// Runs `f` with the store: through the innermost active `Caller` while a
    /// callback runs, else by borrowing the store.
    pub(super) fn with_ctx<R>(
        &self,
        f: impl FnOnce(StoreContextMut<'_, State>, &Live) -> Result<R>,
    ) -> Result<R> {
        Self::with_ctx_in(&self.lock(), f)
    }

    /// [`Sandbox::with_ctx`] for a caller that holds the lock already
    /// (`inner` is its guard's target), without locking again.
    pub(super) fn with_ctx_in<R>(
        inner: &Inner,
        f: impl FnOnce(StoreContextMut<'_, State>, &Live) -> Result<R>,
    ) -> Result<R> {
        let live = inner.live.try_borrow().map_err(|_| Error::Busy {
            function: None,
            what: "the sandbox".into(),
            reason: "it is being reset".into(),
        })?;
        let top = inner.callers.borrow().last().copied();
        match top {
            // SAFETY: the pointer is to the `Caller` of a host call that is
            // on this thread's stack below us (pushed by `host_call`, popped
            // before it returns; this thread holds the lock, so no other
            // thread sees the list); no other reference to it is in use
            // meanwhile.
            Some(caller) => f(unsafe { &mut *caller.0 }.as_context_mut(), &live),
            None => {
                let mut store = inner.store.try_borrow_mut().map_err(|_| Error::Busy {
                    function: None,
                    what: "the sandbox's store".into(),
                    reason: "it is already in use".into(),
                })?;
                f(store.as_context_mut(), &live)
            }
        }
    }

    /// Turns a failed guest call into an error, poisoning the sandbox.
    fn trapped(&self, inner: &Inner, e: wasmtime::Error, function: &str) -> Error {
        let err = if let Some(exit) = e.downcast_ref::<I32Exit>() {
            Error::Exited {
                strategy: StrategyKind::Sandbox,
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
        inner.calls.poisoned.set(err)
    }

    /// Runs guest code: checks poisoning, sets the deadline for an outermost
    /// call, turns traps into errors.
    pub(super) fn run_guest<R>(
        &self,
        function: &str,
        f: impl FnOnce(&mut StoreContextMut<'_, State>, &Live) -> wasmtime::Result<R>,
    ) -> Result<R> {
        self.run_guest_in(&self.lock(), function, f)
    }

    /// [`Sandbox::run_guest`] for a caller that holds the lock already
    /// (`inner` is its guard's target), without locking again.
    pub(super) fn run_guest_in<R>(
        &self,
        inner: &Inner,
        function: &str,
        f: impl FnOnce(&mut StoreContextMut<'_, State>, &Live) -> wasmtime::Result<R>,
    ) -> Result<R> {
        inner
            .calls
            .poisoned
            .check(<Self as Strategy>::NAME, &self.shared.module.name)?;
        let depth = inner.calls.depth.get();
        let started = self.ticks();
        inner.calls.depth.set(depth + 1);
        let r = Self::with_ctx_in(inner, |mut ctx, live| {
            if depth == 0 {
                self.start_budget(inner, &mut ctx, started);
            } else {
                // A call from host code inside a call (a callback, a
                // delivery of batched calls): the deadline moves later by
                // the host's time so far, which the callback's end would
                // add anyway, so a slow callback does not starve the call.
                let host = started
                    .saturating_sub(inner.host_since.get())
                    .saturating_sub(inner.nested_guest.get());
                let at = inner.deadline_at.get() + host;
                set_deadline(&mut ctx, started, at.saturating_sub(started).max(1));
            }
            let r = f(&mut ctx, live);
            if r.as_ref()
                .is_err_and(|e| e.is::<wasmtime::ThrownException>())
            {
                // An exception no wasm frame caught (a longjmp whose setjmp
                // is gone): it ends here, so the store keeps no pending one.
                // Taken inside a root scope, so its root (and the object)
                // is released when the scope ends.
                let mut scope = wasmtime::RootScope::new(&mut ctx);
                let _ = scope.as_context_mut().take_pending_exception();
            }
            Ok(r)
        });
        inner.calls.depth.set(depth);
        if depth == 1 {
            // A call from inside a callback: the library's time, charged to
            // the deadline (deeper calls are inside this span already).
            let spent = self.ticks().saturating_sub(started);
            inner.nested_guest.set(inner.nested_guest.get() + spent);
        }
        match r? {
            Ok(v) => Ok(v),
            Err(e) => Err(self.trapped(inner, e, function)),
        }
    }

    /// Starts the library's time budget at `now` (epoch ticks), for an
    /// outermost call or the closures of an outermost delivery: the
    /// deadline is a whole budget away, and no host time is counted yet.
    pub(super) fn start_budget(
        &self,
        inner: &Inner,
        ctx: &mut StoreContextMut<'_, State>,
        now: u64,
    ) {
        let budget = deadline_ticks(self.shared.config.deadline);
        inner.deadline_at.set(now + budget);
        inner.nested_guest.set(0);
        inner.host_since.set(now);
        set_deadline(ctx, now, budget);
    }
}

/// Sets the store's epoch deadline `ticks` after `now` (the engine's epoch
/// count), and notes where it falls for the WASI calls that wait.
pub(super) fn set_deadline(ctx: &mut StoreContextMut<'_, State>, now: u64, ticks: u64) {
    ctx.data_mut().deadline_tick = now.saturating_add(ticks);
    ctx.set_epoch_deadline(ticks);
}

/// Refuses a grant of `host` that contains the module cache `cache` or lies
/// inside it: compiled code from the cache runs unchecked, so the library
/// must not reach it, read-only or not.
fn refuse_cache_overlap(
    host: &std::path::Path,
    cache: Option<&std::path::Path>,
    name: &str,
) -> Result<()> {
    let Some(cache) = cache else {
        return Ok(());
    };
    // Compared as the file system resolves them (a cache that does not
    // exist yet is compared by its path as given).
    let real = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (granted, cached) = (real(host), real(cache));
    if cached.starts_with(&granted) || granted.starts_with(&cached) {
        return Err(Error::Usage {
            function: None,
            what: format!("granting {} to `{name}`", host.display()),
            reason: format!(
                "it overlaps the module cache {} (SandboxConfig::cache_dir), whose compiled code \
                 sandboxes run unchecked: grant a directory apart from it, or move the cache",
                cache.display()
            ),
        });
    }
    Ok(())
}

/// A deadline as a number of epoch ticks.
pub(super) fn deadline_ticks(d: Duration) -> u64 {
    // One tick of slack: the epoch may advance just after the deadline is set.
    (d.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
}
