//! Memory isolation in the Sandbox, proven against `c-libs/hostile`: the
//! shared hostile suite (`sandlink_tests::hostile`, also run on Process),
//! then what only the Sandbox shows: which trap each failure is, wasm's
//! memory layout, host canaries around each call, captured output, and
//! random sequences of hostile calls.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use sandlink::types::*;
use sandlink::{Error, Foreign, Isolated, Sandbox, SandboxConfig, TrapKind};
use sandlink_tests::hostile::Limits;
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

type Hostile = sandlink_tests::hostile::Hostile<Sandbox>;

fn open(limits: Limits) -> Sandbox {
    // Batched callbacks recorded in the instance from the first call, so
    // the hostile suite's wild pointers meet the recorders.
    let mut config = SandboxConfig::default().record_batched_after(0);
    if let Some(d) = limits.deadline {
        config = config.deadline(d);
    }
    if let Some(m) = limits.memory {
        config = config.memory_limit(m);
    }
    ok(config.open(sandlink_clibs::HOSTILE_WASM))
}

fn hostile() -> Hostile {
    Hostile::new(open(Limits::default()))
}

// The shared hostile suite (tests/src/hostile.rs), then the Sandbox's own
// checks: which trap each failure is, wasm's memory layout, captured output.
sandlink_tests::hostile_tests!(open, 16 << 20);

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
fn deep_recursion_traps_on_the_stack_limit() {
    let h = hostile();
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
fn abort_exit_and_bogus_function_pointers() {
    let h = hostile();
    let abort = ok(h.lib.function("h_abort", &(void() >> returning(void()))));
    let e = guarded("abort", || err(abort.call(())));
    assert_eq!(trap(&e), &TrapKind::Unreachable);
    h.expect_poisoned_then_reset("abort");

    let exit = ok(h.lib.function("h_exit", &(int() >> returning(void()))));
    // WASI allows exit statuses below 126 (`Error::Exited`, in the shared
    // suite); others trap.
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
fn lying_function_pointers_are_refused_when_bound() {
    let sb = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
    // `tl_uintptr_id` returns its argument: described as returning a
    // function pointer, it returns any table index the host likes.
    let forge = ok(sb.function(
        "tl_uintptr_id",
        &(uintptr_t() >> returning(funptr(int() >> returning(int())))),
    ));
    for index in [1_000_000u64, 0xffff_ffff] {
        let code = ok(forge.call((index,)));
        let e = err(sb.function_at(&code));
        assert!(
            matches!(&e, Error::MissingSymbol { reason, .. } if reason.contains("no function at index")),
            "{index:#x}: {e}"
        );
    }
    // The doubler's slot, declared with another type.
    let get = ok(sb.function(
        "tl_get_doubler",
        &(void() >> returning(funptr(double() >> returning(double())))),
    ));
    let e = err(sb.function_at(&ok(get.call(()))));
    assert!(matches!(&e, Error::SignatureMismatch { .. }), "{e}");
    // NULL never becomes a pointer.
    let e = err(forge.call((0,)));
    assert!(matches!(&e, Error::NullPointer { .. }), "{e}");
    assert!(sb.poisoned().is_none());
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

// ---------------------------------------------------------------------------
// setjmp/longjmp: a longjmp that nothing in the call can catch.

#[test]
fn a_longjmp_across_a_host_callback_is_an_error_and_reset_recovers() {
    let sb = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    let seen: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let inner = seen.clone();
    let raise = t.sjlj_raise.clone();
    // The callback calls back into C, which longjmps to the setjmp of
    // `tl_sjlj_guarded`: across the host's frames, which it may not unwind.
    let cb = ok(sb.callback(&t.int_fn, move |(x,)| {
        let e = raise.call((x,)).expect_err("the longjmp cannot land");
        *inner.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:?} / {e}"));
        Err(e)
    }));
    let e = err(t.sjlj_guarded.call((&cb, 4)));
    let got = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    assert!(got.contains("UncaughtLongjmp"), "{got}");
    assert!(got.contains("tl_sjlj_raise"), "{got}");
    assert!(got.contains("never crosses host frames"), "{got}");
    assert!(sb.poisoned().is_some(), "{e}");
    ok(sb.reset());
    assert_eq!(ok(t.sjlj.call((4, 3))), 2003);
}

#[test]
fn a_longjmp_to_a_returned_setjmp_is_an_error_and_reset_recovers() {
    let sb = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    for _ in 0..2 {
        let e = err(t.sjlj_stale.call(()));
        assert!(
            matches!(
                &e,
                Error::Trap {
                    kind: TrapKind::UncaughtLongjmp,
                    ..
                }
            ),
            "{e}"
        );
        assert!(matches!(
            err(t.int_add.call((1, 2))),
            Error::Poisoned { .. }
        ));
        ok(sb.reset());
        assert_eq!(ok(t.sjlj.call((2, 8))), 2008);
    }
}

#[test]
fn many_longjmps_do_not_grow_the_sandbox() {
    // Each longjmp allocates an exception object in the store's GC heap;
    // they are collected, so memory stays flat.
    let sb = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    for i in 0..20_000 {
        assert_eq!(ok(t.sjlj.call((1, 5))), 2005, "call {i}");
    }
    let before = sandlink_tests::rss_bytes();
    for i in 0..200_000 {
        assert_eq!(ok(t.sjlj.call((1, 5))), 2005, "call {i}");
    }
    let grown = sandlink_tests::rss_bytes().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "RSS grew by {grown} bytes over 200,000 longjmps"
    );
}

/// `void (*)(void *, const char *)`, its string borrowed.
type StringFn = FunPtr<(Option<Ptr<()>>, StrRef), ()>;

/// A hostile sandbox with a batched string callback that logs each
/// delivery's (copy address, text), and `h_call_then_write`, which calls it
/// and then writes a word anywhere: for the tests that scribble over a
/// batch in the making.
struct Scribbler {
    h: Hostile,
    cb: sandlink::Callback<(Option<Ptr<()>>, StrRef), ()>,
    call_then_write: sandlink::Function<Sandbox, (StringFn, Option<Ptr<()>>, u64, i32), ()>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>>,
    /// An address the library owns and nothing reads.
    harmless: u64,
    _scratch: sandlink::Owned<Sandbox, i32>,
}

impl Scribbler {
    fn new() -> Scribbler {
        let h = hostile();
        let string_fn =
            funptr(ptr_opt(void()) >> str_ref(ptr(const_(char()))) >> returning(void()));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s2, lib) = (seen.clone(), h.lib.clone());
        let cb = ok(h
            .lib
            .callback_batched(&string_fn, move |(_, s): (_, StrRef)| {
                let text = lib.read_str(s)?;
                s2.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((s.addr(), text));
                Ok(())
            }));
        let call_then_write = ok(h.lib.function(
            "h_call_then_write",
            &(string_fn >> ptr_opt(void()) >> uintptr_t() >> int() >> returning(void())),
        ));
        let scratch = ok(h.lib.alloc(&int(), 1));
        let harmless = scratch.ptr().addr();
        Scribbler {
            h,
            cb,
            call_then_write,
            seen,
            harmless,
            _scratch: scratch,
        }
    }

    /// Records one call, then writes `value` at `addr`.
    fn call(&self, addr: u64, value: i32) -> sandlink::Result<()> {
        self.call_then_write.call((&self.cb, None, addr, value))
    }

    /// What the callback was delivered so far.
    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<(u64, String)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A batched callback's calls are recorded in the library's memory until
/// the host takes them. A library that overwrites a record, or the word
/// saying where they end, first (found from the address its copied string
/// had the last time) fails the call with an
/// error naming the records; no closure runs on the damaged batch, and the
/// sandbox keeps working.
#[test]
fn a_batch_record_the_library_overwrites_is_an_error_not_a_call() {
    let s = Scribbler::new();
    // Once with a write elsewhere: the call is delivered, its string from
    // the recorder's copy.
    ok(s.call(s.harmless, 7));
    let copy = {
        let seen = s.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, "recorded");
        seen[0].0
    };
    // The next record goes where that one went: its size field is 24 bytes
    // before its string's copy (two argument words and the head), and the
    // word saying where records end is 8 bytes before that.
    for (at, value) in [(24, -1), (24, 0), (24, 12), (32, 12345), (32, -8)] {
        let e = err(s.call(copy - at, value));
        assert_eq!(e.kind(), sandlink::ErrorKind::Library, "{e}");
        assert!(e.to_string().contains("wrote over them"), "{e}");
        assert_eq!(s.seen().len(), 1);
        assert!(s.h.lib.poisoned().is_none());
    }
    ok(s.call(s.harmless, 7));
    assert_eq!(s.seen().len(), 2);
}

proptest! {
    #![proptest_config(Config {
        cases: 48,
        rng_seed: RngSeed::Fixed(0x0ba7_c4ed),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Any word the library writes over a batch in the making (the
    /// end-of-records word, the record's head, its argument words, its
    /// string's copy, or past it) leaves the host sound: the call succeeds
    /// or fails with a `Library` error, nothing panics or poisons, and the
    /// next call is delivered intact.
    #[test]
    fn a_scribbled_batch_is_delivered_or_refused_never_trusted(
        offset in (0u64..16).prop_map(|w| w * 4),
        value in prop_oneof![any::<i32>(), 0..64i32, Just(-1), Just(0)],
    ) {
        let s = Scribbler::new();
        ok(s.call(s.harmless, 0));
        let copy = s.seen()[0].0;
        let r = guarded("scribble", || s.call(copy - 32 + offset, value));
        if let Err(e) = &r {
            // A closure that met the scribbled string fails the call too.
            let kind = match e {
                Error::Callback { source, .. } => source.kind(),
                e => e.kind(),
            };
            prop_assert_eq!(kind, sandlink::ErrorKind::Library, "{}", e);
        }
        prop_assert!(s.h.lib.poisoned().is_none());
        s.seen().clear();
        ok(s.call(s.harmless, 0));
        let seen = s.seen();
        prop_assert_eq!(seen.len(), 1);
        prop_assert_eq!(seen[0].1.as_str(), "recorded");
    }
}
