//! The recording strategy: a binding module evaluated at build time.
//!
//! ctypes generates stubs by applying the bindings functor twice: once to a
//! generator at build time, once to the real `FOREIGN` at run time. Here a
//! binding module written over `L: Foreign` is evaluated in `build.rs`
//! against a [`Recorder`]: every `function` it binds and every callback
//! type it passes and every global it takes the address of is recorded, and [`Recorder::spec`] hands the lot to
//! `sandlink_build::Library::stubs`, which generates, checks and compiles
//! the C stubs. No second copy of the description is written.
//!
//! ```
//! use sandlink::record::Recorder;
//! use sandlink::types::*;
//! use sandlink::Foreign;
//!
//! # fn main() -> Result<(), sandlink::Error> {
//! let rec = Recorder::new("m");
//! // The binding module's constructor, run against the recorder:
//! rec.function("cbrt", &(double() >> returning(double())))?;
//! let spec = rec.spec()?;
//! assert!(spec.functions[0].key.starts_with("double cbrt(double) :: "));
//! # Ok(()) }
//! ```
//!
//! The recorder has no library behind it: calls, memory and globals are
//! errors. A binding module's constructor only declares, so it runs.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sandlink_guest_shim::spec::{
    Param, StubCallback, StubConstant, StubFunction, StubLayout, StubSpec, Word,
};

use crate::error::{Error, Result, StrategyKind};
use crate::strategy::{ErasedFn, Isolated, Strategy};
use crate::types::{Aggregate, Brand, CType, DataModel, FnSig, Memory, Prim, Raw, WordClass};

/// The address the recorder gives globals and callbacks: not NULL, aligned,
/// and never used (the recorder reads no memory and calls nothing).
const PLACEHOLDER: u64 = 0x1000;

/// A strategy that records what a binding module declares (see the module
/// docs). Clones share the recording.
#[derive(Clone)]
pub struct Recorder {
    name: Arc<str>,
    brand: Brand,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    functions: Vec<(String, Arc<FnSig>)>,
    callbacks: Vec<Arc<FnSig>>,
    globals: Vec<String>,
    /// Name and C declarator.
    constants: Vec<(String, String)>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recorder({})", self.name)
    }
}

impl Recorder {
    /// A recorder for the library called `name` (for messages).
    pub fn new(name: &str) -> Recorder {
        Recorder {
            name: name.into(),
            brand: Brand::fresh(),
            seen: Arc::new(Mutex::new(Seen::default())),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// What was recorded, for `sandlink_build::Library::stubs`: each
    /// function once (by name and prototype), and each callback signature
    /// that a function takes (through pointers and struct fields too) or
    /// that a callback was made for.
    pub fn spec(&self) -> Result<StubSpec> {
        let seen = self.seen();
        let mut spec = StubSpec::default();
        let mut keys = HashSet::new();
        let mut cb_keys = HashSet::new();
        let mut sigs = Vec::new();
        let mut aggregates = Vec::new();
        let mut visited = HashSet::new();
        for (name, sig) in &seen.functions {
            let key = function_key(name, sig);
            if !keys.insert(key.clone()) {
                continue;
            }
            let (params, ret) = params(sig, true)?;
            spec.functions.push(StubFunction {
                name: name.clone(),
                key,
                params,
                ret,
            });
            for t in sig.args.iter().chain([&sig.ret]) {
                reachable(t, &mut sigs, &mut aggregates, &mut visited);
            }
        }
        for a in aggregates {
            if let Some(l) = layout(&a) {
                spec.layouts.push(l);
            }
        }
        sigs.extend(seen.callbacks.iter().cloned());
        for g in &seen.globals {
            if !spec.globals.contains(g) {
                spec.globals.push(g.clone());
            }
        }
        for (name, decl) in &seen.constants {
            if spec.constants.iter().any(|c| c.name == *name) {
                continue;
            }
            spec.constants.push(StubConstant {
                name: name.clone(),
                decl: decl.clone(),
            });
        }
        for sig in sigs {
            let key = callback_key(&sig);
            if !cb_keys.insert(key.clone()) {
                continue;
            }
            let (params, ret) = params(&sig, false)?;
            spec.callbacks.push(StubCallback { key, params, ret });
        }
        Ok(spec)
    }

    /// Records the function `name` with erased argument and result
    /// descriptions (`ret` `None` for `void`), as binding it with the typed
    /// descriptions they were erased from would: what `sandlink-build`'s
    /// header generator calls for each function it generates, so that the
    /// stubs it asks for are keyed exactly as the generated bindings bind.
    pub fn declare(
        &self,
        name: &str,
        args: &[crate::types::Typ<crate::types::Erased>],
        ret: Option<&crate::types::Typ<crate::types::Erased>>,
    ) -> Result<()> {
        self.resolve(name, &crate::types::shadow_erased_sig(args, ret), false)
    }

    fn no_library(&self, what: &str) -> Error {
        Error::Unsupported(format!(
            "{what} on the recorder for `{}`: it records declarations at build time and \
             has no library behind it",
            self.name
        ))
    }
}

/// The key a generated stub is matched to a description by: the C
/// prototype, for people, then the signature's full structure
/// (`FnSig::canonical`), so that only a description that lowers, lifts
/// and lays out exactly as the generated one binds to it.
pub(crate) fn function_key(name: &str, sig: &FnSig) -> String {
    format!("{} :: {}", sig.c_prototype(name), sig.canonical())
}

/// As [`function_key`], for a callback type's trampolines.
pub(crate) fn callback_key(sig: &FnSig) -> String {
    format!("{} :: {}", sig.c_prototype("(*)"), sig.canonical())
}

/// The human part of a key: the C prototype.
#[cfg_attr(not(feature = "stubs"), allow(dead_code))]
pub(crate) fn key_prototype(key: &str) -> &str {
    key.split(" :: ").next().unwrap_or(key)
}

/// Every function signature and every struct or union reachable from `t`
/// (through pointers, typedefs, arrays, struct fields and function
/// pointers' own types); structs nested ones first, each once.
fn reachable(
    t: &CType,
    sigs: &mut Vec<Arc<FnSig>>,
    aggs: &mut Vec<Arc<Aggregate>>,
    visited: &mut HashSet<String>,
) {
    match t {
        CType::FunPtr(sig) => {
            sigs.push(sig.clone());
            for a in sig.args.iter().chain([&sig.ret]) {
                reachable(a, sigs, aggs, visited);
            }
        }
        CType::Pointer(t)
        | CType::Array(_, t)
        | CType::Typedef(_, t)
        | CType::View(t)
        | CType::Const(t) => reachable(t, sigs, aggs, visited),
        // An incomplete declaration (a struct pointing at itself) has no
        // layout to check and must not hide the complete one met later.
        CType::Aggregate(a) if a.layout(DataModel::Lp64).is_err() => {}
        CType::Aggregate(a) => {
            if visited.insert(a.c_name()) {
                for (_, f) in a.fields() {
                    reachable(&f, sigs, aggs, visited);
                }
                aggs.push(a.clone());
            }
        }
        CType::Void | CType::Prim(_) | CType::String | CType::Buffer(_) => {}
    }
}

/// A field's type as a declarator spells it: a string field is `char *`
/// (a parameter's is `const char *`), unless described `const_`.
fn field_type(t: &Arc<CType>) -> Arc<CType> {
    match &**t {
        CType::String => Arc::new(CType::Pointer(Arc::new(CType::Prim(Prim::Char)))),
        CType::Const(inner) if matches!(**inner, CType::String) => Arc::new(CType::Pointer(
            Arc::new(CType::Const(Arc::new(CType::Prim(Prim::Char)))),
        )),
        _ => t.clone(),
    }
}

/// The described layout of `a` under both models; `None` for an opaque
/// (never sealed) type, which has none to check.
fn layout(a: &Aggregate) -> Option<StubLayout> {
    let lp = a.layout(DataModel::Lp64).ok()?;
    let il = a.layout(DataModel::Ilp32).ok()?;
    let fields = a.fields();
    Some(StubLayout {
        c_type: a.c_name(),
        field_pointers: fields
            .iter()
            .map(|(_, t)| declarator(&CType::Pointer(field_type(t)), "@").unwrap_or_default())
            .collect(),
        fields: fields.into_iter().map(|(n, _)| n).collect(),
        lp64: (lp.size, lp.align, lp.offsets.clone()),
        ilp32: (il.size, il.align, il.offsets.clone()),
    })
}

/// How a scalar travels to a stub.
fn word(p: Prim) -> Word {
    if p == Prim::Pointer {
        return Word::Pointer;
    }
    match p.class(DataModel::host()) {
        WordClass::F32 => Word::F32,
        WordClass::F64 => Word::F64,
        WordClass::Int { size, signed } => Word::Int { size, signed },
    }
}

/// The C parameters and result of `sig` as the generator takes them. For a
/// function's result (`receive`), a pointer's pointee is `const`-qualified.
fn params(sig: &FnSig, receive: bool) -> Result<(Vec<Param>, Option<Param>)> {
    let mut out = Vec::new();
    for (i, a) in sig.args.iter().enumerate() {
        let not_passable = |reason: String| Error::NotPassable {
            what: format!("argument {}", i + 1),
            c_type: a.c_name(),
            reason,
        };
        match a.resolved() {
            CType::Buffer(len) => {
                out.push(Param {
                    decl: "const char *@".into(),
                    word: Word::Pointer,
                });
                out.push(Param {
                    decl: format!("{} @", len.c_name()),
                    word: word(*len),
                });
            }
            _ => {
                let p = a
                    .scalar()
                    .ok_or_else(|| not_passable("it does not lower to one machine word".into()))?;
                out.push(Param {
                    decl: declarator(a, "@")?,
                    word: word(p),
                });
            }
        }
    }
    let ret = match sig.ret_word()? {
        None => None,
        Some(p) => {
            let decl = match (receive, sig.ret.resolved()) {
                (true, CType::Pointer(t)) if !matches!(**t, CType::Const(_)) => {
                    declarator(&CType::Pointer(Arc::new(CType::Const(t.clone()))), "@")?
                }
                _ => declarator(&sig.ret, "@")?,
            };
            Some(Param {
                decl,
                word: word(p),
            })
        }
    };
    Ok((out, ret))
}

/// The C declarator of `t` naming `name`: `int x`, `const char *x`,
/// `void (*x)(void *)`, `int (*x)[4]`.
pub(crate) fn declarator(t: &CType, name: &str) -> Result<String> {
    Ok(match t {
        CType::Void => format!("void {name}"),
        CType::Prim(Prim::Pointer) => format!("void *{name}"),
        CType::Prim(p) => format!("{} {name}", p.c_name()),
        CType::String => format!("const char *{name}"),
        CType::Buffer(_) => {
            return Err(Error::NotPassable {
                what: format!("`{name}`"),
                c_type: t.c_name(),
                reason: "a buffer pair is two parameters, not one declarator".into(),
            })
        }
        CType::Pointer(inner) => match inner.resolved() {
            CType::FunPtr(_) | CType::Array(..) if !is_named(inner) => {
                declarator(inner, &format!("(*{name})"))?
            }
            _ => declarator(inner, &format!("*{name}"))?,
        },
        CType::FunPtr(sig) => {
            let mut args = Vec::new();
            for a in &sig.args {
                match a.resolved() {
                    CType::Buffer(len) => {
                        args.push("const char *".to_string());
                        args.push(len.c_name().to_string());
                    }
                    _ => args.push(declarator(a, "")?.trim_end().to_string()),
                }
            }
            let args = if args.is_empty() {
                "void".into()
            } else {
                args.join(", ")
            };
            declarator(&sig.ret, &format!("(*{name})({args})"))?
        }
        CType::Aggregate(a) => format!("{} {name}", a.c_name()),
        CType::Array(n, inner) => declarator(inner, &format!("{name}[{n}]"))?,
        CType::Typedef(n, _) => format!("{n} {name}"),
        CType::View(inner) => declarator(inner, name)?,
        CType::Const(inner) => match &**inner {
            CType::String | CType::Pointer(_) | CType::FunPtr(_) => {
                declarator(inner, &format!("const {name}"))?
            }
            _ => format!("const {}", declarator(inner, name)?),
        },
    })
}

/// Whether `t` is spelled by a name (a typedef), so needs no parentheses.
fn is_named(t: &CType) -> bool {
    match t {
        CType::Typedef(..) => true,
        CType::View(t) | CType::Const(t) => is_named(t),
        _ => false,
    }
}

// SAFETY: the recorder has no memory: every raw method fails without
// touching any address, so each is sound for every argument.
unsafe impl Memory for Recorder {
    fn model(&self) -> DataModel {
        DataModel::host()
    }

    fn brand(&self) -> Brand {
        self.brand
    }

    fn alloc_raw(&self, _size: u64, _align: u64) -> Result<u64> {
        Err(self.no_library("allocation"))
    }

    unsafe fn free_raw(&self, _addr: u64) -> Result<()> {
        Err(self.no_library("free"))
    }

    unsafe fn read_raw(&self, _addr: u64, _out: &mut [u8]) -> Result<()> {
        Err(self.no_library("a memory read"))
    }

    unsafe fn write_raw(&self, _addr: u64, _data: &[u8]) -> Result<()> {
        Err(self.no_library("a memory write"))
    }

    unsafe fn read_cstr_into(&self, _addr: u64, _out: &mut Vec<u8>) -> Result<()> {
        Err(self.no_library("a string read"))
    }
}

// SAFETY: `resolve` fails for a signature that does not lower and records
// it; nothing is ever called (`invoke` fails), no callback is ever run (the
// erased closure is dropped unused), no value comes back from a library.
unsafe impl Strategy for Recorder {
    const NAME: StrategyKind = StrategyKind::Recorder;

    type Func = ();

    fn library_name(&self) -> String {
        self.name.to_string()
    }

    fn resolve(&self, name: &str, sig: &Arc<FnSig>, _errno: bool) -> Result<()> {
        sig.arg_words()?;
        sig.ret_word()?;
        params(sig, true)?;
        self.seen().functions.push((name.to_string(), sig.clone()));
        Ok(())
    }

    unsafe fn resolve_code(&self, _: u64, _: &Arc<FnSig>, _: bool, name: &str) -> Result<()> {
        // Never reached: the recorder returns no function pointers.
        Err(self.no_library(&format!("binding {name}")))
    }

    unsafe fn invoke(&self, _f: &(), _args: &[Raw]) -> Result<(Option<Raw>, Option<i32>)> {
        Err(self.no_library("a call"))
    }

    fn symbol_addr(&self, name: &str) -> Result<u64> {
        self.seen().globals.push(name.to_string());
        // A placeholder address, branded with the recorder (see
        // `make_callback`): the recorder has no memory to read it through.
        Ok(PLACEHOLDER)
    }

    fn constant_raw(&self, name: &str, ty: &CType) -> Result<Raw> {
        if ty.scalar().is_none() {
            return Err(Error::NotPassable {
                what: format!("constant `{name}`"),
                c_type: ty.c_name(),
                reason: "a constant is a scalar".into(),
            });
        }
        let decl = declarator(ty, "@")?;
        self.seen().constants.push((name.to_string(), decl));
        // A placeholder: the value is the compiler's, known only once built.
        Ok(Raw(0))
    }

    fn hold(&self) -> Box<dyn crate::strategy::HeldLock + '_> {
        // Nothing runs: nothing to hold.
        Box::new(())
    }

    fn make_callback(
        &self,
        sig: &Arc<FnSig>,
        _f: ErasedFn,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>)> {
        sig.arg_words()?;
        sig.ret_word()?;
        params(sig, false)?;
        self.seen().callbacks.push(sig.clone());
        // A placeholder address: nothing can call it (the recorder never
        // calls C), and it is branded with the recorder, so no other
        // library accepts it.
        Ok((PLACEHOLDER, Box::new(())))
    }
}

// SAFETY: nothing the recorder does touches memory (see `Memory` above);
// `invoke` fails for every argument.
unsafe impl Isolated for Recorder {
    /// Nothing to reset: the recorder has no instance (and so it is never
    /// poisoned either).
    fn reset(&self) -> Result<()> {
        Ok(())
    }

    fn poisoned(&self) -> Option<String> {
        None
    }
}
