//! Reading headers with libclang into the generator's model.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use clang::token::TokenKind;
use clang::{Clang, Entity, EntityKind, Index, StorageClass, Type, TypeKind, Unsaved};
use regex::Regex;

use super::model::{Constant, FieldDecl, Function, Item, ItemKind, Skipped, Ty};
use super::{Choice, Filters, GenerateError, Module, Override};

/// The typedefs that are Sandlink scalars by name (their constructors
/// spell them so, and range-check them per data model).
const STD_TYPEDEFS: &[&str] = &[
    "size_t",
    "ssize_t",
    "int8_t",
    "int16_t",
    "int32_t",
    "int64_t",
    "uint8_t",
    "uint16_t",
    "uint32_t",
    "uint64_t",
    "intptr_t",
    "uintptr_t",
    "ptrdiff_t",
];

/// System typedefs whose width is the same on x86-64 Linux and wasm32-wasi
/// but whose underlying type is not (`off_t` is `long` on one and
/// `long long` on the other): described by that fixed width, spelled by
/// their name, so the stubs' check passes on both targets.
const FIXED_WIDTH_TYPEDEFS: &[(&str, &str)] = &[
    ("off_t", "int64_t"),
    ("off64_t", "int64_t"),
    ("time_t", "int64_t"),
    ("clock_t", "int64_t"),
    ("blkcnt_t", "int64_t"),
    ("ino_t", "uint64_t"),
    ("dev_t", "uint64_t"),
    ("nlink_t", "uint64_t"),
    ("mode_t", "uint32_t"),
    ("pid_t", "int32_t"),
    ("uid_t", "uint32_t"),
    ("gid_t", "uint32_t"),
    ("wchar_t", "int32_t"),
];

/// At most this many parameters (the binding vocabulary's tuples).
const MAX_PARAMS: usize = 10;

/// Where a type sits, for the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Site {
    Param,
    Result,
    Field,
    CallbackArg,
    CallbackResult,
    /// Behind a pointer, inside an array, under a typedef being declared.
    Inner,
}

/// A parameter's choices, from the defaults and the overrides.
#[derive(Clone, Copy, Debug, Default)]
struct Policy {
    string: Option<bool>,
    nullable: Option<bool>,
    owned: bool,
    borrowed: bool,
}

/// Parses `headers` (with clang arguments `args`) and reads every
/// declaration of the library's own headers that the filters let through,
/// with the overrides applied: (function pattern, parameter pattern, what).
pub(crate) fn read(
    headers: &[PathBuf],
    args: &[String],
    filters: &Filters,
    overrides: &[(Regex, Regex, Override)],
) -> Result<Module, GenerateError> {
    let clang = Clang::new().map_err(|e| {
        GenerateError(format!(
            "cannot load libclang ({e}): install Debian's libclang1-19 (scripts/setup.sh does), \
             or set LIBCLANG_PATH to the directory holding libclang.so"
        ))
    })?;
    let index = Index::new(&clang, false, false);
    let mut wrapper = String::new();
    for h in headers {
        let abs = std::fs::canonicalize(h)
            .map_err(|e| GenerateError(format!("header {}: {e}", h.display())))?;
        wrapper.push_str(&format!("#include \"{}\"\n", abs.display()));
    }
    let wrapper_path = std::env::temp_dir().join("sandlink_generate_wrapper.c");
    let mut full_args = vec!["-x".to_string(), "c".into(), "-std=gnu11".into()];
    full_args.extend(args.iter().cloned());
    let mut parser = index.parser(&wrapper_path);
    parser
        .arguments(&full_args)
        .detailed_preprocessing_record(true)
        .skip_function_bodies(true)
        .unsaved(&[Unsaved::new(&wrapper_path, &wrapper)]);
    let tu = parser
        .parse()
        .map_err(|e| GenerateError(format!("libclang could not parse the headers: {e}")))?;
    let errors: Vec<String> = tu
        .get_diagnostics()
        .iter()
        .filter(|d| d.get_severity() >= clang::diagnostic::Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(GenerateError(format!(
            "the headers do not compile:\n{}",
            errors.join("\n")
        )));
    }

    let mut r = Reader {
        module: Module::default(),
        filters,
        overrides,
        used_overrides: HashSet::new(),
        enums_done: HashSet::new(),
        pending: Vec::new(),
        callback: None,
        expressions: Vec::new(),
    };
    let mut seen_fns = HashSet::new();
    let mut seen_macros = HashSet::new();
    let top = tu.get_entity().get_children();
    for e in &top {
        if !in_library(e) {
            continue;
        }
        match e.get_kind() {
            EntityKind::FunctionDecl => {
                let Some(name) = e.get_name() else { continue };
                if seen_fns.insert(name.clone()) {
                    r.function(e, &name);
                }
            }
            EntityKind::MacroDefinition => {
                let Some(name) = e.get_name() else { continue };
                if seen_macros.insert(name.clone()) {
                    r.macro_constant(e, &name);
                }
            }
            EntityKind::EnumDecl => r.enum_constants(e),
            EntityKind::VarDecl => {
                if let Some(name) = e.get_name() {
                    if filters.constant(&name) || filters.function(&name) {
                        r.skip(
                            format!("global `{name}`"),
                            e,
                            "a global variable: bind it with `lib.global`".into(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if filters.types_listed() {
        for e in &top {
            if !in_library(e) {
                continue;
            }
            let wanted = matches!(
                e.get_kind(),
                EntityKind::TypedefDecl | EntityKind::StructDecl | EntityKind::UnionDecl
            ) && e.get_name().is_some_and(|n| filters.ty(&n));
            if wanted {
                if let Some(t) = e.get_type() {
                    if let Err(why) = r.value(t, Site::Field, Policy::default(), None) {
                        let name = e.get_name().unwrap_or_default();
                        r.skip(format!("type `{name}`"), e, why);
                    }
                }
            }
        }
    }
    // Macros naming another constant: the constant's name when it is
    // generated, else the compiler's value (`#define X LLONG_MAX`).
    for (name, other, at) in std::mem::take(&mut r.pending) {
        match r.module.constants.iter().find(|c| c.name == other) {
            Some(c) => {
                let ty = c.rust_type;
                r.push_constant(name, ty, other, at);
            }
            None => r.expressions.push((name, other, at)),
        }
    }
    let expressions = std::mem::take(&mut r.expressions);
    if !expressions.is_empty() {
        let names: Vec<&str> = expressions.iter().map(|(n, _, _)| n.as_str()).collect();
        let host = probe(&index, &wrapper, &wrapper_path, &full_args, &names);
        let wasm =
            wasm_args(&full_args).map(|args| probe(&index, &wrapper, &wrapper_path, &args, &names));
        for (i, (name, text, at)) in expressions.into_iter().enumerate() {
            let reason = match (&host[i], wasm.as_ref().map(|w| &w[i])) {
                (Some(h), Ok(Some(w))) if h == w => {
                    r.push_constant(name, h.rust_type, h.value.clone(), at);
                    continue;
                }
                (Some(h), Ok(Some(w))) => format!(
                    "`{text}` differs by data model (x86-64: {}, wasm32: {}): read it with \
                     `lib.constant`",
                    h.value, w.value
                ),
                (Some(_), Ok(None)) => {
                    format!("`{text}` is not a constant expression for wasm32-wasi")
                }
                (Some(_), Err(no_toolchain)) => format!(
                    "`{text}` could not be checked for wasm32-wasi (no wasm toolchain: \
                     {no_toolchain})"
                ),
                (None, _) => format!("not a constant expression (`{text}`)"),
            };
            r.module.skipped.push(Skipped {
                what: format!("macro `{name}`"),
                at,
                reason,
            });
        }
    }
    for (i, (_, _, o)) in overrides.iter().enumerate() {
        if !r.used_overrides.contains(&i) {
            r.module.warnings.push(format!(
                "the override {:?} for `{}` of functions matching `{}` matched no generated parameter",
                o.choice, o.param, o.function
            ));
        }
    }
    Ok(r.module)
}

/// Declared in a header of the library (not a system header, not a
/// builtin).
fn in_library(e: &Entity) -> bool {
    e.get_location()
        .and_then(|l| l.get_file_location().file)
        .is_some()
        && !e.is_in_system_header()
}

/// `file:line` of an entity.
fn at(e: &Entity) -> String {
    match e.get_location().map(|l| l.get_file_location()) {
        Some(loc) => {
            let file = loc
                .file
                .map(|f| f.get_path())
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "?".into());
            format!("{file}:{}", loc.line)
        }
        None => "?".into(),
    }
}

struct Reader<'a> {
    module: Module,
    filters: &'a Filters,
    overrides: &'a [(Regex, Regex, Override)],
    used_overrides: HashSet<usize>,
    enums_done: HashSet<String>,
    /// Macros naming another constant: (name, the other, where).
    pending: Vec<(String, String, String)>,
    /// The callback typedef whose function type is read next, and its
    /// parameters' names: overrides name them so.
    callback: Option<(String, Vec<String>)>,
    /// Macros whose body is an expression: (name, its tokens, where).
    expressions: Vec<(String, String, String)>,
}

impl Reader<'_> {
    fn skip(&mut self, what: String, e: &Entity, reason: String) {
        self.module.skipped.push(Skipped {
            what,
            at: at(e),
            reason,
        });
    }

    fn function(&mut self, e: &Entity, name: &str) {
        if !self.filters.function(name) {
            if self.filters.blocked(name) {
                self.skip(format!("function `{name}`"), e, "blocked".into());
            }
            return;
        }
        let what = format!("function `{name}`");
        if e.get_storage_class() == Some(StorageClass::Static) {
            return self.skip(what, e, "static: no symbol to bind".into());
        }
        if e.is_variadic() {
            return self.skip(what, e, "variadic (`...`): no binding can call it".into());
        }
        let params = e.get_arguments().unwrap_or_default();
        let prototype = prototype_of(e, name, &params);
        let mut choices = Vec::new();
        let mut args = Vec::new();
        let mut i = 0;
        while i < params.len() {
            let p = &params[i];
            let pname = p.get_name().unwrap_or_else(|| format!("arg{}", i + 1));
            let Some(pty) = p.get_type() else {
                return self.skip(what, e, format!("parameter `{pname}` has no type"));
            };
            // A `(pointer, length)` pair?
            if let Some((k, len)) = self.buffer_override(name, &pname) {
                let next = params.get(i + 1);
                if let Err(why) = neighbour(&pname, &len, next.and_then(|n| n.get_name())) {
                    return self.skip(what, e, why);
                }
                let Some(pointee) = pty.get_canonical_type().get_pointee_type() else {
                    return self.skip(what, e, format!("the buffer `{pname}` is not a pointer"));
                };
                let Some(lty) = next.and_then(|n| n.get_type()) else {
                    return self.skip(what, e, format!("parameter `{len}` has no type"));
                };
                let len_ty = match self.value(lty, Site::Param, Policy::default(), None) {
                    Ok(t) => t,
                    Err(why) => return self.skip(what, e, format!("parameter `{len}`: {why}")),
                };
                if !is_integer(&len_ty, &self.module.items) {
                    return self.skip(
                        what,
                        e,
                        format!("the buffer's length `{len}` is not an integer"),
                    );
                }
                self.used_overrides.insert(k);
                let mutable = !pointee.is_const_qualified();
                let t = Ty::Buffer {
                    len: Box::new(len_ty),
                    mutable,
                };
                choices.push(format!(
                    "`{pname}`, `{len}`: one {} `{}` (override)",
                    if mutable {
                        "`&mut [u8]`, copied in and back,"
                    } else {
                        "`&[u8]`, copied in,"
                    },
                    t.text()
                ));
                args.push(t);
                i += 2;
                continue;
            }
            let policy = self.policy(name, &pname);
            match self.value(pty, Site::Param, policy, None) {
                Ok(t) => {
                    self.string_took(name, &format!("parameter `{pname}`"), &pty, &t, policy);
                    if let Some(why) = by_value_aggregate(&t, &self.module.items) {
                        return self.skip(what, e, format!("parameter `{pname}`: {why}"));
                    }
                    if let Some(c) = describe_choice(&t, policy) {
                        choices.push(format!("`{pname}`: {c}"));
                    }
                    args.push(t);
                }
                Err(why) => return self.skip(what, e, format!("parameter `{pname}`: {why}")),
            }
            i += 1;
        }
        if args.len() > MAX_PARAMS {
            return self.skip(
                what,
                e,
                format!(
                    "{} parameters; a binding takes at most {MAX_PARAMS}",
                    args.len()
                ),
            );
        }
        let policy = self.policy(name, "return");
        let ret = match e.get_result_type() {
            Some(c) => match self.value(c, Site::Result, policy, None) {
                Ok(t) => {
                    self.string_took(name, "the result", &c, &t, policy);
                    t
                }
                Err(why) => return self.skip(what, e, format!("the result: {why}")),
            },
            None => return self.skip(what, e, "no result type".into()),
        };
        if let Some(why) = by_value_aggregate(&ret, &self.module.items) {
            return self.skip(what, e, format!("the result: {why}"));
        }
        if let Some(c) = describe_choice(&ret, policy) {
            choices.push(format!("the result: {c}"));
        }
        self.module.functions.push(Function {
            c_name: name.to_string(),
            args,
            ret,
            prototype,
            at: at(e),
            choices,
        });
    }

    /// The buffer override of parameter `param` of function `f`: its index
    /// and the length parameter's name.
    fn buffer_override(&self, f: &str, param: &str) -> Option<(usize, String)> {
        self.overrides_for(f, param)
            .into_iter()
            .find_map(|(k, c)| match c {
                Choice::Buffer(len) => Some((k, len)),
                _ => None,
            })
    }

    /// Warns when a `string` override on `what` of `function` changed
    /// nothing: Sandlink's strings are `char *`, and `c` (an `unsigned
    /// char *`, say) stayed the pointer `t`.
    fn string_took(&mut self, function: &str, what: &str, c: &Type, t: &Ty, policy: Policy) {
        if policy.string != Some(true) || matches!(t, Ty::String { .. } | Ty::OwnedStr(_)) {
            return;
        }
        self.module.warnings.push(format!(
            "the `string` override on {what} of `{function}` changes nothing: `{}` is not a \
             `char *` (a string is `char *`; an `unsigned char *` stays a pointer, and \
             `lib.read_string(p)` reads the text it points at)",
            c.get_display_name()
        ));
    }

    /// The overrides of parameter `param` of function `f`, by index.
    fn overrides_for(&self, f: &str, param: &str) -> Vec<(usize, Choice)> {
        self.overrides
            .iter()
            .enumerate()
            .filter(|(_, (re, p, _))| p.is_match(param) && re.is_match(f))
            .map(|(i, (_, _, o))| (i, o.choice.clone()))
            .collect()
    }

    fn policy(&mut self, f: &str, param: &str) -> Policy {
        let mut p = Policy::default();
        for (i, c) in self.overrides_for(f, param) {
            match c {
                Choice::String => p.string = Some(true),
                Choice::Pointer => p.string = Some(false),
                Choice::Nullable => p.nullable = Some(true),
                Choice::NonNull => p.nullable = Some(false),
                Choice::Owned => p.owned = true,
                Choice::Borrowed => p.borrowed = true,
                Choice::Buffer(_) => continue,
            }
            self.used_overrides.insert(i);
        }
        p
    }

    /// A callback's `(pointer, length)` pair, when an override makes one of
    /// parameter `pname` of callback `cb` and the next parameter: a
    /// borrowed `BytesRef`, whose length C gives as `int` or `size_t`.
    fn callback_pair(
        &mut self,
        cb: &str,
        pname: &str,
        len_name: Option<String>,
        len_type: Option<&Type>,
    ) -> Result<Option<Ty>, String> {
        let Some((k, len)) = self.buffer_override(cb, pname) else {
            return Ok(None);
        };
        neighbour(pname, &len, len_name)?;
        let Some(lt) = len_type else {
            return Err(format!("`{len}` has no type"));
        };
        let int = match lt.get_canonical_type().get_kind() {
            TypeKind::Int => true,
            TypeKind::ULong if lt.get_display_name().contains("size_t") => false,
            _ => {
                return Err(format!(
                    "a callback's `(pointer, length)` pair is lent as `int` or `size_t`, and \
                     `{len}` is `{}`",
                    lt.get_display_name()
                ))
            }
        };
        self.used_overrides.insert(k);
        Ok(Some(Ty::BytesRef { int }))
    }

    /// The `bindings!` type of `t` at `site`; `hint` names an untagged
    /// struct (its typedef's or field's name). `Err` says why it cannot be
    /// described.
    fn value(
        &mut self,
        t: Type,
        site: Site,
        policy: Policy,
        hint: Option<&str>,
    ) -> Result<Ty, String> {
        match t.get_kind() {
            TypeKind::Elaborated => {
                let inner = t
                    .get_elaborated_type()
                    .ok_or_else(|| format!("`{}`: no named type", t.get_display_name()))?;
                return self.value(inner, site, policy, hint);
            }
            TypeKind::Typedef => return self.typedef(t, site, policy),
            TypeKind::Pointer => return self.pointer(t, site, policy),
            TypeKind::Record => return self.record(t, hint),
            TypeKind::Enum => return self.enumeration(t),
            TypeKind::ConstantArray => {
                let n = t.get_size().ok_or("an array of unknown size")?;
                let elem = t
                    .get_element_type()
                    .ok_or("an array without an element type")?;
                let inner = self.value(elem, Site::Inner, Policy::default(), None)?;
                return Ok(Ty::Array(n as u64, Box::new(inner)));
            }
            TypeKind::IncompleteArray | TypeKind::VariableArray => {
                return Err(format!(
                    "`{}`: an array of unknown size (a flexible array member?)",
                    t.get_display_name()
                ))
            }
            TypeKind::Unexposed | TypeKind::Attributed => {
                let c = t.get_canonical_type();
                if c.get_kind() != t.get_kind() {
                    return self.value(c, site, policy, hint);
                }
            }
            _ => {}
        }
        Ok(match t.get_canonical_type().get_kind() {
            TypeKind::Void => Ty::Void,
            TypeKind::Bool => Ty::Scalar("bool"),
            TypeKind::CharS => Ty::Scalar("char"),
            TypeKind::SChar => Ty::Scalar("schar"),
            TypeKind::CharU | TypeKind::UChar => Ty::Scalar("uchar"),
            TypeKind::Short => Ty::Scalar("short"),
            TypeKind::UShort => Ty::Scalar("ushort"),
            TypeKind::Int => Ty::Scalar("int"),
            TypeKind::UInt => Ty::Scalar("uint"),
            TypeKind::Long => Ty::Scalar("long"),
            TypeKind::ULong => Ty::Scalar("ulong"),
            TypeKind::LongLong => Ty::Scalar("llong"),
            TypeKind::ULongLong => Ty::Scalar("ullong"),
            TypeKind::Float => Ty::Scalar("float"),
            TypeKind::Double => Ty::Scalar("double"),
            TypeKind::Pointer | TypeKind::Record | TypeKind::Enum | TypeKind::ConstantArray
                if t.get_canonical_type() != t =>
            {
                return self.value(t.get_canonical_type(), site, policy, hint)
            }
            _ => {
                return Err(format!(
                    "`{}` is a type Sandlink cannot pass or describe",
                    t.get_display_name()
                ))
            }
        })
    }

    fn typedef(&mut self, t: Type, site: Site, policy: Policy) -> Result<Ty, String> {
        let decl = t
            .get_declaration()
            .ok_or("a typedef without a declaration")?;
        let name = decl.get_name().unwrap_or_else(|| t.get_display_name());
        if STD_TYPEDEFS.contains(&name.as_str()) {
            return Ok(Ty::Scalar(
                STD_TYPEDEFS[STD_TYPEDEFS.iter().position(|s| *s == name).unwrap_or(0)],
            ));
        }
        if let Some((_, fixed)) = FIXED_WIDTH_TYPEDEFS.iter().find(|(n, _)| *n == name) {
            if !in_library(&decl) {
                return Ok(Ty::Typedef(name, Box::new(Ty::Scalar(fixed))));
            }
        }
        if name.contains("va_list") {
            return Err(format!("`{name}`: a `va_list` cannot be made from Rust"));
        }
        let under = decl
            .get_typedef_underlying_type()
            .ok_or_else(|| format!("typedef `{name}` without an underlying type"))?;
        let canonical = under.get_canonical_type();
        let system = !in_library(&decl);
        // Pointers take their nullability, and `char *` its string-ness,
        // from where they are used: a pointer typedef is spelled at each use.
        if canonical.get_kind() == TypeKind::Pointer || system {
            if canonical.get_kind() == TypeKind::Pointer
                && !system
                && canonical
                    .get_pointee_type()
                    .is_some_and(|p| p.get_kind() == TypeKind::FunctionPrototype)
            {
                // A callback type: also an alias, to make callbacks with.
                // Its parameters' names (for overrides) are the typedef's.
                let params: Vec<String> = decl
                    .get_children()
                    .iter()
                    .filter(|c| c.get_kind() == EntityKind::ParmDecl)
                    .map(|c| c.get_name().unwrap_or_default())
                    .collect();
                if !self.module.items.contains_key(&name) {
                    self.callback = Some((name.clone(), params.clone()));
                    let inner = self.value(under, Site::Inner, Policy::default(), None);
                    self.callback = None;
                    let alias = match inner? {
                        Ty::FunPtr { args, ret, .. } => Ty::FunPtr {
                            opt: false,
                            args,
                            ret,
                        },
                        other => other,
                    };
                    self.module.items.insert(
                        name.clone(),
                        Item {
                            c_name: name.clone(),
                            kind: ItemKind::Alias(Ty::Typedef(name.clone(), Box::new(alias))),
                            at: at(&decl),
                            note: None,
                        },
                    );
                }
                self.callback = Some((name.clone(), params));
            }
            let inner = self.value(under, site, policy, None);
            self.callback = None;
            return Ok(Ty::Typedef(name, Box::new(inner?)));
        }
        // A typedef of a struct or union: `typedef struct x_s x;`, or of an
        // untagged one, which the typedef names.
        if matches!(canonical.get_kind(), TypeKind::Record) {
            let rec = self.record(canonical, Some(&name))?;
            if let Ty::Named(ident) = &rec {
                if *ident == name {
                    return Ok(Ty::Typedef(name, Box::new(rec)));
                }
            }
            if self.items_clash(&name) {
                return Ok(Ty::Typedef(name, Box::new(rec)));
            }
            self.alias(&name, &decl, Ty::Typedef(name.clone(), Box::new(rec)));
            return Ok(Ty::Named(name));
        }
        if self.items_clash(&name) {
            let inner = self.value(under, Site::Inner, Policy::default(), None)?;
            return Ok(Ty::Typedef(name, Box::new(inner)));
        }
        if !self.module.items.contains_key(&name) {
            let inner = self.value(under, Site::Inner, Policy::default(), None)?;
            self.alias(&name, &decl, Ty::Typedef(name.clone(), Box::new(inner)));
        }
        Ok(Ty::Named(name))
    }

    /// Whether `name` is taken by an item that is not its own alias.
    fn items_clash(&self, name: &str) -> bool {
        self.module
            .items
            .get(name)
            .is_some_and(|i| !matches!(i.kind, ItemKind::Alias(_)))
    }

    fn alias(&mut self, name: &str, decl: &Entity, ty: Ty) {
        self.module
            .items
            .entry(name.to_string())
            .or_insert_with(|| Item {
                c_name: name.to_string(),
                kind: ItemKind::Alias(ty),
                at: at(decl),
                note: None,
            });
    }

    fn pointer(&mut self, t: Type, site: Site, policy: Policy) -> Result<Ty, String> {
        let pointee = t.get_pointee_type().ok_or("a pointer without a pointee")?;
        let canonical = pointee.get_canonical_type();
        if canonical.get_kind() == TypeKind::FunctionPrototype
            || canonical.get_kind() == TypeKind::FunctionNoPrototype
        {
            // The function type itself, through typedefs and elaborations.
            let f = canonical;
            if f.get_kind() == TypeKind::FunctionNoPrototype {
                return Err("a function pointer without a prototype".into());
            }
            if f.is_variadic() {
                return Err("a pointer to a variadic function".into());
            }
            // The argument and result types through the pointee as written,
            // which keeps their typedefs (libclang looks through the sugar).
            // A callback typedef's overrides apply by its parameters' names.
            let callback = self.callback.take();
            let written = pointee.get_argument_types().unwrap_or_default();
            let mut args = Vec::new();
            let mut i = 0;
            while i < written.len() {
                let a = written[i];
                let named = callback
                    .as_ref()
                    .and_then(|(cb, names)| Some((cb.clone(), names.get(i)?.clone())));
                let mut policy = Policy::default();
                if let Some((cb, pname)) = &named {
                    let len_name = callback.as_ref().and_then(|(_, n)| n.get(i + 1).cloned());
                    if let Some(t) = self.callback_pair(cb, pname, len_name, written.get(i + 1))? {
                        args.push(t);
                        i += 2;
                        continue;
                    }
                    policy = self.policy(cb, pname);
                }
                let a = self
                    .value(a, Site::CallbackArg, policy, None)
                    .map_err(|why| format!("callback argument {}: {why}", i + 1))?;
                args.push(a);
                i += 1;
            }
            if args.len() > MAX_PARAMS {
                return Err(format!("a callback of {} parameters", args.len()));
            }
            let ret = match pointee.get_result_type() {
                Some(r) => self.value(r, Site::CallbackResult, Policy::default(), None)?,
                None => Ty::Void,
            };
            let opt = policy.nullable.unwrap_or(true);
            return Ok(Ty::FunPtr {
                opt,
                args,
                ret: Box::new(ret),
            });
        }
        let is_char = canonical.get_kind() == TypeKind::CharS;
        let is_const = pointee.is_const_qualified();
        let default_string = match site {
            Site::Param | Site::Result | Site::CallbackArg => is_char && is_const,
            Site::Field => is_char,
            Site::CallbackResult | Site::Inner => false,
        };
        if is_char && policy.owned && site == Site::Result {
            let inner = self.pointee(pointee)?;
            return Ok(Ty::OwnedStr(Box::new(Ty::Ptr {
                opt: true,
                to: Box::new(inner),
            })));
        }
        if policy.borrowed {
            // What C lends: read when the Rust side asks, not copied.
            let opt = policy.nullable.unwrap_or(site != Site::Param);
            let inner = self.pointee(pointee)?;
            if is_char {
                return Ok(Ty::StrRef(Box::new(Ty::Ptr {
                    opt,
                    to: Box::new(inner),
                })));
            }
            let strings = canonical.get_kind() == TypeKind::Pointer
                && canonical
                    .get_pointee_type()
                    .is_some_and(|p| p.get_canonical_type().get_kind() == TypeKind::CharS);
            if strings {
                // `const char **`: a NULL-terminated array of strings.
                let inner = match inner {
                    Ty::Ptr { to, .. } => Ty::Ptr { opt: true, to },
                    Ty::Const(x) => match *x {
                        Ty::Ptr { to, .. } => Ty::Const(Box::new(Ty::Ptr { opt: true, to })),
                        other => Ty::Const(Box::new(other)),
                    },
                    other => other,
                };
                return Ok(Ty::StrArray(Box::new(Ty::Ptr {
                    opt: false,
                    to: Box::new(inner),
                })));
            }
            return Err("`borrowed` applies to `char *` and `char **`".into());
        }
        if is_char && policy.string.unwrap_or(default_string) {
            let opt = policy.nullable.unwrap_or(site != Site::Param);
            return Ok(Ty::String { opt });
        }
        let inner = self.pointee(pointee)?;
        let default_opt = match site {
            Site::Param => canonical.get_kind() == TypeKind::Void,
            _ => true,
        };
        Ok(Ty::Ptr {
            opt: policy.nullable.unwrap_or(default_opt),
            to: Box::new(inner),
        })
    }

    /// What a pointer points at, `const` as the header says.
    fn pointee(&mut self, pointee: Type) -> Result<Ty, String> {
        let inner = self.value(pointee, Site::Inner, Policy::default(), None)?;
        Ok(if pointee.is_const_qualified() {
            Ty::Const(Box::new(inner))
        } else {
            inner
        })
    }

    fn record(&mut self, t: Type, hint: Option<&str>) -> Result<Ty, String> {
        let decl = t
            .get_declaration()
            .ok_or("a struct without a declaration")?;
        let union = decl.get_kind() == EntityKind::UnionDecl;
        let tag = decl
            .get_name()
            .filter(|n| !n.is_empty() && !decl.is_anonymous() && !untagged(&decl));
        // An untagged struct reached through another typedef than its own
        // (`typedef struct { … } png_image, *png_imagep;`, through
        // `png_imagep`): libclang names it after the typedef that declares
        // it, which is the name it is generated under.
        let typedef_name = || {
            decl.get_name()
                .filter(|n| !n.is_empty() && !decl.is_anonymous() && untagged(&decl))
        };
        let (ident, c_name) = match (&tag, hint) {
            (Some(tag), _) => (tag.clone(), tag.clone()),
            (None, Some(h)) => (h.to_string(), String::new()),
            (None, None) => match typedef_name() {
                Some(n) => (n, String::new()),
                None => return Err("an untagged struct or union with no name".into()),
            },
        };
        // Reached that way, it is spelled through its typedef, as C must.
        let by_typedef = tag.is_none() && hint.is_none();
        let named = |ident: String| {
            if by_typedef {
                Ty::Typedef(ident.clone(), Box::new(Ty::Named(ident)))
            } else {
                Ty::Named(ident)
            }
        };
        if let Some(existing) = self.module.items.get(&ident) {
            if !matches!(existing.kind, ItemKind::Alias(_)) {
                return Ok(named(ident));
            }
            return Err(format!("`{ident}` names both a typedef and a struct"));
        }
        let definition = decl.get_definition();
        // Placeholder first: fields may point back at this struct.
        self.module.items.insert(
            ident.clone(),
            Item {
                c_name: c_name.clone(),
                kind: ItemKind::Opaque { union },
                at: at(&decl),
                note: None,
            },
        );
        let Some(def) = definition else {
            return Ok(named(ident));
        };
        let mut fields = Vec::new();
        let mut incomplete = None;
        for f in def.get_children() {
            // A nested struct's declaration comes before the field of its
            // type, which names it.
            if f.get_kind() != EntityKind::FieldDecl {
                continue;
            }
            let fname = f.get_name().unwrap_or_default();
            if fname.is_empty() {
                incomplete = Some("an unnamed member (C11 anonymous struct or union)".to_string());
                break;
            }
            if f.is_bit_field() {
                incomplete = Some(format!("the bit-field `{fname}`"));
                break;
            }
            let Some(fty) = f.get_type() else {
                incomplete = Some(format!("the field `{fname}` has no type"));
                break;
            };
            let nested_hint = format!("{ident}_{fname}");
            match self.value(fty, Site::Field, Policy::default(), Some(&nested_hint)) {
                Ok(ty) => fields.push(FieldDecl {
                    rust_name: rust_ident(&fname),
                    c_name: fname.clone(),
                    c_decl: format!("{} {fname}", fty.get_display_name()),
                    ty,
                }),
                Err(why) => {
                    incomplete = Some(format!("the field `{fname}`: {why}"));
                    break;
                }
            }
        }
        let item = self.module.items.get_mut(&ident).ok_or("lost item")?;
        match incomplete {
            Some(why) => {
                let spelled = item.c_spelling(&ident);
                item.note = Some(why.clone());
                self.module.warnings.push(format!(
                    "`{spelled}` ({}) is generated incomplete, usable behind pointers only: {why}",
                    item.at
                ));
            }
            None => item.kind = ItemKind::Aggregate { union, fields },
        }
        Ok(named(ident))
    }

    fn enumeration(&mut self, t: Type) -> Result<Ty, String> {
        let decl = t.get_declaration().ok_or("an enum without a declaration")?;
        let under = decl
            .get_enum_underlying_type()
            .ok_or("an enum without an underlying type")?;
        let base = self.value(under, Site::Inner, Policy::default(), None)?;
        self.enum_constants(&decl);
        match decl.get_name().filter(|_| !decl.is_anonymous()) {
            Some(n) => Ok(Ty::Typedef(format!("enum {n}"), Box::new(base))),
            None => Ok(base),
        }
    }

    fn enum_constants(&mut self, decl: &Entity) {
        let key = format!("{}@{}", decl.get_name().unwrap_or_default(), at(decl));
        if !in_library(decl) || !self.enums_done.insert(key) {
            return;
        }
        let unsigned = decl
            .get_enum_underlying_type()
            .map(|u| {
                matches!(
                    u.get_canonical_type().get_kind(),
                    TypeKind::UInt | TypeKind::ULong | TypeKind::ULongLong | TypeKind::UShort
                )
            })
            .unwrap_or(false);
        for c in decl.get_children() {
            if c.get_kind() != EntityKind::EnumConstantDecl {
                continue;
            }
            let Some(name) = c.get_name() else { continue };
            if !self.filters.constant(&name) {
                continue;
            }
            let Some((signed, uns)) = c.get_enum_constant_value() else {
                continue;
            };
            let (rust_type, value) = if unsigned {
                int_constant(i128::from(uns), true)
            } else {
                int_constant(i128::from(signed), false)
            };
            self.push_constant(name, rust_type, value, at(&c));
        }
    }

    fn push_constant(&mut self, name: String, rust_type: &'static str, value: String, at: String) {
        if self.module.constants.iter().any(|c| c.name == name) {
            return;
        }
        self.module.constants.push(Constant {
            name,
            rust_type,
            value,
            at,
        });
    }

    fn macro_constant(&mut self, e: &Entity, name: &str) {
        if e.is_builtin_macro() || !self.filters.constant(name) {
            return;
        }
        let what = format!("macro `{name}`");
        if e.is_function_like_macro() {
            return self.skip(what, e, "a function-like macro: no symbol to bind".into());
        }
        let tokens: Vec<(TokenKind, String)> = e
            .get_range()
            .map(|r| r.tokenize())
            .unwrap_or_default()
            .iter()
            .map(|t| (t.get_kind(), t.get_spelling()))
            .collect();
        // The first token is the macro's name.
        let body = tokens.get(1..).unwrap_or(&[]);
        if body.is_empty() {
            // A flag (`#define ZLIB_H`): it has no value to generate.
            return;
        }
        // Another constant by name (`#define Z_ASCII Z_TEXT`), resolved
        // once every constant is known; `#define X X` (an enum constant
        // made testable by `#ifdef`) adds nothing.
        if let [(TokenKind::Identifier, other)] = body {
            if other != name {
                self.pending.push((name.to_string(), other.clone(), at(e)));
            }
            return;
        }
        match literal(body) {
            Some((ty, value)) => self.push_constant(name.to_string(), ty, value, at(e)),
            None => {
                // An expression (`(1 << 3)`, `(-LUAI_MAXSTACK - 1000)`):
                // the compiler evaluates it once every macro is read.
                let text: Vec<&str> = body.iter().map(|(_, s)| s.as_str()).collect();
                self.expressions
                    .push((name.to_string(), text.join(" "), at(e)));
            }
        }
    }
}

/// A macro's value as the compiler evaluated it.
#[derive(Debug, PartialEq)]
struct Value {
    rust_type: &'static str,
    value: String,
}

/// The clang arguments that parse the headers for wasm32-wasi as
/// `sandlink-build` compiles the library; why not, without a toolchain.
fn wasm_args(host: &[String]) -> Result<Vec<String>, String> {
    let toolchain = crate::Toolchain::find().map_err(|e| e.to_string())?;
    let mut args = vec!["--target=wasm32-wasi".to_string()];
    args.extend(toolchain.wasm_flags().iter().cloned());
    args.extend(host.iter().cloned());
    Ok(args)
}

/// Evaluates each macro in `names` with the compiler, the headers parsed
/// with `args`: one `static const __auto_type` per macro, read back through
/// libclang's evaluator. `None` for what is not a constant expression.
fn probe(
    index: &Index,
    wrapper: &str,
    path: &std::path::Path,
    args: &[String],
    names: &[&str],
) -> Vec<Option<Value>> {
    let mut src = wrapper.to_string();
    for (i, n) in names.iter().enumerate() {
        // A number or a string: whichever compiles is evaluated.
        src.push_str(&format!(
            "\nstatic const __auto_type sandlink_probe_{i} = ({n});\n\
             static const char sandlink_probe_str_{i}[] = {n};\n"
        ));
    }
    let mut out: Vec<Option<Value>> = names.iter().map(|_| None).collect();
    let mut parser = index.parser(path);
    parser
        .arguments(args)
        .skip_function_bodies(true)
        .unsaved(&[Unsaved::new(path, &src)]);
    let Ok(tu) = parser.parse() else {
        return out;
    };
    for e in tu.get_entity().get_children() {
        if e.get_kind() != EntityKind::VarDecl {
            continue;
        }
        let Some(name) = e.get_name() else { continue };
        let (index, string) = match name.strip_prefix("sandlink_probe_str_") {
            Some(i) => (i, true),
            None => match name.strip_prefix("sandlink_probe_") {
                Some(i) => (i, false),
                None => continue,
            },
        };
        let Some(i) = index.parse::<usize>().ok().filter(|i| *i < out.len()) else {
            continue;
        };
        let kind = e.get_type().map(|t| t.get_canonical_type().get_kind());
        let v = e.evaluate().and_then(|v| value(v, kind));
        if v.is_some() && (string || out[i].is_none()) {
            out[i] = v;
        }
    }
    out
}

/// A Rust constant for an evaluated macro of C type `kind`.
fn value(v: clang::EvaluationResult, kind: Option<TypeKind>) -> Option<Value> {
    use clang::EvaluationResult as E;
    let int = |n: i128| -> Option<Value> {
        let (rust_type, fits) = match kind? {
            TypeKind::CharS | TypeKind::SChar => ("i8", i8::try_from(n).is_ok()),
            TypeKind::UChar | TypeKind::CharU | TypeKind::Bool => ("u8", u8::try_from(n).is_ok()),
            TypeKind::Short => ("i16", i16::try_from(n).is_ok()),
            TypeKind::UShort => ("u16", u16::try_from(n).is_ok()),
            TypeKind::Int => ("i32", i32::try_from(n).is_ok()),
            TypeKind::UInt => ("u32", u32::try_from(n).is_ok()),
            TypeKind::Long | TypeKind::LongLong => ("i64", i64::try_from(n).is_ok()),
            TypeKind::ULong | TypeKind::ULongLong => ("u64", u64::try_from(n).is_ok()),
            _ => return None,
        };
        fits.then(|| Value {
            rust_type,
            value: n.to_string(),
        })
    };
    match v {
        E::SignedInteger(n) => int(i128::from(n)),
        E::UnsignedInteger(n) => int(i128::from(n)),
        E::Float(f) if f.is_finite() => Some(Value {
            rust_type: "f64",
            value: format!("{f:?}"),
        }),
        E::String(s) => Some(Value {
            rust_type: "&str",
            value: format!("{:?}", s.into_string().ok()?),
        }),
        _ => None,
    }
}

/// Whether a struct or union declaration has no tag (`struct { … }`):
/// libclang names such a record after its typedef, which C does not.
fn untagged(decl: &Entity) -> bool {
    let tokens = decl.get_range().map(|r| r.tokenize()).unwrap_or_default();
    let spelled: Vec<String> = tokens.iter().take(2).map(|t| t.get_spelling()).collect();
    matches!(spelled.as_slice(), [kw, brace] if (kw == "struct" || kw == "union") && brace == "{")
}

/// Checks that the parameter after the pointer `ptr` (named `next`, `None`
/// when `ptr` is the last) is the length `len` its buffer override names.
fn neighbour(ptr: &str, len: &str, next: Option<String>) -> Result<(), String> {
    match next {
        None => Err(format!(
            "the buffer override pairs `{ptr}` with `{len}`, but `{ptr}` is the last parameter"
        )),
        Some(n) if n != len => Err(format!(
            "the buffer override pairs `{ptr}` with `{len}`, which is not the parameter right \
             after it"
        )),
        Some(_) => Ok(()),
    }
}

/// Whether `t` is an integer (a buffer's length must be).
fn is_integer(t: &Ty, items: &BTreeMap<String, Item>) -> bool {
    matches!(t.strip(items), Ty::Scalar(s) if !matches!(s, "float" | "double" | "bool"))
}

/// Why `t` cannot be passed by value, if it is a struct or union.
fn by_value_aggregate(t: &Ty, items: &BTreeMap<String, Item>) -> Option<String> {
    match t.strip(items) {
        Ty::Named(n) => Some(format!(
            "`{}` passed by value (Sandlink passes structs and unions by pointer)",
            items
                .get(&n)
                .map_or_else(|| n.clone(), |i| i.c_spelling(&n))
        )),
        Ty::Array(..) => Some("an array passed by value".into()),
        _ => None,
    }
}

/// What the docs say about a parameter's or result's pointer choice.
fn describe_choice(t: &Ty, policy: Policy) -> Option<String> {
    let how = |chosen: bool| if chosen { "override" } else { "default" };
    let overridden = policy.nullable.is_some() || policy.string.is_some() || policy.owned;
    match t {
        Ty::Typedef(_, inner) => describe_choice(inner, policy),
        Ty::String { opt } => Some(format!(
            "`{}`, a NUL-terminated string{} ({})",
            t.text(),
            if *opt {
                ", NULL as `None`"
            } else {
                ", never NULL"
            },
            how(overridden)
        )),
        Ty::StrRef(_) | Ty::StrArray(_) => Some(format!(
            "`{}`, lent by C and read on demand ({})",
            t.text(),
            how(true)
        )),
        Ty::BytesRef { .. } => Some(format!(
            "`{}`, a `(pointer, length)` pair lent by C ({})",
            t.text(),
            how(true)
        )),
        Ty::OwnedStr(_) => Some(format!(
            "`{}`, a string the caller frees ({})",
            t.text(),
            how(true)
        )),
        Ty::Ptr { opt, .. } => Some(format!(
            "`{}`{} ({})",
            t.text(),
            if *opt {
                ", NULL as `None`"
            } else {
                ", never NULL"
            },
            how(overridden)
        )),
        Ty::FunPtr { opt, .. } => Some(format!(
            "a callback{} ({})",
            if *opt { ", `None` for NULL" } else { "" },
            how(overridden)
        )),
        _ => None,
    }
}

/// `int deflate(z_streamp strm, int flush)`.
fn prototype_of(e: &Entity, name: &str, params: &[Entity]) -> String {
    let ret = e
        .get_result_type()
        .map(|t| t.get_display_name())
        .unwrap_or_default();
    let params: Vec<String> = params
        .iter()
        .map(|p| {
            let ty = p
                .get_type()
                .map(|t| t.get_display_name())
                .unwrap_or_default();
            match p.get_name() {
                Some(n) if ty.ends_with('*') => format!("{ty}{n}"),
                Some(n) => format!("{ty} {n}"),
                None => ty,
            }
        })
        .collect();
    let params = if params.is_empty() {
        "void".to_string()
    } else {
        params.join(", ")
    };
    let sep = if ret.ends_with('*') { "" } else { " " };
    format!("{ret}{sep}{name}({params})")
}

/// A C identifier as a Rust one.
pub(crate) fn rust_ident(c: &str) -> String {
    const STRICT: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
        "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
        "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];
    if NOT_RAW.contains(&c) {
        format!("{c}_")
    } else if STRICT.contains(&c) {
        format!("r#{c}")
    } else {
        c.to_string()
    }
}

/// A macro body that is one literal: an integer (optionally negated and
/// parenthesised) or a plain string.
fn literal(body: &[(TokenKind, String)]) -> Option<(&'static str, String)> {
    let mut toks: Vec<&str> = body.iter().map(|(_, s)| s.as_str()).collect();
    while toks.first() == Some(&"(") && toks.last() == Some(&")") {
        toks = toks[1..toks.len() - 1].to_vec();
    }
    let (neg, lit) = match toks.as_slice() {
        ["-", lit] => (true, *lit),
        [lit] => (false, *lit),
        _ => return None,
    };
    if let Some(s) = lit.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        if neg || s.contains('\\') || s.contains('"') {
            return None;
        }
        return Some(("&str", format!("{s:?}")));
    }
    let lower = lit.to_ascii_lowercase();
    let digits = lower.trim_end_matches(['u', 'l']);
    let suffix = &lower[digits.len()..];
    let unsigned = suffix.contains('u');
    let value: u64 = if let Some(h) = digits.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    if unsigned {
        return (!neg).then(|| int_constant(i128::from(value), true));
    }
    let signed = i64::try_from(value).ok()?;
    Some(int_constant(
        i128::from(if neg { -signed } else { signed }),
        false,
    ))
}

/// An integer constant's Rust type and literal: the narrowest of `i32`/`i64`
/// (`u32`/`u64` when `unsigned`) that holds `n`, as C types a literal.
fn int_constant(n: i128, unsigned: bool) -> (&'static str, String) {
    let rust_type = match (unsigned, i32::try_from(n).is_ok(), u32::try_from(n).is_ok()) {
        (true, _, true) => "u32",
        (true, _, false) => "u64",
        (false, true, _) => "i32",
        (false, false, _) => "i64",
    };
    (rust_type, n.to_string())
}
