//! Fuzz target (b): XML bytes fed to sandboxed expat and to native expat
//! (same source, same compiler), in chunks chosen by the input: the event
//! streams and errors must be identical.
#![no_main]

use std::cell::OnceCell;

use libfuzzer_sys::fuzz_target;
use sandlink::{Dynamic, Sandbox};
use sandlink_expat::{Events, Expat};
use sandlink_tests::xml::{self, Chunking};

struct Both {
    native: Expat<Dynamic>,
    sandbox: Expat<Sandbox>,
}

thread_local! {
    static BOTH: OnceCell<Both> = const { OnceCell::new() };
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    BOTH.with(|cell| {
        let b = cell.get_or_init(|| Both {
            // SAFETY: native expat is the trusted reference here.
            native: Expat::bind(&unsafe { Dynamic::open(sandlink_clibs::EXPAT_SO) }.expect("open")).expect("bind"),
            sandbox: Expat::bind(&Sandbox::open(sandlink_clibs::EXPAT_WASM).expect("open")).expect("bind"),
        });
        let flags = data[0];
        let doc = &data[1..];
        let chunking = match flags % 3 {
            0 => Chunking::Whole,
            1 => Chunking::Every(usize::from(flags / 3) + 1),
            _ => Chunking::Reader(usize::from(flags) * 16 + 1),
        };
        let events = if flags & 0x80 != 0 { Events::ALL } else { Events::STANDARD };
        let opts = xml::options(flags & 0x40 != 0);
        let native = xml::run(&b.native, doc, &chunking, events, &opts);
        let sandbox = xml::run(&b.sandbox, doc, &chunking, events, &opts);
        assert_eq!(native, sandbox, "native and sandboxed expat diverge");
    });
});
