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
//! and an empty environment. It
//! opens the library with the host's rights, drops root (to `nobody`)
//! before the library's initialisers run, then takes an address-space
//! limit and a seccomp filter (`confine`) before the first call. Calls go
//! through libffi; callbacks through libffi closures at a fixed address,
//! each forwarded to the host, which may call back in before it answers.
//!
//! **Nothing the worker says is trusted.** Every frame is checked (length,
//! kind, payload size), every wait is bounded by [`ProcessConfig::deadline`],
//! and any failure, a crash (`SIGSEGV` in the library), `exit`, `abort`, a
//! forbidden system call, a hang or a protocol violation, kills the worker
//! and poisons the handle until [`Process::reset`] starts a new one.
//! Because the library cannot reach host memory, `Process` is
//! [`Isolated`]: pointer arithmetic and host-chosen lengths are safe on it,
//! and a bad address is an error from the worker.

mod confine;
mod wire;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{OsStr, OsString};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::strategy::{check_arity, ErasedFn, Isolated, Pending, Strategy};
use crate::types::{Brand, DataModel, FnSig, Memory, Prim, Raw, MAX_TRANSFER};
use wire::{frame, op, reply, Payload, Wire, WireError};

/// The worker runs natively on this machine: the host's data model.
const MODEL: DataModel = DataModel::host();

/// The worker executable, compiled by the build script.
static WORKER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandlink-worker"));

/// Limits for a worker. The defaults are safe for untrusted code.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// How long the host waits for any one message from the worker (default
    /// 10 s): a call whose library code runs longer, without calling back,
    /// kills the worker. Time the host spends in callbacks is not charged.
    pub deadline: Duration,
    /// The worker's address-space limit (`RLIMIT_AS`), in bytes (default
    /// 1 GiB). Past it, `malloc` returns NULL in the library.
    pub memory_limit: u64,
    /// Whether to install the seccomp filter (default true). Off only for
    /// debugging a library that needs a system call the filter forbids.
    pub seccomp: bool,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            deadline: Duration::from_secs(10),
            memory_limit: 1 << 30,
            seccomp: true,
        }
    }
}

impl ProcessConfig {
    /// Starts a worker that loads the library at `path` (or, without a
    /// slash, by name as `dlopen` searches for it).
    pub fn open(&self, path: impl AsRef<OsStr>) -> Result<Process> {
        let path = path.as_ref().to_os_string();
        let name = path.to_string_lossy().into_owned();
        let conn = spawn(&path, &name, self)?;
        Ok(Process {
            shared: Arc::new(Shared {
                name,
                path,
                config: self.clone(),
                lib: Brand::fresh().lib,
                generation: AtomicU64::new(0),
                state: ReentrantMutex::new(State {
                    conn: RefCell::new(Some(conn)),
                    poisoned: RefCell::new(None),
                    callbacks: RefCell::new(Vec::new()),
                    pending: Pending::default(),
                    depth: Cell::new(0),
                    cache: RefCell::new(ReadCache::default()),
                }),
            }),
            _not_sync: PhantomData,
        })
    }
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
    lib: u64,
    generation: AtomicU64,
    state: ReentrantMutex<State>,
}

struct State {
    /// `None` once the worker failed (the handle is poisoned).
    conn: RefCell<Option<Conn>>,
    poisoned: RefCell<Option<String>>,
    /// Live callbacks by trampoline slot.
    callbacks: RefCell<Vec<Option<Arc<CallbackEntry>>>>,
    pending: Pending,
    /// Calls in progress on this thread (0: none).
    depth: Cell<u32>,
    /// Library memory read ahead of what was asked, valid until the library
    /// next runs or the host changes its memory.
    cache: RefCell<ReadCache>,
}

/// A few windows of library memory, as last read. Any request that can
/// change the library's memory (a call, a callback's return, a write, an
/// allocation) empties it first, so a hit gives what a round trip would.
#[derive(Default)]
struct ReadCache {
    windows: Vec<(u64, Vec<u8>)>,
    next: usize,
}

/// How many bytes past a small read the worker sends along.
const READ_AHEAD: u64 = 512;
/// Windows kept (a callback's pointer arguments, strings, the arrays
/// pointing at them, a struct).
const WINDOWS: usize = 8;

impl ReadCache {
    fn clear(&mut self) {
        self.windows.clear();
        self.next = 0;
    }

    fn insert(&mut self, addr: u64, bytes: Vec<u8>) {
        if self.windows.len() < WINDOWS {
            self.windows.push((addr, bytes));
        } else {
            self.windows[self.next] = (addr, bytes);
            self.next = (self.next + 1) % WINDOWS;
        }
    }

    /// The cached bytes from `addr` to the end of its window.
    fn from(&self, addr: u64) -> Option<&[u8]> {
        self.windows.iter().find_map(|(start, bytes)| {
            let off = addr.checked_sub(*start)?;
            (off < bytes.len() as u64).then(|| &bytes[off as usize..])
        })
    }
}

struct Conn {
    child: Child,
    wire: Wire,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The worker exits when its request pipe closes; killing it makes sure.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct CallbackEntry {
    sig: Arc<FnSig>,
    args: Vec<Prim>,
    codes: Vec<u8>,
    ret: Option<Prim>,
    f: Mutex<ErasedFn>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Process({})", self.shared.name)
    }
}

/// The worker executable as a path `Command` can run: an in-memory file,
/// made once per host process.
fn worker_path() -> Result<&'static str> {
    static PATH: OnceLock<std::result::Result<(OwnedFd, String), String>> = OnceLock::new();
    let made = PATH.get_or_init(|| {
        // SAFETY: a NUL-terminated name and valid flags; the result is
        // checked before it is used as a descriptor.
        let fd = unsafe { libc::memfd_create(c"sandlink-worker".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, WORKER).map_err(|e| format!("writing it: {e}"))?;
        let fd = OwnedFd::from(file);
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        Ok((fd, path))
    });
    match made {
        Ok((_, path)) => Ok(path),
        Err(e) => Err(Error::Load {
            library: "<sandlink worker>".into(),
            reason: format!("cannot prepare the worker executable: {e}"),
        }),
    }
}

/// Starts a worker and takes it through the handshake, the load and the
/// confinement.
fn spawn(path: &OsStr, name: &str, config: &ProcessConfig) -> Result<Conn> {
    let load_err = |reason: String| Error::Load {
        library: name.to_string(),
        reason,
    };
    let pipe = |what: &str| std::io::pipe().map_err(|e| load_err(format!("{what} pipe: {e}")));
    let (req_rx, req_tx) = pipe("request")?;
    let (rep_rx, rep_tx) = pipe("reply")?;
    let mut child = Command::new(worker_path()?)
        .env_clear()
        .stdin(Stdio::from(req_rx))
        .stdout(Stdio::from(rep_tx))
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| load_err(format!("cannot start the worker: {e}")))?;
    let pid = child.id();
    let to_file = |fd: OwnedFd| std::fs::File::from(fd);
    let wire = match Wire::new(
        to_file(OwnedFd::from(req_tx)),
        to_file(OwnedFd::from(rep_rx)),
        config.deadline,
    ) {
        Ok(w) => w,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(load_err(format!("non-blocking pipes: {e}")));
        }
    };
    // From here on, dropping `conn` kills the worker.
    let mut conn = Conn { child, wire };
    let mut step = |kind: u8, payload: &[&[u8]], what: &str| -> Result<(u8, Vec<u8>)> {
        conn.wire
            .send(&frame(kind, payload))
            .and_then(|()| conn.wire.recv())
            .map_err(|e| {
                load_err(format!(
                    "the worker failed during {what}: {}",
                    wire_reason(e)
                ))
            })
    };
    let (k, body) = step(op::HELLO, &[], "the handshake")?;
    if k != reply::VALUE || body.len() != 4 {
        return Err(load_err("the worker's handshake is malformed".into()));
    }
    let version = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    if version != wire::VERSION {
        return Err(load_err(format!(
            "the worker speaks protocol {version}, the host {}",
            wire::VERSION
        )));
    }
    let (k, body) = step(op::LOAD, &[path.as_bytes()], "loading")?;
    expect_ok(k, &body, "loading").map_err(load_err)?;
    let prog = if config.seccomp {
        confine::program(pid)?
    } else {
        // One instruction: allow everything (SECCOMP_RET_ALLOW).
        let mut allow = vec![0x06, 0x00, 0, 0];
        allow.extend_from_slice(&0x7fff_0000u32.to_ne_bytes());
        allow
    };
    let (k, body) = step(
        op::CONFINE,
        &[&config.memory_limit.to_le_bytes(), &prog],
        "confinement",
    )?;
    expect_ok(k, &body, "confinement").map_err(load_err)?;
    Ok(conn)
}

/// Checks an `OK` reply; an `ERROR` reply's message becomes the error.
fn expect_ok(kind: u8, body: &[u8], what: &str) -> std::result::Result<(), String> {
    match kind {
        reply::OK if body.is_empty() => Ok(()),
        reply::ERROR => Err(String::from_utf8_lossy(body).into_owned()),
        k => Err(format!("unexpected reply kind {k} to {what}")),
    }
}

fn wire_reason(e: WireError) -> String {
    match e {
        WireError::Closed(s) => format!("the connection closed ({s})"),
        WireError::Deadline => "no reply within the deadline".into(),
        WireError::Violation(s) => format!("protocol violation: {s}"),
    }
}

/// A function resolved in the worker.
#[derive(Clone)]
pub struct ProcessFunc {
    sym: Arc<Symbol>,
}

struct Symbol {
    name: String,
    args: Vec<Prim>,
    codes: Vec<u8>,
    ret: Option<Prim>,
    ret_code: u8,
    errno: bool,
    /// (generation, address): re-resolved after a reset, since the new
    /// worker loads the library at another address.
    addr: parking_lot::Mutex<(u64, u64)>,
}

impl Process {
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

    /// Why the handle is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.lock().poisoned.borrow().clone()
    }

    /// The worker's process id (`None` while poisoned).
    pub fn worker_pid(&self) -> Option<u32> {
        self.lock().conn.borrow().as_ref().map(|c| c.child.id())
    }

    /// Replaces the worker with a fresh one: the library's state starts
    /// over, poisoning is cleared, and live callbacks are re-created at the
    /// same addresses. Bound functions keep working. Fails if called during
    /// a call into the library.
    pub fn reset(&self) -> Result<()> {
        let st = self.lock();
        if st.depth.get() > 0 {
            return Err(Error::Unsupported(
                "reset() cannot run while a call into the worker is in progress".into(),
            ));
        }
        // The old worker goes first (its Drop kills it).
        *st.conn.borrow_mut() = None;
        let conn = spawn(&self.shared.path, &self.shared.name, &self.shared.config)?;
        *st.conn.borrow_mut() = Some(conn);
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
        *st.poisoned.borrow_mut() = None;
        st.pending.take();
        let live: Vec<(usize, Arc<CallbackEntry>)> = st
            .callbacks
            .borrow()
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.clone().map(|e| (i, e)))
            .collect();
        for (slot, entry) in live {
            self.install(&st, slot, &entry)?;
        }
        Ok(())
    }

    fn lock(&self) -> ReentrantMutexGuard<'_, State> {
        self.shared.state.lock()
    }

    fn check_poisoned(&self, st: &State) -> Result<()> {
        match &*st.poisoned.borrow() {
            Some(reason) => Err(Error::Poisoned {
                library: self.shared.name.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Ends the worker after `e`, poisoning the handle, and describes what
    /// happened to it.
    fn fail(&self, st: &State, function: &str, e: WireError) -> Error {
        let conn = st.conn.borrow_mut().take();
        let err = match conn {
            None => Error::Poisoned {
                library: self.shared.name.clone(),
                reason: "the worker is gone".into(),
            },
            Some(mut conn) => {
                let killed_for = match e {
                    WireError::Closed(_) => None,
                    WireError::Deadline => Some(format!(
                        "ran past its deadline of {:?} and was killed",
                        self.shared.config.deadline
                    )),
                    WireError::Violation(v) => {
                        Some(format!("broke the protocol ({v}) and was killed"))
                    }
                };
                let status = match killed_for {
                    Some(_) => {
                        let _ = conn.child.kill();
                        conn.child.wait().ok()
                    }
                    None => wait_briefly(&mut conn.child),
                };
                match (killed_for, status) {
                    (Some(reason), _) => Error::WorkerFailed {
                        function: function.to_string(),
                        reason,
                    },
                    (None, Some(s)) if s.code().is_some() => Error::Exited {
                        function: function.to_string(),
                        code: s.code().unwrap_or_default(),
                    },
                    (None, Some(s)) => Error::WorkerFailed {
                        function: function.to_string(),
                        reason: match s.signal() {
                            Some(libc::SIGSYS) => "made a system call its seccomp filter \
                                                   forbids, and was killed (SIGSYS)"
                                .to_string(),
                            Some(sig) => {
                                format!("was killed by signal {sig} ({})", signal_name(sig))
                            }
                            None => format!("ended ({s})"),
                        },
                    },
                    (None, None) => Error::WorkerFailed {
                        function: function.to_string(),
                        reason: "closed its pipe and was killed".into(),
                    },
                }
            }
        };
        *st.poisoned.borrow_mut() = Some(err.to_string());
        err
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
        let r = match st.conn.borrow_mut().as_mut() {
            Some(conn) => conn.wire.recv(),
            None => return Err(self.gone()),
        };
        r.map_err(|e| self.fail(st, function, e))
    }

    fn gone(&self) -> Error {
        Error::Poisoned {
            library: self.shared.name.clone(),
            reason: "the worker is gone".into(),
        }
    }

    /// A request that is not a call: one reply, never an upcall.
    fn request(&self, kind: u8, parts: &[&[u8]], what: &str) -> Result<(u8, Vec<u8>)> {
        let st = self.lock();
        self.send(&st, &frame(kind, parts), what)?;
        let (k, body) = self.recv(&st, what)?;
        if k == reply::CALLBACK || !(reply::OK..=reply::RESULT).contains(&k) {
            return Err(self.fail(
                &st,
                what,
                WireError::Violation(format!("reply kind {k} to {what}")),
            ));
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
            reply::ERROR => Ok(Err(String::from_utf8_lossy(&body).into_owned())),
            k => Err(self.fail(
                &self.lock(),
                what,
                WireError::Violation(format!("reply kind {k} to {what}")),
            )),
        }
    }

    /// A request answered by bytes or an error message.
    fn request_data(
        &self,
        kind: u8,
        parts: &[&[u8]],
        what: &str,
    ) -> Result<std::result::Result<Vec<u8>, (u8, Vec<u8>)>> {
        let (k, body) = self.request(kind, parts, what)?;
        match k {
            reply::DATA => Ok(Ok(body)),
            other => Ok(Err((other, body))),
        }
    }

    fn install(&self, st: &State, slot: usize, e: &CallbackEntry) -> Result<u64> {
        let what = "creating a callback";
        self.send(
            st,
            &frame(
                op::CLOSURE,
                &[
                    &(slot as u64).to_le_bytes(),
                    &(slot as u64).to_le_bytes(),
                    &[
                        e.ret.map_or(wire::VOID, |p| wire::type_code(p, MODEL)),
                        e.codes.len() as u8,
                    ],
                    &e.codes,
                ],
            ),
            what,
        )?;
        let (k, body) = self.recv(st, what)?;
        match k {
            reply::VALUE => {
                let mut p = Payload::new("value", &body);
                p.u64()
                    .and_then(|v| p.end().map(|()| v))
                    .map_err(|e| self.fail(st, what, e))
            }
            reply::ERROR => Err(Error::Unsupported(format!(
                "the worker cannot create the callback `{}`: {}",
                e.sig.c_prototype("(*)"),
                String::from_utf8_lossy(&body)
            ))),
            k => Err(self.fail(
                st,
                what,
                WireError::Violation(format!("reply kind {k} to {what}")),
            )),
        }
    }

    /// Serves one upcall: runs the callback and answers the worker.
    fn serve_callback(&self, st: &State, body: &[u8], function: &str) -> Result<()> {
        let violation = |s: String| self.fail(st, function, WireError::Violation(s));
        let mut p = Payload::new("callback", body);
        let (key, n) = match p.u64().and_then(|k| p.u8().map(|n| (k, n))) {
            Ok(v) => v,
            Err(e) => return Err(self.fail(st, function, e)),
        };
        let entry = st.callbacks.borrow().get(key as usize).cloned().flatten();
        let Some(entry) = entry else {
            return Err(violation(format!(
                "an upcall to callback {key}, which does not exist"
            )));
        };
        if usize::from(n) != entry.args.len() {
            return Err(violation(format!(
                "an upcall to `{}` with {n} arguments",
                entry.sig.c_prototype("(*)")
            )));
        }
        let mut raws: SmallVec<[Raw; 8]> = SmallVec::new();
        for prim in &entry.args {
            match p.u64() {
                Ok(bits) => raws.push(prim.widen(bits, MODEL)),
                Err(e) => return Err(self.fail(st, function, e)),
            }
        }
        // The bytes the worker sent along for each pointer argument: the
        // library is paused now, so they are what a read would return.
        let mut prefetched = Vec::new();
        for (raw, code) in raws.iter().zip(&entry.codes) {
            if *code != wire::type_code(Prim::Pointer, MODEL) {
                continue;
            }
            let bytes = p.bytes(2).and_then(|n| {
                let n = u16::from_le_bytes([n[0], n[1]]);
                if usize::from(n) > wire::PREFETCH {
                    return Err(WireError::Violation(format!(
                        "{n} bytes sent along with a pointer (at most {})",
                        wire::PREFETCH
                    )));
                }
                p.bytes(usize::from(n))
            });
            match bytes {
                Ok(b) if !b.is_empty() => prefetched.push((raw.0, b.to_vec())),
                Ok(_) => {}
                Err(e) => return Err(self.fail(st, function, e)),
            }
        }
        if let Err(e) = p.end() {
            return Err(self.fail(st, function, e));
        }
        {
            let mut cache = st.cache.borrow_mut();
            for (addr, bytes) in prefetched {
                cache.insert(addr, bytes);
            }
        }
        let r = st.pending.run(&entry.f, &entry.sig, self, Ok(raws));
        let bits = match (entry.ret, r) {
            (Some(_), Some(raw)) => raw.0,
            _ => 0,
        };
        self.send(
            st,
            &frame(op::CALLBACK_RETURN, &[&bits.to_le_bytes()]),
            function,
        )
    }

    fn resolve_addr(&self, sym: &Symbol) -> Result<u64> {
        let generation = self.shared.generation.load(Ordering::Relaxed);
        {
            let cached = sym.addr.lock();
            if cached.0 == generation && cached.1 != 0 {
                return Ok(cached.1);
            }
        }
        let addr = self.symbol_addr(&sym.name)?;
        *sym.addr.lock() = (generation, addr);
        Ok(addr)
    }
}

/// Waits up to a second for a worker whose pipe closed to be reapable,
/// then kills it.
fn wait_briefly(child: &mut Child) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV: a bad memory access in the library",
        libc::SIGBUS => "SIGBUS: a bad memory access in the library",
        libc::SIGABRT => "SIGABRT: the library called abort",
        libc::SIGILL => "SIGILL: an illegal instruction",
        libc::SIGFPE => "SIGFPE: an arithmetic fault",
        libc::SIGKILL => "SIGKILL",
        libc::SIGXCPU => "SIGXCPU: the CPU limit",
        _ => "a signal",
    }
}

// SAFETY: every raw method is a request to the worker, which copies through
// the kernel and answers a bad address with an error; nothing the worker
// sends is used before it is checked; no host memory is touched but the
// host's own buffers. The brand is fresh per worker handle and its
// generation advances on every reset; the model is the worker's, which is
// this machine's.
unsafe impl Memory for Process {
    fn model(&self) -> DataModel {
        MODEL
    }

    fn brand(&self) -> Brand {
        Brand {
            lib: self.shared.lib,
            generation: self.shared.generation.load(Ordering::Relaxed),
        }
    }

    fn alloc_raw(&self, size: u64, align: u64) -> Result<u64> {
        match self.request_value(
            op::ALLOC,
            &[&size.to_le_bytes(), &align.to_le_bytes()],
            "malloc",
        )? {
            Ok(0) => Err(Error::Alloc {
                size,
                reason: "the worker's malloc returned NULL".into(),
            }),
            Ok(addr) => Ok(addr),
            Err(reason) => Err(Error::Alloc { size, reason }),
        }
    }

    unsafe fn free_raw(&self, addr: u64) -> Result<()> {
        // Not waited for: `free` has no result, and a crash in it shows as
        // the worker's failure at the next request.
        let st = self.lock();
        self.send(&st, &frame(op::FREE, &[&addr.to_le_bytes()]), "free")
    }

    fn alloc_copy(&self, bytes: &[u8], nul: bool) -> Result<u64> {
        let size = bytes.len() as u64 + u64::from(nul);
        match self.request_value(op::ALLOC_COPY, &[&[u8::from(nul)], bytes], "malloc")? {
            Ok(0) => Err(Error::Alloc {
                size,
                reason: "the worker's malloc returned NULL".into(),
            }),
            Ok(addr) => Ok(addr),
            Err(reason) => Err(Error::Alloc { size, reason }),
        }
    }

    unsafe fn read_raw(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        let len = out.len() as u64;
        let st = self.lock();
        if let Some(hit) = st.cache.borrow().from(addr) {
            if hit.len() >= out.len() {
                out.copy_from_slice(&hit[..out.len()]);
                return Ok(());
            }
        }
        let out_of = |reason: String| Error::InvalidValue {
            what: format!("reading {len} bytes at {addr:#x} in the worker"),
            reason,
        };
        let ahead = if len <= READ_AHEAD { READ_AHEAD } else { 0 };
        let parts: [&[u8]; 3] = [
            &addr.to_le_bytes(),
            &len.to_le_bytes(),
            &ahead.to_le_bytes(),
        ];
        match self.request_data(op::READ, &parts, "read")? {
            Ok(data) if data.len() >= out.len() && data.len() as u64 <= len + ahead => {
                out.copy_from_slice(&data[..out.len()]);
                if ahead > 0 {
                    st.cache.borrow_mut().insert(addr, data);
                }
                Ok(())
            }
            Ok(data) => Err(self.fail(
                &st,
                "read",
                WireError::Violation(format!("{} bytes for a read of {len}", data.len())),
            )),
            Err((reply::ERROR, msg)) => Err(out_of(String::from_utf8_lossy(&msg).into_owned())),
            Err((k, _)) => Err(self.fail(
                &st,
                "read",
                WireError::Violation(format!("reply kind {k} to a read")),
            )),
        }
    }

    unsafe fn write_raw(&self, addr: u64, data: &[u8]) -> Result<()> {
        let (k, body) = self.request(op::WRITE, &[&addr.to_le_bytes(), data], "write")?;
        expect_ok(k, &body, "write").map_err(|reason| Error::InvalidValue {
            what: format!("writing {} bytes at {addr:#x} in the worker", data.len()),
            reason,
        })
    }

    unsafe fn read_cstr(&self, addr: u64) -> Result<Vec<u8>> {
        if addr == 0 {
            return Err(Error::NullPointer {
                what: "string read".into(),
                c_type: "char *".into(),
            });
        }
        let st = self.lock();
        if let Some(hit) = st.cache.borrow().from(addr) {
            if let Some(n) = memchr_nul(hit) {
                return Ok(hit[..n].to_vec());
            }
        }
        let parts: [&[u8]; 2] = [&addr.to_le_bytes(), &MAX_TRANSFER.to_le_bytes()];
        match self.request_data(op::CSTR, &parts, "string read")? {
            Ok(bytes) => match memchr_nul(&bytes) {
                // The string, its NUL, and the rest of the page.
                Some(n) if n as u64 <= MAX_TRANSFER && bytes.len() - n <= 4096 => {
                    let s = bytes[..n].to_vec();
                    st.cache.borrow_mut().insert(addr, bytes);
                    Ok(s)
                }
                _ => Err(self.fail(
                    &st,
                    "string read",
                    WireError::Violation("a string reply without its NUL, or too long".into()),
                )),
            },
            Err((reply::VALUE, _)) => Err(Error::Unterminated {
                address: addr,
                limit: MAX_TRANSFER,
            }),
            Err((reply::ERROR, msg)) => Err(Error::InvalidValue {
                what: format!("the string at {addr:#x} in the worker"),
                reason: String::from_utf8_lossy(&msg).into_owned(),
            }),
            Err((k, _)) => Err(self.fail(
                &st,
                "string read",
                WireError::Violation(format!("reply kind {k} to a string read")),
            )),
        }
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

// SAFETY: `resolve` lowers the signature (failing for what does not lower)
// and `invoke` sends exactly those words with their types to the worker,
// which calls the symbol through libffi; upcalls run the erased function
// only during a call, with the words the worker sent for the callback's
// declared parameters (checked in number) and this library's memory,
// through `Pending::run` (so `run_callback`); a dropped guard removes the
// callback before the entry is freed.
unsafe impl Strategy for Process {
    type Func = ProcessFunc;

    fn library_name(&self) -> String {
        self.shared.name.clone()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, errno: bool) -> Result<ProcessFunc> {
        let args = sig.arg_words()?;
        let ret = sig.ret_word()?;
        if args.len() > wire::MAX_ARGS {
            return Err(Error::Unsupported(format!(
                "`{}` has {} parameters; the worker takes at most {}",
                sig.c_prototype(name),
                args.len(),
                wire::MAX_ARGS
            )));
        }
        let addr = self.symbol_addr(name)?;
        Ok(ProcessFunc {
            sym: Arc::new(Symbol {
                name: name.to_string(),
                codes: args.iter().map(|p| wire::type_code(*p, MODEL)).collect(),
                args,
                ret_code: ret.map_or(wire::VOID, |p| wire::type_code(p, MODEL)),
                ret,
                errno,
                addr: parking_lot::Mutex::new((
                    self.shared.generation.load(Ordering::Relaxed),
                    addr,
                )),
            }),
        })
    }

    unsafe fn invoke(&self, f: &ProcessFunc, args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        let sym = &f.sym;
        check_arity(args, sym.args.len())?;
        let st = self.lock();
        self.check_poisoned(&st)?;
        let addr = self.resolve_addr(sym)?;
        let mut words: SmallVec<[u8; 64]> = SmallVec::new();
        for (i, (raw, prim)) in args.iter().zip(&sym.args).enumerate() {
            let w = prim.narrow_to(*raw, MODEL, || format!("argument {}", i + 1))?;
            words.extend_from_slice(&w.to_le_bytes());
        }
        let head = [u8::from(sym.errno), sym.ret_code, sym.codes.len() as u8];
        let request = frame(op::CALL, &[&addr.to_le_bytes(), &head, &sym.codes, &words]);
        let name = sym.name.as_str();
        st.depth.set(st.depth.get() + 1);
        let r = (|| {
            self.send(&st, &request, name)?;
            loop {
                let (k, body) = self.recv(&st, name)?;
                match k {
                    reply::RESULT => {
                        let mut p = Payload::new("result", &body);
                        let parsed = p.u64().and_then(|b| p.i32().map(|e| (b, e)));
                        let (bits, errno) = parsed
                            .and_then(|v| p.end().map(|()| v))
                            .map_err(|e| self.fail(&st, name, e))?;
                        return Ok((
                            sym.ret.map(|p| p.widen(bits, MODEL)),
                            sym.errno.then_some(errno),
                        ));
                    }
                    reply::CALLBACK => self.serve_callback(&st, &body, name)?,
                    reply::ERROR => {
                        return Err(Error::Unsupported(format!(
                            "the worker refused the call: {}",
                            String::from_utf8_lossy(&body)
                        )))
                    }
                    k => {
                        return Err(self.fail(
                            &st,
                            name,
                            WireError::Violation(format!("reply kind {k} during a call")),
                        ))
                    }
                }
            }
        })();
        st.depth.set(st.depth.get() - 1);
        let pending = st.pending.take();
        match (r, pending) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(e)) => Err(e),
            (Ok(v), None) => Ok(v),
        }
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        let missing = |reason: String| Error::MissingSymbol {
            library: self.shared.name.clone(),
            symbol: name.to_string(),
            reason,
        };
        if name.as_bytes().contains(&0) {
            return Err(missing("the name contains a NUL byte".into()));
        }
        match self.request_value(op::SYMBOL, &[name.as_bytes()], "dlsym")? {
            Ok(0) => Err(missing("the symbol's address is NULL".into())),
            Ok(addr) => Ok(addr),
            Err(reason) => Err(missing(reason)),
        }
    }

    fn make_callback(
        &self,
        sig: &Arc<FnSig>,
        f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        let args = sig.arg_words()?;
        let ret = sig.ret_word()?;
        if args.len() > wire::MAX_ARGS {
            return Err(Error::Unsupported(format!(
                "a callback with {} parameters; the worker takes at most {}",
                args.len(),
                wire::MAX_ARGS
            )));
        }
        let entry = Arc::new(CallbackEntry {
            sig: sig.clone(),
            codes: args.iter().map(|p| wire::type_code(*p, MODEL)).collect(),
            args,
            ret,
            f: Mutex::new(f),
        });
        let st = self.lock();
        self.check_poisoned(&st)?;
        let slot = {
            let mut cbs = st.callbacks.borrow_mut();
            let slot = match cbs.iter().position(Option::is_none) {
                Some(i) => i,
                None if cbs.len() < wire::CALLBACK_SLOTS => {
                    cbs.push(None);
                    cbs.len() - 1
                }
                None => {
                    return Err(Error::LimitReached {
                        library: self.shared.name.clone(),
                        limit: format!("{} live callbacks", wire::CALLBACK_SLOTS),
                        setting: "the number of live callbacks (drop unused ones)".into(),
                        reason: "every trampoline slot of the worker is in use".into(),
                    })
                }
            };
            cbs[slot] = Some(entry.clone());
            slot
        };
        match self.install(&st, slot, &entry) {
            Ok(addr) => Ok((
                addr,
                Box::new(CallbackGuard {
                    shared: self.shared.clone(),
                    slot,
                }),
            )),
            Err(e) => {
                st.callbacks.borrow_mut()[slot] = None;
                Err(e)
            }
        }
    }
}

// SAFETY: see the `Memory` impl: every access goes through the worker,
// whatever the address or length, and `invoke` only sends words.
unsafe impl Isolated for Process {}

/// Keeps a callback's slot alive; dropping it frees the slot.
struct CallbackGuard {
    shared: Arc<Shared>,
    slot: usize,
}

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        let p = Process {
            shared: self.shared.clone(),
            _not_sync: PhantomData,
        };
        let st = p.lock();
        if let Some(e) = st.callbacks.borrow_mut().get_mut(self.slot) {
            *e = None;
        }
        if st.conn.borrow().is_some() && st.poisoned.borrow().is_none() {
            // A failure here poisons the handle; nothing else to do.
            let _ = p.request(
                op::CLOSURE_FREE,
                &[&(self.slot as u64).to_le_bytes()],
                "freeing a callback",
            );
        }
    }
}
