//! Turning wasmtime's failures into errors that say what happened.

use wasmtime::Trap;

use super::engine::{self, CompiledModule};
use super::SandboxConfig;
use crate::error::{Error, StrategyKind, TrapKind};

pub(super) fn trap_kind(e: &wasmtime::Error) -> TrapKind {
    if e.is::<wasmtime::ThrownException>() {
        return TrapKind::UncaughtLongjmp;
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => TrapKind::StackOverflow,
        Some(Trap::MemoryOutOfBounds) => TrapKind::MemoryOutOfBounds,
        Some(Trap::Interrupt) => TrapKind::Deadline,
        Some(Trap::UnreachableCodeReached) => TrapKind::Unreachable,
        Some(Trap::IndirectCallToNull) => TrapKind::IndirectCallToNull,
        Some(Trap::BadSignature) => TrapKind::BadSignature,
        Some(Trap::TableOutOfBounds) => TrapKind::TableOutOfBounds,
        Some(Trap::IntegerDivisionByZero) => TrapKind::IntegerDivisionByZero,
        Some(Trap::IntegerOverflow) | Some(Trap::BadConversionToInteger) => {
            TrapKind::IntegerOverflow
        }
        Some(other) => TrapKind::Other(other.to_string()),
        None => TrapKind::Other(e.root_cause().to_string()),
    }
}

/// Says which limit a failed instantiation hit, and the setting for it.
pub(super) fn instantiation_error(
    module: &CompiledModule,
    config: &SandboxConfig,
    e: wasmtime::Error,
) -> Error {
    let library = module.name.clone();
    if let Some(pool) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return Error::LimitReached {
            strategy: StrategyKind::Sandbox,
            function: None,
            library,
            limit: format!(
                "the limit of {} live sandboxes in this process",
                config.max_instances
            ),
            setting: "SandboxConfig::max_instances",
            reason: pool.to_string(),
        };
    }
    let text = format!("{e:#}");
    if text.contains("memory") && (text.contains("limit") || text.contains("exceeds")) {
        return Error::LimitReached {
            strategy: StrategyKind::Sandbox,
            function: None,
            library,
            limit: format!("the memory cap of {} bytes", config.memory_limit),
            setting: "SandboxConfig::memory_limit",
            reason: format!("the module's initial memory does not fit: {text}"),
        };
    }
    if text.contains("mmap") || text.contains("Cannot allocate memory") {
        return Error::LimitReached {
            strategy: StrategyKind::Sandbox,
            function: None,
            library,
            limit: "the process's address space".into(),
            setting: "SandboxConfig::max_instances (each slot reserves 4 GiB + 32 MiB)",
            reason: text,
        };
    }
    engine::load_error(&module.name, "cannot instantiate", text)
}
