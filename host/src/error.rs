//! The one error type of the crate.

use crate::types::DataModel;

/// Shorthand for `Result<T, sandlink::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong binding, calling or reading a C library.
///
/// Every message names what failed, where (function, address, type) and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The shared library (or module) could not be loaded.
    #[error("{strategy}: cannot load library `{library}`: {reason}")]
    Load {
        /// The strategy the library runs on.
        strategy: StrategyKind,
        /// Path or name given.
        library: String,
        /// What the loader said.
        reason: String,
    },

    /// A function or global is not in the library.
    #[error("{strategy}: symbol `{symbol}` not found in `{library}`: {reason}")]
    MissingSymbol {
        /// The strategy the library runs on.
        strategy: StrategyKind,
        /// Library searched.
        library: String,
        /// Name asked for.
        symbol: String,
        /// What the loader said.
        reason: String,
    },

    /// The declared signature does not match what the library exports.
    #[error("signature mismatch for `{function}`: declared {declared}, library has {actual}")]
    SignatureMismatch {
        /// Function name.
        function: String,
        /// What the binding declared (lowered).
        declared: String,
        /// What the library exports.
        actual: String,
    },

    /// A type cannot be passed or returned the way the binding asks.
    #[error("{what} of type `{c_type}` cannot be passed: {reason}")]
    NotPassable {
        /// Which argument or return value.
        what: String,
        /// Its C type.
        c_type: String,
        /// Why.
        reason: String,
    },

    /// A type has no layout (incomplete, or not sealed yet).
    #[error("no layout for `{c_type}`: {reason}")]
    Layout {
        /// The C type.
        c_type: String,
        /// Why.
        reason: String,
    },

    /// A value does not fit the C type under the library's data model.
    #[error("{}{what}: value out of range for `{c_type}` ({model}): {reason}", call_prefix(.function))]
    OutOfRange {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Where the value was going.
        what: String,
        /// The C type.
        c_type: String,
        /// The library's data model.
        model: DataModel,
        /// The value and limits.
        reason: String,
    },

    /// A Rust string holds a NUL byte, so C would see it cut short.
    #[error("{}{what}: string has an interior NUL byte at index {index}; C would see it truncated", call_prefix(.function))]
    InteriorNul {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Where the string was going.
        what: String,
        /// Byte index of the NUL.
        index: usize,
    },

    /// The library gave NULL where a non-NULL pointer was declared.
    #[error("{}{what}: NULL pointer where `{c_type}` must not be NULL (declare it with an `_opt` type if NULL is valid)", call_prefix(.function))]
    NullPointer {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Where the pointer came from.
        what: String,
        /// The declared C type.
        c_type: String,
    },

    /// Bytes from the library are not valid UTF-8 where a `String` was asked for.
    #[error("{}{what}: string at {address:#x} is not valid UTF-8: {reason}", call_prefix(.function))]
    InvalidUtf8 {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Where the string came from.
        what: String,
        /// Its address in the library's memory.
        address: u64,
        /// The decoder's message.
        reason: String,
    },

    /// No NUL byte within the string length limit.
    #[error("{}string at {address:#x} has no NUL terminator within {limit} bytes", call_prefix(.function))]
    Unterminated {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Address in the library's memory.
        address: u64,
        /// The limit searched.
        limit: u64,
    },

    /// An access outside the library's memory.
    #[error("{}{what}: access of {len} bytes at {address:#x} is outside the library's memory ({size} bytes)", call_prefix(.function))]
    OutOfBounds {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// What was being accessed.
        what: String,
        /// Start address.
        address: u64,
        /// Length of the access.
        len: u64,
        /// Size of the memory.
        size: u64,
    },

    /// A value from the library is not valid for its Rust type.
    #[error("{}{what}: invalid value: {reason}", call_prefix(.function))]
    InvalidValue {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Where it came from.
        what: String,
        /// Why it was rejected.
        reason: String,
    },

    /// Allocation in the library's memory failed.
    #[error("{}cannot allocate {size} bytes in the library's memory: {reason}", call_prefix(.function))]
    Alloc {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Bytes asked for.
        size: u64,
        /// Why.
        reason: String,
    },

    /// A callback failed; the C code saw a zero return instead.
    #[error("{}callback `{callback}` failed: {source}", call_prefix(.function))]
    Callback {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// The callback's C type.
        callback: String,
        /// What went wrong inside it.
        #[source]
        source: Box<Error>,
    },

    /// A callback's closure panicked; the panic was caught at the C boundary.
    #[error("{}callback `{callback}` panicked: {message}", call_prefix(.function))]
    CallbackPanicked {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// The callback's C type.
        callback: String,
        /// The panic payload, if it was a string.
        message: String,
    },

    /// The library called a callback after its [`crate::Callback`] handle
    /// was dropped. C saw zero (a defined no-op, never a freed closure),
    /// and the call it happened in fails with this. Keep a callback for as
    /// long as the library may call it (expat's handlers: as long as the
    /// parser).
    #[error("{}the library called the callback at {address:#x} after its handle was dropped; C saw zero. Keep a `Callback` alive for as long as the library may call it", call_prefix(.function))]
    CallbackDropped {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// The callback's address in the library.
        address: u64,
    },

    /// The sandboxed library trapped; the sandbox is now poisoned (only the
    /// Sandbox strategy traps).
    #[error("Sandbox: `{function}` trapped: {kind}; the sandbox is poisoned until reset(){}", if backtrace.is_empty() { String::new() } else { format!("\nwasm backtrace:\n{backtrace}") })]
    Trap {
        /// The C function that was called.
        function: String,
        /// What went wrong.
        kind: TrapKind,
        /// The wasm backtrace, innermost frame first.
        backtrace: String,
    },

    /// The library called `exit` (or `_Exit`) in the Sandbox or in a
    /// Process worker; the library is now poisoned.
    #[error(
        "{strategy}: `{function}` called exit({code}) in the library; the library is poisoned until reset()"
    )]
    Exited {
        /// The strategy the library runs on.
        strategy: StrategyKind,
        /// The C function that was called.
        function: String,
        /// The exit status.
        code: i32,
    },

    /// The Process strategy's worker crashed, was killed by its seccomp
    /// filter, ran past its deadline or broke the protocol; the handle is
    /// now poisoned.
    #[error(
        "Process: `{function}`: the worker process {reason}; the library is poisoned until reset()"
    )]
    WorkerFailed {
        /// The C function (or operation) in progress.
        function: String,
        /// What happened to the worker.
        reason: String,
    },

    /// An earlier failure (a trap, an exit, a crashed worker) poisoned an
    /// isolated library; call `reset()` to get a fresh instance.
    #[error("{strategy}: {}`{library}` is poisoned by an earlier failure ({reason}); call reset() first", call_prefix(.function))]
    Poisoned {
        /// The strategy the library runs on.
        strategy: StrategyKind,
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// The module.
        library: String,
        /// The failure that poisoned it.
        reason: String,
    },

    /// A pointer or callback from one library was used with another.
    #[error("{}{what}: the pointer {address:#x} belongs to another library instance; pointers and callbacks are valid only with the library they came from", call_prefix(.function))]
    ForeignPointer {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Where it was used.
        what: String,
        /// Its address in its own library.
        address: u64,
    },

    /// A pointer from before a `reset()` was used after it: the memory it
    /// pointed into is gone.
    #[error("{}{what}: the pointer {address:#x} is from before a reset (generation {generation}, now {current}); the memory it pointed into is gone", call_prefix(.function))]
    StalePointer {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// Where it was used.
        what: String,
        /// Its address.
        address: u64,
        /// The reset generation it came from.
        generation: u64,
        /// The library's current generation.
        current: u64,
    },

    /// A limit was reached: which one, and the setting that raises it.
    #[error("{strategy}: {}`{library}`: {limit} reached; raise {setting} to allow more ({reason})", call_prefix(.function))]
    LimitReached {
        /// The strategy the library runs on.
        strategy: StrategyKind,
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// The module.
        library: String,
        /// The limit, with its value.
        limit: String,
        /// The configuration setting that controls it.
        setting: &'static str,
        /// What the runtime reported.
        reason: String,
    },

    /// The library's handle is in a state that refuses the operation now: a
    /// call is in progress (a reset asked for from inside one), or the
    /// same callback or handler is already running or borrowed
    /// (re-entrancy).
    #[error("{}{what} is busy: {reason}", call_prefix(.function))]
    Busy {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// What is busy: the library, a callback, a binding crate's object.
        what: String,
        /// What is in progress, and what to do instead.
        reason: String,
    },

    /// The API was used in a way it does not allow (an operation that the
    /// binding, the configuration or the value given does not support).
    #[error("{}{what}: {reason}", call_prefix(.function))]
    Usage {
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// What was asked for.
        what: String,
        /// Why it is not allowed, and what to do instead.
        reason: String,
    },

    /// The library's side refused an operation it should have carried out
    /// (the Process strategy's worker answering a call or a callback's
    /// creation with an error).
    #[error("{strategy}: {}`{library}` refused {what}: {reason}", call_prefix(.function))]
    Refused {
        /// The strategy the library runs on.
        strategy: StrategyKind,
        /// The C function being called, when it happened in a call.
        function: Option<String>,
        /// The library.
        library: String,
        /// The operation refused.
        what: String,
        /// What the library's side said.
        reason: String,
    },

    /// The operation is not supported by this strategy or on this platform
    /// (a direct call on a strategy that makes none, a library operation on
    /// the build-time recorder, a seccomp filter on an architecture
    /// seccompiler does not know).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Why sandboxed code stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrapKind {
    /// The execution deadline passed.
    Deadline,
    /// Wasm recursion exhausted the stack limit.
    StackOverflow,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// `unreachable` executed: `abort()`, `__builtin_trap()`, a failed check.
    Unreachable,
    /// A call through a NULL (or released) function-table slot.
    IndirectCallToNull,
    /// A call through a function pointer of the wrong type.
    BadSignature,
    /// A call through a function pointer past the end of the table.
    TableOutOfBounds,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// Integer overflow in division or float-to-int conversion.
    IntegerOverflow,
    /// A `longjmp` (a wasm exception) that no frame of the call caught: its
    /// `setjmp`'s function had returned, or a host callback lies between
    /// the two (a longjmp never crosses host frames).
    UncaughtLongjmp,
    /// Anything else, with the runtime's description.
    Other(String),
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapKind::Deadline => f.write_str("execution deadline exceeded"),
            TrapKind::StackOverflow => f.write_str("wasm stack overflow"),
            TrapKind::MemoryOutOfBounds => f.write_str("out-of-bounds memory access"),
            TrapKind::Unreachable => f.write_str("unreachable executed (abort or trap)"),
            TrapKind::IndirectCallToNull => {
                f.write_str("call through a NULL or released function pointer")
            }
            TrapKind::BadSignature => {
                f.write_str("call through a function pointer of the wrong type")
            }
            TrapKind::TableOutOfBounds => f.write_str("call through an invalid function pointer"),
            TrapKind::IntegerDivisionByZero => f.write_str("integer division by zero"),
            TrapKind::IntegerOverflow => f.write_str("integer overflow"),
            TrapKind::UncaughtLongjmp => f.write_str(
                "longjmp with no active setjmp in this call to catch it (the setjmp's \
                 function returned, or a host callback lies between them: a longjmp \
                 never crosses host frames)",
            ),
            TrapKind::Other(s) => f.write_str(s),
        }
    }
}

/// The strategy an [`Error`] comes from ([`Error::strategy`]); its
/// messages start with the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StrategyKind {
    /// [`crate::Dynamic`]: `dlopen` and libffi, in the host's process.
    Dynamic,
    /// [`crate::Stubs`]: generated C wrappers linked into the host.
    Stubs,
    /// [`crate::Sandbox`]: wasm in wasmtime, in the host's process.
    Sandbox,
    /// [`crate::Process`]: a worker process.
    Process,
    /// The build-time [`crate::record::Recorder`], which runs nothing.
    Recorder,
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StrategyKind::Dynamic => "Dynamic",
            StrategyKind::Stubs => "Stubs",
            StrategyKind::Sandbox => "Sandbox",
            StrategyKind::Process => "Process",
            StrategyKind::Recorder => "Recorder",
        })
    }
}

/// Who is at fault for an [`Error`], for callers that react by class
/// rather than by variant (see [`Error::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The binding does not fit the library: it cannot be loaded, a symbol
    /// is missing, a signature or layout disagrees, a type cannot be passed.
    Binding,
    /// The library misbehaved: it trapped, exited, returned a value that
    /// fails validation, or hit a resource limit.
    Library,
    /// The host misused the API: a value that does not fit its C type, a
    /// string with a NUL, a pointer from another library or from before a
    /// reset, a poisoned sandbox, re-entrancy, a callback dropped while the
    /// library still held it.
    Misuse,
    /// A host callback failed or panicked while C was running it.
    Callback,
    /// Something this strategy or type does not support.
    Unsupported,
}

/// The variants with a `function: Option<String>` field (those that can
/// happen during a call), as one pattern binding that field: listed once
/// for [`Error::function`] and [`Error::in_call`].
macro_rules! call_variants {
    ($f:ident) => {
        Error::OutOfRange { function: $f, .. }
            | Error::InteriorNul { function: $f, .. }
            | Error::NullPointer { function: $f, .. }
            | Error::InvalidUtf8 { function: $f, .. }
            | Error::Unterminated { function: $f, .. }
            | Error::OutOfBounds { function: $f, .. }
            | Error::InvalidValue { function: $f, .. }
            | Error::Alloc { function: $f, .. }
            | Error::Callback { function: $f, .. }
            | Error::CallbackPanicked { function: $f, .. }
            | Error::CallbackDropped { function: $f, .. }
            | Error::Poisoned { function: $f, .. }
            | Error::ForeignPointer { function: $f, .. }
            | Error::StalePointer { function: $f, .. }
            | Error::LimitReached { function: $f, .. }
            | Error::Busy { function: $f, .. }
            | Error::Usage { function: $f, .. }
            | Error::Refused { function: $f, .. }
    };
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Load { .. }
            | Error::MissingSymbol { .. }
            | Error::SignatureMismatch { .. }
            | Error::NotPassable { .. }
            | Error::Layout { .. } => ErrorKind::Binding,
            Error::NullPointer { .. }
            | Error::InvalidUtf8 { .. }
            | Error::Unterminated { .. }
            | Error::OutOfBounds { .. }
            | Error::InvalidValue { .. }
            | Error::Alloc { .. }
            | Error::Trap { .. }
            | Error::Exited { .. }
            | Error::WorkerFailed { .. }
            | Error::Refused { .. }
            | Error::LimitReached { .. } => ErrorKind::Library,
            Error::OutOfRange { .. }
            | Error::InteriorNul { .. }
            | Error::ForeignPointer { .. }
            | Error::StalePointer { .. }
            | Error::CallbackDropped { .. }
            | Error::Busy { .. }
            | Error::Usage { .. }
            | Error::Poisoned { .. } => ErrorKind::Misuse,
            Error::Callback { .. } | Error::CallbackPanicked { .. } => ErrorKind::Callback,
            Error::Unsupported(_) => ErrorKind::Unsupported,
        }
    }

    /// The C function being called when this error happened, if it
    /// happened in a call (or names a function, as a signature mismatch does).
    pub fn function(&self) -> Option<&str> {
        match self {
            Error::Trap { function, .. }
            | Error::Exited { function, .. }
            | Error::WorkerFailed { function, .. }
            | Error::SignatureMismatch { function, .. } => Some(function),
            call_variants!(function) => function.as_deref(),
            Error::Load { .. }
            | Error::MissingSymbol { .. }
            | Error::NotPassable { .. }
            | Error::Layout { .. }
            | Error::Unsupported(_) => None,
        }
    }

    /// The strategy this error comes from, where it comes from one (its
    /// message starts with the name): `Dynamic`, `Stubs`, `Sandbox` or
    /// `Process`. `None` for what the binding layer finds before any
    /// strategy is involved, the same on all four: a value out of range, a
    /// string with a NUL, a type that cannot be passed, a stale or foreign
    /// pointer, a failed callback.
    pub fn strategy(&self) -> Option<StrategyKind> {
        match self {
            Error::Load { strategy, .. }
            | Error::MissingSymbol { strategy, .. }
            | Error::Exited { strategy, .. }
            | Error::Poisoned { strategy, .. }
            | Error::LimitReached { strategy, .. }
            | Error::Refused { strategy, .. } => Some(*strategy),
            Error::Trap { .. } => Some(StrategyKind::Sandbox),
            Error::WorkerFailed { .. } => Some(StrategyKind::Process),
            Error::SignatureMismatch { .. }
            | Error::NotPassable { .. }
            | Error::Layout { .. }
            | Error::OutOfRange { .. }
            | Error::InteriorNul { .. }
            | Error::NullPointer { .. }
            | Error::InvalidUtf8 { .. }
            | Error::Unterminated { .. }
            | Error::OutOfBounds { .. }
            | Error::InvalidValue { .. }
            | Error::Alloc { .. }
            | Error::Callback { .. }
            | Error::CallbackPanicked { .. }
            | Error::CallbackDropped { .. }
            | Error::ForeignPointer { .. }
            | Error::StalePointer { .. }
            | Error::Busy { .. }
            | Error::Usage { .. }
            | Error::Unsupported(_) => None,
        }
    }

    /// Records that this error happened in a call to `name`: sets the
    /// `function` field where the variant has one and it is still empty.
    /// The variants with no such field happen before any call (binding,
    /// layout), except [`Error::NotPassable`] and [`Error::Unsupported`],
    /// whose text gains the name, so it is never lost.
    pub fn in_call(mut self, name: &str) -> Error {
        match &mut self {
            call_variants!(function) => {
                function.get_or_insert_with(|| name.to_string());
            }
            Error::NotPassable { what, .. } => *what = format!("in call to `{name}`: {what}"),
            Error::Unsupported(what) => *what = format!("in call to `{name}`: {what}"),
            Error::Trap { .. }
            | Error::Exited { .. }
            | Error::WorkerFailed { .. }
            | Error::SignatureMismatch { .. }
            | Error::Load { .. }
            | Error::MissingSymbol { .. }
            | Error::Layout { .. } => {}
        }
        self
    }
}

/// The `in call to ...: ` prefix of a message, when the error happened in a call.
fn call_prefix(function: &Option<String>) -> String {
    match function {
        Some(f) => format!("in call to `{f}`: "),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant, with the class each must have. The
    /// `match` in `every_variant_is_classified` has no wildcard, so a new
    /// variant does not compile until it is listed there, and so here.
    fn every_variant() -> Vec<(Error, ErrorKind)> {
        let s = || "x".to_string();
        let f = || None;
        vec![
            (
                Error::Load {
                    strategy: StrategyKind::Sandbox,
                    library: s(),
                    reason: s(),
                },
                ErrorKind::Binding,
            ),
            (
                Error::MissingSymbol {
                    strategy: StrategyKind::Sandbox,
                    library: s(),
                    symbol: s(),
                    reason: s(),
                },
                ErrorKind::Binding,
            ),
            (
                Error::SignatureMismatch {
                    function: s(),
                    declared: s(),
                    actual: s(),
                },
                ErrorKind::Binding,
            ),
            (
                Error::NotPassable {
                    what: s(),
                    c_type: s(),
                    reason: s(),
                },
                ErrorKind::Binding,
            ),
            (
                Error::Layout {
                    c_type: s(),
                    reason: s(),
                },
                ErrorKind::Binding,
            ),
            (
                Error::OutOfRange {
                    function: f(),
                    what: s(),
                    c_type: s(),
                    model: DataModel::Ilp32,
                    reason: s(),
                },
                ErrorKind::Misuse,
            ),
            (
                Error::InteriorNul {
                    function: f(),
                    what: s(),
                    index: 1,
                },
                ErrorKind::Misuse,
            ),
            (
                Error::NullPointer {
                    function: f(),
                    what: s(),
                    c_type: s(),
                },
                ErrorKind::Library,
            ),
            (
                Error::InvalidUtf8 {
                    function: f(),
                    what: s(),
                    address: 1,
                    reason: s(),
                },
                ErrorKind::Library,
            ),
            (
                Error::Unterminated {
                    function: f(),
                    address: 1,
                    limit: 1,
                },
                ErrorKind::Library,
            ),
            (
                Error::OutOfBounds {
                    function: f(),
                    what: s(),
                    address: 1,
                    len: 1,
                    size: 1,
                },
                ErrorKind::Library,
            ),
            (
                Error::InvalidValue {
                    function: f(),
                    what: s(),
                    reason: s(),
                },
                ErrorKind::Library,
            ),
            (
                Error::Alloc {
                    function: f(),
                    size: 1,
                    reason: s(),
                },
                ErrorKind::Library,
            ),
            (
                Error::Callback {
                    function: f(),
                    callback: s(),
                    source: Box::new(Error::Unsupported(s())),
                },
                ErrorKind::Callback,
            ),
            (
                Error::CallbackPanicked {
                    function: f(),
                    callback: s(),
                    message: s(),
                },
                ErrorKind::Callback,
            ),
            (
                Error::CallbackDropped {
                    function: f(),
                    address: 1,
                },
                ErrorKind::Misuse,
            ),
            (
                Error::Trap {
                    function: s(),
                    kind: TrapKind::Unreachable,
                    backtrace: s(),
                },
                ErrorKind::Library,
            ),
            (
                Error::Exited {
                    strategy: StrategyKind::Sandbox,
                    function: s(),
                    code: 1,
                },
                ErrorKind::Library,
            ),
            (
                Error::WorkerFailed {
                    function: s(),
                    reason: s(),
                },
                ErrorKind::Library,
            ),
            (
                Error::Poisoned {
                    strategy: StrategyKind::Sandbox,
                    function: f(),
                    library: s(),
                    reason: s(),
                },
                ErrorKind::Misuse,
            ),
            (
                Error::ForeignPointer {
                    function: f(),
                    what: s(),
                    address: 1,
                },
                ErrorKind::Misuse,
            ),
            (
                Error::StalePointer {
                    function: f(),
                    what: s(),
                    address: 1,
                    generation: 0,
                    current: 1,
                },
                ErrorKind::Misuse,
            ),
            (
                Error::LimitReached {
                    strategy: StrategyKind::Sandbox,
                    function: f(),
                    library: s(),
                    limit: s(),
                    setting: "x",
                    reason: s(),
                },
                ErrorKind::Library,
            ),
            (
                Error::Busy {
                    function: f(),
                    what: s(),
                    reason: s(),
                },
                ErrorKind::Misuse,
            ),
            (
                Error::Usage {
                    function: f(),
                    what: s(),
                    reason: s(),
                },
                ErrorKind::Misuse,
            ),
            (
                Error::Refused {
                    strategy: StrategyKind::Sandbox,
                    function: f(),
                    library: s(),
                    what: s(),
                    reason: s(),
                },
                ErrorKind::Library,
            ),
            (Error::Unsupported(s()), ErrorKind::Unsupported),
        ]
    }

    #[test]
    fn every_variant_is_classified() {
        let all = every_variant();
        let mut seen = std::collections::BTreeSet::new();
        for (e, want) in &all {
            assert_eq!(e.kind(), *want, "{e:?}");
            // Exhaustive, no wildcard: a new variant must be added above.
            let index = match e {
                Error::Load { .. } => 0,
                Error::MissingSymbol { .. } => 1,
                Error::SignatureMismatch { .. } => 2,
                Error::NotPassable { .. } => 3,
                Error::Layout { .. } => 4,
                Error::OutOfRange { .. } => 5,
                Error::InteriorNul { .. } => 6,
                Error::NullPointer { .. } => 7,
                Error::InvalidUtf8 { .. } => 8,
                Error::Unterminated { .. } => 9,
                Error::OutOfBounds { .. } => 10,
                Error::InvalidValue { .. } => 11,
                Error::Alloc { .. } => 12,
                Error::Callback { .. } => 13,
                Error::CallbackPanicked { .. } => 14,
                Error::CallbackDropped { .. } => 15,
                Error::Trap { .. } => 16,
                Error::Exited { .. } => 17,
                Error::WorkerFailed { .. } => 18,
                Error::Poisoned { .. } => 19,
                Error::ForeignPointer { .. } => 20,
                Error::StalePointer { .. } => 21,
                Error::LimitReached { .. } => 22,
                Error::Busy { .. } => 23,
                Error::Usage { .. } => 24,
                Error::Refused { .. } => 25,
                Error::Unsupported(_) => 26,
            };
            assert!(seen.insert(index), "variant {index} listed twice");
        }
        assert_eq!(seen.len(), 27, "a variant is missing from every_variant");
    }
}
