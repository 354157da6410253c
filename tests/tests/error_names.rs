//! Every error that comes from a strategy says which one, first: a load
//! that fails, a missing symbol, an exit and the poisoning it leaves, on
//! each strategy that can have them. A message that said "sandbox" for a
//! worker process would fail here.

use sandlink::types::*;
use sandlink::{Dynamic, Error, Foreign, Process, Sandbox, StrategyKind, Stubs};
use sandlink_tests::{err, ok};

fn named(e: &Error, kind: StrategyKind) {
    assert_eq!(e.strategy(), Some(kind), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{kind}: ")),
        "the message does not start with {kind}: {text}"
    );
}

#[test]
fn load_failures_name_their_strategy() {
    // SAFETY: the path does not exist, so nothing is loaded.
    named(
        &err(unsafe { Dynamic::open("/nonexistent/libnothing.so") }),
        StrategyKind::Dynamic,
    );
    named(
        &err(Sandbox::open("/nonexistent/nothing.wasm")),
        StrategyKind::Sandbox,
    );
    named(
        &err(Process::open("/nonexistent/libnothing.so")),
        StrategyKind::Process,
    );
}

#[test]
fn missing_symbols_name_their_strategy() {
    let ty = void() >> returning(int());
    // SAFETY: testlib is our own library; its stubs were checked against
    // testlib.h.
    let dynamic = ok(unsafe { Dynamic::open(sandlink_clibs::TESTLIB_SO) });
    named(
        &err(dynamic.function("no_such_fn", &ty)),
        StrategyKind::Dynamic,
    );
    // SAFETY: as above.
    let stubs = ok(unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) });
    named(&err(stubs.function("no_such_fn", &ty)), StrategyKind::Stubs);
    let sandbox = ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM));
    named(
        &err(sandbox.function("no_such_fn", &ty)),
        StrategyKind::Sandbox,
    );
    let process = ok(Process::open(sandlink_clibs::TESTLIB_SO));
    named(
        &err(process.function("no_such_fn", &ty)),
        StrategyKind::Process,
    );
}

/// `exit(3)` in the library, then a call on the poisoned handle; returns
/// the poisoning error.
fn exit_then_call<L: Foreign>(lib: &L, kind: StrategyKind) -> Error {
    let exit = ok(lib.function("h_exit", &(int() >> returning(void()))));
    let add = ok(lib.function("h_add", &(int() >> int() >> returning(int()))));
    let e = err(exit.call((3,)));
    assert!(matches!(&e, Error::Exited { code: 3, .. }), "{e}");
    named(&e, kind);
    let e = err(add.call((1, 2)));
    assert!(matches!(&e, Error::Poisoned { .. }), "{e}");
    named(&e, kind);
    e
}

#[test]
fn exits_and_poisoning_name_their_strategy() {
    exit_then_call(
        &ok(Sandbox::open(sandlink_clibs::HOSTILE_WASM)),
        StrategyKind::Sandbox,
    );
    let poisoned = exit_then_call(
        &ok(Process::open(sandlink_clibs::HOSTILE_SO)),
        StrategyKind::Process,
    );
    assert!(
        !poisoned.to_string().to_lowercase().contains("sandbox"),
        "a worker process is not a sandbox: {poisoned}"
    );
}

#[test]
fn a_crashed_worker_names_the_process_strategy() {
    let process = ok(Process::open(sandlink_clibs::HOSTILE_SO));
    let write = ok(process.function("h_write_wild", &(uintptr_t() >> int() >> returning(int()))));
    let e = err(write.call((0x10, 1)));
    assert!(matches!(&e, Error::WorkerFailed { .. }), "{e}");
    named(&e, StrategyKind::Process);
}
