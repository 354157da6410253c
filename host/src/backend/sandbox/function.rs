//! Resolving the library's exports against their declared signatures, and
//! calling them.

use std::cell::RefCell;
use std::sync::Arc;

use wasmtime::{Func, Val, ValRaw, ValType};

use super::value::{describe, from_raw, to_raw, wasm_signature};
use super::Sandbox;
use crate::error::{Error, Result, StrategyKind};
use crate::protocol::{finish, Lowered};
use crate::types::{FnSig, Prim, Raw};

/// A function export (or a function table entry), checked against its
/// declared signature; re-resolved after a reset.
#[derive(Clone)]
pub struct SandboxFunc {
    name: String,
    target: Target,
    words: Lowered,
    errno: bool,
    /// The export in the generation it was looked up in.
    resolved: RefCell<(u64, Func)>,
}

impl std::fmt::Debug for SandboxFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SandboxFunc({})", self.name)
    }
}

/// Where a bound function lives in the instance.
#[derive(Clone, Copy)]
pub(super) enum Target {
    /// The function export of the function's name.
    Export,
    /// A slot of the function table: a function pointer the library
    /// returned (the same slot holds the same function in every instance
    /// of the module, and callbacks are re-installed at theirs).
    Table(u64),
}

impl Sandbox {
    fn lookup(
        &self,
        name: &str,
        target: Target,
        args: &[Prim],
        ret: Option<Prim>,
        sig: Option<&FnSig>,
    ) -> Result<Func> {
        let library = &self.shared.module.name;
        self.with_ctx(|mut ctx, live| {
            let missing = |reason: String| Error::MissingSymbol {
                strategy: StrategyKind::Sandbox,
                library: library.clone(),
                symbol: name.to_string(),
                reason,
            };
            let func = match target {
                Target::Export => live.instance.get_func(&mut ctx, name).ok_or_else(|| {
                    missing(
                        "no function export of that name (is it in the library's export list, \
                         or declared by the binding module its stubs were generated from?)"
                            .into(),
                    )
                })?,
                Target::Table(i) => live
                    .table
                    .get(&mut ctx, i)
                    .and_then(|r| r.as_func().flatten().copied())
                    .ok_or_else(|| {
                        missing(format!("the function table has no function at index {i}"))
                    })?,
            };
            let ty = func.ty(&ctx);
            let (declared_p, declared_r) = wasm_signature(args, ret);
            let actual_p: Vec<ValType> = ty.params().collect();
            let actual_r: Vec<ValType> = ty.results().collect();
            let same = |a: &[ValType], b: &[ValType]| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| ValType::eq(x, y))
            };
            if !same(&declared_p, &actual_p) || !same(&declared_r, &actual_r) {
                return Err(Error::SignatureMismatch {
                    function: name.to_string(),
                    declared: format!(
                        "{} (lowered from `{}`)",
                        describe(&declared_p, &declared_r),
                        sig.map(|s| s.c_prototype(name)).unwrap_or_default()
                    ),
                    actual: describe(&actual_p, &actual_r),
                });
            }
            Ok(func)
        })
    }

    /// The export for `f` in the current generation.
    fn current(&self, f: &SandboxFunc) -> Result<Func> {
        let generation = self.shared.id.generation();
        let (g, func) = *f.resolved.borrow();
        if g == generation {
            return Ok(func);
        }
        let func = self.lookup(&f.name, f.target, &f.words.args, f.words.ret, None)?;
        *f.resolved.borrow_mut() = (generation, func);
        Ok(func)
    }

    /// Binds `target` (named `name` in messages) with signature `sig`.
    pub(super) fn bind(
        &self,
        name: &str,
        target: Target,
        sig: &Arc<FnSig>,
        errno: bool,
    ) -> Result<SandboxFunc> {
        let words = Lowered::new(sig)?;
        if errno && self.lock().live.borrow().errno_get.is_none() {
            return Err(Error::MissingSymbol {
                strategy: StrategyKind::Sandbox,
                library: self.shared.module.name.clone(),
                symbol: name.into(),
                reason: "it is bound with `returning_errno`, but the module lacks the guest \
                         shim's errno exports (build it with sandlink-build)"
                    .into(),
            });
        }
        let func = self.lookup(name, target, &words.args, words.ret, Some(sig))?;
        Ok(SandboxFunc {
            name: name.to_string(),
            target,
            words,
            errno,
            resolved: RefCell::new((self.shared.id.generation(), func)),
        })
    }

    pub(super) fn call_export(
        &self,
        f: &SandboxFunc,
        args: &[Raw],
    ) -> Result<(Option<Raw>, Option<i32>)> {
        f.words.check_arity(args)?;
        let (params, ret) = (&f.words.args, f.words.ret);
        // Parameters in, results out, in one untyped buffer: on the stack
        // for the signatures nearly every C function has.
        const INLINE: usize = 8;
        let slots = params.len().max(usize::from(ret.is_some())).max(1);
        let mut inline = [ValRaw::i32(0); INLINE];
        let mut heap = Vec::new();
        let space: &mut [ValRaw] = if slots <= INLINE {
            &mut inline[..slots]
        } else {
            heap.resize(slots, ValRaw::i32(0));
            &mut heap
        };
        for (i, (raw, p)) in args.iter().zip(params.iter()).enumerate() {
            space[i] = to_raw(*p, *raw, &|| format!("argument {}", i + 1))?;
        }
        // Held for the whole call: the pending error belongs to it.
        let inner = self.lock();
        let func = self.current(f)?;
        let errno = self.run_guest_in(&inner, &f.name, |ctx, live| {
            if f.errno {
                if let Some(set) = &live.errno_set {
                    set.call(&mut *ctx, 0)?;
                }
            }
            // SAFETY: `func` is this store's export or table entry, looked up in the
            // current generation, whose wasm type `lookup` checked equals
            // `f.words` lowered by `wasm_type`. `space` holds
            // max(params, results) slots and a parameter of exactly that
            // type in each parameter slot (`to_raw`); there are no reference
            // types, and no async call is in progress.
            unsafe { func.call_unchecked(&mut *ctx, &raw mut *space) }?;
            match (&live.errno_get, f.errno) {
                (Some(get), true) => Ok(Some(get.call(&mut *ctx, ())?)),
                _ => Ok(None),
            }
        })?;
        // What the library recorded for batched callbacks is part of the
        // call: delivered before it ends.
        self.drain_after_call(&inner);
        finish(&inner.calls.pending)?;
        let ret = match ret {
            // The result is in slot 0, of the checked result type.
            Some(p) => Some(from_raw(p, space[0], &|| "return value".into())?),
            None => None,
        };
        Ok((ret, errno))
    }

    pub(super) fn global_addr(&self, name: &str) -> Result<u64> {
        let library = &self.shared.module.name;
        self.with_ctx(|mut ctx, live| {
            let missing = |reason: &str| Error::MissingSymbol {
                strategy: StrategyKind::Sandbox,
                library: library.clone(),
                symbol: name.to_string(),
                reason: reason.to_string(),
            };
            let g = live.instance.get_global(&mut ctx, name).ok_or_else(|| {
                missing("no global export of that name (is it in the library's export list?)")
            })?;
            match g.get(&mut ctx) {
                Val::I32(a) => Ok(u64::from(a as u32)),
                other => Err(missing(&format!(
                    "the export is not an i32 address but {other:?}"
                ))),
            }
        })
    }
}
