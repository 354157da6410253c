//! The tree printer at its limits: nesting deeper than any format width, an
//! empty document, and a reader that closes standard output early.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use sandlink::{Dynamic, Foreign, Process, Sandbox, Stubs};
use sandlink_examples::tree::{print_tree, TreeError, INDENT};

fn sandbox() -> Sandbox {
    Sandbox::open(sandlink_clibs::EXPAT_WASM).unwrap_or_else(|e| panic!("{e}"))
}

fn dynamic() -> Dynamic {
    // SAFETY: our own build of expat 2.5.0.
    unsafe { Dynamic::open(sandlink_clibs::EXPAT_SO) }.unwrap_or_else(|e| panic!("{e}"))
}

fn process() -> Process {
    Process::open(sandlink_clibs::EXPAT_SO).unwrap_or_else(|e| panic!("{e}"))
}

fn stubs() -> Stubs {
    // SAFETY: our own build of expat 2.5.0, its stubs checked against expat.h.
    unsafe { Stubs::open(sandlink_clibs::expat_stubs::stub_table()) }
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Counts lines and remembers the longest and the last, without keeping the
/// output (a document nested 100,000 deep prints 15 GB of indentation).
#[derive(Default)]
struct Lines {
    count: u64,
    current: u64,
    longest: u64,
    last: u64,
    prefix: Vec<u8>,
    tail: Vec<u8>,
    last_prefix: Vec<u8>,
    last_tail: Vec<u8>,
}

#[derive(Clone, Default)]
struct Counter(Arc<Mutex<Lines>>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut rest = buf;
        // `contains` is core's memchr (optimised even in a debug build): the
        // indentation chunks have no newline and skip the byte loop.
        while rest.contains(&b'\n') {
            let Some(i) = rest.iter().position(|b| *b == b'\n') else {
                break;
            };
            let (line, after) = rest.split_at(i);
            l.take(line);
            l.count += 1;
            l.last = l.current;
            l.last_prefix = std::mem::take(&mut l.prefix);
            l.last_tail = std::mem::take(&mut l.tail);
            l.longest = l.longest.max(l.current);
            l.current = 0;
            rest = &after[1..];
        }
        l.take(rest);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn take(&mut self, bytes: &[u8]) {
        if self.prefix.len() < 8 {
            let k = bytes.len().min(8 - self.prefix.len());
            self.prefix.extend_from_slice(&bytes[..k]);
        }
        self.tail
            .extend_from_slice(&bytes[bytes.len().saturating_sub(8)..]);
        let keep = self.tail.len().saturating_sub(8);
        self.tail.drain(..keep);
        self.current += bytes.len() as u64;
    }
}

fn deep_document(depth: usize) -> Vec<u8> {
    let mut doc = "<a>".repeat(depth);
    doc.push_str(&"</a>".repeat(depth));
    doc.into_bytes()
}

fn check_deep<L: Foreign + std::fmt::Debug>(lib: &L) {
    const DEPTH: u64 = 100_000;
    let out = Counter::default();
    let doc = deep_document(DEPTH as usize);
    if let Err(e) = print_tree(lib, &doc[..], out.clone()) {
        panic!("{lib:?}: the document nested {DEPTH} deep failed: {e}");
    }
    let l = out.0.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(l.count, DEPTH, "{lib:?}: one line per element");
    let deepest = (DEPTH - 1) * INDENT as u64;
    assert_eq!(
        l.last,
        deepest + 1,
        "{lib:?}: the deepest line is its indentation and `a`"
    );
    assert_eq!(
        l.longest,
        deepest + 1,
        "{lib:?}: no line is longer than the deepest"
    );
    assert_eq!(l.last_prefix, b"        ", "{lib:?}: indentation is spaces");
    assert_eq!(
        l.last_tail, b"       a",
        "{lib:?}: the line ends with the name"
    );
    assert_eq!(l.current, 0, "{lib:?}: the output ends with a newline");
}

#[test]
fn nesting_deeper_than_a_format_width_prints_on_sandbox() {
    check_deep(&sandbox());
}

#[test]
fn nesting_deeper_than_a_format_width_prints_on_dynamic() {
    check_deep(&dynamic());
}

#[test]
fn nesting_deeper_than_a_format_width_prints_on_process() {
    check_deep(&process());
}

#[test]
fn nesting_deeper_than_a_format_width_prints_on_stubs() {
    check_deep(&stubs());
}

fn check_empty<L: Foreign + std::fmt::Debug>(lib: &L) {
    match print_tree(lib, &b""[..], Counter::default()) {
        Err(TreeError::Parse(msg)) => assert_eq!(msg, "no element found at line 1, column 0"),
        other => panic!("{lib:?}: an empty document gave {other:?}"),
    }
}

#[test]
fn empty_document_reports_expats_own_error() {
    check_empty(&sandbox());
    check_empty(&dynamic());
    check_empty(&process());
    check_empty(&stubs());
}

/// The `expat_tree` example, which `cargo test` builds beside this test.
fn expat_tree() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    // target/<profile>/deps/tree-<hash> → target/<profile>/examples/expat_tree
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("expat_tree"))
        .unwrap_or_else(|| panic!("no target directory above {}", exe.display()));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

#[test]
fn closed_stdout_ends_quietly() {
    // Far more output than a pipe holds, so the printer is still writing when
    // the reader goes away.
    let mut doc = String::from("<r>");
    doc.push_str(&"<item/>".repeat(200_000));
    doc.push_str("</r>");
    for backend in ["sandbox", "dynamic", "process", "stubs"] {
        let mut child = Command::new(expat_tree())
            .args(["--backend", backend, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn expat_tree: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let doc = doc.clone();
        let feeder = std::thread::spawn(move || {
            // The printer may stop reading once its output is closed.
            let _ = stdin.write_all(doc.as_bytes());
        });
        let mut first = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert_eq!(first, "r\n", "{backend}: the first line");
        // Dropping the reader closes the pipe, as `head -1` does.
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr)
            .unwrap_or_else(|e| panic!("read stderr: {e}"));
        let status = child.wait().unwrap_or_else(|e| panic!("wait: {e}"));
        let _ = feeder.join();
        assert_eq!(stderr, "", "{backend}: nothing on stderr");
        assert!(status.success(), "{backend}: exit status {status}");
    }
}

/// The default backend needs no file at run time: a copy of the binary in
/// an empty directory, with the whole target directory hidden (a tmpfs
/// mounted over it in a private mount namespace), prints the same tree as
/// the native expat the build made.
#[test]
fn a_copied_binary_runs_with_the_target_dir_gone() {
    let original = expat_tree();
    let target = original
        .ancestors()
        .nth(3)
        .unwrap_or_else(|| panic!("no target directory above {}", original.display()))
        .to_path_buf();
    let empty = std::env::temp_dir().join(format!("expat_tree_copy_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("mkdir {}: {e}", empty.display()));
    let copy = empty.join("expat_tree");
    std::fs::copy(&original, &copy).unwrap_or_else(|e| panic!("copy: {e}"));
    let expected = Command::new(&original)
        .args(["--backend", "dynamic"])
        .output()
        .unwrap_or_else(|e| panic!("run expat_tree: {e}"));
    assert!(expected.status.success(), "{expected:?}");
    // `-r`: a user namespace too, so that this works without root.
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c"])
        .arg(r#"mount -t tmpfs none "$1" && test ! -e "$1/release" && test ! -e "$1/debug" && cd "$2" && exec ./expat_tree"#)
        .arg("sh")
        .arg(&target)
        .arg(&empty)
        .output()
        .unwrap_or_else(|e| panic!("run unshare (util-linux): {e}"));
    let _ = std::fs::remove_dir_all(&empty);
    assert!(
        out.status.success(),
        "the copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected.stdout)
    );
}

/// `expat_tree`'s sandbox runs expat's machine code compiled at build time:
/// a first run with an empty module cache compiles nothing (so it writes no
/// cache entry), `--compile` compiles (and caches), and both print what the
/// native expat prints.
#[test]
fn the_sandbox_starts_with_code_compiled_at_build_time() {
    let cache = std::env::temp_dir().join(format!("expat_tree_aot_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let run = |args: &[&str]| {
        let out = Command::new(expat_tree())
            .env("SANDLINK_CACHE_DIR", &cache)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run expat_tree: {e}"));
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let native = run(&["--backend", "dynamic"]);
    assert_eq!(run(&["--backend", "sandbox"]), native);
    assert!(
        !cache.exists(),
        "the sandbox compiled expat at start: {} was written",
        cache.display()
    );
    assert_eq!(run(&["--backend", "sandbox", "--compile"]), native);
    let entries = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&cache);
    assert_eq!(entries, 1, "--compile did not compile (no cache entry)");
}
