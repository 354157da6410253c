//! Memory isolation, proven against `c-libs/hostile`: every misbehaviour gives
//! a specific error (never a panic or a crash), host memory around each call
//! is intact, the sandbox is poisoned where it must be, and `reset()` brings
//! the same handle back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use sandlink::types::*;
use sandlink::{Error, Foreign, Function, Sandbox, TrapKind};
use sandlink_tests::{err, ok};

/// Host memory the library must never reach: heap blocks with a known
/// pattern, allocated around each call and checked after it.
struct Canaries {
    blocks: Vec<Vec<u8>>,
}

impl Canaries {
    fn new(seed: u8) -> Canaries {
        let blocks = (0..16)
            .map(|i| {
                let len = 64 << (i % 8);
                (0..len)
                    .map(|k| seed ^ (k as u8).wrapping_mul(31) ^ i as u8)
                    .collect()
            })
            .collect();
        Canaries { blocks }
    }

    fn check(&self, seed: u8, what: &str) {
        for (i, b) in self.blocks.iter().enumerate() {
            for (k, byte) in b.iter().enumerate() {
                let want = seed ^ (k as u8).wrapping_mul(31) ^ i as u8;
                assert_eq!(*byte, want, "{what}: host canary {i} byte {k} changed");
            }
        }
    }
}

/// Runs `f` with canaries on the host heap before and after the marshalled
/// data, and checks them afterwards.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    // Both sets exist while `f` runs: the call's own allocations land
    // between and after them, and a write through either side shows.
    let before = Canaries::new(0xa5);
    let after = Canaries::new(0x5a);
    let r = f();
    before.check(0xa5, what);
    after.check(0x5a, what);
    r
}

fn trap(e: &Error) -> &TrapKind {
    match &e {
        Error::Trap { kind, .. } => kind,
        other => panic!("expected a trap, got: {other}"),
    }
}

struct Hostile {
    lib: Sandbox,
    add: Function<Sandbox, (i32, i32), i32>,
}

fn hostile() -> Hostile {
    let lib = ok(Sandbox::open(sandlink_clibs::HOSTILE_WASM));
    let add = ok(lib.function("h_add", &(int() >> int() >> returning(int()))));
    Hostile { lib, add }
}

impl Hostile {
    /// The sandbox is poisoned, and after reset the same handle works.
    fn expect_poisoned_then_reset(&self, what: &str) {
        assert!(self.lib.poisoned().is_some(), "{what}: not poisoned");
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

#[test]
fn memcpy_size_max_traps() {
    let h = hostile();
    let f = ok(h.lib.function(
        "h_memcpy_huge",
        &(ptr(char()) >> ptr(char()) >> returning(void())),
    ));
    let a_mem = ok(h.lib.alloc(&char(), 16));
    let a = a_mem.ptr();
    let b_mem = ok(h.lib.alloc(&char(), 16));
    let b = b_mem.ptr();
    let e = guarded("memcpy", || err(f.call((a, b))));
    assert_eq!(trap(&e), &TrapKind::MemoryOutOfBounds);
    h.expect_poisoned_then_reset("memcpy");
}

#[test]
fn wild_reads_and_writes_stay_inside_or_trap() {
    let h = hostile();
    let write = ok(h
        .lib
        .function("h_write_wild", &(uintptr_t() >> int() >> returning(int()))));
    let read = ok(h
        .lib
        .function("h_read_wild", &(uintptr_t() >> returning(int()))));
    let size = ok(h.lib.memory_size());
    // Inside linear memory: the library may scribble on its own memory.
    let inside = size - 64;
    guarded("wild write inside", || {
        assert_eq!(ok(write.call((inside, 0x1234_5678))), 0)
    });
    assert_eq!(ok(read.call((inside,))), 0x1234_5678);
    // Past the end, and at host-looking addresses: traps.
    for addr in [size, size + 4096, 0xffff_fff0, 0x7fff_0000] {
        let e = guarded("wild write", || err(write.call((addr, 1))));
        assert_eq!(trap(&e), &TrapKind::MemoryOutOfBounds, "write at {addr:#x}");
        h.expect_poisoned_then_reset("wild write");
        let e = guarded("wild read", || err(read.call((addr,))));
        assert_eq!(trap(&e), &TrapKind::MemoryOutOfBounds, "read at {addr:#x}");
        h.expect_poisoned_then_reset("wild read");
    }
    // A host pointer is just a number to the library: 64-bit addresses do not
    // even fit its pointers.
    let host = Box::new(0u64);
    let host_addr = &*host as *const u64 as u64;
    let e = err(write.call((host_addr, 7)));
    assert!(matches!(&e, Error::OutOfRange { .. }), "{e}");
    assert_eq!(*host, 0);
    h.expect_healthy("host address");
}

#[test]
fn null_and_far_writes() {
    let h = hostile();
    // Address 0 is the library's own memory in wasm: no trap, no host effect.
    let null = ok(h.lib.function("h_write_null", &(int() >> returning(int()))));
    assert_eq!(guarded("NULL write", || ok(null.call((99,)))), 99);
    h.expect_healthy("NULL write");
    let far = ok(h.lib.function("h_write_far", &(void() >> returning(int()))));
    let e = guarded("far write", || err(far.call(())));
    assert_eq!(trap(&e), &TrapKind::MemoryOutOfBounds);
    h.expect_poisoned_then_reset("far write");
}

#[test]
fn bad_values_from_the_library_are_rejected() {
    let h = hostile();
    let wild = ok(h
        .lib
        .function("h_wild_pointer", &(void() >> returning(string()))));
    let e = guarded("wild string", || err(wild.call(())));
    assert!(matches!(&e, Error::OutOfBounds { .. }), "{e}");
    let wild_ptr = ok(h
        .lib
        .function("h_wild_pointer", &(void() >> returning(ptr(int())))));
    let p = ok(wild_ptr.call(()));
    let e = err(h.lib.read(&int(), p));
    assert!(matches!(e, Error::OutOfBounds { .. }), "{e}");
    let e = err(h.lib.write(&int(), p, 5));
    assert!(matches!(e, Error::OutOfBounds { .. }), "{e}");

    let unterminated = ok(h
        .lib
        .function("h_unterminated", &(void() >> returning(string()))));
    let e = err(unterminated.call(()));
    assert!(matches!(&e, Error::Unterminated { .. }), "{e}");

    let bad_utf8 = ok(h
        .lib
        .function("h_invalid_utf8", &(void() >> returning(string()))));
    let e = err(bad_utf8.call(()));
    assert!(matches!(&e, Error::InvalidUtf8 { .. }), "{e}");

    // SIZE_MAX as size_t is representable; reading that many bytes is not.
    let huge = ok(h
        .lib
        .function("h_huge_length", &(void() >> returning(size_t()))));
    let n = ok(huge.call(()));
    assert_eq!(n, u32::MAX as u64);
    let e = err(h.lib.read_bytes(p, n));
    assert!(
        matches!(e, Error::InvalidValue { .. } | Error::OutOfBounds { .. }),
        "{e}"
    );

    // Reads into a reused buffer fail the same ways and leave it as it was.
    let unterminated_ptr = ok(h
        .lib
        .function("h_unterminated", &(void() >> returning(ptr(char())))));
    let mut text = String::from("kept");
    let e = err(h
        .lib
        .read_string_into(ok(unterminated_ptr.call(())), &mut text));
    assert!(matches!(&e, Error::Unterminated { .. }), "{e}");
    let bad_utf8_ptr = ok(h
        .lib
        .function("h_invalid_utf8", &(void() >> returning(ptr(char())))));
    let e = err(h.lib.read_string_into(ok(bad_utf8_ptr.call(())), &mut text));
    assert!(matches!(&e, Error::InvalidUtf8 { .. }), "{e}");
    assert_eq!(text, "kept");
    let mut bytes = b"kept".to_vec();
    let e = err(h.lib.read_bytes_into(p, n, &mut bytes));
    assert!(
        matches!(e, Error::InvalidValue { .. } | Error::OutOfBounds { .. }),
        "{e}"
    );
    assert_eq!(bytes, b"kept");

    // Callbacks given absurd buffer lengths fail the call with a clear error.
    let text_fn = funptr(ptr_opt(void()) >> buffer_int() >> returning(void()));
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let cb = ok(h.lib.callback(&text_fn, move |(_, bytes)| {
        s2.fetch_add(bytes.len(), Ordering::Relaxed);
        Ok(())
    }));
    for (name, want_oob) in [
        ("h_huge_buffer_callback", true),
        ("h_negative_buffer_callback", false),
    ] {
        let f = ok(h.lib.function(
            name,
            &(text_fn.clone() >> ptr_opt(void()) >> returning(void())),
        ));
        let e = guarded(name, || err(f.call((&cb, None))));
        match &e {
            Error::Callback { source, .. } => {
                let inner = source.as_ref();
                if want_oob {
                    // Refused before any host allocation, by the transfer
                    // limit or the bounds check, whichever comes first.
                    assert!(
                        matches!(
                            inner,
                            Error::OutOfBounds { .. } | Error::InvalidValue { .. }
                        ),
                        "{name}: {inner}"
                    );
                } else {
                    assert!(
                        matches!(inner, Error::InvalidValue { .. }),
                        "{name}: {inner}"
                    );
                }
            }
            other => panic!("{name}: {other}"),
        }
    }
    assert_eq!(
        seen.load(Ordering::Relaxed),
        0,
        "the closure never saw the bad buffers"
    );
    h.expect_healthy("bad values");
}

#[test]
fn endless_loops_and_recursion_are_stopped() {
    let config = sandlink::SandboxConfig::default().deadline(std::time::Duration::from_millis(100));
    let lib = ok(config.open(sandlink_clibs::HOSTILE_WASM));
    let h = Hostile {
        add: ok(lib.function("h_add", &(int() >> int() >> returning(int())))),
        lib,
    };
    let spin = ok(h.lib.function("h_spin", &(void() >> returning(void()))));
    let e = guarded("spin", || err(spin.call(())));
    assert_eq!(trap(&e), &TrapKind::Deadline);
    h.expect_poisoned_then_reset("spin");
    let recurse = ok(h.lib.function("h_recurse", &(int() >> returning(int()))));
    let e = guarded("recursion", || err(recurse.call((0,))));
    assert!(
        matches!(
            trap(&e),
            TrapKind::StackOverflow | TrapKind::MemoryOutOfBounds
        ),
        "{e}"
    );
    h.expect_poisoned_then_reset("recursion");
}

#[test]
fn malloc_until_exhaustion_stays_under_the_cap() {
    let cap = 8 << 20;
    let lib = ok(sandlink::SandboxConfig::default()
        .memory_limit(cap)
        .open(sandlink_clibs::HOSTILE_WASM));
    let h = Hostile {
        add: ok(lib.function("h_add", &(int() >> int() >> returning(int())))),
        lib,
    };
    let all = ok(h
        .lib
        .function("h_malloc_all", &(size_t() >> returning(size_t()))));
    for chunk in [1 << 20, 4096, 16] {
        let got = guarded("malloc", || ok(all.call((chunk,))));
        assert!(got <= cap, "{got} bytes under an {cap}-byte cap");
        assert!(ok(h.lib.memory_size()) <= cap);
        ok(h.lib.reset());
    }
    h.expect_healthy("malloc");
}

#[test]
fn abort_exit_and_bogus_function_pointers() {
    let h = hostile();
    let abort = ok(h.lib.function("h_abort", &(void() >> returning(void()))));
    let e = guarded("abort", || err(abort.call(())));
    assert_eq!(trap(&e), &TrapKind::Unreachable);
    h.expect_poisoned_then_reset("abort");

    let exit = ok(h.lib.function("h_exit", &(int() >> returning(void()))));
    for code in [0, 1, 125] {
        let e = guarded("exit", || err(exit.call((code,))));
        assert!(
            matches!(&e, Error::Exited { code: c, .. } if *c == code),
            "{e}"
        );
        h.expect_poisoned_then_reset("exit");
    }
    // WASI allows exit statuses below 126; others trap.
    let e = guarded("exit 255", || err(exit.call((255,))));
    assert!(
        matches!(trap(&e), TrapKind::Other(m) if m.contains("exit status")),
        "{e}"
    );
    h.expect_poisoned_then_reset("exit 255");

    let bogus = ok(h
        .lib
        .function("h_call_bogus", &(uintptr_t() >> returning(int()))));
    for fnptr in [0u64, 1, 2, 1000, 0xffff_ffff] {
        let e = guarded("bogus call", || err(bogus.call((fnptr,))));
        assert!(
            matches!(
                trap(&e),
                TrapKind::IndirectCallToNull | TrapKind::BadSignature | TrapKind::TableOutOfBounds
            ),
            "{fnptr:#x}: {e}"
        );
        h.expect_poisoned_then_reset("bogus call");
    }
}

#[test]
fn callback_called_after_drop_is_an_error_not_a_trap() {
    let h = hostile();
    let int_fn = funptr(int() >> returning(int()));
    let store = ok(h
        .lib
        .function("h_store_callback", &(int_fn.clone() >> returning(void()))));
    let call = ok(h
        .lib
        .function("h_call_stored", &(int() >> returning(int()))));
    let cb = ok(h.lib.callback(&int_fn, |(x,)| Ok(x + 1)));
    let addr = cb.addr();
    ok(store.call((&cb,)));
    assert_eq!(ok(call.call((1,))), 2);
    drop(cb);
    // The slot keeps a host function that finds no callback: the call
    // fails, and the sandbox is not poisoned (the host's mistake, not the
    // library's).
    let e = guarded("stale callback", || err(call.call((1,))));
    assert!(
        matches!(e, Error::CallbackDropped { address, .. } if address == addr),
        "{e}"
    );
    assert!(
        h.lib.poisoned().is_none(),
        "a dropped callback poisoned the sandbox"
    );
    assert_eq!(ok(h.add.call((1, 2))), 3);
    // The slot serves the next callback of the type.
    let next = ok(h.lib.callback(&int_fn, |(x,)| Ok(x * 3)));
    assert_eq!(next.addr(), addr, "the slot was not reused");
    assert_eq!(ok(call.call((2,))), 6);
}

#[test]
fn buffers_kept_by_the_library_cannot_reach_the_host() {
    let h = hostile();
    let keep = ok(h
        .lib
        .function("h_keep_buffer", &(buffer_mut() >> returning(void()))));
    let scribble = ok(h
        .lib
        .function("h_scribble_kept", &(int() >> returning(void()))));
    let mut host = *b"host data that must survive";
    let snapshot = host;
    ok(keep.call((&mut host[..],)));
    // The call returned: the library's pointer is to a freed temporary in its
    // own memory. Writing through it later touches only that memory.
    guarded("scribble", || ok(scribble.call((host.len() as i32,))));
    assert_eq!(host, snapshot);
    h.expect_healthy("kept buffer");
}

// ---------------------------------------------------------------------------
// Random sequences of hostile and normal calls.

#[derive(Debug, Clone)]
enum Op {
    Add(i32, i32),
    WriteWild(u32, i32),
    ReadWild(u32),
    Puts(String),
    Malloc(u32),
    Spin,
    Abort,
    Exit(u8),
    CallBogus(u32),
    StrLen(Vec<u8>),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<i32>(), any::<i32>()).prop_map(|(a, b)| Op::Add(a, b)),
        2 => (any::<u32>(), any::<i32>()).prop_map(|(a, v)| Op::WriteWild(a, v)),
        2 => any::<u32>().prop_map(Op::ReadWild),
        2 => "[ -~]{0,40}".prop_map(Op::Puts),
        1 => (1u32..(1 << 22)).prop_map(Op::Malloc),
        1 => Just(Op::Spin),
        1 => Just(Op::Abort),
        1 => any::<u8>().prop_map(Op::Exit),
        1 => any::<u32>().prop_map(Op::CallBogus),
        2 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::StrLen),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    #![proptest_config(Config {
        cases: 24,
        rng_seed: RngSeed::Fixed(0x0b5e_55ed),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn random_hostile_sequences_never_harm_the_host(ops in prop::collection::vec(op(), 1..24)) {
        let lib = ok(sandlink::SandboxConfig::default().deadline(std::time::Duration::from_millis(50)).memory_limit(16 << 20).open(sandlink_clibs::HOSTILE_WASM));
        let add = ok(lib.function("h_add", &(int() >> int() >> returning(int()))));
        let write = ok(lib.function("h_write_wild", &(uintptr_t() >> int() >> returning(int()))));
        let read = ok(lib.function("h_read_wild", &(uintptr_t() >> returning(int()))));
        let puts = ok(lib.function("h_puts", &(string() >> returning(int()))));
        let malloc_all = ok(lib.function("h_malloc_all", &(size_t() >> returning(size_t()))));
        let spin = ok(lib.function("h_spin", &(void() >> returning(void()))));
        let abort = ok(lib.function("h_abort", &(void() >> returning(void()))));
        let exit = ok(lib.function("h_exit", &(int() >> returning(void()))));
        let bogus = ok(lib.function("h_call_bogus", &(uintptr_t() >> returning(int()))));
        let strlen = ok(lib.function("h_strlen", &(string() >> returning(size_t()))));
        let mut printed = Vec::new();
        for op in ops {
            let poisoned = lib.poisoned().is_some();
            let r: sandlink::Result<()> = guarded("random op", || match &op {
                Op::Add(a, b) => add.call((*a, *b)).map(|v| assert_eq!(v, a.wrapping_add(*b))),
                Op::WriteWild(a, v) => write.call((u64::from(*a), *v)).map(drop),
                Op::ReadWild(a) => read.call((u64::from(*a),)).map(drop),
                Op::Puts(s) => puts.call((s,)).map(|_| {
                    printed.extend_from_slice(s.as_bytes());
                    printed.push(b'\n');
                }),
                Op::Malloc(n) => malloc_all.call((u64::from(*n),)).map(|got| assert!(got <= 16 << 20)),
                Op::Spin => spin.call(()),
                Op::Abort => abort.call(()),
                Op::Exit(c) => exit.call((i32::from(*c),)),
                Op::CallBogus(f) => bogus.call((u64::from(*f),)).map(drop),
                Op::StrLen(bytes) => {
                    let s = String::from_utf8_lossy(bytes).into_owned();
                    strlen.call((&s,)).map(|n| assert_eq!(n, s.len() as u64))
                }
                Op::Reset => {
                    printed.clear();
                    lib.reset()
                }
            });
            match r {
                Ok(()) => prop_assert!(
                    !poisoned || matches!(op, Op::Reset),
                    "{op:?} succeeded on a poisoned sandbox"
                ),
                Err(e) => {
                    let root = &e;
                    // Every failure is one of the specific, expected kinds.
                    let expected = matches!(
                        root,
                        Error::Trap { .. } | Error::Exited { .. } | Error::Poisoned { .. } | Error::InteriorNul { .. }
                    );
                    prop_assert!(expected, "{op:?}: unexpected error {e}");
                    if poisoned {
                        // Arguments are checked before the poisoning is.
                        prop_assert!(
                            matches!(root, Error::Poisoned { .. } | Error::InteriorNul { .. }),
                            "{op:?}: {e}"
                        );
                    }
                }
            }
            if lib.poisoned().is_none() {
                // Captured output is exactly what was printed, in order.
                prop_assert_eq!(lib.stdout(), printed.clone());
            }
        }
        ok(lib.reset());
        prop_assert_eq!(ok(add.call((2, 2))), 4);
    }
}
