//! Sandlink's shared test code: the conformance suite every strategy runs.

pub mod conformance;
pub mod xml;

/// Unwraps a result that must succeed, panicking with the error's message
/// (which names the function, the value and the reason).
pub fn ok<T>(r: sandlink::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// The error of a result that must fail.
pub fn err<T: std::fmt::Debug>(r: sandlink::Result<T>) -> sandlink::Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}
