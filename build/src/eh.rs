//! Rewriting a module's legacy exception handling (`try`, `catch`,
//! `catch_all`, `delegate`, `rethrow`) into the standard form (`try_table`,
//! `throw_ref`, `exnref`), after the link.
//!
//! clang 19 lowers `setjmp`/`longjmp` (`-mllvm -wasm-enable-sjlj`) to wasm
//! exceptions, but only in the legacy encoding, which wasmtime does not run;
//! the standardised encoding it runs has a different shape. The rewrite is
//! mechanical, one function at a time:
//!
//! ```text
//! try bt  B  catch $t H1  catch_all H2  end
//! ```
//! becomes
//! ```text
//! block $L bt
//!   block $c2            ;; catch_all lands here
//!     block $c1 (result t's params)
//!       try_table bt (catch $t $c1) (catch_all $c2)  B  end
//!       br $L
//!     end
//!     H1 br $L
//!   end
//!   H2
//! end
//! ```
//! with every branch depth renumbered for the added blocks. A clause whose
//! handler `rethrow`s catches with `catch_ref` (`catch_all_ref`) and keeps
//! the `exnref` in a new local for `throw_ref`. A `try … delegate l` becomes
//! a `try_table` whose `catch_all_ref` branches to a landing block that
//! rethrows just inside the target `try`'s body (or outside the whole
//! function body, for the caller). Only what clang emits is supported: a
//! delegate to a `try` in its body or to the caller, and no block
//! parameters on a `try`; anything else is an error naming the function.
//!
//! The result is validated before it is written.

use std::borrow::Cow;
use std::collections::BTreeMap;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{BlockType, Catch, CodeSection, Function, Instruction, TypeSection, ValType};
use wasmparser::{FuncType, Operator, Parser, Payload, TypeRef, Validator, WasmFeatures};

/// Rewrites `module`'s legacy exception handling; `None` when it has none
/// (the module is used as it is). An error says which function and what.
pub(crate) fn to_exnref(module: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let plan = match analyse(module)? {
        Some(p) => p,
        None => return Ok(None),
    };
    let mut rewriter = Rewriter {
        plan,
        next_body: 0,
        error: None,
    };
    let mut out = wasm_encoder::Module::new();
    let result = rewriter.parse_core_module(&mut out, parser(), module);
    if let Some(e) = rewriter.error.take() {
        return Err(e);
    }
    result.map_err(|e| format!("re-encoding the module: {e}"))?;
    let bytes = out.finish();
    Validator::new_with_features(WasmFeatures::default() | WasmFeatures::EXCEPTIONS)
        .validate_all(&bytes)
        .map_err(|e| format!("the rewritten module does not validate: {e}"))?;
    Ok(Some(bytes))
}

fn parser() -> Parser {
    let mut p = Parser::new(0);
    p.set_features(WasmFeatures::all());
    p
}

/// What the analysis found, for the rewrite.
struct Plan {
    /// Function types by type index (`None` for other kinds of type).
    types: Vec<Option<FuncType>>,
    /// The types the rewrite adds (multi-value block types), in order after
    /// the module's own.
    added: Vec<(Vec<ValType>, Vec<ValType>)>,
    /// The type index each added signature got.
    added_index: BTreeMap<(Vec<ValType>, Vec<ValType>), u32>,
    /// Each tag's parameters, by tag index (imports first).
    tags: Vec<Vec<ValType>>,
    /// Each defined function's analysis, in code order.
    bodies: Vec<Body>,
}

/// One function body's analysis.
#[derive(Default)]
struct Body {
    /// Whether it has legacy exception handling at all.
    legacy: bool,
    /// The type index of the function.
    ty: u32,
    /// Its `try`s, in order of appearance.
    tries: Vec<TryInfo>,
    /// Whether some `delegate` targets the caller.
    to_caller: bool,
}

#[derive(Default, Clone)]
struct TryInfo {
    /// Each `catch` (`Some(tag)`) or `catch_all` (`None`), and whether its
    /// handler rethrows (so it needs the `exnref`).
    clauses: Vec<(Option<u32>, bool)>,
    /// For a `try … delegate`: the index, in the control stack, of the
    /// frame it delegates to (0 for the caller).
    delegate: Option<usize>,
    /// Whether a `delegate` lands in this `try`'s body.
    landing: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Func,
    Block,
    /// A `try` (by its index in [`Body::tries`]) and its current clause:
    /// `None` in the body.
    Try(usize, Option<usize>),
}

fn val(t: wasmparser::ValType) -> Result<ValType, String> {
    RoundtripReencoder
        .val_type(t)
        .map_err(|e| format!("a value type: {e}"))
}

fn analyse(module: &[u8]) -> Result<Option<Plan>, String> {
    let mut types = Vec::new();
    let mut tags = Vec::new();
    let mut funcs = Vec::new(); // type index per function, imports first
    let mut imported_funcs = 0usize;
    let mut bodies = Vec::new();
    let mut any = false;
    for payload in parser().parse_all(module) {
        match payload.map_err(|e| format!("reading the module: {e}"))? {
            Payload::TypeSection(r) => {
                for group in r {
                    let group = group.map_err(|e| format!("reading a type: {e}"))?;
                    for sub in group.into_types() {
                        types.push(match sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.map_err(|e| format!("reading an import: {e}"))?;
                    match imp.ty {
                        TypeRef::Func(t) => {
                            funcs.push(t);
                            imported_funcs += 1;
                        }
                        TypeRef::Tag(t) => tags.push(t.func_type_idx),
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    funcs.push(t.map_err(|e| format!("reading a function: {e}"))?);
                }
            }
            Payload::TagSection(r) => {
                for t in r {
                    tags.push(t.map_err(|e| format!("reading a tag: {e}"))?.func_type_idx);
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = imported_funcs + bodies.len();
                let ty = *funcs
                    .get(index)
                    .ok_or_else(|| format!("function {index} has no type"))?;
                let b = analyse_body(&body).map_err(|e| format!("function {index}: {e}"))?;
                any |= b.legacy;
                bodies.push(Body { ty, ..b });
            }
            _ => {}
        }
    }
    if !any {
        return Ok(None);
    }
    let func_type = |t: u32| -> Result<&FuncType, String> {
        types
            .get(t as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("type {t} is not a function type"))
    };
    let tag_params = tags
        .iter()
        .map(|t| func_type(*t)?.params().iter().map(|v| val(*v)).collect())
        .collect::<Result<Vec<Vec<ValType>>, String>>()?;
    // Every multi-value block type the rewrite will use.
    let mut need = Vec::new();
    for b in &bodies {
        for t in &b.tries {
            for (tag, by_ref) in &t.clauses {
                need.push(clause_results(&tag_params, *tag, *by_ref)?);
            }
        }
        if b.to_caller {
            let f = func_type(b.ty)?;
            need.push(
                f.results()
                    .iter()
                    .map(|v| val(*v))
                    .collect::<Result<_, _>>()?,
            );
        }
    }
    let base = types.len() as u32;
    let mut added = Vec::new();
    let mut added_index = BTreeMap::new();
    for results in need.into_iter().filter(|r| r.len() > 1) {
        let key = (Vec::new(), results);
        if !added_index.contains_key(&key) {
            added_index.insert(key.clone(), base + added.len() as u32);
            added.push(key);
        }
    }
    Ok(Some(Plan {
        types,
        added,
        added_index,
        tags: tag_params,
        bodies,
    }))
}

/// What a catch clause's landing block receives: the tag's parameters
/// (none for `catch_all`), then the `exnref` when its handler rethrows.
fn clause_results(
    tags: &[Vec<ValType>],
    tag: Option<u32>,
    by_ref: bool,
) -> Result<Vec<ValType>, String> {
    let mut results = match tag {
        Some(tag) => tags
            .get(tag as usize)
            .cloned()
            .ok_or_else(|| format!("tag {tag} does not exist"))?,
        None => Vec::new(),
    };
    if by_ref {
        results.push(ValType::EXNREF);
    }
    Ok(results)
}

fn analyse_body(body: &wasmparser::FunctionBody) -> Result<Body, String> {
    let mut b = Body::default();
    let mut stack = vec![Kind::Func];
    let mut reader = body
        .get_operators_reader()
        .map_err(|e| format!("reading the code: {e}"))?;
    while !reader.eof() {
        let op = reader
            .read()
            .map_err(|e| format!("reading the code: {e}"))?;
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => stack.push(Kind::Block),
            Operator::Try { .. } => {
                b.legacy = true;
                b.tries.push(TryInfo::default());
                stack.push(Kind::Try(b.tries.len() - 1, None));
            }
            Operator::Catch { tag_index } => clause(&mut b, &mut stack, Some(tag_index))?,
            Operator::CatchAll => clause(&mut b, &mut stack, None)?,
            Operator::Rethrow { relative_depth } => {
                b.legacy = true;
                match stack[from_top(stack.len(), relative_depth, "`rethrow`")?] {
                    Kind::Try(t, Some(c)) => b.tries[t].clauses[c].1 = true,
                    _ => return Err("`rethrow` names a label that is not a catch".into()),
                }
            }
            Operator::Delegate { relative_depth } => {
                let Some(Kind::Try(t, None)) = stack.pop() else {
                    return Err("`delegate` outside a `try` body".into());
                };
                let target = from_top(stack.len(), relative_depth, "`delegate`")?;
                match stack[target] {
                    Kind::Func => b.to_caller = true,
                    Kind::Try(u, None) => b.tries[u].landing = true,
                    _ => {
                        return Err("`delegate` to a label that is neither a `try` body nor \
                                    the caller (not supported)"
                            .into())
                    }
                }
                b.tries[t].delegate = Some(target);
            }
            Operator::End => {
                stack.pop();
            }
            _ => {}
        }
    }
    Ok(b)
}

fn clause(b: &mut Body, stack: &mut [Kind], tag: Option<u32>) -> Result<(), String> {
    b.legacy = true;
    match stack.last_mut() {
        Some(Kind::Try(t, c)) => {
            b.tries[*t].clauses.push((tag, false));
            *c = Some(b.tries[*t].clauses.len() - 1);
            Ok(())
        }
        _ => Err("`catch` outside a `try`".into()),
    }
}

/// The index, in a control stack of `len` frames, of the label `depth`
/// levels up from the innermost.
fn from_top(len: usize, depth: u32, what: &str) -> Result<usize, String> {
    len.checked_sub(1 + depth as usize)
        .ok_or_else(|| format!("{what} depth {depth} is out of range"))
}

struct Rewriter {
    plan: Plan,
    next_body: usize,
    /// The first error, with its function (the re-encoder's own error type
    /// carries none).
    error: Option<String>,
}

impl Reencode for Rewriter {
    type Error = std::convert::Infallible;

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_type_section(self, types, section)?;
        for (params, results) in &self.plan.added {
            types
                .ty()
                .function(params.iter().copied(), results.iter().copied());
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        let index = self.next_body;
        self.next_body += 1;
        let legacy = self.plan.bodies.get(index).is_some_and(|b| b.legacy);
        if !legacy || self.error.is_some() {
            return wasm_encoder::reencode::utils::parse_function_body(self, code, func);
        }
        match self.rewrite(index, &func) {
            Ok(f) => {
                code.function(&f);
            }
            Err(e) => {
                self.error = Some(format!("defined function {index}: {e}"));
                code.function(&Function::new([]));
            }
        }
        Ok(())
    }
}

/// A frame of the original code, as the rewrite tracks it.
struct Frame {
    kind: Kind,
    /// The new label a branch to this frame targets (`None`: the function
    /// body itself).
    target: Option<usize>,
    /// For a `try`: its handler label (`$L`) and catch blocks.
    outer: Option<usize>,
    /// The landing block of a delegate target (`$TDel`), and the block
    /// around it that the body's results leave by (`$TB`).
    landing: Option<(usize, usize)>,
    /// The local holding a caught `exnref`, for `rethrow`.
    exn: Option<u32>,
}

impl Frame {
    /// A plain block (or loop, if, `try_table`) at new label `at`.
    fn block(at: usize) -> Frame {
        Frame {
            kind: Kind::Block,
            target: Some(at),
            outer: None,
            landing: None,
            exn: None,
        }
    }
}

impl Rewriter {
    fn results_type(&self, results: &[ValType]) -> Result<BlockType, String> {
        Ok(match results {
            [] => BlockType::Empty,
            [v] => BlockType::Result(*v),
            _ => BlockType::FunctionType(
                *self
                    .plan
                    .added_index
                    .get(&(Vec::new(), results.to_vec()))
                    .ok_or("internal: a block type was not planned")?,
            ),
        })
    }

    fn rewrite(
        &mut self,
        index: usize,
        func: &wasmparser::FunctionBody,
    ) -> Result<Function, String> {
        let (body_ty, tries, to_caller) = {
            let b = &self.plan.bodies[index];
            (b.ty, b.tries.clone(), b.to_caller)
        };
        let ty = self
            .plan
            .types
            .get(body_ty as usize)
            .and_then(Option::as_ref)
            .ok_or("no function type")?
            .clone();
        // Locals: the function's own, then one `exnref` per `try` that
        // rethrows.
        let mut locals = Vec::new();
        let mut count = ty.params().len() as u32;
        for l in func.get_locals_reader().map_err(|e| e.to_string())? {
            let (n, t) = l.map_err(|e| e.to_string())?;
            locals.push((n, val(t)?));
            count += n;
        }
        let rethrowing: Vec<usize> = (0..tries.len())
            .filter(|t| tries[*t].clauses.iter().any(|c| c.1))
            .collect();
        let exn_local: BTreeMap<usize, u32> = rethrowing
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, count + i as u32))
            .collect();
        if !rethrowing.is_empty() {
            locals.push((rethrowing.len() as u32, ValType::EXNREF));
        }
        let mut f = Function::new(locals);
        let results: Vec<ValType> = ty
            .results()
            .iter()
            .map(|v| val(*v))
            .collect::<Result<_, _>>()?;

        // The new labels, as a stack of ids (only their positions matter).
        let mut labels: usize = 0;
        let depth = |labels: usize, at: Option<usize>| -> u32 {
            match at {
                Some(i) => (labels - 1 - i) as u32,
                None => labels as u32,
            }
        };
        let mut frames: Vec<Frame> = Vec::new();
        let mut next_try = 0usize;

        // A delegate to the caller lands outside everything.
        let mut func_frame = Frame {
            kind: Kind::Func,
            target: None,
            outer: None,
            landing: None,
            exn: None,
        };
        if to_caller {
            f.instruction(&Instruction::Block(self.results_type(&results)?));
            labels += 1;
            f.instruction(&Instruction::Block(BlockType::Result(ValType::EXNREF)));
            labels += 1;
            func_frame.target = Some(0);
            func_frame.landing = Some((1, 0));
        }
        frames.push(func_frame);

        let mut reader = func.get_operators_reader().map_err(|e| e.to_string())?;
        while !reader.eof() {
            let op = reader.read().map_err(|e| e.to_string())?;
            // The new label a branch of original depth `d` targets.
            let target = |frames: &[Frame], d: u32| -> Result<Option<usize>, String> {
                Ok(frames[from_top(frames.len(), d, "branch")?].target)
            };
            match op {
                Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                    let ins = self.instruction(op.clone()).map_err(|e| e.to_string())?;
                    f.instruction(&ins);
                    frames.push(Frame::block(labels));
                    labels += 1;
                }
                Operator::TryTable { try_table } => {
                    let bt = self.block_type_of(try_table.ty)?;
                    let mut catches = Vec::new();
                    for c in try_table.catches {
                        catches.push(match c {
                            wasmparser::Catch::One { tag, label } => Catch::One {
                                tag,
                                label: depth(labels, target(&frames, label)?),
                            },
                            wasmparser::Catch::OneRef { tag, label } => Catch::OneRef {
                                tag,
                                label: depth(labels, target(&frames, label)?),
                            },
                            wasmparser::Catch::All { label } => Catch::All {
                                label: depth(labels, target(&frames, label)?),
                            },
                            wasmparser::Catch::AllRef { label } => Catch::AllRef {
                                label: depth(labels, target(&frames, label)?),
                            },
                        });
                    }
                    f.instruction(&Instruction::TryTable(bt, Cow::Owned(catches)));
                    frames.push(Frame::block(labels));
                    labels += 1;
                }
                Operator::Try { blockty } => {
                    let t = next_try;
                    next_try += 1;
                    let info = &tries[t];
                    let bt = self.block_type_of(blockty)?;
                    if let BlockType::FunctionType(i) = bt {
                        let has_params = self
                            .plan
                            .types
                            .get(i as usize)
                            .and_then(Option::as_ref)
                            .is_some_and(|f| !f.params().is_empty());
                        if has_params {
                            return Err("a `try` with block parameters (not supported)".into());
                        }
                    }
                    let mut frame = Frame {
                        kind: Kind::Try(t, None),
                        target: None,
                        outer: None,
                        landing: None,
                        exn: exn_local.get(&t).copied(),
                    };
                    let mut catches = Vec::new();
                    if let Some(to) = info.delegate {
                        let (landing, _) = frames[to]
                            .landing
                            .ok_or("internal: a delegate target has no landing")?;
                        catches.push(Catch::AllRef {
                            label: depth(labels, Some(landing)),
                        });
                    } else if !info.clauses.is_empty() {
                        f.instruction(&Instruction::Block(bt));
                        frame.outer = Some(labels);
                        labels += 1;
                        // The catch blocks, the first clause innermost.
                        let mut at = vec![0usize; info.clauses.len()];
                        for (k, (tag, by_ref)) in info.clauses.iter().enumerate().rev() {
                            let results = clause_results(&self.plan.tags, *tag, *by_ref)?;
                            f.instruction(&Instruction::Block(self.results_type(&results)?));
                            at[k] = labels;
                            labels += 1;
                        }
                        for (k, (tag, by_ref)) in info.clauses.iter().enumerate() {
                            let label = depth(labels, Some(at[k]));
                            catches.push(match (tag, by_ref) {
                                (Some(tag), false) => Catch::One { tag: *tag, label },
                                (Some(tag), true) => Catch::OneRef { tag: *tag, label },
                                (None, false) => Catch::All { label },
                                (None, true) => Catch::AllRef { label },
                            });
                        }
                    }
                    f.instruction(&Instruction::TryTable(bt, Cow::Owned(catches)));
                    frame.target = Some(labels);
                    labels += 1;
                    if info.landing {
                        f.instruction(&Instruction::Block(bt));
                        let tb = labels;
                        labels += 1;
                        f.instruction(&Instruction::Block(BlockType::Result(ValType::EXNREF)));
                        frame.landing = Some((labels, tb));
                        labels += 1;
                    }
                    frames.push(frame);
                }
                Operator::Catch { .. } | Operator::CatchAll => {
                    let frame = frames.last_mut().ok_or("`catch` outside a `try`")?;
                    let Kind::Try(t, clause) = frame.kind else {
                        return Err("`catch` outside a `try`".into());
                    };
                    let outer = frame.outer.ok_or("internal: a `try` without handlers")?;
                    if clause.is_none() {
                        // The body ends: close it; branches to the `try`
                        // now leave by `$L`.
                        close_landing(&mut f, &mut labels, frame);
                        f.instruction(&Instruction::End); // try_table
                        labels -= 1;
                        frame.target = Some(outer);
                    }
                    f.instruction(&Instruction::Br(depth(labels, Some(outer))));
                    f.instruction(&Instruction::End); // this clause's block
                    labels -= 1;
                    let k = clause.map_or(0, |c| c + 1);
                    frame.kind = Kind::Try(t, Some(k));
                    if tries[t].clauses[k].1 {
                        let local = frame.exn.ok_or("internal: no exnref local")?;
                        f.instruction(&Instruction::LocalSet(local));
                    }
                }
                Operator::Delegate { .. } => {
                    let mut frame = frames.pop().ok_or("`delegate` outside a `try`")?;
                    close_landing(&mut f, &mut labels, &mut frame);
                    f.instruction(&Instruction::End);
                    labels -= 1;
                }
                Operator::Rethrow { relative_depth } => {
                    let i = from_top(frames.len(), relative_depth, "`rethrow`")?;
                    let local = frames[i].exn.ok_or("`rethrow` outside a catch")?;
                    f.instruction(&Instruction::LocalGet(local));
                    f.instruction(&Instruction::ThrowRef);
                }
                Operator::End => {
                    let mut frame = frames.pop().ok_or("an `end` too many")?;
                    match frame.kind {
                        Kind::Func => {
                            if let Some((_, _)) = frame.landing {
                                // Normal exit leaves by `$Fn`; the landing
                                // rethrows to the caller.
                                f.instruction(&Instruction::Br(1));
                                f.instruction(&Instruction::End);
                                f.instruction(&Instruction::ThrowRef);
                                f.instruction(&Instruction::End);
                            }
                            f.instruction(&Instruction::End);
                        }
                        Kind::Block => {
                            f.instruction(&Instruction::End);
                            labels -= 1;
                        }
                        Kind::Try(_, None) => {
                            close_landing(&mut f, &mut labels, &mut frame);
                            f.instruction(&Instruction::End); // try_table
                            labels -= 1;
                        }
                        Kind::Try(_, Some(_)) => {
                            f.instruction(&Instruction::End); // $L
                            labels -= 1;
                        }
                    }
                }
                Operator::Br { relative_depth } => {
                    f.instruction(&Instruction::Br(depth(
                        labels,
                        target(&frames, relative_depth)?,
                    )));
                }
                Operator::BrIf { relative_depth } => {
                    let d = depth(labels, target(&frames, relative_depth)?);
                    f.instruction(&Instruction::BrIf(d));
                }
                Operator::BrOnNull { relative_depth } => {
                    let d = depth(labels, target(&frames, relative_depth)?);
                    f.instruction(&Instruction::BrOnNull(d));
                }
                Operator::BrOnNonNull { relative_depth } => {
                    let d = depth(labels, target(&frames, relative_depth)?);
                    f.instruction(&Instruction::BrOnNonNull(d));
                }
                Operator::BrTable { targets } => {
                    let mut ts = Vec::new();
                    for t in targets.targets() {
                        let t = t.map_err(|e| e.to_string())?;
                        ts.push(depth(labels, target(&frames, t)?));
                    }
                    let default = depth(labels, target(&frames, targets.default())?);
                    f.instruction(&Instruction::BrTable(Cow::Owned(ts), default));
                }
                Operator::BrOnCast { .. } | Operator::BrOnCastFail { .. } => {
                    return Err("a GC branch in a function with legacy exceptions \
                                (not supported)"
                        .into())
                }
                op => {
                    let ins = self.instruction(op).map_err(|e| e.to_string())?;
                    f.instruction(&ins);
                }
            }
        }
        Ok(f)
    }

    fn block_type_of(&mut self, bt: wasmparser::BlockType) -> Result<BlockType, String> {
        Reencode::block_type(self, bt).map_err(|e| e.to_string())
    }
}

/// At the end of a delegate target's body: normal results leave by `$TB`;
/// what lands in `$TDel` is rethrown inside the `try_table`.
fn close_landing(f: &mut Function, labels: &mut usize, frame: &mut Frame) {
    if frame.landing.take().is_some() {
        f.instruction(&Instruction::Br(1));
        f.instruction(&Instruction::End); // $TDel
        f.instruction(&Instruction::ThrowRef);
        f.instruction(&Instruction::End); // $TB
        *labels -= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(wat: &str) -> Vec<u8> {
        let bytes = wat::parse_str(wat).expect("wat");
        to_exnref(&bytes).expect("rewrite").expect("has legacy EH")
    }

    #[test]
    fn a_module_without_legacy_exceptions_is_left_alone() {
        let bytes =
            wat::parse_str("(module (func (export \"f\") (result i32) i32.const 1))").expect("wat");
        assert_eq!(to_exnref(&bytes), Ok(None));
    }

    #[test]
    fn try_catch_rethrow_and_delegate_validate() {
        // Validation of the output is part of `to_exnref`: nested tries,
        // branches out of bodies and handlers, a rethrow, a delegate to an
        // outer try and one to the caller.
        let out = run(r#"
            (module
              (tag $t (param i32))
              (tag $u (param i32 i64))
              (func $h)
              (func $g (export "g") (param i32) (result i32)
                block $out (result i32)
                  try $a (result i32)
                    try $b
                      local.get 0
                      i32.const 5
                      br_if $out
                      call $h
                      i32.const 1
                      throw $t
                    delegate $a
                    try
                      call $h
                    delegate 2
                    i32.const 7
                  catch $t
                    br $out
                  catch $u
                    drop
                    drop
                    rethrow $a
                  catch_all
                    i32.const 9
                  end
                end))
        "#);
        assert!(!out.is_empty());
    }

    /// Legacy exception handling, each construct once, with the result each
    /// export must give for 5 (and `branches` for 0 and 1).
    const SEMANTICS: &str = r#"
        (module
          (tag $t (param i32))
          (tag $u (param i32))
          (func $throw_t (param i32) local.get 0 throw $t)
          (func $throw_u (param i32) local.get 0 throw $u)
          (func (export "catch") (param i32) (result i32)
            try (result i32)
              local.get 0
              call $throw_t
              i32.const -1
            catch $t
              i32.const 100
              i32.add
            end)
          (func (export "catch_all") (param i32) (result i32)
            try (result i32)
              local.get 0
              call $throw_u
              i32.const -1
            catch $t
              i32.const 1
              i32.add
            catch_all
              i32.const 7
            end)
          (func (export "rethrow") (param i32) (result i32)
            try (result i32)
              try
                local.get 0
                call $throw_t
              catch $t
                drop
                rethrow 0
              end
              i32.const -1
            catch $t
              i32.const 1000
              i32.add
            end)
          (func (export "delegate") (param i32) (result i32)
            try $outer (result i32)
              try (result i32)
                try
                  local.get 0
                  call $throw_t
                delegate $outer
                i32.const -1
              catch_all
                i32.const -5
              end
            catch $t
              i32.const 2000
              i32.add
            end)
          (func $to_caller (param i32) (result i32)
            try (result i32)
              try
                local.get 0
                call $throw_t
              delegate 1
              i32.const -1
            catch_all
              i32.const -5
            end)
          (func (export "delegate_caller") (param i32) (result i32)
            try (result i32)
              local.get 0
              call $to_caller
            catch $t
              i32.const 3000
              i32.add
            end)
          (func (export "branches") (param i32) (result i32)
            block $b (result i32)
              try (result i32)
                i32.const 11
                local.get 0
                br_if $b
                drop
                local.get 0
                call $throw_t
                i32.const -1
              catch $t
                drop
                i32.const 22
                br $b
              end
            end))
    "#;

    #[test]
    fn the_rewritten_module_behaves_as_the_legacy_one_would() {
        let bytes = run(SEMANTICS);
        let mut config = wasmtime::Config::new();
        config.wasm_exceptions(true);
        let engine = wasmtime::Engine::new(&config).expect("engine");
        let module = wasmtime::Module::new(&engine, &bytes).expect("module");
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instance");
        for (name, arg, want) in [
            ("catch", 5, 105),
            ("catch_all", 5, 7),
            ("rethrow", 5, 1005),
            ("delegate", 5, 2005),
            ("delegate_caller", 5, 3005),
            ("branches", 1, 11),
            ("branches", 0, 22),
        ] {
            let f = instance
                .get_typed_func::<i32, i32>(&mut store, name)
                .expect(name);
            let got = f.call(&mut store, arg).expect(name);
            assert_eq!(got, want, "{name}({arg})");
        }
    }

    #[test]
    fn a_delegate_to_a_plain_block_is_refused() {
        let bytes = wat::parse_str(r#"(module (func block try nop delegate 0 end))"#).expect("wat");
        let e = to_exnref(&bytes).expect_err("refused");
        assert!(e.contains("neither a `try` body nor the caller"), "{e}");
    }
}
