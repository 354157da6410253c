//! Starting the worker: the embedded executable, the handshake, the
//! confined load and the confinement for calls; and telling what happened to a worker that ended.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::confine;
use super::wire::{self, frame, op, reply, Wire, WireError};
use super::ProcessConfig;
use crate::error::{Error, Result, StrategyKind};

/// The worker executable, compiled by the build script.
static WORKER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandlink-worker"));

pub(super) struct Conn {
    /// The worker process; `None` for a scripted worker (the protocol fuzz
    /// target's), which is not a process.
    pub(super) child: Option<Child>,
    pub(super) wire: Wire,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The worker exits when its request pipe closes; killing it makes sure.
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
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
            strategy: StrategyKind::Process,
            library: "<sandlink worker>".into(),
            reason: format!("cannot prepare the worker executable: {e}"),
        }),
    }
}

/// A worker for the library `name` could not be started or loaded.
pub(super) fn load_error(name: &str, reason: String) -> Error {
    Error::Load {
        strategy: StrategyKind::Process,
        library: name.to_string(),
        reason,
    }
}

/// Starts a worker and takes it through the handshake and the confined
/// load.
pub(super) fn spawn(path: &OsStr, name: &str, config: &ProcessConfig) -> Result<Conn> {
    let load_err = |reason: String| load_error(name, reason);
    // A path is made absolute (the worker's root binds it there); a bare
    // name is left to the loader's search.
    let path: OsString = if path.as_bytes().contains(&b'/') {
        std::fs::canonicalize(path)
            .map_err(|e| load_err(format!("{}: {e}", Path::new(path).display())))?
            .into_os_string()
    } else {
        path.to_os_string()
    };
    let pipe = |what: &str| std::io::pipe().map_err(|e| load_err(format!("{what} pipe: {e}")));
    let (req_rx, req_tx) = pipe("request")?;
    let (rep_rx, rep_tx) = pipe("reply")?;
    // The Landlock ruleset travels as the worker's standard error, which
    // the worker moves aside and applies to itself before loading.
    let ruleset = if config.landlock {
        let missing = || {
            load_err(
                "this kernel has no Landlock (not built in, or not among the enabled security \
                 modules), which the worker's confinement requires; \
                 `ProcessConfig::landlock(false)` runs the library without it"
                    .into(),
            )
        };
        confine::landlock_abi().ok_or_else(missing)?;
        Some(confine::landlock_ruleset(Path::new(&path))?.ok_or_else(missing)?)
    } else {
        None
    };
    let landlocked = ruleset.is_some();
    let mode = if config.namespaces {
        "namespaces"
    } else {
        "no-namespaces"
    };
    let mut child = Command::new(worker_path()?)
        .arg(mode)
        .arg(&path)
        // What the worker's root holds besides the library.
        .args(confine::LOADER_PATHS)
        .env_clear()
        .stdin(Stdio::from(req_rx))
        .stdout(Stdio::from(rep_tx))
        .stderr(ruleset.map_or_else(Stdio::null, Stdio::from))
        .spawn()
        .map_err(|e| load_err(format!("cannot start the worker: {e}")))?;
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
    #[cfg(feature = "fuzzing")]
    let wire = {
        let mut wire = wire;
        wire.log = config.record_replies.then(Vec::new);
        wire
    };
    // From here on, dropping `conn` kills the worker.
    let conn = Conn {
        child: Some(child),
        wire,
    };
    handshake(conn, &path, name, landlocked, config)
}

/// Takes a started worker through the handshake and the confined load.
pub(super) fn handshake(
    mut conn: Conn,
    path: &OsStr,
    name: &str,
    landlocked: bool,
    config: &ProcessConfig,
) -> Result<Conn> {
    let load_err = |reason: String| load_error(name, reason);
    let mut step = |kind: u8, payload: &[&[u8]], what: &str| -> Result<(u8, Vec<u8>)> {
        let r = conn
            .wire
            .send(&frame(kind, payload))
            .and_then(|()| conn.wire.recv());
        r.map_err(|e| {
            load_err(format!(
                "the worker {} {what}",
                ending(conn.child.as_mut(), e, config.deadline).describe()
            ))
        })
    };
    let (k, body) = step(op::HELLO, &[], "during the handshake")?;
    if k == reply::ERROR {
        // Set-up before any library code: namespaces, identity.
        return Err(load_err(format!(
            "cannot confine the worker: {}{}",
            wire::message(&body),
            if config.namespaces {
                " (`ProcessConfig::namespaces(false)` runs the worker without namespaces)"
            } else {
                ""
            }
        )));
    }
    if k != reply::VALUE || body.len() != 8 {
        return Err(load_err("the worker's handshake is malformed".into()));
    }
    let version = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    if version != wire::VERSION {
        return Err(load_err(format!(
            "the worker speaks protocol {version}, the host {}",
            wire::VERSION
        )));
    }
    // The worker's pid as it sees itself (in its PID namespace): its
    // filter allows signals and memory copies to that pid only.
    let pid = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let filter = if config.seccomp {
        confine::program(pid)?
    } else {
        Vec::new()
    };
    let filter_len = u32::try_from(filter.len())
        .map_err(|_| load_err("the seccomp program is too long".into()))?;
    let (k, body) = step(
        op::LOAD,
        &[
            &[u8::from(landlocked)],
            &config.memory_limit.to_le_bytes(),
            &filter_len.to_le_bytes(),
            &filter,
            path.as_bytes(),
        ],
        "while the library loaded (in the loader or the library's initialisers)",
    )?;
    expect_ok(k, &body, "loading").map_err(|reason| {
        load_err(if reason.contains("undefined symbol") {
            format!(
                "{reason} (a library it uses is not among its dependencies: with \
                 sandlink-build, name it with `.link_lib(..)`, e.g. \"m\" for the maths \
                 library)"
            )
        } else if reason.contains("cannot open shared object file") {
            format!(
                "{reason} (the worker's file system holds the loader's directories and the \
                 library file only: a library it depends on must be installed there)"
            )
        } else {
            reason
        })
    })?;
    Ok(conn)
}

/// How a worker ended, once the host saw its pipe close or gave up on it.
///
/// Each says what the host observed, and no more: a worker's exit status
/// or signal is the library's to choose (it may `raise(SIGSYS)` or
/// `_exit(125)`), so neither is taken as proof of a cause.
pub(super) enum Ending {
    /// The host killed it, for this reason (a deadline, a protocol
    /// violation): what the host itself decided.
    Killed(String),
    /// It exited with `LOST_PIPE_EXIT`, the status the worker's own code
    /// uses when its pipes fail.
    LostPipes,
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signal(i32),
    /// Its pipe closed (how, as the system said) but it did not end within
    /// a second; the host killed it.
    Unreaped(String),
}

impl Ending {
    /// What happened, as the predicate of "the worker ...".
    pub(super) fn describe(&self) -> String {
        match self {
            Ending::Killed(reason) => reason.clone(),
            Ending::LostPipes => format!(
                "exited with status {}, the status the worker gives when its pipes to the host \
                 fail (the library closed or replaced its descriptors, or exited with that \
                 status itself)",
                wire::LOST_PIPE_EXIT
            ),
            Ending::Exited(code) => format!("exited with status {code}"),
            Ending::Signal(libc::SIGSYS) => "was killed by SIGSYS, the signal its seccomp filter \
                                             ends a forbidden system call with (or the library \
                                             raised it itself)"
                .to_string(),
            Ending::Signal(sig) => format!("was killed by signal {sig} ({})", signal_name(*sig)),
            Ending::Unreaped(how) => format!("closed its pipe ({how}) and was killed"),
        }
    }
}

/// Ends the worker after `e` and tells how it ended.
pub(super) fn ending(child: Option<&mut Child>, e: WireError, deadline: Duration) -> Ending {
    let killed_for = match e {
        WireError::Closed(how) => Err(how),
        WireError::Deadline => Ok(format!(
            "ran past its deadline of {deadline:?} and was killed"
        )),
        WireError::Violation(v) => Ok(format!("broke the protocol ({v}) and was killed")),
    };
    // Closed: how the pipe closed, for a worker that does not end.
    let (closed, child) = match (killed_for, child) {
        (Ok(reason), child) => {
            if let Some(child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Ending::Killed(reason);
        }
        (Err(how), None) => return Ending::Unreaped(how),
        (Err(how), Some(child)) => (how, child),
    };
    match wait_briefly(child) {
        None => Ending::Unreaped(closed),
        Some(s) => match (s.code(), s.signal()) {
            (Some(wire::LOST_PIPE_EXIT), _) => Ending::LostPipes,
            (Some(code), _) => Ending::Exited(code),
            (None, Some(sig)) => Ending::Signal(sig),
            (None, None) => Ending::Unreaped(closed),
        },
    }
}

/// Checks an `OK` reply; an `ERROR` reply's message becomes the error.
pub(super) fn expect_ok(kind: u8, body: &[u8], what: &str) -> std::result::Result<(), String> {
    match kind {
        reply::OK if body.is_empty() => Ok(()),
        reply::ERROR => Err(wire::message(body)),
        k => Err(format!("unexpected reply kind {k} to {what}")),
    }
}

/// Waits up to a second for a worker whose pipe closed to be reapable,
/// then kills it.
pub(super) fn wait_briefly(child: &mut Child) -> Option<std::process::ExitStatus> {
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

pub(super) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV, as for a bad memory access",
        libc::SIGBUS => "SIGBUS, as for a bad memory access",
        libc::SIGABRT => "SIGABRT, as from abort",
        libc::SIGILL => "SIGILL, as for an illegal instruction",
        libc::SIGFPE => "SIGFPE, as for an arithmetic fault",
        libc::SIGKILL => "SIGKILL",
        libc::SIGXCPU => "SIGXCPU, as at the CPU limit",
        _ => "a signal",
    }
}
