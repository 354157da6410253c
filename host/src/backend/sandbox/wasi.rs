//! WASI, bounded: the preview-1 functions `wasmtime_wasi` provides, with
//! the few that can wait or hold host resources wrapped so that a library
//! cannot use them to outlast its deadline or exhaust the host.
//!
//! - `poll_oneoff` (what `sleep`, `nanosleep` and `poll` become): a wait on
//!   clocks alone that would end after the call's deadline waits until the
//!   deadline and then traps as the deadline does ([`TrapKind::Deadline`]),
//!   so no host call outlives the deadline and the sandbox's lock is always
//!   released. Absolute clock times are refused (`ENOTSUP`).
//! - `path_open`, `fd_close`, `fd_renumber`: descriptors a library opened are
//!   counted, and past [`SandboxConfig::max_open_files`] `path_open` fails
//!   with `EMFILE`: each is a descriptor of the host process.
//!
//! [`TrapKind::Deadline`]: crate::TrapKind::Deadline
//! [`SandboxConfig::max_open_files`]: super::SandboxConfig::max_open_files

use std::time::Duration;

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wiggle::GuestMemory;

use super::engine::EPOCH_TICK;
use super::State;

const MODULE: &str = "wasi_snapshot_preview1";

/// WASI error numbers (preview 1's `errno`).
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const EMFILE: i32 = 33;
const ENOTSUP: i32 = 58;

/// The size of a `subscription` record and the offsets read from it.
const SUBSCRIPTION: usize = 48;
const TAG: usize = 8;
const CLOCK_TIMEOUT: usize = 24;
const CLOCK_FLAGS: usize = 40;
const TAG_CLOCK: u8 = 0;
const ABSTIME: u16 = 1;

/// Adds WASI preview 1 to `linker`, with the wrappers above.
pub(super) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, |s: &mut State| &mut s.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(MODULE, "poll_oneoff", poll_oneoff)?;
    linker.func_wrap(MODULE, "path_open", path_open)?;
    linker.func_wrap(MODULE, "fd_close", fd_close)?;
    linker.func_wrap(MODULE, "fd_renumber", fd_renumber)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Runs one of `wasmtime_wasi`'s preview-1 functions on the caller's memory
/// and WASI context, as its own linker entry would.
fn with_wasi<R>(
    caller: &mut Caller<'_, State>,
    f: impl FnOnce(&mut State, &mut GuestMemory<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("the module exports no memory for WASI to use");
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    f(state, &mut GuestMemory::Unshared(bytes))
}

/// What is left of the running call's deadline.
fn remaining(state: &State) -> Duration {
    let now = state.ticks.load(std::sync::atomic::Ordering::Relaxed);
    let ticks = state.deadline_tick.saturating_sub(now);
    EPOCH_TICK.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
}

fn poll_oneoff(
    mut caller: Caller<'_, State>,
    subs: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    // The earliest clock timeout, if every subscription is a relative clock
    // (a descriptor subscription returns at once: files are always ready).
    let wait = {
        let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
            wasmtime::bail!("the module exports no memory for WASI to use");
        };
        let data = memory.data(&caller);
        let start = subs as u32 as usize;
        let len = (count as u32 as usize).saturating_mul(SUBSCRIPTION);
        if count == 0 {
            return Ok(EINVAL);
        }
        let Some(records) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
            return Ok(EFAULT);
        };
        let mut earliest: Option<u64> = None;
        let mut clocks_only = true;
        for sub in records.chunks_exact(SUBSCRIPTION) {
            if sub[TAG] != TAG_CLOCK {
                clocks_only = false;
                continue;
            }
            let flags = u16::from_le_bytes([sub[CLOCK_FLAGS], sub[CLOCK_FLAGS + 1]]);
            if flags & ABSTIME != 0 {
                return Ok(ENOTSUP);
            }
            let mut t = [0u8; 8];
            t.copy_from_slice(&sub[CLOCK_TIMEOUT..CLOCK_TIMEOUT + 8]);
            let t = u64::from_le_bytes(t);
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
        earliest.filter(|_| clocks_only).map(Duration::from_nanos)
    };
    if let Some(wait) = wait {
        let left = remaining(caller.data());
        if wait >= left {
            // It would outlive the deadline: the library's time ends here.
            std::thread::sleep(left);
            return Err(wasmtime::Trap::Interrupt.into());
        }
    }
    with_wasi(&mut caller, |state, memory| {
        wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(
            &mut state.wasi,
            memory,
            subs,
            events,
            count,
            nevents,
        ))
    })
}

#[allow(clippy::too_many_arguments)] // WASI's own signature
fn path_open(
    mut caller: Caller<'_, State>,
    dirfd: i32,
    dirflags: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    rights_base: i64,
    rights_inheriting: i64,
    fdflags: i32,
    opened: i32,
) -> wasmtime::Result<i32> {
    let state = caller.data();
    if state.open_files >= state.max_open_files {
        return Ok(EMFILE);
    }
    let errno = with_wasi(&mut caller, |state, memory| {
        wasmtime_wasi::runtime::in_tokio(p1::path_open(
            &mut state.wasi,
            memory,
            dirfd,
            dirflags,
            path,
            path_len,
            oflags,
            rights_base,
            rights_inheriting,
            fdflags,
            opened,
        ))
    })?;
    if errno == 0 {
        caller.data_mut().open_files += 1;
    }
    Ok(errno)
}

fn fd_close(mut caller: Caller<'_, State>, fd: i32) -> wasmtime::Result<i32> {
    let errno = with_wasi(&mut caller, |state, memory| {
        wasmtime_wasi::runtime::in_tokio(p1::fd_close(&mut state.wasi, memory, fd))
    })?;
    if errno == 0 {
        let state = caller.data_mut();
        state.open_files = state.open_files.saturating_sub(1);
    }
    Ok(errno)
}

fn fd_renumber(mut caller: Caller<'_, State>, from: i32, to: i32) -> wasmtime::Result<i32> {
    let errno = with_wasi(&mut caller, |state, memory| {
        wasmtime_wasi::runtime::in_tokio(p1::fd_renumber(&mut state.wasi, memory, from, to))
    })?;
    if errno == 0 && from != to {
        // `to` was closed to take `from`'s place.
        let state = caller.data_mut();
        state.open_files = state.open_files.saturating_sub(1);
    }
    Ok(errno)
}
