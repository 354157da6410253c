//! Fuzz target (a): sequences of hostile and normal calls decoded from the
//! input. The host must never panic or crash; every failure must be one of
//! the specific sandbox errors; a reset must always bring the sandbox back.
#![no_main]

use std::cell::OnceCell;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sandlink::types::*;
use sandlink::{Error, Foreign, Isolated, Sandbox, SandboxConfig};

thread_local! {
    static LIB: OnceCell<Sandbox> = const { OnceCell::new() };
}

fn word(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, x) in b.iter_mut().enumerate() {
        *x = data.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

/// A reset re-runs `_initialize` under the 20 ms deadline: on a busy
/// machine it may run out, as an error that says so; it is retried.
fn reset(lib: &Sandbox) {
    let mut tries = 0;
    while let Err(e) = lib.reset() {
        tries += 1;
        assert!(tries < 20 && e.to_string().contains("ran past the deadline"), "reset: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    LIB.with(|cell| {
        let lib = cell.get_or_init(|| {
            SandboxConfig::default().deadline(Duration::from_millis(20)).memory_limit(16 << 20)
            .open(sandlink_clibs::HOSTILE_WASM)
            .expect("open hostile")
        });
        reset(lib);
        let add = lib.function("h_add", &(int() >> int() >> returning(int()))).expect("bind");
        let write = lib.function("h_write_wild", &(uintptr_t() >> int() >> returning(int()))).expect("bind");
        let read = lib.function("h_read_wild", &(uintptr_t() >> returning(int()))).expect("bind");
        let bogus = lib.function("h_call_bogus", &(uintptr_t() >> returning(int()))).expect("bind");
        let malloc_all = lib.function("h_malloc_all", &(size_t() >> returning(size_t()))).expect("bind");
        let puts = lib.function("h_puts", &(string() >> returning(int()))).expect("bind");
        let exit = lib.function("h_exit", &(int() >> returning(void()))).expect("bind");
        for (i, op) in data.chunks(5).enumerate() {
            let arg = word(op, 1);
            let small = op.get(1).copied().unwrap_or(0);
            let r: sandlink::Result<()> = match op[0] % 9 {
                0 => add.call((arg as i32, i as i32)).map(|v| assert_eq!(v, (arg as i32).wrapping_add(i as i32))),
                1 => write.call((u64::from(arg), 7)).map(drop),
                2 => read.call((u64::from(arg),)).map(drop),
                3 => bogus.call((u64::from(arg),)).map(drop),
                4 => malloc_all.call((u64::from(arg % (1 << 22)) + 1,)).map(|n| assert!(n <= 16 << 20)),
                5 => puts.call((&String::from_utf8_lossy(op),)).map(drop),
                6 => exit.call((i32::from(small % 126),)),
                7 => lib.reset(),
                // Host-side reads at addresses the input picks.
                _ => match lib.ptr_at::<u8>(u64::from(arg)) {
                    Some(p) => lib.read_bytes(p, u64::from(small)).map(drop),
                    None => Ok(()),
                },
            };
            if let Err(e) = r {
                assert!(
                    matches!(
                        &e,
                        Error::Trap { .. }
                            | Error::Exited { .. }
                            | Error::Poisoned { .. }
                            | Error::InteriorNul { .. }
                            | Error::OutOfBounds { .. }
                            | Error::Alloc { .. }
                    ) || matches!(&e, Error::Load { reason, .. } if reason.contains("ran past the deadline")),
                    "unexpected error: {e}"
                );
            }
        }
        reset(lib);
        assert_eq!(add.call((2, 2)).expect("add after reset"), 4);
    });
});
