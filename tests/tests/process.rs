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
        matches!(&err, Error::Load { library, reason, strategy: sandlink::StrategyKind::Process } if library.contains("libnothing") && reason.contains("No such file")),
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

/// The worker-protocol fuzz target's session on a real worker, every step
/// succeeding: its outcomes, and the worker's replies as recorded.
fn recorded_session() -> (Vec<String>, Vec<u8>) {
    let mut config = sandlink::ProcessConfig::default();
    config.record_replies = true;
    let real = ok(config.open(sandlink_clibs::TESTLIB_SO));
    let outcomes = sandlink_tests::protocol::session(&real)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("on a real worker: {e}")))
        .collect();
    (outcomes, real.recorded_replies())
}

#[test]
fn the_protocol_session_replays_from_a_recording_of_the_worker() {
    // The session on a real worker gives the values testlib computes.
    let (outcomes, script) = recorded_session();
    assert_eq!(outcomes[0], "42");
    assert_eq!(outcomes[4], "SHOUT");
    assert_eq!(outcomes[8], "110", "fold(+) of 1..4 from 100");
    assert_eq!(outcomes[10], "42", "the doubler, bound from its pointer");
    assert_eq!(
        outcomes[11], "first id 1 class x,second,0,1,g1,2,3,g3",
        "batched callbacks"
    );
    assert!(script.len() > 1000, "{} bytes recorded", script.len());

    // Replayed by a scripted worker, the host sees the same session: the
    // fuzz target starts from here.
    let scripted = ok(sandlink::Process::scripted(
        &script,
        sandlink::ProcessConfig::default(),
    ));
    let replayed: Vec<String> = sandlink_tests::protocol::session(&scripted)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("replayed: {e}")))
        .collect();
    assert_eq!(replayed, outcomes);

    // `SANDLINK_WRITE_SEEDS=1` refreshes the fuzz target's seed.
    if std::env::var_os("SANDLINK_WRITE_SEEDS").is_some() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/worker_protocol");
        std::fs::create_dir_all(dir).expect("creating the seed directory");
        std::fs::write(format!("{dir}/testlib-session"), &script).expect("writing the seed");
    }

    // A script cut short anywhere is an error, never a hang or a panic.
    for cut in [0, 9, script.len() / 3, script.len() - 1] {
        match sandlink::Process::scripted(&script[..cut], sandlink::ProcessConfig::default()) {
            Err(e) => assert!(matches!(e, Error::Load { .. }), "cut at {cut}: {e}"),
            Ok(p) => {
                let outcomes = sandlink_tests::protocol::session(&p);
                assert!(outcomes.iter().any(|r| r.is_err()), "cut at {cut}");
            }
        }
    }
}

#[test]
fn a_batch_the_worker_corrupts_is_a_protocol_violation_naming_the_record() {
    // The recorded session's `BATCH` upcall, replayed with its first record
    // broken: the batched step fails naming the record, and the steps
    // before it are unchanged.
    let (outcomes, script) = recorded_session();
    // Frames are `u32 length | kind | body`; a batch's body is the `u64`
    // address of its copy in the worker, then the records.
    let mut at = 0;
    let first_record = loop {
        let len =
            u32::from_le_bytes(script[at..at + 4].try_into().expect("a frame length")) as usize;
        if script[at + 4] == 70 {
            break at + 5 + 8;
        }
        at += 4 + len;
        assert!(at < script.len(), "the session made no batch");
    };
    let broken = [
        (0, 4u32, "of 4 bytes"),
        (4, 1000, "for callback slot 1000, never handed out"),
    ];
    for (offset, value, why) in broken {
        let mut bad = script.clone();
        let word = first_record + offset;
        bad[word..word + 4].copy_from_slice(&value.to_le_bytes());
        let replayed = sandlink_tests::protocol::session(&ok(sandlink::Process::scripted(
            &bad,
            sandlink::ProcessConfig::default(),
        )));
        for (i, r) in replayed.iter().enumerate().take(11) {
            assert_eq!(r.as_ref().ok(), Some(&outcomes[i]), "step {i} ({why})");
        }
        match &replayed[11] {
            Err(e @ Error::WorkerFailed { reason, .. }) => assert!(
                reason.contains("a batch record at byte 0 of ") && reason.contains(why),
                "{e}"
            ),
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[test]
fn a_batched_callback_dropped_by_its_own_closure_still_gets_the_calls_c_made_before() {
    // On Process the ten calls are recorded before the first is delivered:
    // the closure drops its own handle at "3", and the calls C made before
    // that (4 to 9) still reach it, in order, with no error: each queued
    // record holds the entry that was live when C made the call.
    use std::sync::{Arc, Mutex};
    type CountCallback = sandlink::Callback<(Option<Ptr<()>>, StrRef), ()>;
    let lib = open();
    let t = ok(sandlink_testlib::Testlib::bind(&lib));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let own: Arc<Mutex<Option<CountCallback>>> = Arc::new(Mutex::new(None));
    let (s2, o2, l2) = (seen.clone(), own.clone(), lib.clone());
    let cb = ok(lib.callback_batched(&t.count_fn, move |(_, s)| {
        let s = l2.read_str(s)?;
        if s == "3" {
            let mine = o2.lock().unwrap_or_else(|p| p.into_inner()).take();
            drop(mine);
        }
        s2.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        Ok(())
    }));
    let never = ok(lib.callback(&t.int_fn, |(x,)| Ok(x)));
    // `tl_count` bound with its function pointers as addresses, so that
    // the call does not borrow the handle the closure drops.
    let count = ok(lib.function(
        "tl_count",
        &(int() >> uintptr_t() >> uintptr_t() >> int() >> ptr_opt(void()) >> returning(int())),
    ));
    let addr = cb.addr();
    *own.lock().unwrap_or_else(|p| p.into_inner()) = Some(cb);
    assert_eq!(ok(count.call((10, addr, never.addr(), 0, None))), 0);
    assert!(own.lock().unwrap_or_else(|p| p.into_inner()).is_none());
    let want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(*seen.lock().unwrap_or_else(|p| p.into_inner()), want);
    // Dropped now: a further call through the address is the usual error.
    let e = count.call((1, addr, never.addr(), 0, None));
    assert!(matches!(e, Err(Error::CallbackDropped { .. })), "{e:?}");
}
