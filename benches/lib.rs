//! Sandlink's benchmarks live in `strategies.rs` (`cargo bench -p
//! sandlink-benches`); this crate has no library code.
