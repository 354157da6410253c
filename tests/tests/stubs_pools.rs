//! The Stubs strategy's callback trampolines come in fixed pools, one per
//! callback type, shared by the whole process: alone in this test binary so
//! that no other test holds a slot.

use sandlink::{Error, Foreign, Stubs};

fn open() -> Stubs {
    // SAFETY: testlib is our own library; its stubs were generated from the
    // sandlink-testlib binding module and checked against testlib.h.
    match unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) } {
        Ok(lib) => lib,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn trampoline_pools_are_bounded_and_reused() {
    let lib = open();
    let t = sandlink_testlib::Testlib::bind(&lib).unwrap_or_else(|e| panic!("{e}"));
    let mut live = Vec::new();
    let err = loop {
        match lib.callback(&t.int_fn, |(x,)| Ok(x)) {
            Ok(cb) => live.push(cb),
            Err(e) => break e,
        }
        assert!(live.len() <= 4096, "no limit on trampolines");
    };
    assert_eq!(live.len(), 128, "the default pool size");
    assert!(
        matches!(&err, Error::LimitReached { setting, .. } if setting.contains("callback_slots")),
        "{err}"
    );
    // Every trampoline is distinct and calls its own closure.
    let mut addrs: Vec<u64> = live.iter().map(|c| c.addr()).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 128);
    // A dropped callback frees its slot for the next one.
    live.truncate(100);
    let cb = lib
        .callback(&t.int_fn, |(x,)| Ok(x * 7))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.apply.call((&cb, 3)).unwrap_or_else(|e| panic!("{e}")), 22);
    assert_eq!(
        t.apply
            .call((&live[99], 3))
            .unwrap_or_else(|e| panic!("{e}")),
        4
    );
}
