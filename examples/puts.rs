//! The seed's first example: bind libc's `puts` as `string -> int` and call it.
//!
//! `cargo run --release --example puts` prints `Hello, world` and then the
//! count `puts` returned (13 with glibc: the characters plus the newline).

use sandlink::types::{int, ptr_opt, returning, string, void};
use sandlink::{Dynamic, Foreign};

fn main() -> anyhow::Result<()> {
    // SAFETY: libc is part of this process already.
    let libc = unsafe { Dynamic::this_process() };
    let puts = libc.function("puts", &(string() >> returning(int())))?;
    let n = puts.call(("Hello, world",))?;
    // C's stdout is buffered separately from Rust's: flush it so the two
    // lines come out in order even when piped.
    let fflush = libc.function("fflush", &(ptr_opt(void()) >> returning(int())))?;
    fflush.call((None,))?;
    println!("puts returned {n}");
    Ok(())
}
