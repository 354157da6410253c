//! Shared wasmtime engines, the epoch ticker behind deadlines, and compiled
//! modules cached in memory and on disk.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, OptLevel,
    PoolingAllocationConfig,
};

use super::State;
use crate::error::{Error, Result, StrategyKind};

/// How often the epoch advances: the granularity of execution deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Upper bound on a module's function table (its own entries plus callbacks).
pub(crate) const TABLE_ELEMENTS: usize = 100_000;

fn engine_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Load {
        strategy: StrategyKind::Sandbox,
        library: "<wasmtime engine>".into(),
        reason: format!("{what}: {e}"),
    }
}

/// Linear memory reserved per pool slot: all of wasm32's 4 GiB, so that
/// Cranelift elides bounds checks, plus wasmtime's 32 MiB guard region.
/// Reserved address space only; pages cost memory once touched.
pub const SLOT_RESERVATION: u64 = (1 << 32) + (32 << 20);

/// The settings that wasmtime fixes per engine: modules compiled for one
/// engine run only there, so there is one engine per distinct key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct EngineKey {
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_instances: u32,
}

/// An engine's epoch count as the host can read it (wasmtime does not
/// expose its own): advanced by the same ticker, right after the epoch, so
/// measuring a span in ticks costs two atomic loads, not two clock reads.
pub(crate) type Ticks = Arc<AtomicU64>;

type Engines = Mutex<HashMap<EngineKey, (Engine, Ticks)>>;

/// The shared engine for `key`, with its tick counter. Each engine gets an
/// epoch ticker thread and reserves its pool's address space up front.
pub(crate) fn engine(key: EngineKey) -> Result<(Engine, Ticks)> {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    let engines = ENGINES.get_or_init(Default::default);
    let mut engines = engines.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = engines.get(&key) {
        return Ok(e.clone());
    }
    let EngineKey {
        max_wasm_stack,
        max_instances,
    } = key;
    let mut pool = PoolingAllocationConfig::default();
    // A store's GC heap (allocated the first time the library throws a
    // wasm exception: setjmp/longjmp) takes a slot of the memory pool too.
    // Each sandbox's store holds its library's instance and up to
    // `MAX_RECORDERS` small recorder instances (batched callbacks), which
    // define no memory or table: only the instance count grows.
    let per_store = 1 + super::batch::MAX_RECORDERS;
    pool.total_core_instances(max_instances.saturating_mul(per_store))
        .total_memories(max_instances.saturating_mul(2))
        .total_gc_heaps(max_instances)
        .total_tables(max_instances)
        .total_stacks(0)
        .total_component_instances(0)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .table_elements(TABLE_ELEMENTS)
        .max_memory_size(1 << 32);
    let mut config = code_config();
    config
        .max_wasm_stack(max_wasm_stack)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).map_err(|e| {
        engine_error(
            &format!(
                "cannot create an engine whose pool reserves address space for {max_instances} \
                 sandboxes ({max_instances} × {SLOT_RESERVATION} bytes of linear memory; \
                 lower SandboxConfig::max_instances)"
            ),
            e,
        )
    })?;
    let ticker = engine.clone();
    let ticks = Ticks::default();
    let counter = ticks.clone();
    std::thread::Builder::new()
        .name("sandlink-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            ticker.increment_epoch();
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .map_err(|e| engine_error("cannot start the epoch ticker thread", e))?;
    engines.insert(key, (engine.clone(), ticks.clone()));
    Ok((engine, ticks))
}

/// The settings that shape compiled code, shared by every engine and by
/// [`precompile`]: what wasmtime checks when it loads code compiled
/// elsewhere. The pooling allocator and the stack limit are run-time
/// settings (wasmtime's `check_compatible` ignores them), so code compiled
/// once runs in every engine [`engine`] makes.
fn code_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .memory_init_cow(true)
        // setjmp/longjmp, as sandlink-build compiles them. The exception
        // objects live in a GC heap (the `gc` feature); the GC proposal
        // itself (structs and arrays a module could allocate without the
        // linear-memory cap) stays off.
        .wasm_exceptions(true)
        .wasm_gc(false)
        .cranelift_opt_level(OptLevel::Speed);
    config
}

/// A module compiled for one engine and pre-linked against WASI: each
/// instantiation only allocates a store and copies nothing it need not
/// (copy-on-write memory images, pooled slots).
pub struct CompiledModule {
    pub(crate) engine: Engine,
    pub(crate) ticks: Ticks,
    pub(crate) key: EngineKey,
    pub(crate) pre: InstancePre<State>,
    pub(crate) name: String,
    /// Where the machine code came from.
    pub(crate) origin: Origin,
}

/// Where a [`CompiledModule`]'s machine code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Compiled in this process.
    Compiled,
    /// Loaded from the on-disk cache.
    DiskCache,
    /// Compiled ahead of time ([`precompile`]) and handed in with the wasm.
    Precompiled,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompiledModule({})", self.name)
    }
}

impl CompiledModule {
    /// Whether the compiled code came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.origin == Origin::DiskCache
    }

    /// Whether the compiled code is the one compiled ahead of time and
    /// handed in with the module ([`Precompiled`](super::Precompiled)), as
    /// opposed to compiled in this process or taken from the disk cache
    /// because that code did not fit this build.
    pub fn precompiled(&self) -> bool {
        self.origin == Origin::Precompiled
    }
}

/// Where compiled modules are cached on disk: `SANDLINK_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/sandlink`, else `~/.cache/sandlink`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("SANDLINK_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("sandlink"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sandlink"))
}

/// The header of a disk-cache entry: this format's name and version, then
/// the SHA-256 of (the module's digest, the engine's compatibility hash,
/// the code), then the code as wasmtime serialises it. The sum binds the
/// code to the module it was compiled from and the engine it was compiled
/// for: an entry copied under another module's name does not verify.
const MAGIC: &[u8; 12] = b"SANDLINK-CW2";

/// The in-process cache: one compiled module per (wasm hash, engine).
type ProcessCache = Mutex<HashMap<([u8; 32], EngineKey), Arc<CompiledModule>>>;

/// What identifies a file's contents without reading it: a rewrite changes
/// the size, the modification time or the inode-change time (nanosecond
/// resolution), a replacement changes the inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Modules opened by path: the latest stamp and module per (path, engine),
/// so a repeated open of an unchanged file costs a `stat`, not a read and a
/// hash. A changed file replaces its entry.
type PathCache = Mutex<HashMap<(PathBuf, EngineKey), (FileStamp, Arc<CompiledModule>)>>;

/// Loads the module in the file at `path`, skipping the read and the hash
/// when this process already loaded the file unchanged.
pub(crate) fn load_path(
    path: &Path,
    key: EngineKey,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    static OPENED: OnceLock<PathCache> = OnceLock::new();
    let name = path.display().to_string();
    let io = |e: std::io::Error| Error::Load {
        strategy: StrategyKind::Sandbox,
        library: name.clone(),
        reason: e.to_string(),
    };
    let stamp = FileStamp::of(&std::fs::metadata(path).map_err(io)?);
    let opened = OPENED.get_or_init(Default::default);
    let cache_key = (path.to_path_buf(), key);
    if let Some((s, m)) = opened
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&cache_key)
    {
        if *s == stamp {
            return Ok(m.clone());
        }
    }
    let file = std::fs::File::open(path).map_err(io)?;
    // Stamp the file that is read: a change between the `stat` above and
    // the read must not pair old bytes with a new stamp.
    let stamp = FileStamp::of(&file.metadata().map_err(io)?);
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut wasm).map_err(io)?;
    let module = load(&wasm, &name, key, cache_dir)?;
    opened
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(cache_key, (stamp, module.clone()));
    Ok(module)
}

/// Compiles `wasm` (or takes it from the in-process or disk cache), links
/// WASI, and prepares instantiation.
pub(crate) fn load(
    wasm: &[u8],
    name: &str,
    engine_key: EngineKey,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    let digest: [u8; 32] = Sha256::digest(wasm).into();
    through_process_cache(digest, engine_key, || {
        compile_digested(wasm, &digest, name, engine_key, cache_dir)
    })
}

/// The module for (`digest`, `key`) this process already has, else what
/// `make` makes, kept for next time.
fn through_process_cache(
    digest: [u8; 32],
    key: EngineKey,
    make: impl FnOnce() -> Result<Arc<CompiledModule>>,
) -> Result<Arc<CompiledModule>> {
    static PROCESS: OnceLock<ProcessCache> = OnceLock::new();
    let process = PROCESS.get_or_init(Default::default);
    if let Some(m) = process
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(digest, key))
    {
        return Ok(m.clone());
    }
    let compiled = make()?;
    process
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((digest, key), compiled.clone());
    Ok(compiled)
}

/// The header of what [`precompile`] makes: this format's name and version,
/// then the SHA-256 of the wasm module the code was compiled from, then the
/// code as wasmtime serialises it.
const AOT_MAGIC: &[u8; 16] = b"sandlink aot v1\n";

/// Compiles `wasm` ahead of time, with the settings every sandbox engine
/// uses, for this host's CPU and this wasmtime: the bytes to hand to
/// [`Precompiled::new`](super::Precompiled::new) with the same `wasm`.
pub(crate) fn precompile(wasm: &[u8], name: &str) -> Result<Vec<u8>> {
    let engine = Engine::new(&code_config())
        .map_err(|e| engine_error("cannot create an engine to compile with", e))?;
    let code = engine
        .precompile_module(&binary(wasm, name)?)
        .map_err(|e| load_error(name, "invalid wasm module", e))?;
    let mut out = Vec::with_capacity(AOT_MAGIC.len() + 32 + code.len());
    out.extend_from_slice(AOT_MAGIC);
    out.extend_from_slice(&Sha256::digest(wasm));
    out.extend_from_slice(&code);
    Ok(out)
}

/// Loads a module compiled ahead of time: its code when that code was
/// compiled from this `wasm` and fits this wasmtime, these settings and
/// this CPU (wasmtime checks the last three); else `wasm` compiled through
/// the disk cache, as [`load`] does.
///
/// # Safety
///
/// `code` is empty, or bytes [`precompile`] returned, unmodified: wasmtime
/// runs the machine code in them as it finds it.
pub(crate) unsafe fn load_precompiled(
    wasm: &[u8],
    code: &[u8],
    name: &str,
    engine_key: EngineKey,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    let digest: [u8; 32] = Sha256::digest(wasm).into();
    through_process_cache(digest, engine_key, || {
        let (engine, ticks) = engine(engine_key)?;
        let payload = code
            .strip_prefix(AOT_MAGIC)
            .and_then(|rest| rest.strip_prefix(&digest[..]));
        // SAFETY: the caller promises `code` is what `precompile` wrote, so
        // the payload is `Engine::precompile_module`'s output; the digest
        // ties it to this `wasm`. wasmtime checks its version, the code
        // settings and the CPU features before using it, and an `Err` (a
        // different build) falls back to compiling.
        match payload.and_then(|p| unsafe { Module::deserialize(&engine, p) }.ok()) {
            Some(m) => prepare(engine, ticks, engine_key, m, name, Origin::Precompiled),
            None => compile_digested(wasm, &digest, name, engine_key, cache_dir),
        }
    })
}

/// Like [`load`], through the disk cache only.
pub(crate) fn compile(
    wasm: &[u8],
    name: &str,
    key: EngineKey,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    let digest: [u8; 32] = Sha256::digest(wasm).into();
    compile_digested(wasm, &digest, name, key, cache_dir)
}

fn compile_digested(
    wasm: &[u8],
    digest: &[u8; 32],
    name: &str,
    key: EngineKey,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    let (engine, ticks) = engine(key)?;
    let (module, origin) = compile_cached(&engine, wasm, digest, name, cache_dir)?;
    prepare(engine, ticks, key, module, name, origin)
}

/// Links WASI into `module` and prepares its instantiation.
fn prepare(
    engine: Engine,
    ticks: Ticks,
    key: EngineKey,
    module: Module,
    name: &str,
    origin: Origin,
) -> Result<Arc<CompiledModule>> {
    let mut linker: Linker<State> = Linker::new(&engine);
    super::wasi::add_to_linker(&mut linker).map_err(|e| load_error(name, "cannot link WASI", e))?;
    let pre = linker.instantiate_pre(&module).map_err(|e| {
        load_error(
            name,
            "the module needs imports that the sandbox does not provide",
            e,
        )
    })?;
    Ok(Arc::new(CompiledModule {
        engine,
        ticks,
        key,
        pre,
        name: name.to_string(),
        origin,
    }))
}

/// The module in the binary format: `wasm` itself when it is binary, else
/// its text (WAT) translated (wasmtime's `wat` feature is off: see
/// sandlink's Cargo.toml).
fn binary<'a>(wasm: &'a [u8], name: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    wat::parse_bytes(wasm).map_err(|e| load_error(name, "invalid wasm module", e))
}

pub(crate) fn load_error(name: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Load {
        strategy: StrategyKind::Sandbox,
        library: name.to_string(),
        reason: format!("{what}: {e:#}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles through the on-disk cache. An entry is used only when its
/// checksum verifies and wasmtime accepts it for this engine; anything else
/// is recompiled and overwritten.
fn compile_cached(
    engine: &Engine,
    wasm: &[u8],
    digest: &[u8; 32],
    name: &str,
    cache_dir: Option<&Path>,
) -> Result<(Module, Origin)> {
    let compile = || {
        Module::new(engine, &binary(wasm, name)?)
            .map_err(|e| load_error(name, "invalid wasm module", e))
    };
    let Some(dir) = cache_dir else {
        return Ok((compile()?, Origin::Compiled));
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let compat = h.finish();
    let path = dir.join(format!("{}-{compat:016x}.cwasm", hex(digest)));

    if let Ok(bytes) = std::fs::read(&path) {
        if let Some(payload) = verified_payload(&bytes, digest, compat) {
            // SAFETY: the payload is what `Module::serialize` wrote for this
            // module (its digest) and an engine with this compatibility hash
            // (the sum over the three verified); the cache directory is
            // trusted (SECURITY.md), and wasmtime re-checks the engine
            // settings on deserialize.
            if let Ok(m) = unsafe { Module::deserialize(engine, payload) } {
                return Ok((m, Origin::DiskCache));
            }
        }
    }
    let module = compile()?;
    // A cache that cannot be written only costs the next run a compile.
    if let Ok(ser) = module.serialize() {
        let _ = write_entry(dir, &path, &entry_sum(digest, compat, &ser), &ser);
    }
    Ok((module, Origin::Compiled))
}

/// The sum a cache entry of `payload` carries, for the module with `digest`
/// and the engine with compatibility hash `compat`.
fn entry_sum(digest: &[u8; 32], compat: u64, payload: &[u8]) -> [u8; 32] {
    let mut sum = Sha256::new();
    sum.update(digest);
    sum.update(compat.to_le_bytes());
    sum.update(payload);
    sum.finalize().into()
}

fn verified_payload<'a>(bytes: &'a [u8], digest: &[u8; 32], compat: u64) -> Option<&'a [u8]> {
    let rest = bytes.strip_prefix(MAGIC)?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, payload) = rest.split_at(32);
    (entry_sum(digest, compat, payload).as_slice() == sum).then_some(payload)
}

fn write_entry(dir: &Path, path: &Path, sum: &[u8; 32], payload: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Compiled code is trusted when loaded: keep the cache private.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(sum)?;
    f.write_all(payload)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
