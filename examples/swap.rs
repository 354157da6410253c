//! One binding, four strategies: the same `TestLib<L>` linked with `Dynamic`
//! (the native shared object), with `Sandbox` (the wasm module), with
//! `Process` (the native shared object in a worker process) and with `Stubs`
//! (testlib's generated stubs, linked into this binary; these declarations
//! agree with the ones they were generated from). Swapping is the one line
//! that opens the library.
//!
//! `cargo run --release --example swap`

use sandlink::types::*;
use sandlink::{Callback, Dynamic, Foreign, Function, Process, Result, Sandbox, Stubs};

/// A few of testlib's functions, written once for any strategy.
struct TestLib<L: Foreign> {
    lib: L,
    greeting: Function<L, (), String>,
    strlen: Function<L, (String,), u64>,
    apply: Function<L, (FunPtr<(i32,), i32>, i32), i32>,
    int_fn: Typ<FunPtr<(i32,), i32>>,
}

impl<L: Foreign> TestLib<L> {
    fn bind(lib: &L) -> Result<Self> {
        let int_fn = funptr(int() >> returning(int()));
        Ok(TestLib {
            lib: lib.clone(),
            greeting: lib.function("tl_greeting", &(void() >> returning(string())))?,
            strlen: lib.function("tl_strlen", &(string() >> returning(size_t())))?,
            apply: lib.function("tl_apply", &(int_fn.clone() >> int() >> returning(int())))?,
            int_fn,
        })
    }

    fn demo(&self) -> Result<String> {
        let square: Callback<(i32,), i32> = self.lib.callback(&self.int_fn, |(x,)| Ok(x * x))?;
        Ok(format!(
            "greeting={:?} strlen={} apply(square, 7)={}",
            self.greeting.call(())?,
            self.strlen.call(("sandboxed",))?,
            self.apply.call((&square, 7))?,
        ))
    }
}

fn main() -> anyhow::Result<()> {
    // SAFETY: testlib is our own library.
    let native = unsafe { Dynamic::open(sandlink_clibs::TESTLIB_SO) }?;
    let sandboxed = Sandbox::open(sandlink_clibs::TESTLIB_WASM)?; // <- the one line that differs
    let worker = Process::open(sandlink_clibs::TESTLIB_SO)?; // <- or this one
                                                             // SAFETY: as above; the stubs were checked against testlib.h.
    let stubbed = unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) }?; // <- or this

    let a = TestLib::bind(&native)?.demo()?;
    let b = TestLib::bind(&sandboxed)?.demo()?;
    let c = TestLib::bind(&worker)?.demo()?;
    let d = TestLib::bind(&stubbed)?.demo()?;
    println!("dynamic: {a}");
    println!("sandbox: {b}");
    println!("process: {c}");
    println!("stubs:   {d}");
    anyhow::ensure!(a == b && a == c && a == d, "the strategies disagree");
    println!("same output from all four strategies");
    Ok(())
}
