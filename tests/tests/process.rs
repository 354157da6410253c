//! The conformance suite on the Process strategy, plus its own load errors.

use sandlink::types::*;
use sandlink::{Error, Foreign, Process};
use sandlink_tests::ok;

fn open() -> Process {
    match Process::open(sandlink_clibs::TESTLIB_SO) {
        Ok(lib) => lib,
        Err(e) => panic!("{e}"),
    }
}

sandlink_tests::conformance_tests!(open());

#[test]
fn unloadable_library_is_an_error() {
    let err = match Process::open("/nonexistent/libnothing.so") {
        Ok(lib) => panic!("loaded a library that does not exist: {lib:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, Error::Load { library, reason } if library.contains("libnothing") && reason.contains("No such file")),
        "{err}"
    );
}

#[test]
fn link_libraries_reach_the_shared_object_and_a_missing_one_is_named() {
    // Named with `.link_lib("m")`: the worker loads libm with it.
    let lib = ok(Process::open(sandlink_clibs::USES_LIBM_SO));
    let log2 = ok(lib.function("um_log2", &(double() >> returning(double()))));
    assert_eq!(ok(log2.call((8.0,))), 3.0);
    // Forgotten: the load fails naming the file, the symbol and the fix.
    let e = match Process::open(sandlink_clibs::FORGETS_LIBM_SO) {
        Ok(_) => panic!("a library missing libm loaded"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert!(matches!(e, Error::Load { .. }), "{text}");
    assert!(
        text.contains(&format!(
            "{}: undefined symbol: log2",
            sandlink_clibs::FORGETS_LIBM_SO
        )),
        "{text}"
    );
    assert!(text.contains(".link_lib"), "{text}");
    assert!(!text.contains("/proc/self/fd"), "{text}");
}
