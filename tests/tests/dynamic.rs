//! The conformance suite on the Dynamic strategy, plus its own load errors.

use sandlink::{Dynamic, Error};

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
