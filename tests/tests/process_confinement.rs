//! The Process worker confines a library from before it loads, in a way
//! the library cannot undo: libraries whose initialisers (run by the
//! loader, before any function is called) write a file, read one outside
//! what loading needs, open a socket, fork, exec, signal the host, name
//! other processes with `prlimit64`, take ownership of the worker's pipe,
//! read the host's `/proc` files, read beside themselves, or allocate past
//! the memory limit. Each act fails with an errno the initialiser sees, or
//! kills the worker with an error that says the initialisers did it; no
//! file appears. Each mechanism is also checked alone, against the act
//! succeeding with everything off, so a test fails if a mechanism stops
//! working.
//!
//! The test command runs this file twice: as root (as CI runs) and as an
//! ordinary user (`setpriv`), since some acts only reach a non-root host.

use std::path::Path;

use sandlink::types::*;
use sandlink::{landlock_abi, Error, Foreign, Process, ProcessConfig};
use sandlink_clibs::{hostile_init_so, HOSTILE_INIT_WRITES};
use sandlink_tests::{err, library_pid, ok, running_as_root};

/// What the initialiser's act returned: 0 for success, else its errno (or
/// the act's count or mask).
fn outcome(p: &Process) -> i32 {
    let f = ok(p.function("hi_outcome", &(void() >> returning(int()))));
    ok(f.call(()))
}

/// Loads the `act` library under `config` and returns its outcome.
fn outcome_of(act: &str, config: &ProcessConfig) -> i32 {
    outcome(&ok(config.open(hostile_init_so(act))))
}

/// Everything off: what the act does unconfined.
fn unconfined() -> ProcessConfig {
    ProcessConfig::default()
        .seccomp(false)
        .landlock(false)
        .namespaces(false)
}

/// One mechanism alone.
fn only(mechanism: &str) -> ProcessConfig {
    let c = unconfined();
    match mechanism {
        "seccomp" => c.seccomp(true),
        "landlock" => c.landlock(true),
        "namespaces" => c.namespaces(true),
        other => panic!("no mechanism {other}"),
    }
}

/// The load failed because the initialiser made a forbidden system call.
fn expect_killed_while_loading(act: &str, config: &ProcessConfig) {
    let e = err(config.open(hostile_init_so(act)));
    match &e {
        Error::Load { reason, .. } => {
            assert!(reason.contains("SIGSYS"), "{act}: {e}");
            assert!(reason.contains("initialisers"), "{act}: {e}");
        }
        other => panic!("{act}: expected a load error, got: {other}"),
    }
}

#[test]
fn the_default_confinement_is_all_of_it() {
    let p = ok(Process::open(hostile_init_so("read")));
    let c = p.confinement();
    assert!(c.namespaces && c.seccomp, "{c:?}");
    assert_eq!(c.landlock_abi, landlock_abi(), "{c:?}");
    assert!(c.landlock_abi.is_some(), "this kernel has Landlock: {c:?}");
    assert_eq!(c.own_uid, running_as_root(), "{c:?}");
    let off = ok(unconfined().open(hostile_init_so("read"))).confinement();
    assert!(!off.namespaces && !off.seccomp && off.landlock_abi.is_none());
}

#[test]
fn an_initialiser_cannot_write_a_file() {
    let file = Path::new(HOSTILE_INIT_WRITES);
    let _ = std::fs::remove_file(file);
    // Unconfined, the act succeeds: the test can tell.
    assert_eq!(outcome_of("write", &unconfined()), 0, "unconfined write");
    assert!(file.exists(), "the unconfined initialiser wrote nothing");
    std::fs::remove_file(file).expect("removing the probe file");

    // Confined (the default): seccomp kills the worker.
    expect_killed_while_loading("write", &ProcessConfig::default());
    expect_killed_while_loading("write", &only("seccomp"));
    // Landlock alone refuses it; the namespaces' read-only root has no /tmp.
    assert_eq!(outcome_of("write", &only("landlock")), libc::EACCES);
    assert_eq!(outcome_of("write", &only("namespaces")), libc::ENOENT);
    assert!(!file.exists(), "a confined initialiser wrote {file:?}");
}

#[test]
fn an_initialiser_reads_only_what_loading_needs() {
    assert_eq!(outcome_of("read", &unconfined()), 0, "/etc/passwd");
    assert_eq!(outcome_of("read", &only("landlock")), libc::EACCES);
    assert_eq!(outcome_of("read", &only("namespaces")), libc::ENOENT);
    assert_eq!(outcome_of("read", &ProcessConfig::default()), libc::ENOENT);
}

#[test]
fn an_initialiser_cannot_read_beside_its_library() {
    // The library's own directory is whatever the host names (a home, /tmp):
    // only the library file itself is there for the worker.
    assert_eq!(outcome_of("sibling", &unconfined()), 0);
    assert_eq!(outcome_of("sibling", &only("landlock")), libc::EACCES);
    assert_eq!(outcome_of("sibling", &only("namespaces")), libc::ENOENT);
    assert_eq!(
        outcome_of("sibling", &ProcessConfig::default()),
        libc::ENOENT
    );
}

#[test]
fn an_initialiser_sees_the_two_pipes_only() {
    // Descriptors 3 and 4, the request and reply pipes: not the library
    // file, not the Landlock ruleset, not stdio.
    let pipes = (1 << 3) | (1 << 4);
    assert_eq!(outcome_of("fds", &ProcessConfig::default()), pipes);
    assert_eq!(outcome_of("fds", &unconfined()), pipes);
}

#[test]
fn an_initialiser_cannot_open_a_socket_fork_exec_or_signal_the_host() {
    for act in ["socket", "fork", "exec", "signal"] {
        expect_killed_while_loading(act, &ProcessConfig::default());
    }
    // Unconfined, each of them gets through (exec replaces the worker, so
    // its load fails without a signal), but for the signal when the host is
    // root: the worker has a uid of its own, which may not signal it.
    for act in ["socket", "fork"] {
        assert_eq!(outcome_of(act, &unconfined()), 0, "unconfined {act}");
    }
    let expected = if running_as_root() { libc::EPERM } else { 0 };
    assert_eq!(
        outcome_of("signal", &unconfined()),
        expected,
        "unconfined signal"
    );
    let e = err(unconfined().open(hostile_init_so("exec")));
    assert!(!e.to_string().contains("SIGSYS"), "unconfined exec: {e}");
    // In its namespaces, its parent is the namespaces' init, not the host.
    assert_eq!(outcome_of("signal", &only("namespaces")), 0);
}

#[test]
fn landlock_alone_keeps_signals_in() {
    // Landlock ABI 6 scopes signals: with seccomp off, the probe of the host
    // fails with EPERM instead of killing the worker.
    let scoped = landlock_abi().is_some_and(|abi| abi >= 6);
    let expected = if running_as_root() || scoped {
        libc::EPERM
    } else {
        0
    };
    assert_eq!(outcome_of("signal", &only("landlock")), expected);
}

#[test]
fn an_initialiser_cannot_reach_other_processes_limits() {
    // prlimit64 on another pid could set the host's RLIMIT_CPU to 0.
    expect_killed_while_loading("prlimit", &ProcessConfig::default());
    expect_killed_while_loading("prlimit", &only("seccomp"));
    // Unconfined, it names many processes (at least the machine's init and
    // kernel threads); in its namespaces, only their own init.
    let seen = outcome_of("prlimit", &unconfined());
    assert!(seen > 2, "unconfined, it named {seen} processes");
    assert_eq!(outcome_of("prlimit", &only("namespaces")), 1);
}

#[test]
fn an_initialiser_cannot_own_the_workers_pipe() {
    // F_SETOWN would have the kernel signal the host (SIGIO, or any signal
    // with F_SETSIG) past seccomp.
    expect_killed_while_loading("setown", &ProcessConfig::default());
    expect_killed_while_loading("setown", &only("seccomp"));
    assert_eq!(outcome_of("setown", &unconfined()), 0);
}

#[test]
fn an_initialiser_cannot_read_the_hosts_proc_files() {
    // Unconfined, the worker reads its parent's environment where it may:
    // a non-root host's worker has the host's uid.
    let expected = if running_as_root() { libc::EACCES } else { 0 };
    assert_eq!(outcome_of("procmem", &unconfined()), expected);
    assert_eq!(outcome_of("procmem", &only("landlock")), libc::EACCES);
    assert_eq!(outcome_of("procmem", &only("namespaces")), libc::ENOENT);
    assert_eq!(
        outcome_of("procmem", &ProcessConfig::default()),
        libc::ENOENT
    );
}

#[test]
fn the_memory_limit_holds_before_the_library_loads() {
    // The initialiser touches 512 MiB: past a 256 MiB limit, malloc fails.
    let limited = ProcessConfig::default().memory_limit(256 << 20);
    assert_eq!(outcome_of("memory", &limited), libc::ENOMEM);
    let unlimited = ProcessConfig::default().memory_limit(0);
    assert_eq!(outcome_of("memory", &unlimited), 0);
}

#[test]
fn every_worker_has_an_identity_of_its_own() {
    let a = ok(Process::open(hostile_init_so("read")));
    let b = ok(Process::open(hostile_init_so("read")));
    let uid = |p: &Process| {
        let pid = library_pid(p.worker_pid().unwrap_or_else(|| panic!("no worker")));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_else(|| panic!("no {name} in {status}"))
        };
        let groups = status.lines().find(|l| l.starts_with("Groups:"));
        if running_as_root() {
            // None of the host's supplementary groups.
            assert_eq!(groups.map(str::trim_end), Some("Groups:"), "{status}");
        }
        (field("Uid:"), status.contains("Seccomp:\t2"))
    };
    let (ua, sa) = uid(&a);
    let (ub, sb) = uid(&b);
    assert!(sa && sb, "a worker without its seccomp filter");
    // SAFETY: geteuid has no preconditions.
    let host = unsafe { libc::geteuid() }.to_string();
    if running_as_root() {
        assert_ne!(ua, host, "a worker runs as the host");
        assert_ne!(ua, ub, "two workers share uid {ua}");
    }
    // In a PID namespace of its own: NSpid lists the host's pid for it,
    // then its own (the link /proc/<pid>/ns/pid is not the host's to read:
    // the worker is not dumpable).
    let pid = library_pid(a.worker_pid().unwrap_or_else(|| panic!("no worker")));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let nspid = status.lines().find(|l| l.starts_with("NSpid:"));
    let levels = nspid.map_or(0, |l| l.split_whitespace().count() - 1);
    assert_eq!(levels, 2, "the worker's pids: {nspid:?}");
}

#[test]
fn a_system_library_opens_by_its_absolute_path() {
    // Beneath a loader directory, which the worker's root holds already.
    let path = format!("/usr/lib/{}-linux-gnu/libz.so.1", std::env::consts::ARCH);
    assert!(
        Path::new(&path).exists(),
        "{path} (Debian's zlib1g) is missing"
    );
    let p = ok(Process::open(&path));
    let version = ok(p.function("zlibVersion", &(void() >> returning(string()))));
    assert!(ok(version.call(())).starts_with("1."), "zlib's version");
}
