//! The conformance suite on the Sandbox strategy: testlib compiled to
//! wasm32-wasi, the same checks as for Dynamic.

use sandlink::{Isolated, Sandbox, SandboxConfig};
use sandlink_tests::ok;

/// `SANDLINK_TEST_MAX_INSTANCES` shrinks the engine's pool, for runs under
/// valgrind, which cannot reserve 4 GiB of address space for each of the
/// default 1000 slots (`scripts/test.sh`).
fn open() -> Sandbox {
    open_with(SandboxConfig::default().record_batched_after(0))
}

/// [`open`] with `config` (batched callbacks recorded from the first call
/// there: the conformance suite checks the recorders).
fn open_with(mut config: SandboxConfig) -> Sandbox {
    if let Some(n) = std::env::var("SANDLINK_TEST_MAX_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.max_instances = n;
    }
    match config.open(sandlink_clibs::TESTLIB_WASM) {
        Ok(lib) => lib,
        Err(e) => panic!("{e}"),
    }
}

sandlink_tests::conformance_tests!(open());

#[test]
fn calls_wasi_has_no_system_call_for_link_and_fail_with_enosys() {
    let sb = open();
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    assert_eq!(ok(t.wasi_gaps.call(())), 0b1111);
}

/// A scratch directory tree for the file tests: `granted/hello.txt` and a
/// secret beside `granted`.
fn file_tree(name: &str) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("sandlink-files-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("granted/sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("granted/hello.txt"), "hello from the host")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("secret.txt"), "not for the library")
        .unwrap_or_else(|e| panic!("{e}"));
    root
}

fn read<L: sandlink::Foreign>(t: &sandlink_testlib::Testlib<L>, path: &str) -> Result<String, i64> {
    let mut buf = [0u8; 256];
    let n = ok(t.read_file.call((path, &mut buf[..])));
    if n < 0 {
        return Err(n);
    }
    Ok(String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

#[test]
fn no_file_system_is_granted_by_default() {
    let root = file_tree("none");
    let sb = open();
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    let hello = root.join("granted/hello.txt");
    assert!(read(&t, &hello.to_string_lossy()).is_err());
    assert!(read(&t, "/etc/passwd").is_err());
    assert!(ok(t.write_file.call(("/tmp/sandlink-should-not-exist", "x"))) < 0);
    assert!(!std::path::Path::new("/tmp/sandlink-should-not-exist").exists());
}

#[test]
fn a_read_only_directory_can_be_read_but_not_written_or_left() {
    let root = file_tree("ro");
    let sb = ok(SandboxConfig::default()
        .grant_dir(root.join("granted"), "/data", sandlink::DirAccess::ReadOnly)
        .open(sandlink_clibs::TESTLIB_WASM));
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    assert_eq!(
        read(&t, "/data/hello.txt"),
        Ok("hello from the host".into())
    );
    assert_eq!(
        read(&t, "/data/sub/../hello.txt"),
        Ok("hello from the host".into())
    );
    // Not written, not created.
    assert!(ok(t.write_file.call(("/data/hello.txt", "changed"))) < 0);
    assert!(ok(t.write_file.call(("/data/new.txt", "new"))) < 0);
    assert_eq!(
        std::fs::read_to_string(root.join("granted/hello.txt")).unwrap_or_default(),
        "hello from the host"
    );
    assert!(!root.join("granted/new.txt").exists());
    // Nothing outside: `..` out of the grant, absolute paths elsewhere.
    for path in [
        "/data/../secret.txt",
        "/data/sub/../../secret.txt",
        "/etc/passwd",
        &root.join("secret.txt").to_string_lossy(),
    ] {
        assert!(read(&t, path).is_err(), "{path} was readable");
    }
    assert!(sb.poisoned().is_none());
}

#[test]
fn a_read_write_directory_takes_new_files_and_survives_a_reset() {
    let root = file_tree("rw");
    let sb = ok(SandboxConfig::default()
        .grant_dir(root.join("granted"), "/out", sandlink::DirAccess::ReadWrite)
        .open(sandlink_clibs::TESTLIB_WASM));
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    assert_eq!(ok(t.write_file.call(("/out/made.txt", "made inside"))), 0);
    assert_eq!(
        std::fs::read_to_string(root.join("granted/made.txt")).unwrap_or_default(),
        "made inside"
    );
    assert!(ok(t.write_file.call(("/out/../escaped.txt", "no"))) < 0);
    assert!(!root.join("escaped.txt").exists());
    ok(sb.reset());
    assert_eq!(read(&t, "/out/made.txt"), Ok("made inside".into()));
}

#[test]
fn a_missing_or_relative_grant_is_an_error_at_open() {
    let e = sandlink_tests::err(
        SandboxConfig::default()
            .grant_dir(
                "/nonexistent/sandlink",
                "/data",
                sandlink::DirAccess::ReadOnly,
            )
            .open(sandlink_clibs::TESTLIB_WASM),
    );
    assert!(e.to_string().contains("/nonexistent/sandlink"), "{e}");
    let dir = file_tree("relative");
    let e = sandlink_tests::err(
        SandboxConfig::default()
            .grant_dir(dir, "data", sandlink::DirAccess::ReadOnly)
            .open(sandlink_clibs::TESTLIB_WASM),
    );
    assert!(e.to_string().contains("not absolute"), "{e}");
}

/// A batched callback's calls are recorded inside the instance and
/// delivered when the call returns: a plain pointer argument (not copied)
/// then shows the library's memory as it is at delivery. `tl_count` writes
/// each number into one stack buffer, so every closure sees the last
/// number; delivered at once, each would see its own. More batched
/// callbacks than the store has recorders for are delivered at once, and
/// the declared copies are right either way.
#[test]
fn batched_calls_are_recorded_in_the_instance_and_delivered_at_the_return() {
    use sandlink::types::*;
    use sandlink::Foreign;
    use std::sync::{Arc, Mutex};
    let sb = open();
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    let int_fn = funptr(int() >> returning(int()));
    let raw_fn = funptr(ptr_opt(void()) >> ptr(char()) >> returning(void()));
    let count = ok(sb.function(
        "tl_count",
        &(int() >> raw_fn.clone() >> int_fn >> int() >> ptr_opt(void()) >> returning(int())),
    ));
    let never = ok(sb.callback(&t.int_fn, |(x,)| Ok(x)));
    let mut seen = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..40 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l2, lib) = (log.clone(), sb.clone());
        let cb = ok(sb.callback_batched(&raw_fn, move |(_, p): (_, Ptr<i8>)| {
            let mut bytes = Vec::new();
            lib.read_bytes_into(p, 3, &mut bytes)?;
            l2.lock().unwrap_or_else(|p| p.into_inner()).push(bytes);
            Ok(())
        }));
        ok(count.call((3, &cb, &never, 0, None)));
        let got = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        seen.push(got);
        keep.push(cb);
    }
    // The first 32 callbacks have recorders; the rest run at once.
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.len(), 3, "callback {i}");
        for (k, bytes) in s.iter().enumerate() {
            let digit = if i < 32 { b'2' } else { b'0' + k as u8 };
            assert_eq!(&bytes[..2], &[digit, 0], "callback {i}: {s:?}");
        }
    }
    // The declared copies are right on both kinds.
    ok(sandlink_tests::conformance::callback_batched(&sb));
}

/// By default a batched callback is delivered call by call until it has
/// been called `record_batched_after` times (its recorder costs a
/// compilation); the call that reaches it installs the recorder, and the
/// calls after it are recorded.
#[test]
fn a_batched_callback_is_recorded_after_its_first_calls() {
    use sandlink::types::*;
    use sandlink::Foreign;
    use std::sync::{Arc, Mutex};
    let sb = open_with(SandboxConfig::default().record_batched_after(100));
    let t = ok(sandlink_testlib::Testlib::bind(&sb));
    // A signature no other test records (the compiled recorder modules are
    // shared by the process): `ud` as an integer.
    let raw_fn = funptr(uintptr_t() >> ptr(char()) >> returning(void()));
    let count = ok(sb.function(
        "tl_count",
        &(int() >> raw_fn.clone() >> t.int_fn.clone() >> int() >> uintptr_t() >> returning(int())),
    ));
    let never = ok(sb.callback(&t.int_fn, |(x,)| Ok(x)));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l2, lib) = (log.clone(), sb.clone());
    let cb = ok(sb.callback_batched(&raw_fn, move |(_, p): (u64, Ptr<i8>)| {
        let mut s = String::new();
        lib.read_string_into(p, &mut s)?;
        l2.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        Ok(())
    }));
    ok(count.call((250, &cb, &never, 0, 0)));
    let seen = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let want: Vec<String> = (0..250)
        .map(|i| if i < 100 { i } else { 249 }.to_string())
        .collect();
    assert_eq!(seen, want);
    // A reset keeps the recorder (its module is compiled).
    ok(sb.reset());
    log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    ok(count.call((3, &cb, &never, 0, 0)));
    assert_eq!(
        *log.lock().unwrap_or_else(|p| p.into_inner()),
        ["2", "2", "2"]
    );
}
