//! Parses a JSON document with cJSON three times: natively (Dynamic),
//! through stubs generated from the same bindings and checked against
//! cJSON.h (Stubs), and sandboxed (Sandbox, the module and its machine
//! code, compiled by build.rs, embedded in this binary). Walks the tree
//! cJSON built through its `child`/`next` fields, and checks all three
//! agree.
//!
//! `cargo run --release -- [FILE]` (default: an embedded sample).

mod bindings;

use std::fmt::Write as _;
use std::process::ExitCode;

use bindings::{CJson, CJsonLib, Item};
use sandlink::{Dynamic, Foreign, Precompiled, Result, SandboxConfig, Stubs};

// `stub_table()`: cJSON's generated stubs, linked into this binary.
include!(env!("SANDLINK_CJSON_STUBS"));

const SAMPLE: &str = r#"{
  "name": "Sandlink",
  "strategies": ["dynamic", "sandbox", "stubs", "process"],
  "isolated": true,
  "callbacks": null,
  "sizes": { "small": 1, "large": 1e6, "ratio": 0.25, "negative": -17 },
  "escapes": "tab\tquote\" \u00e9"
}"#;

/// cJSON's type flags (cJSON.h).
const FALSE: i32 = 1 << 0;
const TRUE: i32 = 1 << 1;
const NULL: i32 = 1 << 2;
const NUMBER: i32 = 1 << 3;
const STRING: i32 = 1 << 4;
const ARRAY: i32 = 1 << 5;
const OBJECT: i32 = 1 << 6;
const RAW: i32 = 1 << 7;

/// Parses `json` with the cJSON bound in `lib` and describes the result:
/// the library's version, an outline of the tree, and cJSON's own printing.
fn describe<L: Foreign>(lib: &L, json: &str) -> Result<String> {
    let cj = CJsonLib::bind(lib)?;
    let mut out = format!("cJSON {}\n", cj.version.call(())?);
    // The input lives in the library's memory for as long as the parse
    // error pointer may point into it.
    let input = lib.alloc_string(json)?;
    let Some(root) = cj.parse.call((input.ptr(),))? else {
        let at = cj.error_ptr.call(())?.map(|p| p.addr());
        let offset = at
            .and_then(|a| a.checked_sub(input.ptr().addr()))
            .filter(|o| *o <= json.len() as u64);
        return Err(sandlink::Error::InvalidValue {
            function: None,
            what: "the JSON document".into(),
            reason: match offset {
                Some(o) => format!("cJSON_Parse failed at byte {o}"),
                None => "cJSON_Parse failed".into(),
            },
        });
    };
    let walked = outline(&cj, root, &mut out);
    let printed = cj.print.call((root,));
    cj.delete.call((root,))?;
    walked?;
    let printed = printed?.ok_or_else(|| sandlink::Error::InvalidValue {
        function: Some("cJSON_Print".into()),
        what: "return value".into(),
        reason: "returned NULL (out of memory in the library)".into(),
    })?;
    // Declared a string (`str_ref_opt`), so reading it is safe everywhere.
    let text = lib.read_str(printed);
    cj.free.call((Some(printed.to_void()),))?;
    writeln!(out, "cJSON_Print:\n{}", text?).ok();
    Ok(out)
}

/// Writes one line per item, indented by depth, following `child` and
/// `next` with an explicit stack (no recursion, whatever the nesting).
fn outline<L: Foreign>(cj: &CJsonLib<L>, root: Item, out: &mut String) -> Result<()> {
    let lib = &cj.lib;
    let (_, f) = CJson::describe()?;
    let mut stack = vec![(root, 0usize)];
    while let Some((item, depth)) = stack.pop() {
        let kind = lib.read_field(item, &f.kind)?;
        let key = match lib.read_field(item, &f.key)? {
            Some(k) => format!("{k:?}: "),
            None => String::new(),
        };
        let value = match kind & 0xff {
            FALSE => "false".to_string(),
            TRUE => "true".into(),
            NULL => "null".into(),
            NUMBER => format!("{}", lib.read_field(item, &f.valuedouble)?),
            STRING | RAW => format!(
                "{:?}",
                lib.read_field(item, &f.valuestring)?.unwrap_or_default()
            ),
            ARRAY => "array".into(),
            OBJECT => "object".into(),
            other => {
                return Err(sandlink::Error::InvalidValue {
                    function: None,
                    what: "a cJSON item's type".into(),
                    reason: format!("unknown type flags {other:#x}"),
                })
            }
        };
        writeln!(out, "{:indent$}{key}{value}", "", indent = 2 * depth).ok();
        // Push `next` first so that `child` (one level deeper) comes out
        // before the siblings.
        if depth > 0 {
            if let Some(next) = lib.read_field(item, &f.next)? {
                stack.push((next, depth));
            }
        }
        if kind & (ARRAY | OBJECT) != 0 {
            if let Some(child) = lib.read_field(item, &f.child)? {
                stack.push((child, depth + 1));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let json = match std::env::args_os().nth(1) {
        None => SAMPLE.to_string(),
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("own-library: cannot read {}: {e}", path.to_string_lossy());
                return ExitCode::from(2);
            }
        },
    };
    // SAFETY: the native cJSON is built by this crate's build.rs from
    // Debian's source; running it unisolated means trusting it, its
    // declared signatures and the `struct cJSON` layout above.
    let native =
        unsafe { Dynamic::open(env!("SANDLINK_CJSON_SO")) }.and_then(|l| describe(&l, &json));
    // SAFETY: as above (the same sources, linked into this binary); the
    // declarations and the struct layout were checked against cJSON.h.
    let stubbed = unsafe { Stubs::open(stub_table()) }.and_then(|l| describe(&l, &json));
    // The module is part of this binary, with its machine code compiled by
    // build.rs: nothing is read from disk and nothing is compiled.
    // SAFETY: both files are what sandlink-build wrote for this build.
    let cjson = unsafe {
        Precompiled::new(
            include_bytes!(env!("SANDLINK_CJSON_WASM")),
            include_bytes!(env!("SANDLINK_CJSON_CWASM")),
        )
    };
    let config = SandboxConfig::default();
    let sandboxed = config.module_precompiled(cjson, "cjson").and_then(|m| {
        if !m.precompiled() {
            eprintln!("own-library: the code compiled at build time did not fit; compiled now");
        }
        config.instantiate(&m).and_then(|l| describe(&l, &json))
    });
    let results = [
        ("Dynamic", native),
        ("Stubs", stubbed),
        ("Sandbox", sandboxed),
    ];
    let first = results[0].1.as_ref().map_err(|e| e.to_string());
    let agree = results
        .iter()
        .all(|(_, r)| r.as_ref().map_err(|e| e.to_string()) == first);
    for (name, r) in &results {
        match r {
            Ok(text) => println!("== {name} ==\n{text}"),
            Err(e) => println!("== {name} ==\nerror: {e}\n"),
        }
    }
    match (agree, first) {
        (true, Ok(_)) => {
            println!("Dynamic, Stubs and Sandbox agree.");
            ExitCode::SUCCESS
        }
        (true, Err(e)) => {
            eprintln!("own-library: every strategy failed the same way: {e}");
            ExitCode::FAILURE
        }
        (false, _) => {
            eprintln!("own-library: the strategies disagree (see above)");
            ExitCode::FAILURE
        }
    }
}
