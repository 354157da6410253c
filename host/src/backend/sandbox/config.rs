//! [`SandboxConfig`]: a sandbox's limits and where its modules come from.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::engine::{self, default_cache_dir, CompiledModule};
use super::Sandbox;
use crate::error::{Error, Result};

/// Limits and options for a sandbox. The defaults are safe for untrusted
/// code. Start from [`SandboxConfig::default`] and change what you need,
/// with the setters (`SandboxConfig::default().deadline(d)`) or the fields;
/// new settings may be added.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// Cap on linear memory, in bytes (default 256 MiB). Growth past it fails
    /// the way `malloc` failing does: the C code sees NULL.
    pub memory_limit: u64,
    /// Wall-clock budget for the library's own code in one outermost call
    /// (default 10 s), including calls it makes back into itself from
    /// callbacks; time the host spends inside callbacks is not charged.
    /// Enforced by epoch interruption every 5 ms, the deadline's granularity.
    pub deadline: Duration,
    /// Native stack wasm code may use, in bytes (default 512 KiB); deeper
    /// recursion traps as a stack overflow.
    pub max_wasm_stack: usize,
    /// Capacity of each of the stdout and stderr capture buffers (default 1 MiB);
    /// writing past it traps.
    pub output_limit: usize,
    /// Where compiled modules are cached (default: `SANDLINK_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/sandlink`, else `~/.cache/sandlink`); `None`
    /// disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Most sandboxes alive at once in this process under this setting
    /// (default 1,000): the size of wasmtime's pooling allocator. Each slot
    /// reserves 4 GiB + 32 MiB of address space
    /// for linear memory, and as much again for the GC heap a sandbox gets
    /// the first time its library throws a wasm exception (`longjmp`), so
    /// the default reserves about 8 TiB of the 128 TiB a 64-bit Linux
    /// process can address; memory is used only as a sandbox touches it. Opening one more than this fails with
    /// [`Error::LimitReached`] naming this setting. Sandboxes with different
    /// values (or stack limits) run in different engines, each with its own
    /// pool.
    pub max_instances: u32,
    /// Most files the library may have open at once through its granted
    /// directories (default 64); past it, opening one more fails in the
    /// library with `EMFILE`. Each is a descriptor of this process.
    pub max_open_files: u32,
    /// Host directories the library may use, each under a guest path
    /// (WASI preopens; default: none, so the library sees no file system).
    /// Add them with [`SandboxConfig::grant_dir`].
    pub dirs: Vec<DirGrant>,
    /// Calls of a batched callback ([`crate::Foreign::callback_batched`])
    /// delivered one by one before the sandbox records them in the library
    /// instead (default 32,768; 0 records from the first call). Recording
    /// needs a small wasm function compiled for the callback's signature,
    /// about 2.5 ms once per signature and process, which pays for itself
    /// after some tens of thousands of calls; callbacks of a signature
    /// compiled already record from the start.
    pub record_batched_after: u32,
}

/// A wasm module with its machine code compiled ahead of time, for
/// [`SandboxConfig::open_precompiled`]: both as `sandlink-build` wrote them
/// (`Library::precompile`: the files `SANDLINK_<NAME>_WASM` and
/// `SANDLINK_<NAME>_CWASM` name), usually embedded with `include_bytes!`.
#[derive(Clone, Copy, Debug)]
pub struct Precompiled<'a> {
    wasm: &'a [u8],
    code: &'a [u8],
}

impl<'a> Precompiled<'a> {
    /// The module `wasm` with the code compiled from it ahead of time.
    ///
    /// Loading checks that `code` was compiled from this `wasm` (a
    /// SHA-256 in its header) and lets wasmtime check that it was compiled
    /// by this wasmtime, with these code settings, for this CPU; code that
    /// fails a check is not used and `wasm` is compiled instead. Empty
    /// `code` means "none": `wasm` is compiled (sandlink-build writes an
    /// empty file when it cannot compile for the target, as when
    /// cross-compiling).
    ///
    /// # Safety
    ///
    /// `code` is empty, or exactly the bytes [`SandboxConfig::precompile`]
    /// returned (the file `sandlink-build` wrote), unmodified: from this
    /// build or any other, on any machine (the module, the wasmtime
    /// version, the settings and the CPU are what loading checks). Machine
    /// code itself cannot be checked: code from anywhere else, or altered,
    /// runs with the host's privileges and can do anything.
    pub const unsafe fn new(wasm: &'a [u8], code: &'a [u8]) -> Precompiled<'a> {
        Precompiled { wasm, code }
    }

    /// The wasm module.
    pub fn wasm(&self) -> &'a [u8] {
        self.wasm
    }
}

/// A host directory granted to a sandboxed library: see
/// [`SandboxConfig::grant_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the library sees it: an absolute path such as `/data`.
    pub guest: String,
    /// What the library may do in it.
    pub access: DirAccess,
}

/// What a library may do in a granted directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirAccess {
    /// Read files and list directories; nothing is created, changed or
    /// removed.
    ReadOnly,
    /// Read, create, write, rename and remove, inside the directory only.
    ReadWrite,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            memory_limit: 256 << 20,
            deadline: Duration::from_secs(10),
            max_open_files: 64,
            max_wasm_stack: 512 << 10,
            output_limit: 1 << 20,
            cache_dir: default_cache_dir(),
            max_instances: 1000,
            dirs: Vec::new(),
            record_batched_after: 32_768,
        }
    }
}

impl SandboxConfig {
    /// Sets [`SandboxConfig::memory_limit`](#structfield.memory_limit).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Sets [`SandboxConfig::max_open_files`](#structfield.max_open_files).
    pub fn max_open_files(mut self, files: u32) -> Self {
        self.max_open_files = files;
        self
    }

    /// Sets [`SandboxConfig::deadline`](#structfield.deadline).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets [`SandboxConfig::max_wasm_stack`](#structfield.max_wasm_stack).
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// Sets [`SandboxConfig::output_limit`](#structfield.output_limit).
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }

    /// Sets [`SandboxConfig::cache_dir`](#structfield.cache_dir).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Sets [`SandboxConfig::max_instances`](#structfield.max_instances).
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n;
        self
    }

    /// Sets [`SandboxConfig::record_batched_after`](#structfield.record_batched_after).
    pub fn record_batched_after(mut self, calls: u32) -> Self {
        self.record_batched_after = calls;
        self
    }

    /// Grants the library the host directory `host`, seen inside the sandbox
    /// at the absolute path `guest` (`/data`), with `access`. C code opens
    /// `"/data/file.txt"` (or `"file.txt"` relative to it); nothing outside
    /// granted directories exists for it: `..` cannot climb out of one, and
    /// symbolic links that lead out are refused. The directory is opened
    /// when the sandbox is (and again on each reset): a missing one is an
    /// error then.
    pub fn grant_dir(mut self, host: impl AsRef<Path>, guest: &str, access: DirAccess) -> Self {
        self.dirs.push(DirGrant {
            host: host.as_ref().to_path_buf(),
            guest: guest.to_string(),
            access,
        });
        self
    }

    /// Loads and compiles (or fetches from cache) the module at `path`, then
    /// instantiates it. Opening a file this process already loaded, unchanged
    /// (same inode, size and times), costs a `stat` and an instantiation.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Sandbox> {
        let module =
            engine::load_path(path.as_ref(), self.engine_key(), self.cache_dir.as_deref())?;
        Sandbox::instantiate(module, self.clone())
    }

    /// Like [`SandboxConfig::open`], from the module's bytes (binary or text).
    pub fn open_bytes(&self, wasm: &[u8], name: &str) -> Result<Sandbox> {
        let module = engine::load(wasm, name, self.engine_key(), self.cache_dir.as_deref())?;
        Sandbox::instantiate(module, self.clone())
    }

    /// Instantiates a module whose machine code was compiled ahead of time
    /// (`sandlink-build`'s `Library::precompile`, embedded in the binary):
    /// the first sandbox in a process then compiles nothing. When the code
    /// does not fit (another wasmtime version or CPU, say), the module's
    /// wasm is compiled instead, as [`SandboxConfig::open_bytes`] would;
    /// [`CompiledModule::precompiled`] tells which happened.
    pub fn open_precompiled(&self, module: Precompiled<'_>, name: &str) -> Result<Sandbox> {
        let module = self.module_precompiled(module, name)?;
        Sandbox::instantiate(module, self.clone())
    }

    /// The compiled module for a [`Precompiled`] one (through the in-process
    /// cache), to instantiate once per input with
    /// [`SandboxConfig::instantiate`].
    pub fn module_precompiled(
        &self,
        module: Precompiled<'_>,
        name: &str,
    ) -> Result<Arc<CompiledModule>> {
        // SAFETY: `Precompiled::new`'s caller promised that `code` is
        // `precompile`'s output (or empty), which is `load_precompiled`'s
        // contract.
        unsafe {
            engine::load_precompiled(
                module.wasm,
                module.code,
                name,
                self.engine_key(),
                self.cache_dir.as_deref(),
            )
        }
    }

    /// Compiles `wasm` ahead of time for [`Precompiled::new`]: machine code
    /// for this host's CPU and this build of wasmtime, with the code
    /// settings every sandbox uses (whatever its limits), tagged with the
    /// module's SHA-256. `sandlink-build` calls this at build time
    /// (`Library::precompile`); errors are those of compiling `wasm`.
    pub fn precompile(wasm: &[u8], name: &str) -> Result<Vec<u8>> {
        engine::precompile(wasm, name)
    }

    /// Compiles `wasm` through the disk cache only, bypassing the in-process
    /// cache: a hook for the cache's tests and the benchmarks of cold
    /// compiles and cache loads, not part of the API. Use
    /// [`SandboxConfig::module`] for a module to instantiate many times.
    #[doc(hidden)]
    pub fn compile(&self, wasm: &[u8], name: &str) -> Result<Arc<CompiledModule>> {
        engine::compile(wasm, name, self.engine_key(), self.cache_dir.as_deref())
    }

    /// The compiled module for `wasm` (through the in-process and disk
    /// caches, as [`SandboxConfig::open_bytes`] uses), to instantiate once per
    /// input with [`SandboxConfig::instantiate`].
    pub fn module(&self, wasm: &[u8], name: &str) -> Result<Arc<CompiledModule>> {
        engine::load(wasm, name, self.engine_key(), self.cache_dir.as_deref())
    }

    /// A fresh sandbox from an already compiled module (cheap: pooled memory,
    /// copy-on-write initialisation). The module must have been compiled
    /// under this configuration's stack limit and instance count, which
    /// wasmtime fixes per engine; otherwise this is an error rather than a
    /// sandbox that silently runs under the module's settings.
    pub fn instantiate(&self, module: &Arc<CompiledModule>) -> Result<Sandbox> {
        let want = self.engine_key();
        if module.key != want {
            return Err(Error::Usage {
                function: None,
                what: format!("instantiating module `{}`", module.name),
                reason: format!(
                    "it was compiled for max_wasm_stack {} and max_instances {}, but this \
                     SandboxConfig asks for {} and {}; compile it with this config",
                    module.key.max_wasm_stack,
                    module.key.max_instances,
                    want.max_wasm_stack,
                    want.max_instances
                ),
            });
        }
        Sandbox::instantiate(module.clone(), self.clone())
    }

    fn engine_key(&self) -> engine::EngineKey {
        engine::EngineKey {
            max_wasm_stack: self.max_wasm_stack,
            max_instances: self.max_instances,
        }
    }
}
