//! Runs Lua 5.4 scripts through all four strategies: natively (Dynamic),
//! through stubs checked against Lua's headers (Stubs), sandboxed in wasm
//! (Sandbox, the module embedded in this binary) and in a worker process
//! (Process). Lua reports errors with setjmp/longjmp, so the scripts cover a
//! value returned, an error caught by `pcall` inside Lua, errors that reach
//! `lua_pcall`, and an error thrown inside a coroutine. Every strategy must
//! print the same thing. Then, on the Sandbox only, a script that never ends
//! meets the deadline, and one that allocates without end meets the memory
//! cap; the sandbox stays healthy after both.
//!
//! `cargo run --release`

mod bindings;

use std::process::ExitCode;
use std::time::Duration;

use bindings::{Lua, State, ERRMEM, MULTRET, OK};
use sandlink::{
    Dynamic, Error, Foreign, Isolated, Precompiled, Process, Result, Sandbox, SandboxConfig, Stubs,
    TrapKind,
};

// `stub_table()`: Lua's generated stubs, linked into this binary.
include!(env!("SANDLINK_LUA_STUBS"));

/// The scripts every strategy runs.
const SCRIPTS: [&str; 6] = [
    "return 6 * 7, 'forty-two', 2^0.5",
    "local ok, e = pcall(error, 'boom') return ok, e",
    "local ok, e = pcall(function() local t = nil return t.x end) return ok, e",
    "error('this one reaches lua_pcall')",
    "return 1 +",
    "local co = coroutine.wrap(function(a) \
        local b = coroutine.yield(a + 1) error('inside the coroutine: ' .. b) end) \
     local first = co(1) local ok, e = pcall(co, 'resumed') \
     return first, ok, e, string.format('%5.2f|%s', math.pi, table.concat({3, 2, 1}, ','))",
];

/// Loads and runs `script` in a fresh state, and describes what came back:
/// the status of `luaL_loadstring` or `lua_pcall`, and every value left on
/// the stack as `tostring` shows it.
fn run<L: Foreign>(lua: &Lua<L>, script: &str) -> Result<String> {
    let state = lua.new_state.call(())?.ok_or_else(|| Error::InvalidValue {
        function: Some("luaL_newstate".into()),
        what: "return value".into(),
        reason: "NULL: out of memory".into(),
    })?;
    let out = run_in(lua, state, script);
    // The script's own failure comes first; closing after it may fail too
    // (a poisoned sandbox refuses every call).
    let closed = lua.close.call((state,));
    let out = out?;
    closed?;
    Ok(out)
}

fn run_in<L: Foreign>(lua: &Lua<L>, state: State, script: &str) -> Result<String> {
    lua.open_libs.call((state,))?;
    let mut status = lua.load_string.call((state, script))?;
    if status == OK {
        status = lua.pcallk.call((state, 0, MULTRET, 0, 0, None))?;
    }
    let top = lua.get_top.call((state,))?;
    let mut values = Vec::new();
    for i in 1..=top {
        values.push(lua.to_display.call((state, i, None))?);
    }
    lua.set_top.call((state, 0))?;
    Ok(format!("status {status}: {}", values.join(" | ")))
}

/// Every script, through the Lua bound in `lib`.
fn run_all<L: Foreign>(lib: &L) -> Result<Vec<String>> {
    let lua = Lua::bind(lib)?;
    SCRIPTS.iter().map(|s| run(&lua, s)).collect()
}

/// A sandbox of its own for the limits: a memory cap of 64 MiB and
/// `deadline`.
fn limited(deadline: Duration) -> std::result::Result<Sandbox, String> {
    SandboxConfig::default()
        .deadline(deadline)
        .memory_limit(64 << 20)
        .open_precompiled(module(), "lua")
        .map_err(|e| e.to_string())
}

/// Lua's module, with its machine code compiled by build.rs (sandlink-build's
/// `precompile` feature): opening a sandbox compiles nothing.
fn module() -> Precompiled<'static> {
    // SAFETY: both files are what sandlink-build wrote for this build.
    unsafe {
        Precompiled::new(
            include_bytes!(env!("SANDLINK_LUA_WASM")),
            include_bytes!(env!("SANDLINK_LUA_CWASM")),
        )
    }
}

/// The limits: a deadline of half a second stops an endless loop; the
/// memory cap of 64 MiB stops a memory bomb, on a sandbox whose deadline
/// (a minute) no busy machine reaches first.
fn limits() -> std::result::Result<Vec<String>, String> {
    let sb = limited(Duration::from_millis(500))?;
    let lua = Lua::bind(&sb).map_err(|e| e.to_string())?;
    let mut report = Vec::new();
    // An endless loop: the deadline stops it; the sandbox is poisoned (the
    // interrupted state is not trusted) until reset.
    match run(&lua, "while true do end") {
        Err(Error::Trap {
            kind: TrapKind::Deadline,
            function,
            ..
        }) => report.push(format!("endless loop: deadline exceeded in {function}")),
        other => {
            return Err(format!(
                "endless loop: expected the deadline, got {other:?}"
            ))
        }
    }
    sb.reset().map_err(|e| e.to_string())?;
    let after = run(&lua, SCRIPTS[0]).map_err(|e| format!("after the reset: {e}"))?;
    report.push(format!("after the reset: {after}"));
    let sb = limited(Duration::from_secs(60))?;
    let lua = Lua::bind(&sb).map_err(|e| e.to_string())?;
    // Endless allocation: Lua's allocator gets NULL at the cap, and Lua
    // raises its "not enough memory" error, which lua_pcall returns.
    let bomb = "local t = {} while true do t[#t + 1] = string.rep('x', 1 << 20) .. #t end";
    let out = run(&lua, bomb).map_err(|e| format!("memory bomb: {e}"))?;
    if !out.starts_with(&format!("status {ERRMEM}: not enough memory")) {
        return Err(format!("memory bomb: expected LUA_ERRMEM, got {out}"));
    }
    report.push(format!("memory bomb: {out}"));
    // Healthy afterwards: the same sandbox runs a script.
    let after = run(&lua, SCRIPTS[0]).map_err(|e| format!("after the limits: {e}"))?;
    report.push(format!("afterwards: {after}"));
    if sb.poisoned().is_some() {
        return Err("the sandbox is poisoned after the memory bomb".into());
    }
    Ok(report)
}

fn main() -> ExitCode {
    // SAFETY: the native Lua is built by this crate's build.rs from
    // Debian's source; running it unisolated means trusting it and the
    // declared signatures (which the Stubs build checks against its headers).
    let native = unsafe { Dynamic::open(env!("SANDLINK_LUA_SO")) }.and_then(|l| run_all(&l));
    // SAFETY: as above (the same sources, linked into this binary); the
    // declarations were checked against lua.h, lauxlib.h and lualib.h.
    let stubbed = unsafe { Stubs::open(stub_table()) }.and_then(|l| run_all(&l));
    let sandboxed = Sandbox::open_precompiled(module(), "lua").and_then(|l| run_all(&l));
    let worker = Process::open(env!("SANDLINK_LUA_SO")).and_then(|l| run_all(&l));
    let results = [
        ("Dynamic", native),
        ("Stubs", stubbed),
        ("Sandbox", sandboxed),
        ("Process", worker),
    ];
    let first = results[0].1.as_ref().map_err(|e| e.to_string());
    let agree = results
        .iter()
        .all(|(_, r)| r.as_ref().map_err(|e| e.to_string()) == first);
    for (name, r) in &results {
        match r {
            Ok(lines) => {
                println!("== {name} ==");
                for (script, line) in SCRIPTS.iter().zip(lines) {
                    println!(
                        "{}\n  -> {line}",
                        script.split_whitespace().collect::<Vec<_>>().join(" ")
                    );
                }
            }
            Err(e) => println!("== {name} ==\nerror: {e}"),
        }
    }
    let limits = limits();
    match &limits {
        Ok(report) => {
            println!("== Sandbox limits ==");
            for line in report {
                println!("{line}");
            }
        }
        Err(e) => eprintln!("lua-example: {e}"),
    }
    match (agree, first, limits) {
        (true, Ok(_), Ok(_)) => {
            println!("Dynamic, Stubs, Sandbox and Process agree.");
            ExitCode::SUCCESS
        }
        (true, Err(e), _) => {
            eprintln!("lua-example: every strategy failed the same way: {e}");
            ExitCode::FAILURE
        }
        (false, _, _) => {
            eprintln!("lua-example: the strategies disagree (see above)");
            ExitCode::FAILURE
        }
        (true, Ok(_), Err(_)) => ExitCode::FAILURE,
    }
}
