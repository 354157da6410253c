//! The Process strategy against `c-libs/hostile`, built natively: the
//! shared hostile suite (`sandlink_tests::hostile`, also run on the
//! Sandbox), then what only a worker process shows: the signal that ended
//! it, the seccomp filter, its environment and descriptors, a forged
//! message, and the worker's end with its handle.

use sandlink::types::*;
use sandlink::{Callback, Error, Foreign, Isolated, Process, ProcessConfig};
use sandlink_tests::hostile::Limits;
use sandlink_tests::{err, library_pid, ok};

type Hostile = sandlink_tests::hostile::Hostile<Process>;

fn open(limits: Limits) -> Process {
    let mut config = ProcessConfig::default();
    if let Some(d) = limits.deadline {
        config = config.deadline(d);
    }
    if let Some(m) = limits.memory {
        config = config.memory_limit(m);
    }
    ok(config.open(sandlink_clibs::HOSTILE_SO))
}

fn hostile() -> Hostile {
    Hostile::new(open(Limits::default()))
}

// The shared hostile suite (tests/src/hostile.rs), then the worker's own
// checks: signals, seccomp, its environment and descriptors, the protocol.
sandlink_tests::hostile_tests!(open, 256 << 20);

/// The worker is gone with its failure, and `reset` starts a new one.
fn expect_worker_gone_then_reset(h: &Hostile, what: &str) {
    assert_eq!(
        h.lib.worker_pid(),
        None,
        "{what}: the worker is still there"
    );
    h.expect_poisoned_then_reset(what);
}

/// The worker's failure, as (function, reason).
fn worker_failed(e: &Error) -> (&str, &str) {
    match &e {
        Error::WorkerFailed { function, reason } => (function, reason),
        other => panic!("expected a worker failure, got: {other}"),
    }
}

#[test]
fn a_null_write_ends_the_worker_by_sigsegv() {
    let h = hostile();
    let write = ok(h
        .lib
        .function("h_write_wild", &(uintptr_t() >> int() >> returning(int()))));
    let e = err(write.call((0x10, 1)));
    let (function, reason) = worker_failed(&e);
    assert_eq!(function, "h_write_wild");
    assert!(reason.contains("SIGSEGV"), "{e}");
    expect_worker_gone_then_reset(&h, "NULL write");
}

#[test]
fn abort_ends_the_worker_by_sigabrt() {
    let h = hostile();
    let abort = ok(h.lib.function("h_abort", &(void() >> returning(void()))));
    let e = err(abort.call(()));
    assert!(worker_failed(&e).1.contains("SIGABRT"), "{e}");
    expect_worker_gone_then_reset(&h, "abort");
}

#[test]
fn forbidden_system_calls_kill_the_worker() {
    let h = hostile();
    let open = ok(h
        .lib
        .function("h_can_open", &(string() >> returning(int()))));
    // Opening for reading is allowed, but the worker's file system holds
    // the loader's directories and the library only.
    assert_eq!(ok(open.call(("/etc/passwd",))), 0, "/etc/passwd opened");
    assert_eq!(ok(open.call(("/proc/1/environ",))), 0, "/proc opened");
    assert_eq!(
        ok(open.call((sandlink_clibs::HOSTILE_SO,))),
        1,
        "its own file"
    );
    let socket = ok(h.lib.function("h_socket", &(void() >> returning(int()))));
    let e = err(socket.call(()));
    assert!(worker_failed(&e).1.contains("seccomp"), "{e}");
    expect_worker_gone_then_reset(&h, "socket");
}

#[test]
fn the_worker_gets_no_environment_and_no_descriptors() {
    assert!(
        std::env::var_os("PATH").is_some(),
        "the test needs PATH set"
    );
    let h = hostile();
    let has_env = ok(h.lib.function("h_has_env", &(string() >> returning(int()))));
    assert_eq!(ok(has_env.call(("PATH",))), 0);
    // stdout is not inherited: the first write fails inside the worker,
    // nothing reaches the host's terminal, and the worker carries on.
    let print = ok(h
        .lib
        .function("h_print_until_error", &(void() >> returning(int()))));
    assert_eq!(ok(print.call(())), 0);
    // What the kernel says about the worker: in seccomp filter mode, not
    // root, and holding its two pipes only, at 3 and 4 (plus what the
    // library itself opened before confinement: nothing, for this one).
    let pid = library_pid(h.lib.worker_pid().unwrap_or_else(|| panic!("no worker")));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"));
    let uid = uid_line
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_ne!(uid, "0", "the worker runs as root: {uid_line:?}");
    // Only root may list them: the worker is not dumpable, so a host of the
    // same uid may not (the initialiser's own count is in
    // process_confinement.rs).
    let listed = std::fs::read_dir(format!("/proc/{pid}/fd"));
    if !sandlink_tests::running_as_root() {
        let denied = listed.map(|_| ()).map_err(|e| e.kind());
        assert_eq!(denied, Err(std::io::ErrorKind::PermissionDenied));
        h.expect_healthy("environment");
        return;
    }
    let fds: Vec<String> = listed
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .map(|d| d.map(|d| d.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut fds = fds;
    fds.sort();
    assert_eq!(fds, ["3", "4"], "the worker's descriptors");
    h.expect_healthy("environment");
}

#[test]
fn a_forged_message_is_a_protocol_violation() {
    let h = hostile();
    let forge = ok(h
        .lib
        .function("h_forge_frame", &(int() >> returning(int()))));
    // Descriptor 4 is the worker's reply pipe (worker.c).
    let e = err(forge.call((4,)));
    assert!(worker_failed(&e).1.contains("protocol"), "{e}");
    expect_worker_gone_then_reset(&h, "forged frame");
}

#[test]
fn dropping_the_handle_ends_the_worker() {
    let h = hostile();
    let pid = h.lib.worker_pid().unwrap_or_else(|| panic!("no worker"));
    // A callback that outlives the handle does not keep the worker alive.
    let cb: Callback<(i32,), i32> = ok(h
        .lib
        .callback(&funptr(int() >> returning(int())), |(x,): (i32,)| Ok(x)));
    drop(h);
    let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| s.contains("State:\tZ"))
            .unwrap_or(true);
    assert!(gone, "worker {pid} is still running");
    drop(cb);
}

#[test]
fn a_worker_whose_pipes_the_library_closed_is_not_an_exit() {
    // Descriptors 3 and 4 are the worker's request and reply pipes; the
    // library closes one, then calls back. The worker's upcall (or its wait
    // for the answer) fails, and the host says so: no "exit", no status 0.
    for fd in [3, 4] {
        let h = hostile();
        let close_then_call = ok(h.lib.function(
            "h_close_then_call",
            &(int() >> funptr(int() >> returning(int())) >> returning(int())),
        ));
        let cb = ok(h
            .lib
            .callback(&funptr(int() >> returning(int())), |(x,)| Ok(x)));
        let e = err(close_then_call.call((fd, &cb)));
        let (function, reason) = worker_failed(&e);
        assert_eq!(function, "h_close_then_call", "fd {fd}: {e}");
        assert!(reason.contains("pipes to the host fail"), "fd {fd}: {e}");
        assert!(!e.to_string().contains("sandbox"), "fd {fd}: {e}");
        expect_worker_gone_then_reset(&h, "closed pipe");
    }
}

#[test]
fn an_exit_a_kill_and_a_closed_pipe_are_told_apart() {
    let h = hostile();
    let exit = ok(h.lib.function("h_exit", &(int() >> returning(void()))));
    let e = err(exit.call((0,)));
    assert!(matches!(&e, Error::Exited { code: 0, .. }), "{e}");
    assert!(e.to_string().contains("called exit(0)"), "{e}");
    ok(h.lib.reset());
    let abort = ok(h.lib.function("h_abort", &(void() >> returning(void()))));
    let e = err(abort.call(()));
    assert!(worker_failed(&e).1.contains("SIGABRT"), "{e}");
}

#[test]
fn a_forged_error_frame_is_refused_before_the_host_allocates_it() {
    // The library writes an ERROR frame of 64 MiB on the worker's reply
    // pipe (descriptor 4): an error message is short, so the host refuses
    // the frame at its header, ends the worker, and keeps no part of it.
    let h = hostile();
    let forge = ok(h
        .lib
        .function("h_forge_error", &(int() >> int() >> returning(long()))));
    let e = err(forge.call((4, 64)));
    let (_, reason) = worker_failed(&e);
    assert!(reason.contains("protocol"), "{e}");
    assert!(
        e.to_string().len() < 1024,
        "a long error: {} bytes",
        e.to_string().len()
    );
    expect_worker_gone_then_reset(&h, "forged error frame");
}

#[test]
fn a_library_that_keeps_calling_back_meets_its_deadline() {
    // The deadline counts the library's time summed over its upcalls: a
    // library looping on a callback is killed after a second of its own
    // time, whether the callback succeeds or failed on its first run.
    for fails in [false, true] {
        let h = Hostile::new(open(Limits {
            deadline: Some(std::time::Duration::from_secs(1)),
            ..Limits::default()
        }));
        let forever = ok(h.lib.function(
            "h_call_back_forever",
            &(funptr(int() >> returning(int())) >> returning(void())),
        ));
        let cb: Callback<(i32,), i32> =
            ok(h.lib
                .callback(&funptr(int() >> returning(int())), move |(x,): (i32,)| {
                    if fails {
                        Err(Error::Unsupported(format!("callback {x} fails")))
                    } else {
                        Ok(x)
                    }
                }));
        let started = std::time::Instant::now();
        let e = err(forever.call((&cb,)));
        let took = started.elapsed();
        assert!(worker_failed(&e).1.contains("deadline"), "{e}");
        // Generous: a loaded machine may be slow to notice, never 30 s.
        assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
        expect_worker_gone_then_reset(&h, "calling back for ever");
    }
}

#[test]
fn a_raised_sigsys_is_not_taken_for_a_seccomp_kill() {
    // The library can raise any signal itself: the host reports the signal
    // it saw, and says the library may have raised it.
    let h = hostile();
    let raise = ok(h.lib.function("h_raise", &(int() >> returning(int()))));
    let e = err(raise.call((libc::SIGSYS,)));
    let (_, reason) = worker_failed(&e);
    assert!(reason.contains("SIGSYS"), "{e}");
    assert!(reason.contains("raised it itself"), "{e}");
}

#[test]
fn a_worker_killed_at_its_deadline_leaves_no_process_behind() {
    // The host kills the worker it started (the monitor); the library's
    // process, spinning in its namespace, must end with it, not spin on.
    let h = Hostile::new(open(Limits {
        deadline: Some(std::time::Duration::from_millis(300)),
        ..Limits::default()
    }));
    let worker = h.lib.worker_pid().unwrap_or_else(|| panic!("no worker"));
    let library = library_pid(worker);
    assert_ne!(library, worker, "no library process below the monitor");
    let spin = ok(h.lib.function("h_spin", &(void() >> returning(void()))));
    let e = err(spin.call(()));
    assert!(worker_failed(&e).1.contains("deadline"), "{e}");
    let gone = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| s.contains("State:\tZ"))
            .unwrap_or(true)
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gone(library) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        gone(library),
        "the library's process {library} outlived its worker"
    );
}
