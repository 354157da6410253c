//! The Sandbox strategy's configuration and lifecycle: signature checks,
//! what a trap reports, poisoning and reset, how precisely the deadline and
//! the memory cap hold, captured output, callback slot reuse, no WASI
//! capabilities, and the compiled-module cache. What a hostile library can
//! do and cannot reach (loops, recursion, abort, exit, bogus function
//! pointers, wild memory) is `isolation.rs`, with canaries around every case.

use std::time::{Duration, Instant};

use sandlink::types::*;
use sandlink::{Error, Foreign, Isolated, Sandbox, SandboxConfig, TrapKind};
use sandlink_tests::{err, ok};

fn hostile_with(config: &SandboxConfig) -> Sandbox {
    ok(config.open(sandlink_clibs::HOSTILE_WASM))
}

fn hostile() -> Sandbox {
    hostile_with(&SandboxConfig::default())
}

fn trap_kind(e: &Error) -> &TrapKind {
    match &e {
        Error::Trap { kind, .. } => kind,
        other => panic!("expected a trap, got: {other}"),
    }
}

#[test]
fn signature_mismatch_names_function_and_both_signatures() {
    let lib = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
    let e = err(lib.function("tl_int_add", &(int() >> returning(int()))));
    match &e {
        Error::SignatureMismatch {
            function,
            declared,
            actual,
        } => {
            assert_eq!(function, "tl_int_add");
            assert!(declared.starts_with("(i32) -> (i32)"), "{declared}");
            assert!(declared.contains("int tl_int_add(int)"), "{declared}");
            assert_eq!(actual, "(i32, i32) -> (i32)");
        }
        other => panic!("expected a signature mismatch, got: {other}"),
    }
    let e = err(lib.function(
        "tl_float_mul",
        &(double() >> double() >> returning(double())),
    ));
    assert!(matches!(e, Error::SignatureMismatch { .. }), "{e}");
    // long long is i64 in wasm; declaring it as long (i32 under ILP32) is caught.
    let e = err(lib.function("tl_llong_neg", &(long() >> returning(long()))));
    assert!(matches!(e, Error::SignatureMismatch { .. }), "{e}");
    // The right declaration binds.
    ok(lib.function("tl_llong_neg", &(llong() >> returning(llong()))));
}

#[test]
fn trap_is_an_error_poisons_and_reset_recovers() {
    let lib = hostile();
    let add = ok(lib.function("h_add", &(int() >> int() >> returning(int()))));
    let far = ok(lib.function("h_write_far", &(void() >> returning(int()))));
    assert_eq!(ok(add.call((2, 3))), 5);

    let e = err(far.call(()));
    assert_eq!(trap_kind(&e), &TrapKind::MemoryOutOfBounds);
    match &e {
        Error::Trap {
            function,
            backtrace,
            ..
        } => {
            assert_eq!(function, "h_write_far");
            assert!(backtrace.contains("h_write_far"), "backtrace: {backtrace}");
        }
        other => panic!("{other}"),
    }
    assert!(lib.poisoned().is_some());
    let e = err(add.call((2, 3)));
    assert!(matches!(&e, Error::Poisoned { .. }), "{e}");

    ok(lib.reset());
    assert!(lib.poisoned().is_none());
    assert_eq!(ok(add.call((20, 22))), 42);
}

#[test]
fn deadline_stops_an_infinite_loop() {
    let deadline = Duration::from_millis(200);
    let config = SandboxConfig::default().deadline(deadline);
    let lib = hostile_with(&config);
    let spin = ok(lib.function("h_spin", &(void() >> returning(void()))));
    let start = Instant::now();
    let e = err(spin.call(()));
    let took = start.elapsed();
    assert_eq!(trap_kind(&e), &TrapKind::Deadline);
    assert!(took >= deadline, "stopped early: {took:?}");
    // Stated margin: two epoch ticks plus scheduling slack on a loaded machine.
    assert!(
        took < deadline + Duration::from_millis(500),
        "stopped late: {took:?}"
    );
    ok(lib.reset());
    // A fresh deadline applies to each outermost call.
    let add = ok(lib.function("h_add", &(int() >> int() >> returning(int()))));
    assert_eq!(ok(add.call((1, 1))), 2);
    // A loop entered from a slow callback is stopped too: the host's time
    // is not charged, the library's is.
    let int_fn = funptr(int() >> returning(int()));
    let store = ok(lib.function("h_store_callback", &(int_fn.clone() >> returning(void()))));
    let call_stored = ok(lib.function("h_call_stored", &(int() >> returning(int()))));
    let spin2 = spin.clone();
    let slow_then_spin = ok(lib.callback(&int_fn, move |(x,)| {
        std::thread::sleep(Duration::from_millis(300));
        spin2.call(())?;
        Ok(x)
    }));
    ok(store.call((&slow_then_spin,)));
    let start = Instant::now();
    let e = err(call_stored.call((1,)));
    let took = start.elapsed();
    assert!(e.to_string().contains("execution deadline"), "{e}");
    assert!(
        took >= deadline + Duration::from_millis(300),
        "stopped early: {took:?}"
    );
    assert!(
        took < deadline + Duration::from_millis(800),
        "stopped late: {took:?}"
    );
}

#[test]
fn deadline_does_not_charge_the_hosts_time_in_callbacks() {
    // The budget is for the library's code: a callback that is slow on the
    // host side (a pager reading expat_tree's output, say) must not trap a
    // healthy library.
    let deadline = Duration::from_millis(100);
    let config = SandboxConfig::default().deadline(deadline);
    let lib = ok(config.open(sandlink_clibs::TESTLIB_WASM));
    let step = funptr(int() >> int() >> returning(int()));
    let fold = ok(lib.function(
        "tl_fold",
        &(step.clone() >> ptr(int()) >> size_t() >> int() >> returning(int())),
    ));
    let n = 6u64;
    let xs_mem = ok(lib.alloc(&int(), n));
    let xs = xs_mem.ptr();
    let slow = ok(lib.callback(&step, |(acc, x)| {
        std::thread::sleep(Duration::from_millis(40));
        Ok(acc + x)
    }));
    let start = Instant::now();
    assert_eq!(ok(fold.call((&slow, xs, n, 5))), 5);
    assert!(
        start.elapsed() > deadline * 2,
        "the callbacks took {:?}, not past the deadline",
        start.elapsed()
    );
    // Nor when the slow callback then calls into the library: the nested
    // call gets what is left of the library's budget, not of the wall
    // clock's. Batched too, where the closures run after the call returned.
    let t = ok(sandlink_testlib::Testlib::bind(&lib));
    let apply = t.apply.clone();
    let double = ok(lib.callback(&t.int_fn, |(x,)| Ok(2 * x)));
    let slow_then_call = ok(lib.callback(&step, move |(acc, x)| {
        std::thread::sleep(Duration::from_millis(150));
        Ok(acc + x + apply.call((&double, 1))?)
    }));
    assert_eq!(ok(fold.call((&slow_then_call, xs, 2, 5))), 5 + 3 + 3);
    for record_after in [0, u32::MAX] {
        let lib = ok(SandboxConfig::default()
            .deadline(deadline)
            .record_batched_after(record_after)
            .open(sandlink_clibs::TESTLIB_WASM));
        let t = ok(sandlink_testlib::Testlib::bind(&lib));
        let apply = t.apply.clone();
        let double = ok(lib.callback(&t.int_fn, |(x,)| Ok(2 * x)));
        let sums = std::sync::Arc::new(std::sync::Mutex::new(0));
        let s2 = sums.clone();
        let slow = ok(lib.callback_batched(&t.count_fn, move |_| {
            std::thread::sleep(Duration::from_millis(150));
            *s2.lock().unwrap_or_else(|p| p.into_inner()) += apply.call((&double, 1))?;
            Ok(())
        }));
        let never = ok(lib.callback(&t.int_fn, |(x,)| Ok(x)));
        ok(t.count.call((2, &slow, &never, 0, None)));
        assert_eq!(*sums.lock().unwrap_or_else(|p| p.into_inner()), 6);
    }
}

#[test]
fn memory_cap_holds() {
    let cap = 16 << 20;
    let config = SandboxConfig::default().memory_limit(cap);
    let lib = hostile_with(&config);
    let malloc_all = ok(lib.function("h_malloc_all", &(size_t() >> returning(size_t()))));
    let got = ok(malloc_all.call((64 << 10,)));
    assert!(
        got > 0 && got <= cap,
        "allocated {got} bytes under a {cap}-byte cap"
    );
    let size = ok(lib.memory_size());
    assert!(size <= cap, "linear memory grew to {size}");
    // Running out of memory is the library's problem, not a trap.
    assert!(lib.poisoned().is_none());
    let e = err(lib.alloc(&char(), 1 << 20));
    assert!(matches!(e, Error::Alloc { .. }), "{e}");

    // A cap below the module's initial memory fails at instantiation.
    let tiny = SandboxConfig::default().memory_limit(64 << 10);
    let e = err(tiny.open(sandlink_clibs::HOSTILE_WASM));
    assert!(
        matches!(&e, Error::LimitReached { setting, limit, .. }
            if *setting == "SandboxConfig::memory_limit" && limit.contains("65536")),
        "{e}"
    );
}

#[test]
fn stdout_and_stderr_are_captured_and_capped() {
    let config = SandboxConfig::default().output_limit(4096);
    let lib = hostile_with(&config);
    let puts = ok(lib.function("h_puts", &(string() >> returning(int()))));
    let eputs = ok(lib.function("h_eputs", &(string() >> returning(int()))));
    ok(puts.call(("to stdout",)));
    ok(eputs.call(("to stderr",)));
    assert_eq!(lib.stdout(), b"to stdout\n");
    assert_eq!(lib.stderr(), b"to stderr");
    // Writing past the capture limit fails in the library; the host keeps
    // at most the limit.
    let flood = ok(lib.function("h_print_until_error", &(void() >> returning(int()))));
    let lines = ok(flood.call(())) as usize;
    let out = lib.stdout();
    assert!(out.len() <= 4096, "captured {} bytes", out.len());
    // What was kept is exactly the start of what was written, cut at a write
    // boundary near the cap (libc buffers lines into larger writes).
    let line = "spam spam spam spam spam spam spam spam spam spam spam spam\n";
    let written = format!("to stdout\n{}", line.repeat(lines + 1));
    assert!(
        written.as_bytes().starts_with(&out),
        "captured output is not a prefix of what was written"
    );
    assert!(out.len() > 2048, "only {} bytes kept", out.len());
}

#[test]
fn wasi_grants_no_capabilities() {
    let lib = hostile();
    let can_open = ok(lib.function("h_can_open", &(string() >> returning(int()))));
    let has_env = ok(lib.function("h_has_env", &(string() >> returning(int()))));
    assert_eq!(ok(can_open.call(("/etc/passwd",))), 0);
    assert_eq!(ok(can_open.call((".",))), 0);
    assert_eq!(ok(has_env.call(("HOME",))), 0);
    assert_eq!(ok(has_env.call(("PATH",))), 0);
}

#[test]
fn callback_slots_are_reused_and_dropped_ones_fail_the_call() {
    let lib = hostile();
    let int_fn = funptr(int() >> returning(int()));
    let store = ok(lib.function("h_store_callback", &(int_fn.clone() >> returning(void()))));
    let call = ok(lib.function("h_call_stored", &(int() >> returning(int()))));

    let a = ok(lib.callback(&int_fn, |(x,)| Ok(x + 100)));
    let a_addr = a.addr();
    ok(store.call((&a,)));
    assert_eq!(ok(call.call((1,))), 101);
    drop(a);
    let e = err(call.call((1,)));
    assert!(
        matches!(e, Error::CallbackDropped { address, .. } if address == a_addr),
        "{e}"
    );
    // After a reset the library's copy of the address is gone with its
    // memory; the slot is free for the next callback.
    ok(lib.reset());

    let b = ok(lib.callback(&int_fn, |(x,)| Ok(x * 2)));
    assert_eq!(b.addr(), a_addr, "the released slot is reused");
    ok(store.call((&b,)));
    assert_eq!(ok(call.call((21,))), 42);
    // Callbacks survive a reset at the same address.
    ok(lib.reset());
    ok(store.call((&b,)));
    assert_eq!(ok(call.call((5,))), 10);
}

/// The files in a module cache directory, sorted (it must exist).
fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = ok(std::fs::read_dir(dir).map_err(|e| Error::Unsupported(e.to_string())))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn module_cache_compiles_once_and_rejects_corrupt_entries() {
    let dir = std::env::temp_dir().join(format!("sandlink-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = SandboxConfig::default().cache_dir(Some(dir.clone()));
    let wasm = std::fs::read(sandlink_clibs::TESTLIB_WASM).expect("reading testlib.wasm");
    let cold = ok(config.compile(&wasm, "testlib"));
    assert!(!cold.from_cache());
    let warm = ok(config.compile(&wasm, "testlib"));
    assert!(warm.from_cache());

    // Corrupt every entry: the next load recompiles instead of trusting it.
    let entries = cache_entries(&dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mut bytes = ok(std::fs::read(&entries[0]).map_err(|e| Error::Unsupported(e.to_string())));
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    ok(std::fs::write(&entries[0], &bytes).map_err(|e| Error::Unsupported(e.to_string())));
    let again = ok(config.compile(&wasm, "testlib"));
    assert!(!again.from_cache(), "a corrupt entry was trusted");
    let lib = ok(config.instantiate(&again));
    let add = ok(lib.function("tl_int_add", &(int() >> int() >> returning(int()))));
    assert_eq!(ok(add.call((40, 2))), 42);
    // Truncated entry: same.
    ok(std::fs::write(&entries[0], b"SANDLINK").map_err(|e| Error::Unsupported(e.to_string())));
    assert!(!ok(config.compile(&wasm, "testlib")).from_cache());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fresh_sandbox_per_input_is_cheap_and_independent() {
    let config = SandboxConfig::default();
    let wasm =
        ok(std::fs::read(sandlink_clibs::TESTLIB_WASM)
            .map_err(|e| Error::Unsupported(e.to_string())));
    let module = ok(config.compile(&wasm, "testlib"));
    for i in 0..300 {
        let lib = ok(config.instantiate(&module));
        let counter = ok(lib.global("tl_counter", &int()));
        // Each instance starts from the module's initial state.
        assert_eq!(ok(lib.read(&int(), counter)), 41, "instance {i}");
        ok(lib.write(&int(), counter, i));
    }
}

#[test]
fn a_module_embedded_as_bytes_opens_like_a_file_and_bad_bytes_are_an_error() {
    // What `include_bytes!(env!("SANDLINK_<NAME>_WASM"))` gives a binary.
    let wasm =
        ok(std::fs::read(sandlink_clibs::TESTLIB_WASM)
            .map_err(|e| Error::Unsupported(e.to_string())));
    let a = ok(Sandbox::open_bytes(&wasm, "testlib"));
    let add = ok(a.function("tl_int_add", &(int() >> int() >> returning(int()))));
    assert_eq!(ok(add.call((40, 2))), 42);
    // A second instance from the same bytes is independent.
    let b = ok(Sandbox::open_bytes(&wasm, "testlib"));
    let counter = ok(b.global("tl_counter", &int()));
    ok(b.write(&int(), counter, 7));
    let counter_a = ok(a.global("tl_counter", &int()));
    assert_eq!(ok(a.read(&int(), counter_a)), 41);
    // Not a module: an error naming it, not a panic.
    let e = err(Sandbox::open_bytes(b"\0asm not really", "junk"));
    assert!(e.to_string().contains("junk"), "{e}");
}

#[test]
fn instantiate_refuses_a_module_compiled_under_other_engine_settings() {
    let wasm =
        ok(std::fs::read(sandlink_clibs::TESTLIB_WASM)
            .map_err(|e| Error::Unsupported(e.to_string())));
    let module = ok(SandboxConfig::default().compile(&wasm, "testlib"));
    // wasmtime fixes the stack limit per engine: a config asking for another
    // one must not get a sandbox that silently runs under the module's.
    let other = SandboxConfig::default().max_wasm_stack(128 << 10);
    let e = err(other.instantiate(&module));
    assert!(e.to_string().contains("max_wasm_stack"), "{e}");
    ok(SandboxConfig::default().instantiate(&module));
}

#[test]
fn the_gc_proposal_is_refused() {
    // Exceptions (setjmp/longjmp) are on; GC structs and arrays, which a
    // module could allocate outside its linear-memory cap, are not.
    let gc = r#"(module
        (type $pair (struct (field i32) (field i32)))
        (func (export "make") (result i32)
          (struct.get $pair 0 (struct.new $pair (i32.const 1) (i32.const 2)))))"#;
    let e = err(Sandbox::open_bytes(gc.as_bytes(), "gc"));
    assert!(e.to_string().contains("gc"), "{e}");
    // Exceptions load and run: the conformance suite's `setjmp_longjmp`.
}

#[test]
fn the_deadline_covers_time_in_wasi_calls() {
    // `sleep(6)` is a WASI `poll_oneoff` on a clock: under a 300 ms
    // deadline it ends at the deadline, as a deadline trap, and the sandbox
    // (its lock included) is free again at once.
    let sb = hostile_with(&SandboxConfig::default().deadline(Duration::from_millis(300)));
    let sleep = ok(sb.function("h_sleep", &(uint() >> returning(int()))));
    let started = std::time::Instant::now();
    let e = err(sleep.call((6,)));
    let took = started.elapsed();
    assert_eq!(trap_kind(&e), &TrapKind::Deadline, "{e}");
    assert!(
        took < Duration::from_secs(5),
        "slept {took:?} past a 300 ms deadline"
    );
    ok(sb.reset());
    // A short sleep within the deadline still sleeps and returns.
    assert_eq!(ok(sleep.call((0,))), 0);
}

#[test]
fn open_descriptors_are_capped_per_sandbox() {
    let dir = std::env::temp_dir().join(format!("sandlink-open-many-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("f"), b"x").unwrap_or_else(|e| panic!("{e}"));
    let sb = hostile_with(&SandboxConfig::default().max_open_files(16).grant_dir(
        &dir,
        "/d",
        sandlink::DirAccess::ReadOnly,
    ));
    let open_many = ok(sb.function("h_open_many", &(string() >> int() >> returning(int()))));
    let last_errno = ok(sb.function("h_last_errno", &(void() >> returning(int()))));
    // Unbounded, a library would hold host descriptors until the host could
    // open nothing: here the 17th open fails in the library with EMFILE.
    assert_eq!(ok(open_many.call(("/d/f", 100_000))), 16);
    assert_eq!(ok(last_errno.call(())), 33, "WASI's EMFILE");
    // The host still opens files; a reset gives the library its budget back.
    assert!(std::fs::read(dir.join("f")).is_ok());
    ok(sb.reset());
    assert_eq!(ok(open_many.call(("/d/f", 8))), 8);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A module whose exported table holds exception references: `keep(n)`
/// throws `n` exceptions of 64 `i64`s each (about 0.5 KiB in the GC heap)
/// and keeps every one alive in the table; `grow(pages)` grows linear
/// memory.
fn exception_hoarder() -> String {
    let params = "i64 ".repeat(64);
    let zeros = "(i64.const 0) ".repeat(64);
    format!(
        r#"(module
        (memory (export "memory") 1)
        (table $kept (export "__indirect_function_table") 100000 exnref)
        (func (export "sandlink_malloc") (param i32 i32) (result i32) (i32.const 0))
        (func (export "sandlink_free") (param i32))
        (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))
        (tag $big (param {params}))
        (func (export "keep") (param $n i32) (result i32)
          (local $i i32)
          (local $e exnref)
          (block $done
            (loop $again
              (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
              (block $caught (result exnref)
                (try_table (catch_all_ref $caught) (throw $big {zeros}))
                unreachable)
              (local.set $e)
              (table.set $kept (local.get $i) (local.get $e))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $again)))
          (local.get $i)))"#
    )
}

#[test]
fn exception_objects_count_against_the_memory_limit() {
    // Exceptions live in a GC heap beside linear memory: the two share
    // `memory_limit`. With 12 MiB of a 16 MiB limit in linear memory,
    // 20,000 kept exceptions (about 10 MiB) do not fit: the throw fails (a
    // trap) rather than take the memory.
    let wat = exception_hoarder();
    let hoarder = |limit: u64| {
        let sb = ok(SandboxConfig::default()
            .memory_limit(limit)
            .open_bytes(wat.as_bytes(), "hoarder"));
        let grow = ok(sb.function("grow", &(int() >> returning(int()))));
        assert_eq!(ok(grow.call((191,))), 1, "linear memory did not grow");
        let keep = ok(sb.function("keep", &(int() >> returning(int()))));
        (sb, keep)
    };
    let (_sb, keep) = hoarder(16 << 20);
    // A few hundred fit.
    assert_eq!(ok(keep.call((200,))), 200);
    let e = err(keep.call((20_000,)));
    assert!(matches!(e, Error::Trap { .. }), "{e}");
    // With room for them, the same call succeeds: the limit is what stopped it.
    let (_roomy, keep) = hoarder(64 << 20);
    assert_eq!(ok(keep.call((20_000,))), 20_000);
}

#[test]
fn a_cache_entry_runs_only_for_the_module_it_was_compiled_from() {
    // Another module's compiled code, copied under this module's name, is
    // not taken for it: the entry's sum covers the module's digest.
    let dir = std::env::temp_dir().join(format!("sandlink-cache-swap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = SandboxConfig::default().cache_dir(Some(dir.clone()));
    let impostor = r#"(module
        (memory (export "memory") 1)
        (table (export "__indirect_function_table") 1 funcref)
        (func (export "sandlink_malloc") (param i32 i32) (result i32) (i32.const 0))
        (func (export "sandlink_free") (param i32))
        (func (export "tl_int_add") (param i32 i32) (result i32) (i32.const 1337)))"#;
    ok(config.compile(impostor.as_bytes(), "impostor"));
    let impostor_entry = cache_entries(&dir);
    assert_eq!(impostor_entry.len(), 1, "{impostor_entry:?}");
    let wasm = std::fs::read(sandlink_clibs::TESTLIB_WASM).expect("reading testlib.wasm");
    ok(config.compile(&wasm, "testlib"));
    let testlib_entry: Vec<_> = cache_entries(&dir)
        .into_iter()
        .filter(|p| *p != impostor_entry[0])
        .collect();
    assert_eq!(testlib_entry.len(), 1, "{testlib_entry:?}");
    std::fs::copy(&impostor_entry[0], &testlib_entry[0]).expect("copying the entry");
    let module = ok(config.compile(&wasm, "testlib"));
    assert!(!module.from_cache(), "another module's entry was taken");
    let lib = ok(config.instantiate(&module));
    let add = ok(lib.function("tl_int_add", &(int() >> int() >> returning(int()))));
    assert_eq!(ok(add.call((2, 3))), 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_grant_that_reaches_the_module_cache_is_refused() {
    let root = std::env::temp_dir().join(format!("sandlink-cache-grant-{}", std::process::id()));
    let cache = root.join("cache");
    std::fs::create_dir_all(&cache).expect("creating the cache directory");
    for (granted, access) in [
        (root.clone(), sandlink::DirAccess::ReadOnly),
        (root.clone(), sandlink::DirAccess::ReadWrite),
        (cache.clone(), sandlink::DirAccess::ReadOnly),
    ] {
        let e = err(SandboxConfig::default()
            .cache_dir(Some(cache.clone()))
            .grant_dir(&granted, "/d", access)
            .open(sandlink_clibs::HOSTILE_WASM));
        assert!(e.to_string().contains("module cache"), "{e}");
    }
    // A directory beside it is fine.
    let beside = root.join("data");
    std::fs::create_dir_all(&beside).expect("creating a directory");
    ok(SandboxConfig::default()
        .cache_dir(Some(cache.clone()))
        .grant_dir(&beside, "/d", sandlink::DirAccess::ReadWrite)
        .open(sandlink_clibs::HOSTILE_WASM));
    let _ = std::fs::remove_dir_all(&root);
}
