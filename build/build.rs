//! Records the triple this crate is built for, which is the host that runs
//! the build scripts using it: the native target when `TARGET` is not set.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
    println!("cargo:rustc-env=SANDLINK_BUILD_HOST={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
