//! The worker's seccomp filter, compiled on the host with `seccompiler` and
//! installed by the worker once the library is loaded.
//!
//! The allow-list is what serving requests and running ordinary library
//! code needs: reading and writing its pipes, memory management, futexes,
//! signals to itself (so `abort` works), the clock and `getrandom`, and
//! `process_vm_readv`/`process_vm_writev` on its own pid (the worker copies
//! memory through the kernel so that a bad address is an error, not a
//! crash). Anything else, `open`, `socket`, `execve`, `fork`, `kill` of
//! another process, `ptrace`, kills the worker with `SIGSYS`, which the host
//! reports as a forbidden system call.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// The filter for a worker with process id `pid`, as the bytes of its
/// `struct sock_filter` array.
pub fn program(pid: u32) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| Error::Unsupported(format!("seccomp filter: {e}"));
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| fail(&e))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
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
        libc::SYS_gettid,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigaction,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ] {
        rules.insert(nr, vec![]);
    }
    // Only on itself: `abort` raises SIGABRT with tgkill(getpid(), ...), and
    // the memory copies name the worker's own pid.
    let own_pid = || {
        SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            u64::from(pid),
        )
        .map_err(|e| fail(&e))?])
        .map_err(|e| fail(&e))
    };
    for nr in [
        libc::SYS_tgkill,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
    ] {
        rules.insert(nr, vec![own_pid()?]);
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
