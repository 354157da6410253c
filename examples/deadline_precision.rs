//! How far past its deadline a runaway library is stopped, on the Sandbox
//! (epoch interruption) and on the Process worker (the host's wait, then a
//! kill): `h_spin`, an endless loop in `c-libs/hostile`, under a 200 ms
//! deadline, `RUNS` times each (default 100), with a `reset()` after each
//! run (not timed). Prints the median, the 90th percentile and the maximum
//! overshoot. SECURITY.md records a run.
//!
//! `cargo run --release --example deadline_precision -- [RUNS]`

use std::time::{Duration, Instant};

use sandlink::types::*;
use sandlink::{Foreign, Isolated, ProcessConfig, SandboxConfig};

const DEADLINE: Duration = Duration::from_millis(200);

/// The overshoot of each run, sorted.
fn measure<L: Foreign + Isolated>(lib: &L, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let mut over = Vec::with_capacity(runs);
    for _ in 0..runs {
        let spin = lib.function("h_spin", &(void() >> returning(void())))?;
        let start = Instant::now();
        let r = spin.call(());
        let took = start.elapsed();
        anyhow::ensure!(r.is_err(), "h_spin returned");
        over.push(took.saturating_sub(DEADLINE));
        lib.reset()?;
    }
    over.sort();
    Ok(over)
}

fn report(name: &str, over: &[Duration]) {
    let at = |q: f64| over[((over.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:8} runs {:4}  median +{:6.1} ms  p90 +{:6.1} ms  max +{:6.1} ms",
        over.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
}

fn main() -> anyhow::Result<()> {
    let runs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100,
    };
    anyhow::ensure!(runs > 0, "RUNS must be at least 1");
    println!("deadline {DEADLINE:?}: how far past it the call returned");
    let sb = SandboxConfig::default()
        .deadline(DEADLINE)
        .open(sandlink_clibs::HOSTILE_WASM)?;
    report("Sandbox", &measure(&sb, runs)?);
    let worker = ProcessConfig::default()
        .deadline(DEADLINE)
        .open(sandlink_clibs::HOSTILE_SO)?;
    report("Process", &measure(&worker, runs)?);
    Ok(())
}
