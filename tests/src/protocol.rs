//! One Process session that walks the worker protocol the way bindings do:
//! binding testlib whole (a symbol and constant per function), scalars,
//! strings both ways, a string the library allocates and frees, buffers,
//! out-parameters, callbacks that read what C lends them and call back in,
//! a function pointer returned and bound, host-side reads.
//!
//! Run on a real worker, it records the worker's replies
//! (`ProcessConfig::record_replies`, feature `fuzzing`): that recording is
//! the seed of the `worker_protocol` fuzz target, which runs this same
//! session against a scripted worker saying whatever the fuzzer chose.

use std::sync::{Arc, Mutex};

use sandlink::types::*;
use sandlink::{Foreign, Isolated, Result};
use sandlink_testlib::Testlib;

use crate::conformance::visit_strings;

/// Each step's outcome, in order: its value as text, or its error. A step
/// runs whatever earlier steps returned.
pub fn session<L: Foreign + Isolated + Clone + Send + 'static>(lib: &L) -> Vec<Result<String>> {
    let mut out = Vec::new();
    let mut step = |r: Result<String>| out.push(r);
    let t = match Testlib::bind(lib) {
        Ok(t) => t,
        Err(e) => {
            step(Err(e));
            return out;
        }
    };
    step(t.int_add.call((2, 40)).map(|v| v.to_string()));
    step(t.double_fma.call((1.5, 2.0, 0.25)).map(|v| v.to_string()));
    step(t.greeting.call(()));
    step(
        t.strlen
            .call(("a string the worker copies",))
            .map(|v| v.to_string()),
    );
    step(t.dup_upper.call(("shout", 0)).and_then(|s| match s {
        Some(s) => lib.take_str(s, &t.free_str),
        None => Ok("NULL".into()),
    }));
    step(
        t.checksum
            .call((&b"checksummed"[..],))
            .map(|v| v.to_string()),
    );
    let mut upper = [b'x'; 12];
    step(
        t.upper_into
            .call((&mut upper[..],))
            .map(|()| String::from_utf8_lossy(&upper).into_owned()),
    );
    step((|| {
        let q = lib.alloc(&int(), 1)?;
        let r = lib.alloc(&int(), 1)?;
        let ret = t.divmod.call((17, 5, q.ptr(), r.ptr()))?;
        let read = (lib.read(&int(), q.ptr())?, lib.read(&int(), r.ptr())?);
        let bytes = lib.read_bytes(q.ptr(), 4)?;
        Ok(format!("{ret} {read:?} {bytes:?}"))
    })());
    step((|| {
        let xs = lib.alloc(&int(), 4)?;
        for k in 0..4 {
            lib.write(&int(), xs.elem(k)?, k as i32 + 1)?;
        }
        // A callback that calls back in, as expat's handlers do.
        let add = t.int_add.clone();
        let cb = lib.callback(&t.step_fn, move |(acc, x)| add.call((acc, x)))?;
        Ok(t.fold.call((&cb, xs.ptr(), 4, 100))?.to_string())
    })());
    step((|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s2, l2) = (seen.clone(), lib.clone());
        let cb = lib.callback(&t.visit_ref_fn, move |(_ud, tag, attrs)| {
            let names = visit_strings(&l2, tag, attrs, 16)?;
            s2.lock().unwrap_or_else(|p| p.into_inner()).push(names);
            Ok(())
        })?;
        t.visit_ref.call((&cb, None))?;
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        Ok(format!("{seen:?}"))
    })());
    step((|| {
        let code = t.get_doubler.call(())?;
        let doubler = lib.function_at(&code)?;
        Ok(doubler.call((21,))?.to_string())
    })());
    step((|| {
        // Batched callbacks: recorded calls arrive in `BATCH` upcalls, one
        // before the unbatched callback and one before the result, each
        // with the strings it copied.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s2, l2) = (seen.clone(), lib.clone());
        let cb = lib.callback_batched(&t.visit_ref_fn, move |(_ud, tag, attrs)| {
            let names = visit_strings(&l2, tag, attrs, 16)?.join(" ");
            s2.lock().unwrap_or_else(|p| p.into_inner()).push(names);
            Ok(())
        })?;
        t.visit_ref.call((&cb, None))?;
        let (s3, l2) = (seen.clone(), lib.clone());
        let numbers = lib.callback_batched(&t.count_fn, move |(_ud, s)| {
            let s = l2.read_str(s)?;
            s3.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            Ok(())
        })?;
        let s4 = seen.clone();
        let every = lib.callback(&t.int_fn, move |(i,)| {
            s4.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("g{i}"));
            Ok(i)
        })?;
        t.count.call((4, &numbers, &every, 2, None))?;
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        Ok(seen.join(","))
    })());
    out
}
