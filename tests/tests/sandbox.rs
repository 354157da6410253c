//! The conformance suite on the Sandbox strategy: testlib compiled to
//! wasm32-wasi, the same checks as for Dynamic.

use sandlink::Sandbox;

fn open() -> Sandbox {
    match Sandbox::open(sandlink_clibs::TESTLIB_WASM) {
        Ok(lib) => lib,
        Err(e) => panic!("{e}"),
    }
}

sandlink_tests::conformance_tests!(open());
