//! The hostile suite: every isolated strategy against `c-libs/hostile`,
//! through one generic code path over `L: Foreign + Isolated`. Whatever the
//! library does (exit, abort, an endless loop, a malloc bomb, wild writes,
//! bad values, a kept buffer, a dropped callback), the host gets a specific
//! error and is unharmed, the handle is poisoned where the library is at
//! fault, and `Isolated::reset` brings the same handle back.
//!
//! What differs between strategies (which trap, which signal, the
//! seccomp filter, the wasm memory size) stays in each strategy's own test
//! file; this is what they share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandlink::types::*;
use sandlink::{Callback, Error, ErrorKind, Foreign, Function, Isolated};

use crate::{err, ok};

/// A hostile library opened on one isolated strategy, with `h_add` bound
/// to check that it still works.
pub struct Hostile<L: Foreign + Isolated> {
    /// The library.
    pub lib: L,
    /// `int h_add(int, int)`.
    pub add: Function<L, (i32, i32), i32>,
}

/// The limits a check opens its library with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// A short execution deadline, for the checks that loop forever.
    pub deadline: Option<Duration>,
    /// A memory cap in bytes, for the malloc bomb.
    pub memory: Option<u64>,
}

impl<L: Foreign + Isolated> Hostile<L> {
    /// Binds `h_add` in `lib`.
    pub fn new(lib: L) -> Hostile<L> {
        let add = ok(lib.function("h_add", &(int() >> int() >> returning(int()))));
        Hostile { lib, add }
    }

    /// The library failed: poisoned, every call refused with
    /// `Error::Poisoned`, and after `reset` the same handle and its bound
    /// functions work again.
    pub fn expect_poisoned_then_reset(&self, what: &str) {
        assert!(self.lib.poisoned().is_some(), "{what}: not poisoned");
        let e = err(self.add.call((1, 2)));
        assert!(matches!(&e, Error::Poisoned { .. }), "{what}: {e}");
        assert_eq!(e.kind(), ErrorKind::Misuse, "{what}: {e}");
        ok(self.lib.reset());
        assert!(self.lib.poisoned().is_none(), "{what}: still poisoned");
        assert_eq!(ok(self.add.call((1, 2))), 3, "{what}: unusable after reset");
    }

    /// The library is not poisoned and answers.
    pub fn expect_healthy(&self, what: &str) {
        assert!(self.lib.poisoned().is_none(), "{what}: poisoned");
        assert_eq!(ok(self.add.call((40, 2))), 42, "{what}: unusable");
    }

    /// After a failure of the library's own making: the error says so
    /// (`ErrorKind::Library`, naming the function), and the handle is
    /// poisoned until reset.
    fn expect_library_failure(&self, e: &Error, function: &str, what: &str) {
        assert_eq!(e.kind(), ErrorKind::Library, "{what}: {e}");
        assert_eq!(e.function(), Some(function), "{what}: {e}");
        self.expect_poisoned_then_reset(what);
    }
}

/// `exit(code)` inside the library ends the call with `Error::Exited`
/// carrying the status, and poisons the handle.
pub fn exit_ends_the_call_with_its_status<L: Foreign + Isolated>(h: &Hostile<L>) {
    let exit = ok(h.lib.function("h_exit", &(int() >> returning(void()))));
    for code in [0, 1, 42] {
        let e = err(exit.call((code,)));
        assert!(
            matches!(&e, Error::Exited { function, code: c, .. } if *c == code && function == "h_exit"),
            "{e}"
        );
        h.expect_library_failure(&e, "h_exit", "exit");
    }
}

/// `abort()` is a library failure, not a host crash.
pub fn abort_is_a_library_failure<L: Foreign + Isolated>(h: &Hostile<L>) {
    let abort = ok(h.lib.function("h_abort", &(void() >> returning(void()))));
    let e = err(abort.call(()));
    h.expect_library_failure(&e, "h_abort", "abort");
}

/// An endless loop is stopped at the deadline (`limits.deadline`, short),
/// long before a test would notice a hang.
pub fn an_endless_loop_is_stopped_at_the_deadline<L: Foreign + Isolated>(h: &Hostile<L>) {
    let spin = ok(h.lib.function("h_spin", &(void() >> returning(void()))));
    let start = Instant::now();
    let e = err(spin.call(()));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert!(e.to_string().contains("deadline"), "{e}");
    h.expect_library_failure(&e, "h_spin", "spin");
}

/// A library that allocates until malloc fails stays under the cap
/// (`limits.memory`), and its failed malloc is its own: the handle still
/// works.
pub fn a_malloc_bomb_stays_under_the_cap<L: Foreign + Isolated>(h: &Hostile<L>, cap: u64) {
    let all = ok(h
        .lib
        .function("h_malloc_all", &(size_t() >> returning(size_t()))));
    for chunk in [1 << 20, 4096] {
        let got = ok(all.call((chunk,)));
        assert!(got > 0 && got <= cap, "{got} bytes under a {cap}-byte cap");
        ok(h.lib.reset());
    }
    h.expect_healthy("malloc bomb");
}

/// The library's writes to wild addresses, the host's own heap among
/// them, never reach host memory: either they land in the library's own
/// memory or the library fails (and is reset).
pub fn wild_writes_never_reach_the_host<L: Foreign + Isolated>(h: &Hostile<L>) {
    let write = ok(h
        .lib
        .function("h_write_wild", &(uintptr_t() >> int() >> returning(int()))));
    let host = Box::new(0x5eed_u64);
    let host_addr = &*host as *const u64 as u64;
    for addr in [host_addr, 0xffff_fff0, 0x7fff_0000, 0x10] {
        match write.call((addr, 7)) {
            // The library's own memory happened to be there.
            Ok(_) => {}
            // A 64-bit host address does not fit a wasm32 pointer: refused
            // before the call.
            Err(e) if e.kind() == ErrorKind::Misuse => {
                assert!(matches!(e, Error::OutOfRange { .. }), "{e}")
            }
            Err(e) => h.expect_library_failure(&e, "h_write_wild", "wild write"),
        }
        assert_eq!(*host, 0x5eed, "a wild write at {addr:#x} reached the host");
    }
    h.expect_healthy("wild writes");
}

/// Values from the library that do not hold up (a wild pointer, a string
/// with no NUL before unmapped memory, invalid UTF-8, absurd buffer
/// lengths given to a callback) are errors of the library's making; reads
/// into a reused buffer leave it as it was; the closure never sees them;
/// the library stays usable.
pub fn bad_values_from_the_library_are_rejected<L: Foreign + Isolated>(h: &Hostile<L>) {
    let wild = ok(h
        .lib
        .function("h_wild_pointer", &(void() >> returning(string()))));
    let e = err(wild.call(()));
    assert_eq!(e.kind(), ErrorKind::Library, "{e}");
    let wild_ptr = ok(h
        .lib
        .function("h_wild_pointer", &(void() >> returning(ptr(char())))));
    let p = ok(wild_ptr.call(()));
    let e = err(h.lib.read_bytes(p, 16));
    assert_eq!(e.kind(), ErrorKind::Library, "{e}");
    let e = err(h.lib.write_bytes(p, b"x"));
    assert_eq!(e.kind(), ErrorKind::Library, "{e}");

    let bad_utf8 = ok(h
        .lib
        .function("h_invalid_utf8", &(void() >> returning(string()))));
    let e = err(bad_utf8.call(()));
    assert!(matches!(&e, Error::InvalidUtf8 { .. }), "{e}");

    let unterminated = ok(h
        .lib
        .function("h_unterminated", &(void() >> returning(ptr(char())))));
    let bad_utf8_ptr = ok(h
        .lib
        .function("h_invalid_utf8", &(void() >> returning(ptr(char())))));
    let mut text = String::from("kept");
    let e = err(h.lib.read_string_into(ok(unterminated.call(())), &mut text));
    assert_eq!(e.kind(), ErrorKind::Library, "{e}");
    let e = err(h.lib.read_string_into(ok(bad_utf8_ptr.call(())), &mut text));
    assert!(matches!(&e, Error::InvalidUtf8 { .. }), "{e}");
    assert_eq!(text, "kept");
    let mut bytes = b"kept".to_vec();
    let e = err(h.lib.read_bytes_into(p, 1 << 20, &mut bytes));
    assert_eq!(e.kind(), ErrorKind::Library, "{e}");
    assert_eq!(bytes, b"kept");

    // Bad buffers and strings lent to a callback, batched or not: a
    // batched copy that does not fit or faults is delivered on its own, and
    // the host rejects it as for any callback.
    let text_fn = funptr(ptr_opt(void()) >> buffer_int() >> returning(void()));
    let string_fn = funptr(ptr_opt(void()) >> string() >> returning(void()));
    let seen = Arc::new(AtomicUsize::new(0));
    for batched in [false, true] {
        let s2 = seen.clone();
        let f = move |(_, bytes): (Option<Ptr<()>>, Vec<u8>)| {
            s2.fetch_add(bytes.len(), Ordering::Relaxed);
            Ok(())
        };
        let cb = ok(if batched {
            h.lib.callback_batched(&text_fn, f)
        } else {
            h.lib.callback(&text_fn, f)
        });
        let s2 = seen.clone();
        let g = move |(_, s): (Option<Ptr<()>>, String)| {
            s2.fetch_add(s.len() + 1, Ordering::Relaxed);
            Ok(())
        };
        let string_cb = ok(if batched {
            h.lib.callback_batched(&string_fn, g)
        } else {
            h.lib.callback(&string_fn, g)
        });
        for name in ["h_huge_buffer_callback", "h_negative_buffer_callback"] {
            let f = ok(h.lib.function(
                name,
                &(text_fn.clone() >> ptr_opt(void()) >> returning(void())),
            ));
            let e = err(f.call((&cb, None)));
            match &e {
                Error::Callback { source, .. } => {
                    assert_eq!(
                        source.kind(),
                        ErrorKind::Library,
                        "{name}, batched {batched}: {source}"
                    )
                }
                other => panic!("{name}, batched {batched}: {other}"),
            }
        }
        let wild = ok(h.lib.function(
            "h_wild_string_callback",
            &(string_fn.clone() >> ptr_opt(void()) >> returning(void())),
        ));
        match &err(wild.call((&string_cb, None))) {
            Error::Callback { source, .. } => assert_eq!(
                source.kind(),
                ErrorKind::Library,
                "wild string, batched {batched}: {source}"
            ),
            other => panic!("wild string, batched {batched}: {other}"),
        }
    }
    assert_eq!(
        seen.load(Ordering::Relaxed),
        0,
        "the closure saw a bad buffer or string"
    );
    h.expect_healthy("bad values");
}

/// A buffer the library keeps after the call (`h_keep_buffer`) was a
/// temporary copy in the library's memory: writing through it later
/// cannot reach the host's buffer.
pub fn a_kept_buffer_cannot_reach_the_host<L: Foreign + Isolated>(h: &Hostile<L>) {
    let keep = ok(h
        .lib
        .function("h_keep_buffer", &(buffer_mut() >> returning(void()))));
    let scribble = ok(h
        .lib
        .function("h_scribble_kept", &(int() >> returning(void()))));
    let mut host = *b"host data that must survive";
    let snapshot = host;
    ok(keep.call((&mut host[..],)));
    if let Err(e) = scribble.call((host.len() as i32,)) {
        h.expect_library_failure(&e, "h_scribble_kept", "scribble");
    }
    assert_eq!(host, snapshot);
    h.expect_healthy("kept buffer");
}

/// A callback keeps its address across a reset (the library's new state
/// needs it stored again), and one dropped while the library keeps it
/// fails the call that reaches it without poisoning anything.
pub fn callbacks_survive_a_reset_and_a_dropped_one_fails_the_call<L: Foreign + Isolated>(
    h: &Hostile<L>,
) {
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
    let addr = cb.addr();
    ok(h.lib.reset());
    assert_eq!(cb.addr(), addr);
    ok(store.call((&cb,)));
    assert_eq!(ok(call_stored.call((5,))), 50);
    drop(cb);
    let e = err(call_stored.call((6,)));
    assert!(
        matches!(&e, Error::CallbackDropped { address, .. } if *address == addr),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Misuse);
    h.expect_healthy("dropped callback");
}

/// Generates one `#[test]` per hostile check. `$open` is a closure from
/// [`Limits`] to an `L: Foreign + Isolated` with `c-libs/hostile` loaded
/// under them; `$cap` is the memory cap the malloc bomb runs under (the
/// strategy's unit: linear memory for a sandbox, address space for a
/// worker process).
#[macro_export]
macro_rules! hostile_tests {
    ($open:expr, $cap:expr) => {
        $crate::hostile_tests!(@each $open;
            exit_ends_the_call_with_its_status, abort_is_a_library_failure,
            wild_writes_never_reach_the_host, bad_values_from_the_library_are_rejected,
            a_kept_buffer_cannot_reach_the_host,
            callbacks_survive_a_reset_and_a_dropped_one_fails_the_call);

        #[test]
        fn an_endless_loop_is_stopped_at_the_deadline() {
            let limits = $crate::hostile::Limits {
                deadline: Some(std::time::Duration::from_millis(200)),
                ..Default::default()
            };
            let h = $crate::hostile::Hostile::new(($open)(limits));
            $crate::hostile::an_endless_loop_is_stopped_at_the_deadline(&h);
        }

        #[test]
        fn a_malloc_bomb_stays_under_the_cap() {
            let cap: u64 = $cap;
            let limits = $crate::hostile::Limits {
                memory: Some(cap),
                ..Default::default()
            };
            let h = $crate::hostile::Hostile::new(($open)(limits));
            $crate::hostile::a_malloc_bomb_stays_under_the_cap(&h, cap);
        }
    };
    (@each $open:expr; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let h = $crate::hostile::Hostile::new(($open)($crate::hostile::Limits::default()));
            $crate::hostile::$name(&h);
        }
    )*};
}
