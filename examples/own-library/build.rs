//! Builds cJSON twice from Debian's source: a wasm32-wasi module for the
//! Sandbox and a native shared object for Dynamic. This is all it takes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = here.join(".deps/cjson");
    if !src.join("cJSON.c").exists() {
        // Fetch it once (apt-get source, into .deps/; see fetch-cjson.sh).
        let ok = Command::new("bash")
            .arg(here.join("fetch-cjson.sh"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cJSON's source is missing and fetch-cjson.sh failed; run it by hand");
            std::process::exit(1);
        }
    }
    sandlink_build::Library::new("cjson")
        .file(src.join("cJSON.c"))
        .include(&src)
        .exports([
            "cJSON_Version",
            "cJSON_Parse",
            "cJSON_GetErrorPtr",
            "cJSON_Print",
            "cJSON_Delete",
            "cJSON_free",
        ])
        .native(true)
        .compile();
}
