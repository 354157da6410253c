//! The Process worker confines a library from before it loads: libraries
//! whose initialisers (run by the loader, before any function is called)
//! write a file, read one outside what loading needs, open a socket, fork,
//! exec or signal the host. Each act fails with an errno the initialiser
//! sees, or kills the worker with an error that says the initialisers did
//! it; no file appears.

use std::path::Path;

use sandlink::types::*;
use sandlink::{landlock_abi, Error, Foreign, Process, ProcessConfig};
use sandlink_clibs::{hostile_init_so, HOSTILE_INIT_WRITES};
use sandlink_tests::{err, ok};

/// What the initialiser's act returned: 0 for success, else its errno.
fn outcome(p: &Process) -> i32 {
    let f = ok(p.function("hi_outcome", &(void() >> returning(int()))));
    ok(f.call(()))
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
fn an_initialiser_cannot_write_a_file() {
    let file = Path::new(HOSTILE_INIT_WRITES);
    let _ = std::fs::remove_file(file);
    // Unconfined, the act succeeds: the test can tell.
    let open = ProcessConfig::default().seccomp(false).landlock(false);
    let p = ok(open.open(hostile_init_so("write")));
    assert_eq!(outcome(&p), 0, "the unconfined initialiser failed to write");
    assert!(file.exists(), "the unconfined initialiser wrote nothing");
    std::fs::remove_file(file).expect("removing the probe file");

    // Confined (the default): the first seccomp stage kills the worker.
    expect_killed_while_loading("write", &ProcessConfig::default());
    assert!(!file.exists(), "a confined initialiser wrote {file:?}");

    // Landlock alone refuses it too, where the kernel has it.
    let p = ok(ProcessConfig::default()
        .seccomp(false)
        .open(hostile_init_so("write")));
    match landlock_abi() {
        Some(_) => {
            assert_eq!(outcome(&p), libc::EACCES, "Landlock let the write through");
            assert!(!file.exists(), "a Landlocked initialiser wrote {file:?}");
        }
        None => {
            assert_eq!(outcome(&p), 0);
            std::fs::remove_file(file).expect("removing the probe file");
        }
    }
}

#[test]
fn an_initialiser_reads_only_what_loading_needs() {
    let p = ok(ProcessConfig::default()
        .landlock(false)
        .open(hostile_init_so("read")));
    assert_eq!(outcome(&p), 0, "unconfined, /etc/passwd is readable");
    let p = ok(Process::open(hostile_init_so("read")));
    let expected = if landlock_abi().is_some() {
        libc::EACCES
    } else {
        0
    };
    assert_eq!(outcome(&p), expected, "reading /etc/passwd while loading");
    // What it may still do: run, once loaded, like any library.
    assert!(p.worker_pid().is_some());
}

#[test]
fn an_initialiser_cannot_open_a_socket_fork_exec_or_signal_the_host() {
    for act in ["socket", "fork", "exec", "signal"] {
        expect_killed_while_loading(act, &ProcessConfig::default());
    }
    // Unconfined, each of them gets through (exec replaces the worker, so
    // its load fails without a signal), but for the signal when the host is
    // root: the worker already dropped to `nobody`, which may not signal it.
    let open = ProcessConfig::default().seccomp(false).landlock(false);
    for act in ["socket", "fork"] {
        let p = ok(open.open(hostile_init_so(act)));
        assert_eq!(outcome(&p), 0, "unconfined {act}");
    }
    let p = ok(open.open(hostile_init_so("signal")));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert_eq!(
        outcome(&p),
        if root { libc::EPERM } else { 0 },
        "unconfined signal"
    );
    let e = err(open.open(hostile_init_so("exec")));
    assert!(!e.to_string().contains("SIGSYS"), "unconfined exec: {e}");
}

#[test]
fn landlock_alone_keeps_signals_in() {
    // Landlock ABI 6 scopes signals: with seccomp off, the probe of the host
    // fails with EPERM instead of killing the worker. (As root, the worker's
    // drop to `nobody` refuses it too.)
    let p = ok(ProcessConfig::default()
        .seccomp(false)
        .open(hostile_init_so("signal")));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let scoped = landlock_abi().is_some_and(|abi| abi >= 6);
    let expected = if root || scoped { libc::EPERM } else { 0 };
    assert_eq!(outcome(&p), expected, "a signal left the worker");
}
