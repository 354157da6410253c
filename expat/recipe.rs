//! How expat 2.5.0 is built through `sandlink-build`: shared by this
//! crate's build script (the embedded wasm module) and by the workspace's
//! `sandlink-clibs` (the native builds that tests compare against), so
//! every copy of expat is compiled the same way.

use std::path::{Path, PathBuf};

use sandlink_build::{Library, StubSpec};

/// Where expat's source tree is: `SANDLINK_EXPAT_SRC`, else the Debian
/// source package that Sandlink's `scripts/setup.sh` fetches into the
/// workspace's `.deps/expat`. A missing source names both ways to supply it.
pub fn source(manifest_dir: &Path) -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed=SANDLINK_EXPAT_SRC");
    let src = std::env::var_os("SANDLINK_EXPAT_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../.deps/expat"));
    if src.join("lib/xmlparse.c").exists() {
        Ok(src)
    } else {
        Err(format!(
            "expat's source is not at {}: set SANDLINK_EXPAT_SRC to an expat 2.5.0 source tree \
             (its `lib/xmlparse.c` must exist), or run Sandlink's `bash scripts/setup.sh`, which \
             fetches Debian's expat 2.5.0 source package into `.deps/expat`",
            src.display()
        ))
    }
}

/// expat from `src`, with this crate's configuration header and WASI
/// entropy source (in `expat_dir`, this crate's folder), its stubs
/// generated from `spec` (the binding module evaluated against a
/// `Recorder`). Built as its authors intend: warnings shown, not fatal.
pub fn library(src: &Path, expat_dir: &Path, spec: StubSpec) -> Library {
    let lib = src.join("lib");
    let own = expat_dir.join("c");
    let mut l = Library::new("expat");
    l.files(["xmlparse.c", "xmlrole.c", "xmltok.c"].map(|f| lib.join(f)))
        .wasm_file(own.join("wasi_entropy.c"))
        .include(&own)
        .include(&lib)
        .define("HAVE_EXPAT_CONFIG_H", "1")
        .stub_header("expat_config.h")
        .stub_header("expat.h")
        .stubs(spec)
        .warnings(false);
    l
}
