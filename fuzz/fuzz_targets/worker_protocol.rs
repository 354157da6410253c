//! Fuzz target (d): the host's side of the Process worker protocol. The
//! input is everything a lying worker says, from the handshake on: frames,
//! upcalls, memory replies, lengths and kinds (`Process::scripted`). The
//! host runs `sandlink_tests::protocol::session` against it (binding
//! testlib, scalars, strings both ways, buffers, out-parameters, callbacks
//! that call back in, host-side reads) and must return only typed errors:
//! never panic, hang or allocate without bound. The seed is a real worker's
//! replies to the same session (`fuzz/seeds/worker_protocol`).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sandlink::{Error, Isolated, Process, ProcessConfig};

/// Whatever a worker says, the host answers with a typed error naming what
/// and why: any variant but those only the host's own misuse can cause
/// (this session passes no strings with NUL bytes, declares only passable
/// types, never re-enters a busy callback, and its closures do not panic).
fn check(e: &Error) {
    assert!(
        !matches!(
            e,
            Error::InteriorNul { .. }
                | Error::NotPassable { .. }
                | Error::Busy { .. }
                | Error::CallbackPanicked { .. }
        ),
        "an error a lying worker cannot cause: {e:?}"
    );
    assert!(!e.to_string().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let config = ProcessConfig::default()
        .seccomp(false)
        .landlock(false)
        .deadline(Duration::from_millis(200));
    match Process::scripted(data, config) {
        Ok(p) => {
            for outcome in sandlink_tests::protocol::session(&p) {
                if let Err(e) = outcome {
                    check(&e);
                }
            }
            let _ = p.poisoned();
        }
        Err(e) => check(&e),
    }
});
