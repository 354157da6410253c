//! Many sandboxes in one process: a thousand alive at once under the default
//! configuration, ten thousand open/call/drop cycles (and trap/reset cycles)
//! with resident memory and file descriptors measured, and a full pool
//! reported as the limit it is (a too small memory cap: `sandbox_limits.rs`).
//!
//! The tests share one process, so they run one at a time (`SERIAL`): the
//! memory and descriptor counts must see only their own test's work.

use std::sync::Mutex;

use sandlink::types::*;
use sandlink::{Error, Foreign, Isolated, Sandbox, SandboxConfig};
use sandlink_tests::{err, ok, rss_bytes};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Open file descriptors of this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

#[test]
fn a_thousand_live_sandboxes_under_the_default_config() {
    let _s = serial();
    let config = SandboxConfig::default();
    assert!(config.max_instances >= 1000, "the documented default");
    let mut live = Vec::with_capacity(1000);
    for i in 0..1000 {
        let lib = ok(config.open(sandlink_clibs::EXPAT_WASM));
        live.push(lib);
        if i % 250 == 0 {
            // Each one is a working expat, not only a slot.
            let version =
                ok(live[i].function("XML_ExpatVersion", &(void() >> returning(string()))));
            assert_eq!(ok(version.call(())), "expat_2.5.0");
        }
    }
    let counters: Vec<_> = live
        .iter()
        .map(|lib| ok(lib.function("XML_ExpatVersion", &(void() >> returning(string())))))
        .collect();
    assert_eq!(ok(counters[999].call(())), "expat_2.5.0");
}

#[test]
fn a_full_pool_names_the_limit_and_its_setting() {
    let _s = serial();
    let config = SandboxConfig::default().max_instances(3);
    let live: Vec<Sandbox> = (0..3)
        .map(|_| ok(config.open(sandlink_clibs::TESTLIB_WASM)))
        .collect();
    let e = err(config.open(sandlink_clibs::TESTLIB_WASM));
    match &e {
        Error::LimitReached { setting, limit, .. } => {
            assert_eq!(*setting, "SandboxConfig::max_instances");
            assert!(limit.contains('3'), "{e}");
        }
        other => panic!("expected LimitReached, got: {other}"),
    }
    assert!(!e.to_string().contains("memory limit too small"), "{e}");
    // A slot comes back when a sandbox goes.
    drop(live);
    ok(config.open(sandlink_clibs::TESTLIB_WASM));
}

/// Runs `cycles` rounds of `round` after a warm-up, and checks that neither
/// resident memory nor descriptors grew past the stated bound.
fn no_growth(what: &str, cycles: u32, mut round: impl FnMut(u32)) {
    // Warm-up: pools, caches and allocator arenas reach their steady size.
    for i in 0..1000 {
        round(i);
    }
    let (rss0, fds0) = (rss_bytes(), fds());
    for i in 0..cycles {
        round(i);
    }
    let (rss1, fds1) = (rss_bytes(), fds());
    // The bound: 8 MiB over 10,000 cycles, under 1 KiB a cycle; a leak of one
    // instance's memory or one host function per cycle is far above it.
    let bound = 8 << 20;
    assert!(
        rss1 <= rss0 + bound,
        "{what}: resident memory grew from {rss0} to {rss1} bytes over {cycles} cycles"
    );
    assert_eq!(
        fds1, fds0,
        "{what}: open descriptors changed over {cycles} cycles"
    );
}

#[test]
fn ten_thousand_open_call_drop_cycles_do_not_grow() {
    let _s = serial();
    no_growth("open/call/drop", 10_000, |i| {
        let lib = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
        let add = ok(lib.function("tl_int_add", &(int() >> int() >> returning(int()))));
        let n = i as i32;
        assert_eq!(ok(add.call((n, 1))), n + 1);
        let step = funptr(int() >> int() >> returning(int()));
        let cb = ok(lib.callback(&step, |(a, x)| Ok(a + x)));
        drop(cb);
    });
}

#[test]
fn ten_thousand_trap_and_reset_cycles_do_not_grow() {
    let _s = serial();
    let lib = ok(Sandbox::open(sandlink_clibs::HOSTILE_WASM));
    let trap = ok(lib.function("h_abort", &(void() >> returning(void()))));
    no_growth("trap/reset", 10_000, |_| {
        assert!(trap.call(()).is_err());
        assert!(lib.poisoned().is_some());
        ok(lib.reset());
    });
}

#[test]
fn a_repeated_open_sees_a_changed_file() {
    let _s = serial();
    let dir = std::env::temp_dir().join(format!("sandlink-reopen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("lib.wasm");
    let copy = |from: &str| {
        std::fs::copy(from, &path).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    };
    let add = || int() >> int() >> returning(int());
    copy(sandlink_clibs::TESTLIB_WASM);
    for _ in 0..3 {
        let lib = ok(Sandbox::open(&path));
        assert_eq!(ok(ok(lib.function("tl_int_add", &add())).call((2, 3))), 5);
    }
    // Rewritten in place: the cached module must not be used.
    copy(sandlink_clibs::HOSTILE_WASM);
    let lib = ok(Sandbox::open(&path));
    assert!(matches!(
        lib.function("tl_int_add", &add()),
        Err(Error::MissingSymbol { .. })
    ));
    assert_eq!(ok(ok(lib.function("h_add", &add())).call((2, 3))), 5);
    let _ = std::fs::remove_dir_all(&dir);
}
