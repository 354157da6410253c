//! What binding code needs, in one import: `use sandlink::prelude::*;`.
//!
//! The type constructors (`int()`, `string()`, `ptr(t)`, `structure`, …),
//! the function-type pieces (`>>`, `returning`), the binding vocabulary
//! [`Foreign`] with the handles it makes ([`Function`], [`Callback`],
//! [`Owned`], [`Ptr`]), and the error type. The strategies themselves
//! (`Dynamic`, `Sandbox`, `Stubs`, `Process`) are imported by the code that
//! opens a library, not by bindings.

pub use crate::types::*;
pub use crate::{Callback, Error, ErrorKind, Foreign, Function, Isolated, Owned, Result};
