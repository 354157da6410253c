//! Compiles the Process strategy's worker (`worker/worker.c`) into an
//! executable the host embeds, when the `process` feature is on.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_PROCESS").is_none() {
        return;
    }
    if let Err(e) = build_worker() {
        eprintln!("error: cannot build sandlink's process worker: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(feature = "process"))]
fn build_worker() -> Result<(), String> {
    Ok(())
}

#[cfg(feature = "process")]
fn build_worker() -> Result<(), String> {
    use std::path::PathBuf;

    let src = "worker/worker.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?)
        .join("sandlink-worker");
    let compiler = cc::Build::new()
        .opt_level(2)
        .debug(false)
        .cargo_metadata(false)
        .try_get_compiler()
        .map_err(|e| e.to_string())?;
    let mut cmd = compiler.to_command();
    cmd.args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(src)
        .args(["-lffi", "-ldl"]);
    let output = cmd
        .output()
        .map_err(|e| format!("running {:?}: {e}", compiler.path()))?;
    if !output.status.success() {
        return Err(format!(
            "{:?} failed ({}); is libffi-dev installed?\n{}",
            cmd,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
