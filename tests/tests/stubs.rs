//! The conformance suite on the Stubs strategy, plus what only it can get
//! wrong: a description that was not generated, or changed since, and a
//! callback type without trampolines (`stubs_pools.rs` has the pools' bound:
//! alone in its binary, as the pools are process-wide).

use sandlink::types::*;
use sandlink::{Error, Foreign, Stubs};

fn open() -> Stubs {
    // SAFETY: testlib is our own library; its stubs were generated from the
    // sandlink-testlib binding module and checked against testlib.h.
    match unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) } {
        Ok(lib) => lib,
        Err(e) => panic!("{e}"),
    }
}

sandlink_tests::conformance_tests!(open());

#[test]
fn the_table_lists_what_the_binding_module_declares() {
    let lib = open();
    let declared = lib.declared();
    assert!(
        declared.contains(&"int tl_int_add(int, int)".to_string()),
        "{declared:?}"
    );
    // Declared once in the module, under two descriptions with the same C
    // spelling (`string` and `string_opt`): one stub.
    let n = declared
        .iter()
        .filter(|d| d.contains("tl_name_or_null"))
        .count();
    assert_eq!(n, 1, "{declared:?}");
}

#[test]
fn a_function_the_module_does_not_declare_is_missing() {
    let lib = open();
    // `tl_bump` exists in the library, but no stub for `tl_sizeof_long`'s
    // neighbour `tl_no_such` was generated.
    let err = lib
        .function("tl_no_such", &(void() >> returning(int())))
        .err()
        .unwrap_or_else(|| panic!("bound an undeclared function"));
    assert!(
        matches!(&err, Error::MissingSymbol { symbol, reason, .. }
            if symbol == "tl_no_such" && reason.contains("build.rs")),
        "{err}"
    );
}

#[test]
fn a_description_that_differs_from_the_generated_one_is_refused() {
    let lib = open();
    // Generated as `int tl_int_add(int, int)`; declared here with a `long`.
    let err = lib
        .function("tl_int_add", &(int() >> long() >> returning(int())))
        .err()
        .unwrap_or_else(|| panic!("bound a description the stub was not made for"));
    assert!(
        matches!(&err, Error::SignatureMismatch { function, declared, actual }
            if function == "tl_int_add" && declared.contains("long")
                && actual.contains("int tl_int_add(int, int)")),
        "{err}"
    );
    assert_eq!(err.kind(), sandlink::ErrorKind::Binding);
}

#[test]
fn a_callback_type_no_function_takes_has_no_trampolines() {
    let lib = open();
    let ty = funptr(long() >> long() >> long() >> returning(long()));
    let err = lib
        .callback(&ty, |(a, b, c)| Ok(a + b + c))
        .err()
        .unwrap_or_else(|| panic!("made a callback of an undeclared type"));
    assert!(
        matches!(&err, Error::NotPassable { c_type, reason, .. }
            if c_type.contains("long (*)(long, long, long)") && reason.contains("trampolines")),
        "{err}"
    );
}

#[test]
fn the_same_spelling_over_another_type_is_refused() {
    // Generated with `typedef int32_t tl_id_t`; the same C spelling over a
    // 64-bit type would lower differently, so the stub is not bound to it.
    let lib = open();
    let rec = sandlink_testlib::RecordType::new().unwrap_or_else(|e| panic!("{e}"));
    let err = lib
        .function(
            "tl_record_fill",
            &(ptr(rec.record.clone()) >> typedef(int64_t(), "tl_id_t") >> returning(void())),
        )
        .err()
        .unwrap_or_else(|| panic!("bound a typedef over another type"));
    assert!(
        matches!(&err, Error::SignatureMismatch { declared, actual, .. }
            if declared.contains("tl_id_t=int64_t") && actual.contains("tl_id_t=int32_t")),
        "{err}"
    );
}

/// A function whose type the C compiler found to be exactly the declared
/// one is called through a typed pointer, like Dynamic's direct calls, and
/// gives the wrapper's results. (A declaration the wrapper's call only
/// converts keeps the wrapper: `sandlink-build`'s tests check the
/// compiler's verdict.)
#[test]
fn a_function_of_exactly_the_declared_type_is_called_directly() {
    use sandlink_tests::ok;
    let lib = open();
    let t = ok(sandlink_testlib::Testlib::bind(&lib));
    assert!(t.int_add.is_direct());
    // errno is read by the wrapper, right after the call: not direct.
    let add_errno = ok(lib.function("tl_int_add", &(int() >> int() >> returning_errno(int()))));
    assert!(!add_errno.is_direct());
    for (a, b) in [(1, 2), (-7, 3), (i32::MAX, 0), (i32::MIN, 5), (-1, -1)] {
        assert_eq!(
            ok(t.int_add.call((a, b))),
            ok(add_errno.call_errno((a, b))).0,
            "{a} + {b}"
        );
    }
    // Not plain scalars: a string stays on the wrapper.
    assert!(!t.strlen.is_direct());
    // A direct call whose callback fails ends with the callback's error.
    let int_fn = funptr(int() >> returning(int()));
    let refuse = ok(lib.callback(&int_fn, |(_,)| Err(Error::Unsupported("refused".into()))));
    assert!(t.apply.is_direct());
    assert!(matches!(
        t.apply.call((&refuse, 1)),
        Err(Error::Callback { function: Some(f), .. }) if f == "tl_apply"
    ));
}
