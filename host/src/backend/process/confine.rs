//! The worker's confinement, built on the host and applied by the worker
//! before the library loads: one seccomp filter (compiled with
//! `seccompiler`) and a Landlock ruleset (built with the `landlock` crate).
//! worker.c adds the rest before `dlopen`: namespaces, identity, rlimits.
//!
//! Nothing is applied after `dlopen`: the filter that stops the library's
//! initialisers is the one that stops its calls, so nothing the library
//! patches in the worker's memory can keep a limit from applying.
//! - seccomp: files open only for reading (an open with `O_WRONLY`,
//!   `O_RDWR`, `O_CREAT`, `O_TRUNC`, `O_APPEND` or `O_TMPFILE` kills the
//!   worker); no sockets, new processes, `execve`, `ptrace`, `prctl`,
//!   `kill`, `ioctl`; `tgkill`, `prlimit64`, `sched_getaffinity` and
//!   `process_vm_readv`/`writev` on the worker itself only; `fcntl` without
//!   `F_SETOWN`, `F_SETSIG` or `O_ASYNC`. Anything off the list kills the
//!   worker with `SIGSYS`.
//! - Landlock: reading and executing only beneath the loader's
//!   directories (`/lib*`, `/usr/lib*`, `/usr/local/lib`,
//!   `/etc/ld.so.cache`) and the library file itself; no writing, creating
//!   or removing anywhere; no TCP `bind`/`connect` (ABI 4); no signals out
//!   of the worker and no abstract Unix sockets (ABI 6). A forbidden open
//!   fails with `EACCES`.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope, ABI,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result, StrategyKind};

/// What the loader reads: its cache and the system's library directories:
/// all the worker's root holds besides the library (the worker takes them
/// as arguments), and what Landlock lets it read.
pub const LOADER_PATHS: &[&str] = &[
    "/etc/ld.so.cache",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libx32",
    "/usr/local/lib",
];

/// The open flags that create, truncate or write.
const WRITING_FLAGS: u64 = (libc::O_WRONLY
    | libc::O_RDWR
    | libc::O_CREAT
    | libc::O_TRUNC
    | libc::O_APPEND
    | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;

/// The worker's seccomp filter, for a worker whose process id (as it sees
/// itself) is `pid`, as the bytes of its `struct sock_filter` array. It is
/// installed before `dlopen` and is the only one: what loading, the
/// initialisers and every later call may do.
pub fn program(pid: u32) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| Error::Unsupported(format!("seccomp filter: {e}"));
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| fail(&e))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_pread64,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_getdents64,
        libc::SYS_getcwd,
        libc::SYS_lseek,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_poll,
        libc::SYS_ppoll,
        libc::SYS_sched_yield,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
        libc::SYS_clock_gettime,
        libc::SYS_gettimeofday,
        libc::SYS_getrandom,
        libc::SYS_getpid,
        libc::SYS_getppid,
        libc::SYS_gettid,
        libc::SYS_uname,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_sysinfo,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigaction,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ] {
        rules.insert(nr, vec![]);
    }
    let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| fail(&e))
    };
    let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| fail(&e));
    let pid = u64::from(pid);
    // Only on itself: `abort` raises SIGABRT with tgkill(getpid(), ...), and
    // the memory copies name the worker's own pid.
    for nr in [
        libc::SYS_tgkill,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
    ] {
        rules.insert(nr, vec![rule(vec![cond(0, SeccompCmpOp::Eq, pid)?])?]);
    }
    // Limits and affinity of itself only (0 or its own pid): never another
    // process's, not even to read them.
    for nr in [libc::SYS_prlimit64, libc::SYS_sched_getaffinity] {
        rules.insert(
            nr,
            vec![
                rule(vec![cond(0, SeccompCmpOp::Eq, 0)?])?,
                rule(vec![cond(0, SeccompCmpOp::Eq, pid)?])?,
            ],
        );
    }
    // fcntl for descriptor flags and status flags, without O_ASYNC, and
    // never F_SETOWN or F_SETSIG: a descriptor's owner is who gets its
    // signals, which would reach outside the worker past seccomp.
    let mut fcntl = Vec::new();
    for cmd in [
        libc::F_GETFD,
        libc::F_SETFD,
        libc::F_GETFL,
        libc::F_DUPFD_CLOEXEC,
    ] {
        fcntl.push(rule(vec![cond(1, SeccompCmpOp::Eq, cmd as u64)?])?);
    }
    fcntl.push(rule(vec![
        cond(1, SeccompCmpOp::Eq, libc::F_SETFL as u64)?,
        cond(2, SeccompCmpOp::MaskedEq(libc::O_ASYNC as u64), 0)?,
    ])?);
    rules.insert(libc::SYS_fcntl, fcntl);
    // An open whose flags (argument `arg`) neither write nor create.
    let reading = |arg: u8| rule(vec![cond(arg, SeccompCmpOp::MaskedEq(WRITING_FLAGS), 0)?]);
    rules.insert(libc::SYS_openat, vec![reading(2)?]);
    #[cfg(target_arch = "x86_64")]
    {
        for nr in [
            libc::SYS_stat,
            libc::SYS_lstat,
            libc::SYS_access,
            libc::SYS_readlink,
        ] {
            rules.insert(nr, vec![]);
        }
        // open(path, flags, mode): the flags are the second argument.
        rules.insert(libc::SYS_open, vec![reading(1)?]);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| fail(&e))?;
    let prog: BpfProgram = filter.try_into().map_err(|e| fail(&e))?;
    let mut bytes = Vec::with_capacity(prog.len() * 8);
    for insn in &prog {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    Ok(bytes)
}

/// The Landlock ruleset for loading the library at `path` (absolute; a name
/// without a slash is searched for in the loader's directories), as a
/// descriptor the worker applies to itself; `None` where the kernel has no
/// Landlock.
pub fn landlock_ruleset(path: &Path) -> Result<Option<OwnedFd>> {
    let fail = |e: &dyn std::fmt::Display| Error::Load {
        strategy: StrategyKind::Process,
        library: path.display().to_string(),
        reason: format!("cannot build the worker's Landlock ruleset: {e}"),
    };
    // The newest rights this crate knows; on an older kernel, best effort
    // keeps what it supports (and nothing, without Landlock).
    let abi = ABI::V6;
    // The loader's paths that exist (a rule for a missing one fails), and
    // the library file itself: not its directory, which is whatever
    // directory the host names.
    let mut readable: Vec<&Path> = LOADER_PATHS
        .iter()
        .map(Path::new)
        .filter(|p| p.exists())
        .collect();
    if path.as_os_str().as_encoded_bytes().contains(&b'/') {
        readable.push(path);
    }
    let created = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(readable, AccessFs::from_read(abi))))
        .map_err(|e| fail(&e))?;
    Ok(created.into())
}

/// The Landlock ABI version this kernel offers, or `None` without Landlock
/// (not built in, or not enabled among the kernel's security modules).
pub fn landlock_abi() -> Option<u32> {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only returns the version (or fails); it reads no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    u32::try_from(v).ok().filter(|&v| v > 0)
}
