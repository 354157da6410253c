//! Finding a C compiler that targets wasm32-wasi, and naming what to install
//! when a piece is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// What to do about a missing toolchain, in every such error.
pub(crate) const INSTALL_HINT: &str = "on Debian or Ubuntu install the packages \
     `clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32`; or set WASI_SDK_PATH to an \
     unpacked wasi-sdk; or set CC_wasm32_wasip1 to a clang that targets wasm32-wasi";

/// The environment variables that choose the compiler, in the order they are
/// consulted (the `cc` crate's `CC_<target>` convention, then wasi-sdk's).
pub const COMPILER_VARS: [&str; 5] = [
    "CC_wasm32_wasip1",
    "CC_wasm32-wasip1",
    "CC_wasm32_wasi",
    "CC_wasm32-wasi",
    "WASI_SDK_PATH",
];

/// A clang that compiles C for wasm32-wasi and links with wasm-ld, plus the
/// flags it needs (a sysroot for wasi-sdk).
#[derive(Clone, Debug)]
pub struct Toolchain {
    clang: PathBuf,
    flags: Vec<String>,
    /// Where it came from, for messages.
    origin: String,
}

impl Toolchain {
    /// Finds the toolchain: a `CC_wasm32_wasip1`-style override, else
    /// `WASI_SDK_PATH`, else Debian's clang-19 with lld-19, wasi-libc and the
    /// wasm32 compiler-rt. A missing piece is an error naming what to install.
    pub fn find() -> Result<Toolchain, Error> {
        for var in &COMPILER_VARS[..4] {
            if let Some(cc) = env::var_os(var) {
                let clang = PathBuf::from(&cc);
                probe(&clang, &format!("{var}={}", clang.display()))?;
                return Ok(Toolchain {
                    clang,
                    flags: Vec::new(),
                    origin: format!("{var}={}", Path::new(&cc).display()),
                });
            }
        }
        if let Some(sdk) = env::var_os("WASI_SDK_PATH") {
            let sdk = PathBuf::from(sdk);
            let clang = sdk.join("bin/clang");
            let origin = format!("WASI_SDK_PATH={}", sdk.display());
            if !clang.exists() {
                return Err(Error::Toolchain {
                    problem: format!("{origin} has no bin/clang"),
                    fix: INSTALL_HINT.into(),
                });
            }
            let sysroot = sdk.join("share/wasi-sysroot");
            if !sysroot.exists() {
                return Err(Error::Toolchain {
                    problem: format!("{origin} has no share/wasi-sysroot"),
                    fix: INSTALL_HINT.into(),
                });
            }
            return Ok(Toolchain {
                clang,
                flags: vec![format!("--sysroot={}", sysroot.display())],
                origin,
            });
        }
        Self::debian()
    }

    /// Debian's packages: clang-19, lld-19, wasi-libc, libclang-rt-19-dev-wasm32.
    fn debian() -> Result<Toolchain, Error> {
        let clang = ["clang-19", "/usr/lib/llvm-19/bin/clang"]
            .iter()
            .map(PathBuf::from)
            .find(|c| runs(c))
            .ok_or_else(|| Error::Toolchain {
                problem: "no clang-19 on PATH or in /usr/lib/llvm-19/bin (package clang-19)".into(),
                fix: INSTALL_HINT.into(),
            })?;
        // Check the other packages now, so a missing one is named instead of
        // surfacing as a link error.
        for (path, pkg) in [
            ("/usr/lib/llvm-19/bin/wasm-ld", "lld-19"),
            ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
            (
                "/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a",
                "libclang-rt-19-dev-wasm32",
            ),
        ] {
            if !Path::new(path).exists() {
                return Err(Error::Toolchain {
                    problem: format!("{path} is missing (package {pkg})"),
                    fix: INSTALL_HINT.into(),
                });
            }
        }
        // Debian's clang searches /usr/include after wasi-libc's headers
        // (its WASI sysroot is `/`), so a header wasi-libc lacks would come
        // from the host's C library. Only clang's own headers and wasi-libc's
        // are searched.
        let resource = Command::new(&clang)
            .arg("-print-resource-dir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.join("include").is_dir())
            .ok_or_else(|| Error::Toolchain {
                problem: format!(
                    "`{} -print-resource-dir` names no include directory",
                    clang.display()
                ),
                fix: INSTALL_HINT.into(),
            })?;
        let flags = vec![
            "-nostdinc".to_string(),
            format!("-isystem{}", resource.join("include").display()),
            "-isystem/usr/include/wasm32-wasi".to_string(),
        ];
        Ok(Toolchain {
            origin: clang.display().to_string(),
            clang,
            flags,
        })
    }

    /// The flags every wasm32-wasi compile takes (the header search path).
    #[cfg_attr(not(feature = "generate"), allow(dead_code))]
    pub(crate) fn wasm_flags(&self) -> &[String] {
        &self.flags
    }

    /// The compiler.
    pub fn clang(&self) -> &Path {
        &self.clang
    }

    /// A command running the compiler for wasm32-wasi with its own flags.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.clang);
        cmd.arg("--target=wasm32-wasi").args(&self.flags);
        cmd
    }

    /// Where it came from (the variable that chose it, or its path).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

fn runs(c: &Path) -> bool {
    Command::new(c)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn probe(clang: &Path, origin: &str) -> Result<(), Error> {
    if runs(clang) {
        Ok(())
    } else {
        Err(Error::Toolchain {
            problem: format!(
                "{origin} does not run (`{} --version` failed)",
                clang.display()
            ),
            fix: INSTALL_HINT.into(),
        })
    }
}
