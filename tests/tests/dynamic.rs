//! The conformance suite on the Dynamic strategy, plus its own load errors.

use sandlink::types::*;
use sandlink::{Dynamic, Error, Foreign};
use sandlink_tests::ok;

fn open() -> Dynamic {
    // SAFETY: testlib is our own library.
    match unsafe { Dynamic::open(sandlink_clibs::TESTLIB_SO) } {
        Ok(lib) => lib,
        Err(e) => panic!("{e}"),
    }
}

sandlink_tests::conformance_tests!(open());

#[test]
fn unloadable_library_is_an_error() {
    // SAFETY: the path does not exist, so nothing is loaded.
    let err = match unsafe { Dynamic::open("/nonexistent/libnothing.so") } {
        Ok(lib) => panic!("loaded a library that does not exist: {lib:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, Error::Load { library, .. } if library.contains("libnothing")),
        "{err}"
    );
}

/// Plain-scalar signatures are called through a typed pointer; the same
/// declarations with errno captured go through libffi. Both must give the
/// same results, for every width, signedness and float class, with
/// arguments past the registers on the stack; what is not a plain scalar
/// stays on libffi.
#[test]
fn direct_calls_agree_with_libffi() {
    let lib = open();

    let add = ok(lib.function("tl_int_add", &(int() >> int() >> returning(int()))));
    let add_ffi = ok(lib.function("tl_int_add", &(int() >> int() >> returning_errno(int()))));
    assert!(add.is_direct());
    assert!(
        !add_ffi.is_direct(),
        "errno is captured inside the libffi path"
    );
    for (a, b) in [(1, 2), (-7, 3), (i32::MAX, 0), (i32::MIN, 5), (-1, -1)] {
        assert_eq!(
            ok(add.call((a, b))),
            ok(add_ffi.call_errno((a, b))).0,
            "{a} + {b}"
        );
    }

    macro_rules! same_unary {
        ($name:literal, $ty:expr, $($v:expr),+) => {{
            let d = ok(lib.function($name, &($ty >> returning($ty))));
            let f = ok(lib.function($name, &($ty >> returning_errno($ty))));
            assert!(d.is_direct(), $name);
            $(assert_eq!(ok(d.call(($v,))), ok(f.call_errno(($v,))).0, "{}({:?})", $name, $v);)+
        }};
    }
    same_unary!("tl_char_succ", char(), 0i8, 126, -128, -1);
    same_unary!("tl_uchar_compl", uchar(), 0u8, 255, 7);
    same_unary!("tl_short_neg", short(), 0i16, i16::MAX, -5);
    same_unary!("tl_ushort_compl", ushort(), 0u16, u16::MAX);
    same_unary!("tl_uint_compl", uint(), 0u32, u32::MAX, 12345);
    same_unary!("tl_long_id", long(), i64::MIN, -1, i64::MAX);
    same_unary!("tl_ullong_compl", ullong(), 0u64, u64::MAX);
    same_unary!("tl_size_id", size_t(), 0u64, u64::MAX);

    let mixed = || {
        int8_t()
            >> uint16_t()
            >> int32_t()
            >> int64_t()
            >> float()
            >> double()
            >> uint8_t()
            >> long()
            >> float()
            >> ullong()
    };
    let d = ok(lib.function("tl_mixed", &(mixed() >> returning(double()))));
    let f = ok(lib.function("tl_mixed", &(mixed() >> returning_errno(double()))));
    assert!(d.is_direct(), "ten mixed scalars, some on the stack");
    let args = (
        -3i8,
        65535u16,
        -100_000i32,
        1i64 << 40,
        1.5f32,
        -2.25f64,
        200u8,
        -9i64,
        0.125f32,
        7u64,
    );
    assert_eq!(
        ok(d.call(args)).to_bits(),
        ok(f.call_errno(args)).0.to_bits()
    );

    // A callback is passed as a plain function pointer too.
    let int_fn = funptr(int() >> returning(int()));
    let apply = ok(lib.function("tl_apply", &(int_fn.clone() >> int() >> returning(int()))));
    let apply_ffi = ok(lib.function(
        "tl_apply",
        &(int_fn.clone() >> int() >> returning_errno(int())),
    ));
    assert!(apply.is_direct());
    let triple = ok(lib.callback(&int_fn, |(x,)| Ok(x * 3)));
    assert_eq!(
        ok(apply.call((&triple, 5))),
        ok(apply_ffi.call_errno((&triple, 5))).0
    );
    // A callback that fails ends the direct call with its error.
    let refuse = ok(lib.callback(&int_fn, |(_,)| Err(Error::Unsupported("refused".into()))));
    assert!(matches!(
        apply.call((&refuse, 1)),
        Err(Error::Callback { function: Some(f), .. }) if f == "tl_apply"
    ));

    // Not plain scalars: a `_Bool` (checked to be 0 or 1) and a string.
    let not = ok(lib.function("tl_not", &(bool() >> returning(bool()))));
    assert!(!not.is_direct());
    assert!(ok(not.call((false,))));
    let strlen = ok(lib.function("tl_strlen", &(string() >> returning(size_t()))));
    assert!(!strlen.is_direct());
    assert_eq!(ok(strlen.call(("four",))), 4);
}

#[test]
fn a_dropped_callbacks_slot_is_reused_only_for_the_same_c_type() {
    // C may keep a dropped callback's address and call it with the
    // arguments of its old type: a slot parked by `int (*)(int *)` must not
    // come back as `int (*)(const char *)`, which would read a string from
    // an `int *` (same machine words, another C type).
    let lib = open();
    let ints = funptr(ptr(int()) >> returning(int()));
    let chars = funptr(string() >> returning(int()));
    let first = ok(lib.callback(&ints, |_: (Ptr<i32>,)| Ok(0)));
    let parked = first.addr();
    drop(first);
    let other = ok(lib.callback(&chars, |_: (String,)| Ok(0)));
    assert_ne!(other.addr(), parked, "a parked slot changed C type");
    // The same C type, described anew, gets the parked slot back.
    let again = ok(
        lib.callback(&funptr(ptr(int()) >> returning(int())), |_: (Ptr<i32>,)| {
            Ok(0)
        }),
    );
    assert_eq!(
        again.addr(),
        parked,
        "a parked slot of the same type was not reused"
    );
}
