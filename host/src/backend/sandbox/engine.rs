//! Shared wasmtime engines, the epoch ticker behind deadlines, and compiled
//! modules cached in memory and on disk.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, OptLevel,
    PoolingAllocationConfig,
};

use super::State;
use crate::error::{Error, Result};

/// How often the epoch advances: the granularity of execution deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Instances that may be alive at once per engine (pooling allocator slots).
const POOL_INSTANCES: u32 = 256;

/// Upper bound on a module's function table (its own entries plus callbacks).
pub(crate) const TABLE_ELEMENTS: usize = 100_000;

fn engine_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Load {
        library: "<wasmtime engine>".into(),
        reason: format!("{what}: {e}"),
    }
}

/// The shared engine for a given wasm stack limit (engine-wide in wasmtime,
/// so one engine per distinct value). Each engine gets an epoch ticker.
pub(crate) fn engine(max_wasm_stack: usize) -> Result<Engine> {
    static ENGINES: OnceLock<Mutex<HashMap<usize, Engine>>> = OnceLock::new();
    let engines = ENGINES.get_or_init(Default::default);
    let mut engines = engines.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = engines.get(&max_wasm_stack) {
        return Ok(e.clone());
    }
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(POOL_INSTANCES)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES)
        .total_stacks(0)
        .total_component_instances(0)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .table_elements(TABLE_ELEMENTS)
        .max_memory_size(1 << 32);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(max_wasm_stack)
        .memory_init_cow(true)
        .cranelift_opt_level(OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).map_err(|e| engine_error("cannot create engine", e))?;
    let ticker = engine.clone();
    std::thread::Builder::new()
        .name("sandlink-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            ticker.increment_epoch();
        })
        .map_err(|e| engine_error("cannot start the epoch ticker thread", e))?;
    engines.insert(max_wasm_stack, engine.clone());
    Ok(engine)
}

/// A module compiled for one engine and pre-linked against WASI: each
/// instantiation only allocates a store and copies nothing it need not
/// (copy-on-write memory images, pooled slots).
pub struct CompiledModule {
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<State>,
    pub(crate) name: String,
    /// Whether this load came from the on-disk cache.
    pub(crate) from_cache: bool,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompiledModule({})", self.name)
    }
}

impl CompiledModule {
    /// Whether the compiled code came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
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

const MAGIC: &[u8; 12] = b"SANDLINK-CW1";

/// The in-process cache: one compiled module per (wasm hash, engine).
type ProcessCache = Mutex<HashMap<([u8; 32], usize), Arc<CompiledModule>>>;

/// Compiles `wasm` (or takes it from the in-process or disk cache), links
/// WASI, and prepares instantiation.
pub(crate) fn load(
    wasm: &[u8],
    name: &str,
    max_wasm_stack: usize,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    static PROCESS: OnceLock<ProcessCache> = OnceLock::new();
    let digest: [u8; 32] = Sha256::digest(wasm).into();
    let key = (digest, max_wasm_stack);
    let process = PROCESS.get_or_init(Default::default);
    if let Some(m) = process.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(m.clone());
    }
    let compiled = compile_digested(wasm, &digest, name, max_wasm_stack, cache_dir)?;
    process
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, compiled.clone());
    Ok(compiled)
}

/// Like [`load`], through the disk cache only.
pub(crate) fn compile(
    wasm: &[u8],
    name: &str,
    max_wasm_stack: usize,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    let digest: [u8; 32] = Sha256::digest(wasm).into();
    compile_digested(wasm, &digest, name, max_wasm_stack, cache_dir)
}

fn compile_digested(
    wasm: &[u8],
    digest: &[u8; 32],
    name: &str,
    max_wasm_stack: usize,
    cache_dir: Option<&Path>,
) -> Result<Arc<CompiledModule>> {
    let engine = engine(max_wasm_stack)?;
    let (module, from_cache) = compile_cached(&engine, wasm, digest, name, cache_dir)?;
    let mut linker: Linker<State> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)
        .map_err(|e| load_error(name, "cannot link WASI", e))?;
    let pre = linker.instantiate_pre(&module).map_err(|e| {
        load_error(
            name,
            "the module needs imports that the sandbox does not provide",
            e,
        )
    })?;
    Ok(Arc::new(CompiledModule {
        engine,
        pre,
        name: name.to_string(),
        from_cache,
    }))
}

pub(crate) fn load_error(name: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Load {
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
) -> Result<(Module, bool)> {
    let compile =
        || Module::new(engine, wasm).map_err(|e| load_error(name, "invalid wasm module", e));
    let Some(dir) = cache_dir else {
        return Ok((compile()?, false));
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let path = dir.join(format!("{}-{:016x}.cwasm", hex(digest), h.finish()));

    if let Ok(bytes) = std::fs::read(&path) {
        if let Some(payload) = verified_payload(&bytes) {
            // SAFETY: the payload is exactly what `Module::serialize` wrote for
            // an engine with this compatibility hash (checksum verified);
            // wasmtime re-checks the engine settings on deserialize.
            if let Ok(m) = unsafe { Module::deserialize(engine, payload) } {
                return Ok((m, true));
            }
        }
    }
    let module = compile()?;
    // A cache that cannot be written only costs the next run a compile.
    if let Ok(ser) = module.serialize() {
        let _ = write_entry(dir, &path, &ser);
    }
    Ok((module, false))
}

fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(MAGIC)?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, payload) = rest.split_at(32);
    (Sha256::digest(payload).as_slice() == sum).then_some(payload)
}

fn write_entry(dir: &Path, path: &Path, payload: &[u8]) -> std::io::Result<()> {
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
    f.write_all(&Sha256::digest(payload))?;
    f.write_all(payload)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
