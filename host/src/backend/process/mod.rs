//! The `Process` strategy: the native library runs in a worker process of
//! its own, driven over a pair of pipes.
//!
//! This is the seed's planned "remote" linking, and the baseline for what
//! the in-process [`Sandbox`](crate::Sandbox) saves: the same isolation of
//! the host's memory, given by the operating system instead of wasm, at the
//! cost of a round trip per call, callback and memory access.
//!
//! **The worker** is a small C program (`host/worker/worker.c`) that
//! sandlink's build script compiles and the host embeds; it is started from
//! an in-memory file (`memfd`), so nothing needs installing or configuring.
//! It gets its two pipes (requests in, replies out) as its only descriptors
//! and an empty environment. Before the library's first instruction (its
//! initialisers, run by `dlopen`) the worker is confined in ways the
//! library cannot undo, all applied while no library code is mapped: its
//! own identity (a root host's worker takes a uid of its own), non-dumpable
//! for life, its own user, PID, network, IPC, UTS and mount namespaces with
//! a read-only root holding only the loader's directories and the library
//! file, its address-space limit, a Landlock ruleset and one seccomp filter
//! (`confine` has the details). Each mechanism asked for is required: where
//! the kernel lacks one, [`ProcessConfig::open`] fails and names the
//! opt-out. Calls go through libffi; callbacks through libffi closures at a
//! fixed address, each forwarded to the host, which may call back in before
//! it answers.
//!
//! **Nothing the worker says is trusted.** Every frame is checked (length,
//! kind, payload size), every wait is bounded by [`ProcessConfig::deadline`],
//! and any failure, a crash (`SIGSEGV` in the library), `exit`, `abort`, a
//! forbidden system call, a hang or a protocol violation, kills the worker
//! and poisons the handle until [`Process::reset`] starts a new one.
//! Because the library cannot reach host memory, `Process` is
//! [`Isolated`]: pointer arithmetic and host-chosen lengths are safe on it,
//! and a bad address is an error from the worker.
//!
//! Files by concern: `worker` (the embedded executable, start-up, how a
//! worker ended), `wire` (the protocol: framing, kinds, deadlines), `confine`
//! (the seccomp stages and the Landlock ruleset), `memory` (memory by request, the read-ahead cache),
//! `callbacks` (trampoline slots and upcalls); this file has the handle, its
//! state, and calls.

mod callbacks;
mod confine;
mod memory;
mod wire;
mod worker;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{OsStr, OsString};
use std::marker::PhantomData;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use smallvec::SmallVec;

use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{finish, lookup_symbol, CallState, Identity, Lowered, SlotGuard, SlotOwner};
use crate::strategy::{CallbackFn, ErasedFn, Isolated, Strategy};
use crate::types::{Capture, DataModel, FnSig, Raw};
use callbacks::CallbackEntry;
use memory::ReadCache;
use wire::{frame, op, reply, Payload, WireError};
use worker::{ending, spawn, Conn, Ending};

pub use confine::landlock_abi;

/// The worker runs natively on this machine: the host's data model.
const MODEL: DataModel = DataModel::host();

/// Limits for a worker. The defaults are safe for untrusted code. Start
/// from [`ProcessConfig::default`] and change what you need, with the
/// setters (`ProcessConfig::default().deadline(d)`) or the fields; new
/// settings may be added.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProcessConfig {
    /// How long the library may run in one call (default 10 s), summed
    /// over the stretches between its callbacks (the host's time in
    /// callbacks is not charged), and how long the host waits for any other
    /// message from the worker. Past it, the worker is killed.
    pub deadline: Duration,
    /// The worker's address-space limit (`RLIMIT_AS`), in bytes (default
    /// 1 GiB), in force before the library loads. Past it, `malloc` returns
    /// NULL in the library.
    pub memory_limit: u64,
    /// Whether to install the worker's seccomp filter before the library
    /// loads (default true). Off only for debugging a library that needs a
    /// system call the filter forbids.
    pub seccomp: bool,
    /// Whether to confine the worker's file system and signals with Landlock
    /// (default true). When on, Landlock is required: on a kernel without
    /// it ([`landlock_abi`]), [`ProcessConfig::open`] fails rather than run
    /// the library less confined than asked. Off only for a kernel without
    /// Landlock, or for debugging.
    pub landlock: bool,
    /// Whether to run the worker in namespaces of its own (default true):
    /// user, PID, network, IPC, UTS and mount, with a root that holds only
    /// the loader's directories and the library, read-only. The host and
    /// other workers are then invisible to the library, and so are their
    /// files. When on, they are required: where the kernel refuses them
    /// (unprivileged user namespaces disabled), [`ProcessConfig::open`]
    /// fails. Off only where namespaces are unavailable, or for debugging.
    pub namespaces: bool,
    /// For `fuzz/` only (feature `fuzzing`): keep every frame the worker
    /// sends, for [`Process::recorded_replies`]. Not an API.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub record_replies: bool,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            deadline: Duration::from_secs(10),
            memory_limit: 1 << 30,
            seccomp: true,
            landlock: true,
            namespaces: true,
            #[cfg(feature = "fuzzing")]
            record_replies: false,
        }
    }
}

impl ProcessConfig {
    /// Sets [`ProcessConfig::deadline`](#structfield.deadline).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets [`ProcessConfig::memory_limit`](#structfield.memory_limit).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Sets [`ProcessConfig::seccomp`](#structfield.seccomp).
    pub fn seccomp(mut self, on: bool) -> Self {
        self.seccomp = on;
        self
    }

    /// Sets [`ProcessConfig::landlock`](#structfield.landlock).
    pub fn landlock(mut self, on: bool) -> Self {
        self.landlock = on;
        self
    }

    /// Sets [`ProcessConfig::namespaces`](#structfield.namespaces).
    pub fn namespaces(mut self, on: bool) -> Self {
        self.namespaces = on;
        self
    }

    /// Starts a worker that loads the library at `path` (or, without a
    /// slash, by name as `dlopen` searches for it).
    pub fn open(&self, path: impl AsRef<OsStr>) -> Result<Process> {
        let path = path.as_ref().to_os_string();
        let name = path.to_string_lossy().into_owned();
        let conn = spawn(&path, &name, self)?;
        Ok(Process::with_conn(conn, name, path, self.clone()))
    }
}

/// What confines a worker ([`Process::confinement`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Confinement {
    /// The worker runs in user, PID, network, IPC, UTS and mount namespaces
    /// of its own, with a root holding only the loader's directories and
    /// the library.
    pub namespaces: bool,
    /// The Landlock ABI version the worker's ruleset was built for the
    /// kernel to enforce, or `None` without Landlock.
    pub landlock_abi: Option<u32>,
    /// The seccomp filter is installed.
    pub seccomp: bool,
    /// The worker runs as a uid and gid of its own, shared with no other
    /// worker and not the host (a root host's workers each take one; an
    /// ordinary host's keep its uid, and rely on the namespaces to be out
    /// of reach).
    pub own_uid: bool,
    /// The worker's address-space limit, in bytes.
    pub memory_limit: u64,
}

/// A native library running in a worker process.
///
/// A handle is `Send`, not `Sync`; clones share the worker, and calls are
/// serialised per worker (a callback may call in again on its thread).
#[derive(Clone)]
pub struct Process {
    shared: Arc<Shared>,
    _not_sync: PhantomData<Cell<()>>,
}

struct Shared {
    name: String,
    path: OsString,
    config: ProcessConfig,
    /// The handle's identity and reset generation.
    id: Identity,
    state: ReentrantMutex<State>,
}

struct State {
    /// `None` once the worker failed (the handle is poisoned).
    conn: RefCell<Option<Conn>>,
    /// Poisoning, the current call's depth and pending error, and the live
    /// callbacks by trampoline slot.
    calls: CallState<CallbackEntry>,
    /// Library memory read ahead of what was asked, valid until the library
    /// next runs or the host changes its memory.
    cache: RefCell<ReadCache>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Process({})", self.shared.name)
    }
}

/// A signature lowered for the worker: one scalar per parameter, each with
/// the type code the worker's libffi call (or closure) is prepared with.
struct WireSig {
    words: Lowered,
    /// The worker's type code of each argument word.
    codes: Vec<u8>,
    /// The worker's type code of the result.
    ret_code: u8,
}

impl WireSig {
    /// Fails, as `Strategy::resolve` must, for a signature that does not
    /// lower, and for more parameters than the worker takes. `name` is the
    /// function's, or `(*)` for a callback.
    fn new(sig: &FnSig, name: &str) -> Result<WireSig> {
        let words = Lowered::new(sig)?;
        if words.args.len() > wire::MAX_ARGS {
            return Err(Error::NotPassable {
                what: format!("`{name}`'s arguments"),
                c_type: sig.c_prototype(name),
                reason: format!(
                    "{} parameter words; the worker takes at most {}",
                    words.args.len(),
                    wire::MAX_ARGS
                ),
            });
        }
        Ok(WireSig {
            codes: words
                .args
                .iter()
                .map(|p| wire::type_code(*p, MODEL))
                .collect(),
            ret_code: words.ret.map_or(wire::VOID, |p| wire::type_code(p, MODEL)),
            words,
        })
    }
}

/// A function resolved in the worker.
#[derive(Clone)]
pub struct ProcessFunc {
    sym: Arc<Symbol>,
}

struct Symbol {
    name: String,
    wire: WireSig,
    errno: bool,
    /// (generation, address): re-resolved by name after a reset, since the
    /// new worker loads the library at another address.
    addr: parking_lot::Mutex<(u64, u64)>,
    /// A function pointer the library returned, not a symbol: it has no
    /// name to re-resolve, so it is stale after a reset.
    pointer: bool,
}

impl SlotOwner for Shared {
    type Entry = CallbackEntry;
    fn with_calls(&self, f: &mut dyn FnMut(&CallState<CallbackEntry>)) {
        f(&self.state.lock().calls)
    }
}

impl Process {
    fn with_conn(conn: Conn, name: String, path: OsString, config: ProcessConfig) -> Process {
        Process {
            shared: Arc::new(Shared {
                name,
                path,
                config,
                id: Identity::fresh(),
                state: ReentrantMutex::new(State {
                    conn: RefCell::new(Some(conn)),
                    calls: CallState::default(),
                    cache: RefCell::new(ReadCache::default()),
                }),
            }),
            _not_sync: PhantomData,
        }
    }

    /// **For the worker-protocol fuzz target only** (`fuzz/`): a handle
    /// whose worker is a script. `replies` is everything the "worker" says,
    /// from its handshake on (at most 64 KiB, a pipe's capacity); what the
    /// host sends is read and dropped. The handshake runs as with a real
    /// worker; then every call, callback and memory access is answered
    /// from the script, which is how the target checks that nothing a
    /// worker says can make the host panic, hang or allocate without bound.
    /// A reset starts a real worker for a library named `scripted`, and
    /// fails.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn scripted(replies: &[u8], config: ProcessConfig) -> Result<Process> {
        use std::io::{Read, Write};
        let fail = |reason: String| worker::load_error("scripted", reason);
        if replies.len() > 65536 {
            return Err(fail("a script is at most 64 KiB".into()));
        }
        let (req_rx, req_tx) = std::io::pipe().map_err(|e| fail(e.to_string()))?;
        let (rep_rx, mut rep_tx) = std::io::pipe().map_err(|e| fail(e.to_string()))?;
        // Fits in the pipe: written whole before the host reads.
        rep_tx.write_all(replies).map_err(|e| fail(e.to_string()))?;
        drop(rep_tx);
        std::thread::spawn(move || {
            let mut rx = req_rx;
            let mut sink = [0u8; 4096];
            while matches!(rx.read(&mut sink), Ok(n) if n > 0) {}
        });
        let wire = wire::Wire::new(
            std::fs::File::from(std::os::fd::OwnedFd::from(req_tx)),
            std::fs::File::from(std::os::fd::OwnedFd::from(rep_rx)),
            config.deadline,
        )
        .map_err(|e| fail(e.to_string()))?;
        let conn = Conn { child: None, wire };
        let path = OsString::from("scripted");
        let conn = worker::handshake(conn, &path, "scripted", false, &config)?;
        Ok(Process::with_conn(conn, "scripted".into(), path, config))
    }

    /// For `fuzz/` only (feature `fuzzing`): every frame this worker sent
    /// since it started, when [`ProcessConfig::record_replies`] is on: a
    /// script for [`Process::scripted`] that replays this session. Not an
    /// API.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn recorded_replies(&self) -> Vec<u8> {
        let st = self.lock();
        let conn = st.conn.borrow();
        conn.as_ref()
            .and_then(|c| c.wire.log.clone())
            .unwrap_or_default()
    }

    /// Starts a worker for the library at `path` with the default
    /// [`ProcessConfig`]. Safe: the library runs in another process, and
    /// nothing it does or says can reach this one's memory.
    pub fn open(path: impl AsRef<OsStr>) -> Result<Process> {
        ProcessConfig::default().open(path)
    }

    /// The limits this worker runs under.
    pub fn config(&self) -> &ProcessConfig {
        &self.shared.config
    }

    /// What confines this worker: the mechanisms in force around the
    /// library, as its [`ProcessConfig`] asked (each one asked for is in
    /// force, or the worker would not have started).
    pub fn confinement(&self) -> Confinement {
        let c = &self.shared.config;
        Confinement {
            namespaces: c.namespaces,
            landlock_abi: if c.landlock { landlock_abi() } else { None },
            seccomp: c.seccomp,
            // SAFETY: geteuid has no preconditions.
            own_uid: unsafe { libc::geteuid() } == 0,
            memory_limit: c.memory_limit,
        }
    }

    /// The process id of the worker the host started (`None` while
    /// poisoned). With [`ProcessConfig::namespaces`], that is the worker's
    /// monitor, outside the namespaces; the library runs in its child's
    /// child.
    pub fn worker_pid(&self) -> Option<u32> {
        self.lock()
            .conn
            .borrow()
            .as_ref()
            .and_then(|c| c.child.as_ref().map(Child::id))
    }

    /// [`Isolated::reset`]: a new worker.
    fn reset_worker(&self) -> Result<()> {
        let st = self.lock();
        st.calls
            .start_reset(|| format!("worker `{}`", self.shared.name))?;
        // The old worker goes first (its Drop kills it).
        *st.conn.borrow_mut() = None;
        let conn = spawn(&self.shared.path, &self.shared.name, &self.shared.config)?;
        *st.conn.borrow_mut() = Some(conn);
        self.shared.id.next_generation();
        st.cache.borrow_mut().clear();
        // An emptied slot needs nothing: the new worker's trampolines start
        // empty, and the host answers an upcall to it with zero.
        st.calls.reinstall(|slot, entry| match entry {
            Some(e) => self.install(slot, e).map(|_| ()),
            None => Ok(()),
        })
    }

    fn lock(&self) -> ReentrantMutexGuard<'_, State> {
        self.shared.state.lock()
    }

    fn check_poisoned(&self, st: &State) -> Result<()> {
        st.calls.poisoned.check(Self::NAME, &self.shared.name)
    }

    /// Ends the worker after `e`, poisoning the handle, and describes what
    /// happened to it.
    fn fail(&self, st: &State, function: &str, e: WireError) -> Error {
        let conn = st.conn.borrow_mut().take();
        let err = match conn {
            None => self.gone(),
            Some(mut conn) => match ending(conn.child.as_mut(), e, self.shared.config.deadline) {
                Ending::Exited(code) => Error::Exited {
                    strategy: StrategyKind::Process,
                    function: function.to_string(),
                    code,
                },
                other => Error::WorkerFailed {
                    function: function.to_string(),
                    reason: other.describe(),
                },
            },
        };
        st.calls.poisoned.set(err)
    }

    /// Sends one request.
    fn send(&self, st: &State, bytes: &[u8], function: &str) -> Result<()> {
        self.check_poisoned(st)?;
        // Byte 4 is the request's kind: only reads leave memory as it is.
        if !matches!(bytes.get(4), Some(&(op::READ | op::CSTR | op::SYMBOL))) {
            st.cache.borrow_mut().clear();
        }
        let r = match st.conn.borrow_mut().as_mut() {
            Some(conn) => conn.wire.send(bytes),
            None => return Err(self.gone()),
        };
        r.map_err(|e| self.fail(st, function, e))
    }

    /// Receives one message.
    fn recv(&self, st: &State, function: &str) -> Result<(u8, Vec<u8>)> {
        self.recv_within(st, function, self.shared.config.deadline)
    }

    /// Receives one message within `limit`.
    fn recv_within(&self, st: &State, function: &str, limit: Duration) -> Result<(u8, Vec<u8>)> {
        let r = match st.conn.borrow_mut().as_mut() {
            Some(conn) => conn.wire.recv_within(limit),
            None => return Err(self.gone()),
        };
        r.map_err(|e| self.fail(st, function, e))
    }

    /// A reply of the wrong kind for `what`: a protocol violation.
    fn unexpected(&self, st: &State, what: &str, kind: u8) -> Error {
        self.fail(
            st,
            what,
            WireError::Violation(format!("reply kind {kind} to {what}")),
        )
    }

    fn gone(&self) -> Error {
        Error::Poisoned {
            strategy: StrategyKind::Process,
            function: None,
            library: self.shared.name.clone(),
            reason: "the worker is gone".into(),
        }
    }

    /// A request that is not a call: one reply, never an upcall.
    fn request(&self, kind: u8, parts: &[&[u8]], what: &str) -> Result<(u8, Vec<u8>)> {
        self.request_limited(kind, parts, 0, what)
    }

    /// [`Process::request`], answered by a `DATA` frame of at most `data`
    /// bytes or another reply.
    fn request_limited(
        &self,
        kind: u8,
        parts: &[&[u8]],
        data: u64,
        what: &str,
    ) -> Result<(u8, Vec<u8>)> {
        let st = self.lock();
        self.send(&st, &frame(kind, parts), what)?;
        if let Some(conn) = st.conn.borrow_mut().as_mut() {
            conn.wire.expect_data(data);
        }
        let (k, body) = self.recv(&st, what)?;
        // Anything but a reply (an upcall, an unknown kind) breaks the protocol.
        if !(reply::OK..=reply::RESULT).contains(&k) {
            return Err(self.unexpected(&st, what, k));
        }
        Ok((k, body))
    }

    /// A request answered by a `u64` value or an error message.
    fn request_value(
        &self,
        kind: u8,
        parts: &[&[u8]],
        what: &str,
    ) -> Result<std::result::Result<u64, String>> {
        let (k, body) = self.request(kind, parts, what)?;
        match k {
            reply::VALUE => {
                let mut p = Payload::new("value", &body);
                let v = p.u64().and_then(|v| p.end().map(|()| v));
                v.map(Ok).map_err(|e| self.fail(&self.lock(), what, e))
            }
            reply::ERROR => Ok(Err(wire::message(&body))),
            k => Err(self.unexpected(&self.lock(), what, k)),
        }
    }

    /// A request answered by at most `limit` bytes or an error message.
    fn request_data(
        &self,
        kind: u8,
        parts: &[&[u8]],
        limit: u64,
        what: &str,
    ) -> Result<std::result::Result<Vec<u8>, (u8, Vec<u8>)>> {
        let (k, body) = self.request_limited(kind, parts, limit, what)?;
        match k {
            reply::DATA => Ok(Ok(body)),
            other => Ok(Err((other, body))),
        }
    }

    fn bound(
        &self,
        name: &str,
        wire: WireSig,
        errno: bool,
        addr: u64,
        pointer: bool,
    ) -> ProcessFunc {
        ProcessFunc {
            sym: Arc::new(Symbol {
                name: name.to_string(),
                wire,
                errno,
                addr: parking_lot::Mutex::new((self.shared.id.generation(), addr)),
                pointer,
            }),
        }
    }

    fn resolve_addr(&self, sym: &Symbol) -> Result<u64> {
        let generation = self.shared.id.generation();
        {
            let cached = sym.addr.lock();
            if cached.0 == generation && cached.1 != 0 {
                return Ok(cached.1);
            }
            if sym.pointer {
                return Err(Error::StalePointer {
                    function: Some(sym.name.clone()),
                    what: "the function pointer (an address in the worker that was replaced)"
                        .into(),
                    address: cached.1,
                    generation: cached.0,
                    current: generation,
                });
            }
        }
        let addr = self.symbol_addr(&sym.name)?;
        *sym.addr.lock() = (generation, addr);
        Ok(addr)
    }
}

// SAFETY: `resolve` lowers the signature (failing for what does not lower)
// and `invoke` sends exactly those words with their types to the worker,
// which calls the symbol through libffi; upcalls run the erased function
// only during a call, with the words the worker sent for the callback's
// declared parameters (checked in number) and this library's memory,
// through `Pending::run` (so `CallbackFn::run`); a dropped guard removes the
// callback before the entry is freed.
unsafe impl Strategy for Process {
    type Func = ProcessFunc;

    const NAME: StrategyKind = StrategyKind::Process;

    fn library_name(&self) -> String {
        self.shared.name.clone()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<ProcessFunc> {
        let wire = WireSig::new(sig, name)?;
        let addr = self.symbol_addr(name)?;
        Ok(self.bound(name, wire, errno, addr, false))
    }

    unsafe fn resolve_code(
        &self,
        addr: u64,
        sig: &Arc<FnSig>,
        errno: bool,
        name: &str,
    ) -> Result<ProcessFunc> {
        // The worker calls whatever is at `addr`: at worst it crashes, and
        // that is reported like any crash.
        let wire = WireSig::new(sig, name)?;
        Ok(self.bound(name, wire, errno, addr, true))
    }

    unsafe fn invoke(&self, f: &ProcessFunc, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        let sym = &f.sym;
        let narrowed = sym.wire.words.narrow(args, MODEL)?;
        let st = self.lock();
        self.check_poisoned(&st)?;
        let addr = self.resolve_addr(sym)?;
        let mut words: SmallVec<[u8; 64]> = SmallVec::new();
        for w in narrowed {
            words.extend_from_slice(&w.to_le_bytes());
        }
        let w = &sym.wire;
        let head = [u8::from(sym.errno), w.ret_code, w.codes.len() as u8];
        let request = frame(op::CALL, &[&addr.to_le_bytes(), &head, &w.codes, &words]);
        let name = sym.name.as_str();
        st.calls.depth.set(st.calls.depth.get() + 1);
        let r = (|| {
            self.send(&st, &request, name)?;
            // The library's time in this call, summed over its upcalls (the
            // host's time in callbacks is not charged): a library that keeps
            // calling back still meets the deadline.
            let mut left = self.shared.config.deadline;
            loop {
                let waited = Instant::now();
                let (k, body) = self.recv_within(&st, name, left)?;
                left = left.saturating_sub(waited.elapsed());
                match k {
                    reply::RESULT => {
                        let mut p = Payload::new("result", &body);
                        let parsed = p.u64().and_then(|b| p.i32().map(|e| (b, e)));
                        let (bits, errno) = parsed
                            .and_then(|v| p.end().map(|()| v))
                            .map_err(|e| self.fail(&st, name, e))?;
                        return Ok((
                            w.words.ret.map(|p| p.widen(bits, MODEL)),
                            sym.errno.then_some(errno),
                        ));
                    }
                    reply::CALLBACK => self.serve_callback(&st, &body, name)?,
                    reply::BATCH => self.serve_batch(&st, body, name)?,
                    reply::ERROR => {
                        return Err(Error::Refused {
                            strategy: StrategyKind::Process,
                            function: None,
                            library: self.shared.name.clone(),
                            what: "the call".into(),
                            reason: wire::message(&body),
                        })
                    }
                    k => return Err(self.unexpected(&st, name, k)),
                }
            }
        })();
        st.calls.depth.set(st.calls.depth.get() - 1);
        let end = finish(&st.calls.pending);
        let v = r?;
        end.map(|()| v)
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        lookup_symbol(Self::NAME, &self.shared.name, name, || {
            self.request_value(op::SYMBOL, &[name.as_bytes()], "dlsym")
        })
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
        captures: &[Capture],
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        self.add_callback(sig, Some(captures.iter().map(|c| *c as u8).collect()), f)
    }
}

impl Process {
    /// A callback in a free trampoline slot; batched with `captures`.
    fn add_callback(
        &self,
        sig: &Arc<FnSig>,
        captures: Option<Vec<u8>>,
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        let entry = Arc::new(CallbackEntry {
            sig: sig.clone(),
            words: WireSig::new(sig, "(*)")?,
            f: CallbackFn::new(f),
            captures,
        });
        let st = self.lock();
        self.check_poisoned(&st)?;
        let full = || Error::LimitReached {
            strategy: StrategyKind::Process,
            function: None,
            library: self.shared.name.clone(),
            limit: format!("{} live callbacks", wire::CALLBACK_SLOTS),
            setting: "the number of live callbacks (drop unused ones)",
            reason: "every trampoline slot of the worker is in use".into(),
        };
        let (slot, addr) = st.calls.add(entry, wire::CALLBACK_SLOTS, full, |slot, e| {
            self.install(slot, e)
        })?;
        Ok((addr, Box::new(SlotGuard::new(&self.shared, slot))))
    }
}

// SAFETY: see the `Memory` impl: every access goes through the worker,
// whatever the address or length, and `invoke` only sends words.
unsafe impl Isolated for Process {
    fn reset(&self) -> Result<()> {
        self.reset_worker()
    }

    fn poisoned(&self) -> Option<String> {
        self.lock().calls.poisoned.reason()
    }
}
