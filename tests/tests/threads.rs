//! Threads: a `Sandbox` (and a `Dynamic`, a `Process`, a `Stubs`) is `Send`, not `Sync`. Handles,
//! bound functions, callbacks and parsers move to worker threads; clones
//! used from two threads at once are serialised, never raced.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use sandlink::types::*;
use sandlink::{Callback, Dynamic, Foreign, Function, Isolated, Owned, Process, Sandbox, Stubs};
use sandlink_expat::{Events, Expat, Parser};
use sandlink_tests::ok;
use sandlink_tests::xml::{self, Chunking, Recorder};

/// Checked when this file compiles: the types that must be `Send` are. (Not
/// `Sync`: `host/src/lib.rs` has the `compile_fail` doctests that show it.)
const _: () = {
    const fn send<T: Send>() {}
    send::<Sandbox>();
    send::<Dynamic>();
    send::<Process>();
    send::<Function<Process, (i32, i32), i32>>();
    send::<Parser<Process, Recorder>>();
    send::<Function<Sandbox, (i32, i32), i32>>();
    send::<Function<Dynamic, (i32, i32), i32>>();
    send::<Callback<(i32,), i32>>();
    send::<Owned<Sandbox, i32>>();
    send::<Expat<Sandbox>>();
    send::<Parser<Sandbox, Recorder>>();
    send::<Parser<Dynamic, Recorder>>();
    send::<Stubs>();
    send::<Function<Stubs, (i32, i32), i32>>();
    send::<Parser<Stubs, Recorder>>();
};

#[test]
fn a_sandbox_and_its_bindings_move_to_another_thread() {
    let sb = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
    let add = ok(sb.function("tl_int_add", &(int() >> int() >> returning(int()))));
    let apply = ok(sb.function(
        "tl_apply",
        &(funptr(int() >> returning(int())) >> int() >> returning(int())),
    ));
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let twice = ok(
        sb.callback(&funptr(int() >> returning(int())), move |(x,)| {
            seen.fetch_add(1, Ordering::Relaxed);
            Ok(x * 2)
        }),
    );
    let got = thread::spawn(move || {
        // Everything was made on the main thread and is used here only.
        let sum = ok(add.call((40, 2)));
        let applied = ok(apply.call((&twice, 20)));
        (sum, applied, sb.poisoned())
    })
    .join()
    .unwrap_or_else(|_| panic!("the worker thread panicked"));
    // tl_apply(f, x) = f(x) + 1
    assert_eq!(got, (42, 41, None));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn two_sandboxes_parse_on_two_threads_as_one_does() {
    let doc = xml::large_document(2_000);
    let parse = |doc: Vec<u8>| {
        thread::spawn(move || {
            let sb = ok(Sandbox::open(sandlink_clibs::EXPAT_WASM));
            let expat = ok(Expat::bind(&sb));
            xml::run(
                &expat,
                &doc,
                &Chunking::Reader(4096),
                Events::ALL,
                &xml::options(false),
            )
        })
    };
    let (a, b) = (parse(doc.clone()), parse(doc.clone()));
    let a = a.join().unwrap_or_else(|_| panic!("thread a panicked"));
    let b = b.join().unwrap_or_else(|_| panic!("thread b panicked"));
    let sb = ok(Sandbox::open(sandlink_clibs::EXPAT_WASM));
    let alone = xml::run(
        &ok(Expat::bind(&sb)),
        &doc,
        &Chunking::Reader(4096),
        Events::ALL,
        &xml::options(false),
    );
    assert!(alone.events.len() > 4_000, "{} events", alone.events.len());
    assert_eq!(a, alone);
    assert_eq!(b, alone);
}

#[test]
fn clones_on_two_threads_are_serialised() {
    clones_serialised(ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM)), 2_000);
}

#[test]
fn process_clones_on_two_threads_are_serialised() {
    // One worker, two threads: requests and replies must never interleave.
    clones_serialised(ok(Process::open(sandlink_clibs::TESTLIB_SO)), 500);
}

fn clones_serialised<L: Foreign>(sb: L, n: i32) {
    // Two threads drive one instance through their own clones, each
    // allocating, writing, reading and calling. Every operation must succeed
    // and see its own values: unserialised, they would meet in the store
    // ("already in use") or interleave inside one call.
    let n_ops = n;
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let sb = sb.clone();
            thread::spawn(move || {
                let add = ok(sb.function("tl_int_add", &(int() >> int() >> returning(int()))));
                let cell = ok(sb.alloc(&int(), 1));
                for i in 0..n_ops {
                    let v = t * 1_000_000 + i;
                    ok(sb.write(&int(), cell.ptr(), v));
                    assert_eq!(ok(sb.read(&int(), cell.ptr())), v);
                    assert_eq!(ok(add.call((v, 1))), v + 1);
                }
                ok(cell.free());
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap_or_else(|_| panic!("a worker panicked"));
    }
}

#[test]
fn stubs_clones_on_two_threads_are_serialised() {
    // SAFETY: testlib is our own library; its stubs were checked against testlib.h.
    let lib = ok(unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) });
    clones_serialised(lib, 2_000);
}

#[test]
fn stubs_a_callback_running_on_one_thread_holds_off_calls_from_another() {
    // SAFETY: as above.
    let lib = ok(unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) });
    callback_holds_off(lib);
}

#[test]
fn a_callback_running_on_one_thread_holds_off_calls_from_another() {
    callback_holds_off(ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM)));
}

#[test]
fn process_a_callback_running_on_one_thread_holds_off_calls_from_another() {
    callback_holds_off(ok(Process::open(sandlink_clibs::TESTLIB_SO)));
}

fn callback_holds_off<L: Foreign>(sb: L) {
    // While a callback runs (inside a guest call on thread A), a call from
    // thread B through a clone waits for the outer call to finish rather
    // than entering the instance mid-call.
    let apply = ok(sb.function(
        "tl_apply",
        &(funptr(int() >> returning(int())) >> int() >> returning(int())),
    ));
    let other = sb.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let done = Arc::new(AtomicU64::new(0));
    let done2 = done.clone();
    let slow = ok(
        sb.callback(&funptr(int() >> returning(int())), move |(x,)| {
            let _ = tx.send(());
            thread::sleep(std::time::Duration::from_millis(100));
            done2.store(1, Ordering::SeqCst);
            Ok(x)
        }),
    );
    let b = thread::spawn(move || {
        let _ = rx.recv();
        let add = ok(other.function("tl_int_add", &(int() >> int() >> returning(int()))));
        // Runs only after thread A's call returned.
        let r = ok(add.call((1, 2)));
        (r, done.load(Ordering::SeqCst))
    });
    assert_eq!(ok(apply.call((&slow, 5))), 6);
    let (r, finished_first) = b.join().unwrap_or_else(|_| panic!("thread b panicked"));
    assert_eq!(r, 3);
    assert_eq!(finished_first, 1, "B's call ran inside A's call");
}

/// Dropping a callback's handle on one thread while C, in a call on another
/// thread, is running that callback waits for the call to end: the state
/// the running callback uses is never released under it.
fn dropping_a_callback_waits_for_the_call_running_it<L: Foreign>(lib: L) {
    use std::sync::atomic::AtomicBool;
    let t = ok(sandlink_testlib::Testlib::bind(&lib));
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (s2, f2) = (started.clone(), finished.clone());
    let cb = ok(lib.callback(&t.int_fn, move |(x,)| {
        s2.store(true, Ordering::SeqCst);
        thread::sleep(std::time::Duration::from_millis(200));
        f2.store(true, Ordering::SeqCst);
        Ok(x * 2)
    }));
    ok(t.store_int_fn.call((&cb,)));
    let call_stored = t.call_stored.clone();
    // tl_call_stored(x) = f(x) + 1, with f the stored callback.
    let caller = thread::spawn(move || ok(call_stored.call((20,))));
    while !started.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    drop(cb);
    assert!(
        finished.load(Ordering::SeqCst),
        "the handle was released while C was running the callback"
    );
    let got = caller
        .join()
        .unwrap_or_else(|_| panic!("the calling thread panicked"));
    assert_eq!(got, 41);
}

#[test]
fn dynamic_dropping_a_callback_waits_for_the_call_running_it() {
    // SAFETY: testlib is our own library.
    let lib = ok(unsafe { Dynamic::open(sandlink_clibs::TESTLIB_SO) });
    dropping_a_callback_waits_for_the_call_running_it(lib);
}

#[test]
fn stubs_dropping_a_callback_waits_for_the_call_running_it() {
    // SAFETY: testlib is our own library; its stubs were checked against testlib.h.
    let lib = ok(unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) });
    dropping_a_callback_waits_for_the_call_running_it(lib);
}

#[test]
fn sandbox_dropping_a_callback_waits_for_the_call_running_it() {
    dropping_a_callback_waits_for_the_call_running_it(ok(Sandbox::open(
        sandlink_clibs::TESTLIB_WASM,
    )));
}

#[test]
fn process_dropping_a_callback_waits_for_the_call_running_it() {
    dropping_a_callback_waits_for_the_call_running_it(ok(Process::open(
        sandlink_clibs::TESTLIB_SO,
    )));
}
