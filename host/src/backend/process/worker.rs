//! Starting the worker: the embedded executable, the handshake, the load and
//! the confinement; and telling what happened to a worker that ended.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::wire::{self, frame, op, reply, Wire, WireError};
use super::{confine, ProcessConfig};
use crate::error::{Error, Result};

/// The worker executable, compiled by the build script.
static WORKER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandlink-worker"));

pub(super) struct Conn {
    pub(super) child: Child,
    pub(super) wire: Wire,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The worker exits when its request pipe closes; killing it makes sure.
        let _ = self.child.kill();
        let _ = self.child.wait();
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
pub(super) fn spawn(path: &OsStr, name: &str, config: &ProcessConfig) -> Result<Conn> {
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
    expect_ok(k, &body, "loading").map_err(|reason| {
        load_err(if reason.contains("undefined symbol") {
            format!(
                "{reason} (a library it uses is not among its dependencies: with \
                 sandlink-build, name it with `.link_lib(..)`, e.g. \"m\" for the maths \
                 library)"
            )
        } else {
            reason
        })
    })?;
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
pub(super) fn expect_ok(kind: u8, body: &[u8], what: &str) -> std::result::Result<(), String> {
    match kind {
        reply::OK if body.is_empty() => Ok(()),
        reply::ERROR => Err(String::from_utf8_lossy(body).into_owned()),
        k => Err(format!("unexpected reply kind {k} to {what}")),
    }
}

pub(super) fn wire_reason(e: WireError) -> String {
    match e {
        WireError::Closed(s) => format!("the connection closed ({s})"),
        WireError::Deadline => "no reply within the deadline".into(),
        WireError::Violation(s) => format!("protocol violation: {s}"),
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
