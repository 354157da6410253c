//! The generator's model of a header: C types in the `bindings!` grammar,
//! and their erased descriptions for the stub spec.

use std::collections::BTreeMap;
use std::fmt;

use sandlink::record::Recorder;
use sandlink::types::{self as t, Erased, Typ};
use sandlink_guest_shim::spec::StubSpec;

use super::{GenerateError, Module};

/// A C type as the `bindings!` grammar spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Void,
    /// A scalar, by its constructor's name (`int`, `ulong`, `size_t`).
    Scalar(&'static str),
    String {
        opt: bool,
    },
    /// A returned `char *` the caller frees; the pointer.
    OwnedStr(Box<Ty>),
    /// A lent `char *`, read on demand; the pointer.
    StrRef(Box<Ty>),
    /// A lent NULL-terminated `char **`; the pointer.
    StrArray(Box<Ty>),
    /// A lent `(pointer, length)` pair, its length `int` or `size_t`.
    BytesRef {
        int: bool,
    },
    /// A `(pointer, length)` pair; the length's type.
    Buffer {
        len: Box<Ty>,
        mutable: bool,
    },
    Ptr {
        opt: bool,
        to: Box<Ty>,
    },
    Const(Box<Ty>),
    Typedef(String, Box<Ty>),
    Array(u64, Box<Ty>),
    FunPtr {
        opt: bool,
        args: Vec<Ty>,
        ret: Box<Ty>,
    },
    /// A generated item, by Rust identifier.
    Named(String),
}

/// Where a type sits: as in the macro's modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Full,
    Field,
    Behind,
}

impl Mode {
    fn under_pointer(self) -> Mode {
        match self {
            Mode::Full => Mode::Full,
            _ => Mode::Behind,
        }
    }
}

impl Ty {
    /// The `bindings!` grammar's text.
    pub(crate) fn text(&self) -> String {
        match self {
            Ty::Void => "void".into(),
            Ty::Scalar(s) => (*s).into(),
            Ty::String { opt: false } => "string".into(),
            Ty::String { opt: true } => "string_opt".into(),
            Ty::OwnedStr(p) => format!("str_owned_opt({})", p.text()),
            Ty::StrRef(p) => match &**p {
                Ty::Ptr { opt: true, .. } => format!("str_ref_opt({})", p.text()),
                _ => format!("str_ref({})", p.text()),
            },
            Ty::StrArray(p) => format!("str_array_ref({})", p.text()),
            Ty::BytesRef { int: true } => "bytes_ref_int".into(),
            Ty::BytesRef { int: false } => "bytes_ref".into(),
            Ty::Buffer { len, mutable } => format!(
                "{}({})",
                if *mutable {
                    "buffer_mut_len"
                } else {
                    "buffer_len"
                },
                len.text()
            ),
            Ty::Ptr { opt, to } => {
                format!("{}({})", if *opt { "ptr_opt" } else { "ptr" }, to.text())
            }
            Ty::Const(t) => format!("const_({})", t.text()),
            Ty::Typedef(n, t) => format!("typedef({n:?}, {})", t.text()),
            Ty::Array(n, t) => format!("array({n}, {})", t.text()),
            Ty::FunPtr { opt, args, ret } => format!(
                "{}(fn({}) -> {})",
                if *opt { "funptr_opt" } else { "funptr" },
                args.iter().map(Ty::text).collect::<Vec<_>>().join(", "),
                ret.text()
            ),
            Ty::Named(n) => n.clone(),
        }
    }

    /// The description, erased, as the macro would build it in `mode`.
    pub(crate) fn erased(
        &self,
        mode: Mode,
        items: &BTreeMap<String, Item>,
    ) -> Result<Typ<Erased>, GenerateError> {
        let err = |e: sandlink::Error| GenerateError(format!("describing `{}`: {e}", self.text()));
        Ok(match self {
            Ty::Void => Typ::<()>::from(t::void()).erase(),
            Ty::Scalar(s) => scalar(s)
                .ok_or_else(|| GenerateError(format!("unknown scalar constructor `{s}`")))?,
            Ty::String { .. } => t::string().erase(),
            // A string view keeps its pointer's description.
            Ty::OwnedStr(p) | Ty::StrRef(p) | Ty::StrArray(p) => p.erased(mode, items)?,
            Ty::BytesRef { int: true } => t::bytes_ref_int().erase(),
            Ty::BytesRef { int: false } => t::bytes_ref().erase(),
            Ty::Buffer { len, .. } => {
                t::buffer_erased(&len.erased(mode, items)?).ok_or_else(|| {
                    GenerateError(format!("`{}` cannot be a buffer's length", len.text()))
                })?
            }
            Ty::Ptr { to, .. } => t::ptr(to.erased(mode.under_pointer(), items)?).erase(),
            Ty::Const(x) => t::const_(x.erased(mode, items)?).erase(),
            Ty::Typedef(n, x) => t::typedef(x.erased(mode, items)?, n).erase(),
            Ty::Array(n, x) => t::array(*n, x.erased(mode, items)?).erase(),
            Ty::FunPtr { args, ret, .. } => {
                let m = mode.under_pointer();
                let args = args
                    .iter()
                    .map(|a| a.erased(m, items))
                    .collect::<Result<Vec<_>, _>>()?;
                let ret = match &**ret {
                    Ty::Void => None,
                    r => Some(r.erased(m, items)?),
                };
                t::funptr_erased(&args, ret.as_ref())
            }
            Ty::Named(n) => {
                let item = items
                    .get(n)
                    .ok_or_else(|| GenerateError(format!("no item `{n}`")))?;
                match (&item.kind, mode) {
                    (ItemKind::Alias(x), m) => x.erased(m, items)?,
                    (ItemKind::Opaque { union }, _) => opaque(&item.c_name, *union),
                    (ItemKind::Aggregate { union, .. }, Mode::Behind) => {
                        opaque(&item.c_name, *union)
                    }
                    (ItemKind::Aggregate { union, fields }, _) => {
                        let mut s = if *union {
                            t::union::<Erased>(&item.c_name)
                        } else {
                            t::structure::<Erased>(&item.c_name)
                        };
                        for f in fields {
                            let ft = f.ty.erased(Mode::Field, items)?;
                            s.field(&f.c_name, ft);
                        }
                        s.seal().map_err(err)?.erase()
                    }
                }
            }
        })
    }

    /// Without typedefs, aliases and `const`.
    pub(crate) fn strip(&self, items: &BTreeMap<String, Item>) -> Ty {
        match self {
            Ty::Const(x) | Ty::Typedef(_, x) => x.strip(items),
            Ty::Named(n) => match items.get(n).map(|i| &i.kind) {
                Some(ItemKind::Alias(x)) => x.strip(items),
                _ => self.clone(),
            },
            other => other.clone(),
        }
    }
}

/// The erased description of a scalar constructor.
fn scalar(s: &str) -> Option<Typ<Erased>> {
    Some(match s {
        "bool" => t::bool().erase(),
        "char" => t::char().erase(),
        "schar" => t::schar().erase(),
        "uchar" => t::uchar().erase(),
        "short" => t::short().erase(),
        "ushort" => t::ushort().erase(),
        "int" => t::int().erase(),
        "uint" => t::uint().erase(),
        "long" => t::long().erase(),
        "ulong" => t::ulong().erase(),
        "llong" => t::llong().erase(),
        "ullong" => t::ullong().erase(),
        "int8_t" => t::int8_t().erase(),
        "int16_t" => t::int16_t().erase(),
        "int32_t" => t::int32_t().erase(),
        "int64_t" => t::int64_t().erase(),
        "uint8_t" => t::uint8_t().erase(),
        "uint16_t" => t::uint16_t().erase(),
        "uint32_t" => t::uint32_t().erase(),
        "uint64_t" => t::uint64_t().erase(),
        "size_t" => t::size_t().erase(),
        "ssize_t" => t::ssize_t().erase(),
        "intptr_t" => t::intptr_t().erase(),
        "uintptr_t" => t::uintptr_t().erase(),
        "ptrdiff_t" => t::ptrdiff_t().erase(),
        "float" => t::float().erase(),
        "double" => t::double().erase(),
        _ => return None,
    })
}

fn opaque(c_name: &str, union: bool) -> Typ<Erased> {
    if union {
        t::union::<Erased>(c_name).opaque().erase()
    } else {
        t::structure::<Erased>(c_name).opaque().erase()
    }
}

/// A named type the module declares.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// The C tag or typedef name (empty for an untagged struct).
    pub(crate) c_name: String,
    pub(crate) kind: ItemKind,
    /// Where it is declared, `file:line`.
    pub(crate) at: String,
    /// Why it is incomplete though C defines it (a bit-field, say).
    pub(crate) note: Option<String>,
}

impl Item {
    /// The type as C spells it; an untagged struct (empty `c_name`) by
    /// the name it is generated under, `ident` (its typedef's or field's).
    pub(crate) fn c_spelling(&self, ident: &str) -> String {
        match &self.kind {
            _ if self.c_name.is_empty() => ident.to_string(),
            ItemKind::Alias(_) => self.c_name.clone(),
            ItemKind::Opaque { union } | ItemKind::Aggregate { union, .. } => {
                format!(
                    "{} {}",
                    if *union { "union" } else { "struct" },
                    self.c_name
                )
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum ItemKind {
    Alias(Ty),
    Opaque { union: bool },
    Aggregate { union: bool, fields: Vec<FieldDecl> },
}

#[derive(Clone, Debug)]
pub(crate) struct FieldDecl {
    pub(crate) rust_name: String,
    pub(crate) c_name: String,
    pub(crate) ty: Ty,
    /// The C declaration, for the docs.
    pub(crate) c_decl: String,
}

/// A function the module binds.
#[derive(Clone, Debug)]
pub(crate) struct Function {
    pub(crate) c_name: String,
    pub(crate) args: Vec<Ty>,
    pub(crate) ret: Ty,
    /// The C prototype, for the docs.
    pub(crate) prototype: String,
    pub(crate) at: String,
    /// The defaults and overrides taken, for the docs.
    pub(crate) choices: Vec<String>,
}

/// A constant: a literal macro or an enum value.
#[derive(Clone, Debug)]
pub(crate) struct Constant {
    pub(crate) name: String,
    /// The Rust type (`i32`, `u64`, `&str`).
    pub(crate) rust_type: &'static str,
    /// The Rust literal, or another constant's name.
    pub(crate) value: String,
    pub(crate) at: String,
}

/// A declaration left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// What it is: "function `gzprintf`", "macro `deflateInit`".
    pub what: String,
    /// Where, `file:line`.
    pub at: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.what, self.at, self.reason)
    }
}

/// The stub spec of `module`'s functions, recorded as the generated
/// bindings will bind them.
/// Makes every struct or union whose layout cannot be described (a field
/// of a type known only by name, such as `jmp_buf`'s `struct __jmp_buf_tag`
/// from a system header) incomplete, with a warning, as the reader does for
/// a bit-field; then skips, with the reason, every function whose types
/// still cannot be described (one that takes such a struct by value). One
/// declaration the generator cannot lower never stops the others.
pub(crate) fn settle(module: &mut Module) {
    // A struct made incomplete may make another that holds it by value
    // incomplete in turn: repeat until nothing changes.
    loop {
        let mut demoted = None;
        for (ident, item) in &module.items {
            if !matches!(item.kind, ItemKind::Aggregate { .. }) {
                continue;
            }
            if let Err(e) = Ty::Named(ident.clone()).erased(Mode::Full, &module.items) {
                demoted = Some((ident.clone(), e.0));
                break;
            }
        }
        let Some((ident, why)) = demoted else { break };
        if let Some(item) = module.items.get_mut(&ident) {
            let union = matches!(item.kind, ItemKind::Aggregate { union: true, .. });
            let spelled = item.c_spelling(&ident);
            item.kind = ItemKind::Opaque { union };
            item.note = Some(why.clone());
            module.warnings.push(format!(
                "`{spelled}` ({}) is generated incomplete, usable behind pointers only: {why}",
                item.at
            ));
        }
    }
    let items = &module.items;
    let mut skipped = Vec::new();
    module.functions.retain(|f| match recordable(f, items) {
        Ok(()) => true,
        Err(e) => {
            skipped.push(Skipped {
                what: format!("function `{}`", f.c_name),
                at: f.at.clone(),
                reason: e.0,
            });
            false
        }
    });
    module.skipped.extend(skipped);
}

/// Whether `f`'s types can be described and its stub recorded (a callback
/// parameter of an array type, `void (*)(jmp_buf, int)`, cannot): what
/// [`record`] will ask of it, tried alone.
fn recordable(f: &Function, items: &BTreeMap<String, Item>) -> Result<(), GenerateError> {
    let (args, ret) = erased_signature(f, items)?;
    let rec = Recorder::new("trial");
    rec.declare(&f.c_name, &args, ret.as_ref())
        .and_then(|()| rec.spec().map(|_| ()))
        .map_err(|e| GenerateError(e.to_string()))
}

/// `f`'s argument and result descriptions, erased, as the stubs record them.
type ErasedSig = (Vec<Typ<Erased>>, Option<Typ<Erased>>);

fn erased_signature(
    f: &Function,
    items: &BTreeMap<String, Item>,
) -> Result<ErasedSig, GenerateError> {
    let args = f
        .args
        .iter()
        .map(|a| a.erased(Mode::Full, items))
        .collect::<Result<Vec<_>, _>>()?;
    let ret = match &f.ret {
        Ty::Void => None,
        r => Some(r.erased(Mode::Full, items)?),
    };
    Ok((args, ret))
}

pub(crate) fn record(name: &str, module: &Module) -> Result<StubSpec, GenerateError> {
    let rec = Recorder::new(name);
    for f in &module.functions {
        let (args, ret) = erased_signature(f, &module.items)?;
        rec.declare(&f.c_name, &args, ret.as_ref())
            .map_err(|e| GenerateError(format!("recording `{}`: {e}", f.c_name)))?;
    }
    rec.spec()
        .map_err(|e| GenerateError(format!("the stub spec: {e}")))
}
