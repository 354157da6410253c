//! The Process strategy against `c-libs/hostile`, built natively: whatever
//! the library does, a crash, `exit`, `abort`, an endless loop, a malloc
//! bomb, a forbidden system call or a forged message, the host gets a clear
//! error and keeps running, the handle is poisoned, and `reset()` brings the
//! same handle back.

use std::time::{Duration, Instant};

use sandlink::types::*;
use sandlink::{Callback, Error, Foreign, Function, Process, ProcessConfig};
use sandlink_tests::{err, ok};

struct Hostile {
    lib: Process,
    add: Function<Process, (i32, i32), i32>,
}

fn hostile_with(config: &ProcessConfig) -> Hostile {
    let lib = ok(config.open(sandlink_clibs::HOSTILE_SO));
    let add = ok(lib.function("h_add", &(int() >> int() >> returning(int()))));
    Hostile { lib, add }
}

fn hostile() -> Hostile {
    hostile_with(&ProcessConfig::default())
}

impl Hostile {
    /// The handle is poisoned, the old worker is gone, and after reset the
    /// same handle (and its bound functions) work with a new worker.
    fn expect_poisoned_then_reset(&self, what: &str) {
        assert!(self.lib.poisoned().is_some(), "{what}: not poisoned");
        assert_eq!(
            self.lib.worker_pid(),
            None,
            "{what}: the worker is still there"
        );
        let e = err(self.add.call((1, 2)));
        assert!(matches!(&e, Error::Poisoned { .. }), "{what}: {e}");
        ok(self.lib.reset());
        assert_eq!(ok(self.add.call((1, 2))), 3, "{what}: unusable after reset");
    }

    fn expect_healthy(&self, what: &str) {
        assert!(self.lib.poisoned().is_none(), "{what}: poisoned");
        assert_eq!(ok(self.add.call((40, 2))), 42, "{what}: unusable");
    }
}

/// The worker's failure, as (function, reason).
fn worker_failed(e: &Error) -> (&str, &str) {
    match &e {
        Error::WorkerFailed { function, reason } => (function, reason),
        other => panic!("expected a worker failure, got: {other}"),
    }
}

#[test]
fn wild_writes_crash_the_worker_not_the_host() {
    let h = hostile();
    let write = ok(h
        .lib
        .function("h_write_wild", &(uintptr_t() >> int() >> returning(int()))));
    let read = ok(h
        .lib
        .function("h_read_wild", &(uintptr_t() >> returning(int()))));
    // The host's own heap, by address: in the worker, nothing is there (or
    // something of the worker's own is), never the host's value.
    let host = Box::new(0x5eed_u64);
    let host_addr = &*host as *const u64 as u64;
    for addr in [0x10, 0xffff_ffff_ffff_0000, host_addr] {
        match write.call((addr, 7)) {
            Ok(_) => {} // the worker's own memory happened to be there
            Err(e) => {
                let (function, reason) = worker_failed(&e);
                assert_eq!(function, "h_write_wild");
                assert!(reason.contains("SIGSEGV"), "{e}");
                h.expect_poisoned_then_reset("wild write");
            }
        }
        if let Err(e) = read.call((addr,)) {
            assert!(worker_failed(&e).1.contains("SIGSEGV"), "{e}");
            h.expect_poisoned_then_reset("wild read");
        }
    }
    assert_eq!(*host, 0x5eed);
    // NULL and kernel addresses always fault.
    let e = err(write.call((0x10, 1)));
    assert!(worker_failed(&e).1.contains("SIGSEGV"), "{e}");
    h.expect_poisoned_then_reset("NULL write");
}

#[test]
fn host_reads_through_bad_pointers_are_errors_not_crashes() {
    let h = hostile();
    let wild = ok(h
        .lib
        .function("h_wild_pointer", &(void() >> returning(ptr(char())))));
    let p = ok(wild.call(()));
    // Safe on Process (it is Isolated): the worker checks the address.
    let e = err(h.lib.read_bytes(p, 16));
    assert!(e.to_string().contains("not mapped readable"), "{e}");
    let e = err(h.lib.write_bytes(p, b"x"));
    assert!(e.to_string().contains("not mapped writable"), "{e}");
    // A string running into an unmapped page: an error naming the address.
    let unterminated = ok(h
        .lib
        .function("h_unterminated", &(void() >> returning(ptr(char())))));
    let s = ok(unterminated.call(()));
    let e = err(h.lib.read_string(s));
    assert!(e.to_string().contains("not mapped readable"), "{e}");
    h.expect_healthy("bad host reads");
}

#[test]
fn exit_and_abort_end_the_worker_with_an_error() {
    let h = hostile();
    let exit = ok(h.lib.function("h_exit", &(int() >> returning(void()))));
    let e = err(exit.call((42,)));
    assert!(
        matches!(&e, Error::Exited { function, code: 42 } if function == "h_exit"),
        "{e}"
    );
    h.expect_poisoned_then_reset("exit");
    let abort = ok(h.lib.function("h_abort", &(void() >> returning(void()))));
    let e = err(abort.call(()));
    assert!(worker_failed(&e).1.contains("SIGABRT"), "{e}");
    h.expect_poisoned_then_reset("abort");
}

#[test]
fn an_endless_loop_is_killed_at_the_deadline() {
    let h = hostile_with(&ProcessConfig::default().deadline(Duration::from_millis(300)));
    let spin = ok(h.lib.function("h_spin", &(void() >> returning(void()))));
    let start = Instant::now();
    let e = err(spin.call(()));
    let took = start.elapsed();
    assert!(worker_failed(&e).1.contains("deadline"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    h.expect_poisoned_then_reset("spin");
}

#[test]
fn a_malloc_bomb_stops_at_the_memory_limit() {
    let limit = 256u64 << 20;
    let h = hostile_with(&ProcessConfig::default().memory_limit(limit));
    let bomb = ok(h
        .lib
        .function("h_malloc_all", &(size_t() >> returning(size_t()))));
    let total = ok(bomb.call((1 << 20,)));
    assert!(total > 0 && total < limit, "allocated {total} bytes");
    // The library's malloc failed; the host's did not: the worker still
    // serves, but its own allocations fail the same way, as errors.
    let e = err(h.lib.alloc(&char(), 64 << 20));
    assert!(matches!(&e, Error::Alloc { .. }), "{e}");
    h.expect_healthy("malloc bomb");
}

#[test]
fn forbidden_system_calls_kill_the_worker() {
    let h = hostile();
    let open = ok(h
        .lib
        .function("h_can_open", &(string() >> returning(int()))));
    let e = err(open.call(("/etc/passwd",)));
    assert!(worker_failed(&e).1.contains("seccomp"), "{e}");
    h.expect_poisoned_then_reset("open");
    let socket = ok(h.lib.function("h_socket", &(void() >> returning(int()))));
    let e = err(socket.call(()));
    assert!(worker_failed(&e).1.contains("seccomp"), "{e}");
    h.expect_poisoned_then_reset("socket");
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
    let pid = h.lib.worker_pid().unwrap_or_else(|| panic!("no worker"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"));
    let uid = uid_line
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_ne!(uid, "0", "the worker runs as root: {uid_line:?}");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
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
    h.expect_poisoned_then_reset("forged frame");
}

#[test]
fn callbacks_survive_a_reset_at_the_same_address() {
    let h = hostile();
    let int_fn = funptr(int() >> returning(int()));
    let store = ok(h
        .lib
        .function("h_store_callback", &(int_fn.clone() >> returning(void()))));
    let call_stored = ok(h
        .lib
        .function("h_call_stored", &(int() >> returning(int()))));
    let cb: Callback<(i32,), i32> = ok(h.lib.callback(&int_fn, |(x,): (i32,)| Ok(x * 10)));
    ok(store.call((&cb,)));
    assert_eq!(ok(call_stored.call((4,))), 40);
    ok(h.lib.reset());
    // The library's state is new (the stored pointer is gone), the
    // callback is the same.
    ok(store.call((&cb,)));
    assert_eq!(ok(call_stored.call((5,))), 50);
    // A dropped callback's trampoline comes up as an upcall to an empty
    // slot: C sees zero and the call fails, without poisoning the handle.
    let addr = cb.addr();
    drop(cb);
    let e = err(call_stored.call((6,)));
    assert!(
        matches!(e, Error::CallbackDropped { address, .. } if address == addr),
        "{e}"
    );
    h.expect_healthy("dropped callback");
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
