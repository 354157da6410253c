//! The conformance suite on the Sandbox strategy: testlib compiled to
//! wasm32-wasi, the same checks as for Dynamic.

use sandlink::{Sandbox, SandboxConfig};

/// `SANDLINK_TEST_MAX_INSTANCES` shrinks the engine's pool, for runs under
/// valgrind, which cannot reserve 4 GiB of address space for each of the
/// default 1000 slots (`scripts/test.sh`).
fn open() -> Sandbox {
    let mut config = SandboxConfig::default();
    if let Some(n) = std::env::var("SANDLINK_TEST_MAX_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.max_instances = n;
    }
    match config.open(sandlink_clibs::TESTLIB_WASM) {
        Ok(lib) => lib,
        Err(e) => panic!("{e}"),
    }
}

sandlink_tests::conformance_tests!(open());
