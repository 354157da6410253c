//! Strategies side by side: the same calls through Dynamic, Sandbox, Process and Stubs, plus
//! the sandbox's own costs (instantiation, module cache, cold compile),
//! reference points (a raw wasmtime typed call, a direct C call), and
//! sandboxed parsing on one and two threads.
//!
//! `bash scripts/bench.sh` runs this and rewrites BENCHMARKS.md.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sandlink::types::*;
use sandlink::{Dynamic, Foreign, Process, Sandbox, SandboxConfig, StubTable, Stubs};
use sandlink_expat::{Event, Events, Expat, Flow, Handler, Parser};

fn dynamic(path: &str) -> Dynamic {
    // SAFETY: our own libraries.
    unsafe { Dynamic::open(path) }.unwrap_or_else(|e| panic!("{e}"))
}

fn sandbox(path: &str) -> Sandbox {
    Sandbox::open(path).unwrap_or_else(|e| panic!("{e}"))
}

fn stubs(table: &'static StubTable) -> Stubs {
    // SAFETY: our own libraries, with stubs checked against their headers.
    unsafe { Stubs::open(table) }.unwrap_or_else(|e| panic!("{e}"))
}

fn process(path: &str) -> Process {
    Process::open(path).unwrap_or_else(|e| panic!("{e}"))
}

fn calls<L: Foreign>(c: &mut Criterion, name: &str, lib: &L) {
    let mut g = c.benchmark_group("call");
    let add = lib
        .function("tl_int_add", &(int() >> int() >> returning(int())))
        .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function(BenchmarkId::new("int_add", name), |b| {
        b.iter(|| add.call((std::hint::black_box(1), 2)))
    });
    // The single-owner path: the library held by this thread.
    g.bench_function(BenchmarkId::new("int_add_held", name), |b| {
        let _held = lib.hold();
        b.iter(|| add.call((std::hint::black_box(1), 2)))
    });
    let strlen = lib
        .function("tl_strlen", &(string() >> returning(size_t())))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = "x".repeat(1024);
    g.bench_function(BenchmarkId::new("strlen_1KiB", name), |b| {
        b.iter(|| strlen.call((text.as_str(),)))
    });
    let short = "hello, world";
    g.bench_function(BenchmarkId::new("strlen_12B", name), |b| {
        b.iter(|| strlen.call((std::hint::black_box(short),)))
    });
    let checksum = lib
        .function("tl_checksum", &(buffer() >> returning(uint32_t())))
        .unwrap_or_else(|e| panic!("{e}"));
    let block = vec![7u8; 4096];
    g.bench_function(BenchmarkId::new("buffer_4KiB", name), |b| {
        b.iter(|| checksum.call((block.as_slice(),)))
    });
    let divmod = lib
        .function(
            "tl_divmod",
            &(int() >> int() >> ptr(int()) >> ptr(int()) >> returning(int())),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let outs = lib.alloc(&int(), 2).unwrap_or_else(|e| panic!("{e}"));
    let (q, r) = (
        outs.elem(0).unwrap_or_else(|e| panic!("{e}")),
        outs.elem(1).unwrap_or_else(|e| panic!("{e}")),
    );
    g.bench_function(BenchmarkId::new("out_params", name), |b| {
        b.iter(|| {
            divmod.call((std::hint::black_box(47), 5, q, r))?;
            Ok::<_, sandlink::Error>((lib.read(&int(), q)?, lib.read(&int(), r)?))
        })
    });
    let int_fn = funptr(int() >> returning(int()));
    let apply = lib
        .function("tl_apply", &(int_fn.clone() >> int() >> returning(int())))
        .unwrap_or_else(|e| panic!("{e}"));
    let twice = lib
        .callback(&int_fn, |(x,)| Ok(x * 2))
        .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function(BenchmarkId::new("callback_round_trip", name), |b| {
        b.iter(|| apply.call((&twice, std::hint::black_box(20))))
    });
    let step = funptr(int() >> int() >> returning(int()));
    let fold = lib
        .function(
            "tl_fold",
            &(step.clone() >> ptr(int()) >> size_t() >> int() >> returning(int())),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let xs_mem = lib.alloc(&int(), 1000).unwrap_or_else(|e| panic!("{e}"));
    let xs = xs_mem.ptr();
    let cb = lib
        .callback(&step, |(a, x)| Ok(a ^ x))
        .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function(BenchmarkId::new("fold_1000_callbacks", name), |b| {
        b.iter(|| fold.call((&cb, xs, 1000, 0)))
    });
    // 1,000 calls of a `void` callback lending a string (`tl_count`, each
    // number written into one reused buffer), batched: recorded where the
    // library runs, delivered together, each string read by the closure.
    let t = sandlink_tests::conformance::Testlib::bind(lib).unwrap_or_else(|e| panic!("{e}"));
    // Each event's closure reads its string into a buffer it reuses.
    let read_each = || {
        let reader = lib.clone();
        let mut text = String::new();
        move |(_, s): (Option<Ptr<()>>, StrRef)| {
            text.clear();
            reader.read_str_into(s, &mut text)?;
            Ok(())
        }
    };
    let events = lib
        .callback_batched(&t.count_fn, read_each())
        .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function(BenchmarkId::new("batched_1000_events", name), |b| {
        b.iter(|| t.count.call((1000, &events, &twice, 0, None)))
    });
    // The same events, each its own callback.
    let events = lib
        .callback(&t.count_fn, read_each())
        .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function(BenchmarkId::new("unbatched_1000_events", name), |b| {
        b.iter(|| t.count.call((1000, &events, &twice, 0, None)))
    });
    g.finish();
}

/// A handler that subscribes to nothing: parse-only throughput.
struct Nothing;
impl Handler for Nothing {
    fn events(&self) -> Events {
        Events::NONE
    }
    fn handle(&mut self, _: Event<'_>) -> Flow {
        Flow::Continue
    }
}

struct Count(u64);
impl Handler for Count {
    fn events(&self) -> Events {
        Events::ELEMENTS | Events::CHARACTERS
    }
    fn handle(&mut self, _: Event<'_>) -> Flow {
        self.0 += 1;
        Flow::Continue
    }
}

/// Like `Count`, reading every attribute of every start tag: what the
/// eager form (attributes read before the handler runs) cost everyone.
struct CountAttributes(u64);
impl Handler for CountAttributes {
    fn events(&self) -> Events {
        Events::ELEMENTS | Events::CHARACTERS
    }
    fn handle(&mut self, e: Event<'_>) -> Flow {
        self.0 += 1;
        if let Event::StartElement { attributes, .. } = e {
            match attributes.read() {
                Ok(list) => {
                    self.0 += list.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() as u64
                }
                Err(_) => return Flow::Abort,
            }
        }
        Flow::Continue
    }
}

fn expat<L: Foreign>(c: &mut Criterion, name: &str, lib: &L, doc: &[u8]) {
    let ex = Expat::bind(lib).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("expat");
    g.throughput(criterion::Throughput::Bytes(doc.len() as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("parse_1MiB", name), |b| {
        b.iter(|| {
            let mut p = Parser::new(&ex, Count(0)).unwrap_or_else(|e| panic!("{e}"));
            p.parse(doc).unwrap_or_else(|e| panic!("{e}"));
        })
    });
    g.bench_function(BenchmarkId::new("parse_1MiB_attributes", name), |b| {
        b.iter(|| {
            let mut p = Parser::new(&ex, CountAttributes(0)).unwrap_or_else(|e| panic!("{e}"));
            p.parse(doc).unwrap_or_else(|e| panic!("{e}"));
        })
    });
    g.bench_function(BenchmarkId::new("parse_only_1MiB", name), |b| {
        b.iter(|| {
            let mut p = Parser::new(&ex, Nothing).unwrap_or_else(|e| panic!("{e}"));
            p.parse(doc).unwrap_or_else(|e| panic!("{e}"));
        })
    });
    g.finish();
}

/// Reference points for `call/int_add`: the same C function called through
/// wasmtime's typed API with no Sandlink in between (default engine, WASI
/// linked, no epoch interruption), and natively through a typed function
/// pointer.
fn anchors(c: &mut Criterion) {
    use wasmtime::{Engine, Linker, Module, Store};
    let mut g = c.benchmark_group("anchor");
    let engine = Engine::default();
    let module =
        Module::from_file(&engine, sandlink_clibs::TESTLIB_WASM).unwrap_or_else(|e| panic!("{e}"));
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| s).unwrap_or_else(|e| panic!("{e}"));
    let mut store = Store::new(&engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
    let instance = linker
        .instantiate(&mut store, &module)
        .unwrap_or_else(|e| panic!("{e}"));
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
        init.call(&mut store, ()).unwrap_or_else(|e| panic!("{e}"));
    }
    let add = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "tl_int_add")
        .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function(BenchmarkId::new("int_add", "wasmtime_typed_func"), |b| {
        b.iter(|| add.call(&mut store, (std::hint::black_box(1), 2)))
    });
    // SAFETY: our own library; `tl_int_add` is `int tl_int_add(int, int)`.
    let lib = unsafe { libloading::Library::new(sandlink_clibs::TESTLIB_SO) }
        .unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the symbol has exactly this C type (testlib.h).
    let native: libloading::Symbol<unsafe extern "C" fn(i32, i32) -> i32> =
        unsafe { lib.get(b"tl_int_add") }.unwrap_or_else(|e| panic!("{e}"));
    g.bench_function(BenchmarkId::new("int_add", "native_fn_pointer"), |b| {
        // SAFETY: a pure function of two ints.
        b.iter(|| unsafe { native(std::hint::black_box(1), 2) })
    });
    g.finish();
}

/// `expat_tree` end to end, as whole processes on a generated 15 MB
/// document (150,000 records of 4 elements and 6 attributes), against the
/// same printer written in C. `bash scripts/bench.sh` builds `expat_tree`
/// and names it in `SANDLINK_EXPAT_TREE_BIN`; without it only the C program
/// runs.
fn expat_tree(c: &mut Criterion) {
    use std::process::{Command, Stdio};
    let doc = std::env::temp_dir().join(format!("sandlink-bench-tree-{}.xml", std::process::id()));
    let mut text = String::from("<root>");
    for i in 0..150_000 {
        text.push_str(&format!(
            "<rec id=\"{i}\" kind=\"k{}\" flag=\"yes\"><name lang=\"en\">n{i}</name>\
             <v a=\"1\" b=\"2\">{i}</v><e/></rec>\n",
            i % 7
        ));
    }
    text.push_str("</root>");
    std::fs::write(&doc, &text).unwrap_or_else(|e| panic!("{e}"));
    let run = |cmd: &mut Command| {
        let ok = cmd
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{cmd:?} failed");
    };
    let mut g = c.benchmark_group("expat_tree");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(text.len() as u64));
    g.bench_function(BenchmarkId::new("15MB", "c_program"), |b| {
        b.iter(|| run(Command::new(sandlink_clibs::C_TREE).arg(&doc)))
    });
    if let Some(bin) = std::env::var_os("SANDLINK_EXPAT_TREE_BIN") {
        for backend in ["dynamic", "sandbox", "process", "stubs"] {
            g.bench_function(BenchmarkId::new("15MB", backend), |b| {
                b.iter(|| run(Command::new(&bin).args(["--backend", backend]).arg(&doc)))
            });
        }
        // CPU time beside wall time (a Process run is two processes, both
        // counted: the worker is `expat_tree`'s child, reaped by it).
        let mut cpu = String::from("{");
        let programs: [(&str, Vec<&std::ffi::OsStr>); 3] = [
            ("c_program", vec![]),
            ("process", vec!["--backend".as_ref(), "process".as_ref()]),
            ("sandbox", vec!["--backend".as_ref(), "sandbox".as_ref()]),
        ];
        for (i, (name, args)) in programs.iter().enumerate() {
            let program: &std::ffi::OsStr = if *name == "c_program" {
                sandlink_clibs::C_TREE.as_ref()
            } else {
                &bin
            };
            let (wall, cpu_time) =
                wall_and_cpu(7, || run(Command::new(program).args(args).arg(&doc)));
            let sep = if i == 0 { "" } else { ", " };
            cpu.push_str(&format!(
                "{sep}\"{name}\": {{\"wall_ms\": {:.1}, \"cpu_ms\": {:.1}}}",
                wall * 1e3,
                cpu_time * 1e3
            ));
        }
        cpu.push('}');
        let _ = std::fs::write(criterion_dir().join("expat_tree_cpu.json"), cpu + "\n");
    }
    // The same job with the pure-Rust parsers a user would otherwise pick,
    // in this process (no process start, about a millisecond less), reading
    // the file and writing the tree to a sink. First, the same tree as the
    // C program's.
    let c_tree = Command::new(sandlink_clibs::C_TREE)
        .arg(&doc)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
        .stdout;
    type Printer = fn(&[u8], &mut dyn Write);
    let printers: [(&str, Printer); 2] = [("quick_xml", quick_xml_tree), ("xml_rs", xml_rs_tree)];
    for (name, print) in printers {
        let mut out = Vec::new();
        print(text.as_bytes(), &mut out);
        assert!(
            out == c_tree,
            "{name} prints another tree than the C program"
        );
        g.bench_function(BenchmarkId::new("15MB", name), |b| {
            b.iter(|| {
                let bytes = std::fs::read(&doc).unwrap_or_else(|e| panic!("{e}"));
                print(&bytes, &mut std::io::BufWriter::new(std::io::sink()))
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_file(&doc);
    first_open(c);
}

/// The first open of expat in a fresh process: `expat_tree` on a
/// one-element document, with the machine code compiled at build time
/// (the default), or with `--compile`: its embedded module compiled (an
/// empty module cache, `XDG_CACHE_HOME`) or loaded from the disk cache (a
/// warm one); Dynamic for the process start and `dlopen` alone.
fn first_open(c: &mut Criterion) {
    use std::process::{Command, Stdio};
    let Some(bin) = std::env::var_os("SANDLINK_EXPAT_TREE_BIN") else {
        return;
    };
    let root = std::env::temp_dir().join(format!("sandlink-bench-open-{}", std::process::id()));
    let tiny = root.join("tiny.xml");
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&tiny, "<a/>").unwrap_or_else(|e| panic!("{e}"));
    // `expat_tree` with these options on the tiny document.
    const SANDBOX: &[&str] = &["--backend", "sandbox"];
    const COMPILE: &[&str] = &["--backend", "sandbox", "--compile"];
    const DYNAMIC: &[&str] = &["--backend", "dynamic"];
    let run = |options: &[&str], cache: &std::path::Path| {
        let ok = Command::new(&bin)
            .env("XDG_CACHE_HOME", cache)
            .args(options)
            .arg(&tiny)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "expat_tree {options:?} failed");
    };
    let warm = root.join("warm");
    run(COMPILE, &warm);
    let mut g = c.benchmark_group("first_open");
    g.sample_size(10);
    let mut n = 0u64;
    // Every run starts with an empty cache directory.
    let mut cold = |b: &mut criterion::Bencher, options: &[&str]| {
        b.iter_batched(
            || {
                n += 1;
                root.join(format!("cold-{n}"))
            },
            |dir| {
                run(options, &dir);
                let _ = std::fs::remove_dir_all(&dir);
            },
            criterion::BatchSize::PerIteration,
        )
    };
    g.bench_function(BenchmarkId::new("expat", "sandbox_precompiled"), |b| {
        cold(b, SANDBOX)
    });
    g.bench_function(BenchmarkId::new("expat", "sandbox_cold_cache"), |b| {
        cold(b, COMPILE)
    });
    g.bench_function(BenchmarkId::new("expat", "sandbox_warm_cache"), |b| {
        b.iter(|| run(COMPILE, &warm))
    });
    g.bench_function(BenchmarkId::new("expat", "dynamic_baseline"), |b| {
        b.iter(|| run(DYNAMIC, &warm))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&root);
}

/// Runs `f` (which runs a child process to completion) `n` times: the
/// medians of its wall time and of the CPU time (user and system) of the
/// children it waited for, in seconds.
fn wall_and_cpu(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let children_cpu = || {
        // SAFETY: `getrusage` fills the struct it is given, nothing else.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; RUSAGE_CHILDREN is a valid `who`.
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (c0, t0) = (children_cpu(), std::time::Instant::now());
        f();
        walls.push(t0.elapsed().as_secs_f64());
        cpus.push(children_cpu() - c0);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(walls), median(cpus))
}

/// Where criterion writes, for the figures it does not take.
fn criterion_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// One line per start tag, indented three spaces per level: `expat_tree`
/// over quick-xml.
fn quick_xml_tree(xml: &[u8], out: &mut dyn Write) {
    use quick_xml::events::Event as Q;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Q::Start(e)) => {
                tree_line(out, depth, e.name().as_ref());
                depth += 1;
            }
            Ok(Q::Empty(e)) => tree_line(out, depth, e.name().as_ref()),
            Ok(Q::End(_)) => depth = depth.saturating_sub(1),
            Ok(Q::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("quick-xml: {e}"),
        }
        buf.clear();
    }
}

/// `expat_tree` over xml-rs.
fn xml_rs_tree(xml: &[u8], out: &mut dyn Write) {
    use xml::reader::XmlEvent as X;
    let mut depth = 0usize;
    for e in xml::reader::EventReader::new(xml) {
        match e {
            Ok(X::StartElement { name, .. }) => {
                let full = match &name.prefix {
                    Some(p) => format!("{p}:{}", name.local_name),
                    None => name.local_name.clone(),
                };
                tree_line(out, depth, full.as_bytes());
                depth += 1;
            }
            Ok(X::EndElement { .. }) => depth = depth.saturating_sub(1),
            Ok(_) => {}
            Err(e) => panic!("xml-rs: {e}"),
        }
    }
}

fn tree_line(out: &mut dyn Write, depth: usize, name: &[u8]) {
    const SPACES: &[u8] = &[b' '; 96];
    let mut n = depth * 3;
    while n > 0 {
        let k = n.min(SPACES.len());
        out.write_all(&SPACES[..k])
            .unwrap_or_else(|e| panic!("{e}"));
        n -= k;
    }
    out.write_all(name).unwrap_or_else(|e| panic!("{e}"));
    out.write_all(b"\n").unwrap_or_else(|e| panic!("{e}"));
}

/// Sandboxed expat on one thread and on two: each iteration parses the
/// document twice, one after the other on one worker, or at once on two
/// workers, each with its own sandbox (`Sandbox` is `Send`).
fn threads(c: &mut Criterion, doc: &[u8]) {
    use std::sync::mpsc;
    type Job = (mpsc::Sender<()>, usize);
    let worker = |doc: Vec<u8>| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            let lib = sandbox(sandlink_clibs::EXPAT_WASM);
            let ex = Expat::bind(&lib).unwrap_or_else(|e| panic!("{e}"));
            for (done, times) in rx {
                for _ in 0..times {
                    let mut p = Parser::new(&ex, Count(0)).unwrap_or_else(|e| panic!("{e}"));
                    p.parse(&doc).unwrap_or_else(|e| panic!("{e}"));
                }
                let _ = done.send(());
            }
        });
        tx
    };
    let (a, b) = (worker(doc.to_vec()), worker(doc.to_vec()));
    let mut g = c.benchmark_group("threads");
    g.throughput(criterion::Throughput::Bytes(2 * doc.len() as u64));
    g.sample_size(20);
    g.bench_function(
        BenchmarkId::new("parse_2x1MiB_sandbox", "1_thread"),
        |bench| {
            bench.iter(|| {
                let (done, wait) = mpsc::channel();
                a.send((done, 2)).unwrap_or_else(|e| panic!("{e}"));
                wait.recv().unwrap_or_else(|e| panic!("{e}"));
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("parse_2x1MiB_sandbox", "2_threads"),
        |bench| {
            bench.iter(|| {
                let (done, wait) = mpsc::channel();
                a.send((done.clone(), 1)).unwrap_or_else(|e| panic!("{e}"));
                b.send((done, 1)).unwrap_or_else(|e| panic!("{e}"));
                wait.recv().unwrap_or_else(|e| panic!("{e}"));
                wait.recv().unwrap_or_else(|e| panic!("{e}"));
            })
        },
    );
    g.finish();
}

fn strategies(c: &mut Criterion) {
    let d = dynamic(sandlink_clibs::TESTLIB_SO);
    let s = sandbox(sandlink_clibs::TESTLIB_WASM);
    calls(c, "dynamic", &d);
    calls(c, "sandbox", &s);
    calls(c, "process", &process(sandlink_clibs::TESTLIB_SO));
    calls(
        c,
        "stubs",
        &stubs(sandlink_clibs::testlib_stubs::stub_table()),
    );

    let mut doc = sandlink_tests::xml::large_document(9_000);
    doc.truncate(doc.len().min(1 << 20));
    let doc = {
        // Cut at a record boundary and close the root.
        let end = doc
            .windows(10)
            .rposition(|w| w == b"</record>\n")
            .map_or(doc.len(), |i| i + 10);
        let mut d = doc[..end].to_vec();
        d.extend_from_slice(b"</data>\n");
        d
    };
    expat(c, "dynamic", &dynamic(sandlink_clibs::EXPAT_SO), &doc);
    expat(c, "sandbox", &sandbox(sandlink_clibs::EXPAT_WASM), &doc);
    expat(c, "process", &process(sandlink_clibs::EXPAT_SO), &doc);
    expat(
        c,
        "stubs",
        &stubs(sandlink_clibs::expat_stubs::stub_table()),
        &doc,
    );
    threads(c, &doc);
    anchors(c);
    expat_tree(c);
}

fn sandbox_costs(c: &mut Criterion) {
    let wasm = std::fs::read(sandlink_clibs::TESTLIB_WASM).unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("sandlink-bench-cache-{}", std::process::id()));
    let cached = SandboxConfig::default().cache_dir(Some(dir.clone()));
    let uncached = SandboxConfig::default().cache_dir(None);
    let module = cached
        .compile(&wasm, "testlib")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("sandbox");
    g.bench_function("instantiate_testlib", |b| {
        b.iter(|| {
            cached
                .instantiate(&module)
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("load_testlib_from_disk_cache", |b| {
        b.iter(|| {
            let m = cached
                .compile(&wasm, "testlib")
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(m.from_cache());
        })
    });
    // The pattern the README recommends: a fresh sandbox per input, opened
    // by path. An unchanged file already loaded costs a stat, not a hash.
    g.bench_function("open_expat_repeated", |b| {
        b.iter(|| Sandbox::open(sandlink_clibs::EXPAT_WASM).unwrap_or_else(|e| panic!("{e}")))
    });
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("compile_testlib_cold", |b| {
        b.iter(|| {
            uncached
                .compile(&wasm, "testlib")
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
    // What a fresh Process costs: a worker started, handshaken, loaded and
    // confined (and, when dropped, killed and reaped).
    let mut g = c.benchmark_group("process");
    g.bench_function("open_testlib", |b| {
        b.iter(|| process(sandlink_clibs::TESTLIB_SO))
    });
    g.finish();
}

/// Resident memory per idle expat sandbox: 500 opened and kept alive, the
/// growth in RSS divided by 500. Not a time, so criterion does not take it;
/// it goes beside criterion's output for `scripts/bench_table.py`.
fn idle_rss(_: &mut Criterion) {
    // Within the default pool, beside the other benchmarks' sandboxes.
    const N: u64 = 500;
    // One first, so the module and engine are not counted.
    let first = sandbox(sandlink_clibs::EXPAT_WASM);
    let before = sandlink_tests::rss_bytes();
    let live: Vec<Sandbox> = (0..N)
        .map(|_| sandbox(sandlink_clibs::EXPAT_WASM))
        .collect();
    let after = sandlink_tests::rss_bytes();
    drop((first, live));
    let per = after.saturating_sub(before) as f64 / N as f64;
    // Beside criterion's own output, which scripts/bench_table.py reads.
    let _ = std::fs::write(
        criterion_dir().join("idle_rss.json"),
        format!("{{\"sandboxes\": {N}, \"bytes_per_sandbox\": {per:.0}}}\n"),
    );
}

// `idle_rss` first: before any other benchmark has touched the pool's memory.
criterion_group!(benches, idle_rss, strategies, sandbox_costs);
criterion_main!(benches);
