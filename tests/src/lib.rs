//! Sandlink's shared test code: the conformance suite every strategy runs.

pub mod conformance;
pub mod hostile;
pub mod protocol;
pub mod xml;

/// Unwraps a result that must succeed, panicking with the error's message
/// (which names the function, the value and the reason).
pub fn ok<T>(r: sandlink::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// The error of a result that must fail.
pub fn err<T: std::fmt::Debug>(r: sandlink::Result<T>) -> sandlink::Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// This process's resident set size in bytes (`VmRSS` in `/proc/self/status`),
/// for the leak and memory-per-sandbox measurements.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("read /proc/self/status: {e}"));
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("/proc/self/status has no VmRSS line"));
    kib * 1024
}

/// The process that runs a Process worker's library, as the host sees it:
/// the worker the host started (`worker_pid`) itself, or, in namespaces,
/// the last of its line of only children (monitor, init, library).
pub fn library_pid(worker_pid: u32) -> u32 {
    let mut pid = worker_pid;
    for _ in 0..4 {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        match children
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
        {
            Some(child) => pid = child,
            None => return pid,
        }
    }
    pid
}

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
