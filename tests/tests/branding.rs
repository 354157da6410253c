//! Pointers and callbacks know their library: using one with another library
//! instance, or a pointer after its library was reset, is a specific error,
//! never an access through an address that means something else there.

use sandlink::types::*;
use sandlink::{Dynamic, Error, Foreign, Isolated, Process, Sandbox};
use sandlink_tests::{err, ok};

fn sandbox() -> Sandbox {
    ok(Sandbox::open(sandlink_clibs::TESTLIB_WASM))
}

fn dynamic() -> Dynamic {
    // SAFETY: testlib is our own library.
    ok(unsafe { Dynamic::open(sandlink_clibs::TESTLIB_SO) })
}

fn is_foreign(e: &Error) -> bool {
    matches!(&e, Error::ForeignPointer { .. })
}

#[test]
fn a_sandbox_pointer_is_refused_by_dynamic() {
    let sb = sandbox();
    let dy = dynamic();
    // A small linear-memory offset: as a host address it would be wild.
    let p_mem = ok(sb.alloc(&int(), 4));
    let p = p_mem.ptr();
    let e = err(dy.read(&int(), p));
    assert!(is_foreign(&e), "{e}");
    let e = err(dy.write(&int(), p, 7));
    assert!(is_foreign(&e), "{e}");
    // SAFETY: refused before anything is freed: `p` belongs to the sandbox.
    let e = err(unsafe { dy.free(p) });
    assert!(is_foreign(&e), "{e}");
    // SAFETY: refused before anything is read: `p` belongs to the sandbox.
    let e = err(unsafe { dy.read_string_unchecked(p) });
    assert!(is_foreign(&e), "{e}");
    // As a call argument too.
    let divmod = ok(dy.function(
        "tl_divmod",
        &(int() >> int() >> ptr(int()) >> ptr(int()) >> returning(int())),
    ));
    let mine_mem = ok(dy.alloc(&int(), 1));
    let mine = mine_mem.ptr();
    let e = err(divmod.call((7, 2, mine, p)));
    assert!(is_foreign(&e), "{e}");
    ok(mine_mem.free());
    // Its own library still takes it.
    ok(sb.write(&int(), p, 5));
    assert_eq!(ok(sb.read(&int(), p)), 5);
    ok(p_mem.free());
    // A block handed to C is not freed by its handle.
    let given = ok(sb.alloc(&int(), 1)).into_raw();
    ok(sb.write(&int(), given, 9));
    assert_eq!(ok(sb.read(&int(), given)), 9);
    // SAFETY: `given` came from this sandbox's allocator, is freed once,
    // and not used afterwards.
    ok(unsafe { sb.free(given) });
}

#[test]
fn a_pointer_from_one_sandbox_is_refused_by_another() {
    let a = sandbox();
    let b = sandbox();
    let p_mem = ok(a.alloc(&int(), 1));
    let p = p_mem.ptr();
    let e = err(b.read(&int(), p));
    assert!(is_foreign(&e), "{e}");
    // Derived pointers keep their library.
    let q = ok(a.cast_ptr::<i32, u32>(ok(a.offset_ptr(p, 0))));
    let e = err(b.read(&uint(), q));
    assert!(is_foreign(&e), "{e}");
    // And the safe arithmetic of one sandbox refuses another's pointer.
    let e = err(b.offset_ptr(p, 4));
    assert!(is_foreign(&e), "{e}");
}

#[test]
fn a_sandbox_callback_is_refused_by_dynamic() {
    let sb = sandbox();
    let dy = dynamic();
    let step = funptr(int() >> int() >> returning(int()));
    let cb = ok(sb.callback(&step, |(a, x)| Ok(a + x)));
    let fold = ok(dy.function(
        "tl_fold",
        &(step.clone() >> ptr(int()) >> size_t() >> int() >> returning(int())),
    ));
    let xs_mem = ok(dy.alloc(&int(), 1));
    let xs = xs_mem.ptr();
    // C would jump to a table index as if it were code.
    let e = err(fold.call((&cb, xs, 1, 0)));
    assert!(is_foreign(&e), "{e}");
    ok(xs_mem.free());
}

#[test]
fn a_pointer_from_before_a_reset_is_stale() {
    let sb = sandbox();
    let p_mem = ok(sb.alloc(&int(), 1));
    let p = p_mem.ptr();
    ok(sb.write(&int(), p, 1));
    ok(sb.reset());
    let e = err(sb.read(&int(), p));
    assert!(
        matches!(
            &e,
            Error::StalePointer {
                generation: 0,
                current: 1,
                ..
            }
        ),
        "{e}"
    );
    // SAFETY: refused before anything is freed: `p` is from before the reset.
    let e = err(unsafe { sb.free(p) });
    assert!(matches!(&e, Error::StalePointer { .. }), "{e}");
    // Dropping its handle frees nothing in the new instance.
    drop(p_mem);
    // Callbacks are re-installed by a reset, so they stay valid.
    let step = funptr(int() >> int() >> returning(int()));
    let cb = ok(sb.callback(&step, |(a, x)| Ok(a + x)));
    ok(sb.reset());
    let fold = ok(sb.function(
        "tl_fold",
        &(step.clone() >> ptr(int()) >> size_t() >> int() >> returning(int())),
    ));
    let xs_mem = ok(sb.alloc(&int(), 2));
    let xs = xs_mem.ptr();
    ok(sb.write(&int(), ok(sb.elem_ptr(&int(), xs, 1)), 4));
    assert_eq!(ok(fold.call((&cb, xs, 2, 1))), 5);
}

#[test]
fn errors_classify_without_string_inspection() {
    use sandlink::ErrorKind;
    let sb = sandbox();
    let other = sandbox();
    let p_mem = ok(sb.alloc(&int(), 1));
    let p = p_mem.ptr();
    assert_eq!(err(other.read(&int(), p)).kind(), ErrorKind::Misuse);
    assert_eq!(
        err(sb.function("no_such_function", &(void() >> returning(int())))).kind(),
        ErrorKind::Binding
    );
    // A binding whose declared type disagrees with the export.
    assert_eq!(
        err(sb.function("tl_int_add", &(double() >> returning(int())))).kind(),
        ErrorKind::Binding
    );
    let hostile = ok(Sandbox::open(sandlink_clibs::HOSTILE_WASM));
    let abort = ok(hostile.function("h_abort", &(void() >> returning(void()))));
    let e = err(abort.call(()));
    assert_eq!(e.kind(), ErrorKind::Library);
    assert_eq!(e.function(), Some("h_abort"));
    // Now poisoned: calling again is the host's misuse.
    assert_eq!(err(abort.call(())).kind(), ErrorKind::Misuse);
}

#[test]
fn a_call_error_names_its_function_in_a_field_not_a_wrapper() {
    let sb = sandbox();
    let other = sandbox();
    // An argument that does not fit `long` (32 bits in wasm32): matched
    // directly, with the function as a field.
    let long_id = ok(sb.function("tl_long_id", &(long() >> returning(long()))));
    let e = err(long_id.call((1i64 << 40,)));
    match &e {
        Error::OutOfRange { function, .. } => {
            assert_eq!(function.as_deref(), Some("tl_long_id"))
        }
        other => panic!("expected OutOfRange, got {other}"),
    }
    assert_eq!(e.function(), Some("tl_long_id"));
    // A pointer from another library, passed as an argument.
    let q_mem = ok(other.alloc(&int(), 1));
    let sum = ok(sb.function("tl_sum_ints", &(ptr(int()) >> size_t() >> returning(int()))));
    let e = err(sum.call((q_mem.ptr(), 1)));
    assert!(
        matches!(&e, Error::ForeignPointer { function: Some(f), .. } if f == "tl_sum_ints"),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("in call to `tl_sum_ints`: "),
        "{e}"
    );
    // The same misuse outside a call names no function.
    let e = err(sb.read(&int(), q_mem.ptr()));
    assert!(
        matches!(e, Error::ForeignPointer { function: None, .. }),
        "{e}"
    );
}

/// `tl_get_doubler`, bound on any library.
fn doubler_of<L: Foreign>(lib: &L) -> CodePtr<(i32,), i32> {
    let get = ok(lib.function(
        "tl_get_doubler",
        &(void() >> returning(funptr(int() >> returning(int())))),
    ));
    ok(get.call(()))
}

#[test]
fn a_returned_function_pointer_knows_its_library() {
    let sb = sandbox();
    let dy = dynamic();
    // A table index from the sandbox: as a host code address it is wild.
    let code = doubler_of(&sb);
    let e = err(dy.function_at(&code));
    assert!(is_foreign(&e), "{e}");
    let e = err(sandbox().function_at(&code));
    assert!(is_foreign(&e), "{e}");
    // And the other way round.
    let e = err(sb.function_at(&doubler_of(&dy)));
    assert!(is_foreign(&e), "{e}");
}

#[test]
fn a_function_pointer_from_before_a_reset_is_stale_but_its_binding_survives_in_the_sandbox() {
    let sb = sandbox();
    let code = doubler_of(&sb);
    let doubler = ok(sb.function_at(&code));
    ok(sb.reset());
    // The pointer is stale, like any pointer into the old instance …
    let e = err(sb.function_at(&code));
    assert!(
        matches!(
            &e,
            Error::StalePointer {
                generation: 0,
                current: 1,
                ..
            }
        ),
        "{e}"
    );
    // … but the bound function is re-resolved in the new instance, checked
    // against its type again, like an export: the same module has the same
    // function in that table slot.
    assert_eq!(ok(doubler.call((8,))), 16);
}

#[test]
fn a_function_pointer_bound_in_a_worker_is_stale_after_a_reset() {
    let pr = ok(Process::open(sandlink_clibs::TESTLIB_SO));
    let doubler = ok(pr.function_at(&doubler_of(&pr)));
    assert_eq!(ok(doubler.call((8,))), 16);
    ok(pr.reset());
    // The new worker loads the library elsewhere: the address means nothing.
    let e = err(doubler.call((8,)));
    assert!(matches!(&e, Error::StalePointer { .. }), "{e}");
    assert!(pr.poisoned().is_none());
    // Bound again from the new worker, it works.
    assert_eq!(ok(ok(pr.function_at(&doubler_of(&pr))).call((8,))), 16);
}
