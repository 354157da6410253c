//! The conformance suite on the Process strategy, plus its own load errors.

use sandlink::{Error, Process};

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
