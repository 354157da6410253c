//! Run-time descriptions of C types: names, layouts per data model, and how
//! each lowers to machine words.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// A C data model: the sizes of `long`, `size_t` and pointers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataModel {
    /// x86-64 Linux and most 64-bit Unix: `long`, `size_t`, pointers are 8 bytes.
    Lp64,
    /// wasm32 (and 32-bit Unix): `int`, `long`, `size_t`, pointers are 4 bytes.
    Ilp32,
}

impl DataModel {
    /// The data model of the host this crate was compiled for.
    pub const fn host() -> DataModel {
        if cfg!(target_pointer_width = "64") {
            DataModel::Lp64
        } else {
            DataModel::Ilp32
        }
    }

    /// Size in bytes of a pointer (and of `long`, `size_t`) in this model.
    pub const fn word(self) -> u64 {
        match self {
            DataModel::Lp64 => 8,
            DataModel::Ilp32 => 4,
        }
    }
}

impl fmt::Display for DataModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataModel::Lp64 => "LP64",
            DataModel::Ilp32 => "ILP32",
        })
    }
}

/// A C scalar type: something passed in one machine word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variants are the C types their names spell
pub enum Prim {
    Bool,
    Char,
    SChar,
    UChar,
    Short,
    UShort,
    Int,
    UInt,
    Long,
    ULong,
    LLong,
    ULLong,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Size,
    SSize,
    IntPtr,
    UIntPtr,
    PtrDiff,
    Float,
    Double,
    /// Any data or function pointer.
    Pointer,
}

/// How a scalar travels in registers: an integer class or a float class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordClass {
    /// An integer or pointer of the given size, signed or not.
    Int {
        /// Size in bytes under the data model asked for.
        size: u8,
        /// Whether the value is sign-extended.
        signed: bool,
    },
    /// `float`.
    F32,
    /// `double`.
    F64,
}

impl Prim {
    /// The C spelling of the type.
    pub const fn c_name(self) -> &'static str {
        use Prim::*;
        match self {
            Bool => "_Bool",
            Char => "char",
            SChar => "signed char",
            UChar => "unsigned char",
            Short => "short",
            UShort => "unsigned short",
            Int => "int",
            UInt => "unsigned int",
            Long => "long",
            ULong => "unsigned long",
            LLong => "long long",
            ULLong => "unsigned long long",
            I8 => "int8_t",
            I16 => "int16_t",
            I32 => "int32_t",
            I64 => "int64_t",
            U8 => "uint8_t",
            U16 => "uint16_t",
            U32 => "uint32_t",
            U64 => "uint64_t",
            Size => "size_t",
            SSize => "ssize_t",
            IntPtr => "intptr_t",
            UIntPtr => "uintptr_t",
            PtrDiff => "ptrdiff_t",
            Float => "float",
            Double => "double",
            Pointer => "void *",
        }
    }

    /// Size (and alignment) in bytes under `model`.
    pub const fn size(self, model: DataModel) -> u64 {
        use Prim::*;
        match self {
            Bool | Char | SChar | UChar | I8 | U8 => 1,
            Short | UShort | I16 | U16 => 2,
            Int | UInt | I32 | U32 | Float => 4,
            LLong | ULLong | I64 | U64 | Double => 8,
            Long | ULong | Size | SSize | IntPtr | UIntPtr | PtrDiff | Pointer => model.word(),
        }
    }

    /// Whether the C type is signed. `char` is signed on both x86-64 and wasm32.
    pub const fn signed(self) -> bool {
        use Prim::*;
        matches!(
            self,
            Char | SChar
                | Short
                | Int
                | Long
                | LLong
                | I8
                | I16
                | I32
                | I64
                | SSize
                | IntPtr
                | PtrDiff
        )
    }

    /// How the scalar travels under `model`.
    pub const fn class(self, model: DataModel) -> WordClass {
        match self {
            Prim::Float => WordClass::F32,
            Prim::Double => WordClass::F64,
            p => WordClass::Int {
                size: p.size(model) as u8,
                signed: p.signed(),
            },
        }
    }

    /// [`Prim::narrow`] as an [`crate::Error::OutOfRange`] naming `what` the
    /// value was for: the one place a value that does not fit becomes an error.
    #[inline]
    pub fn narrow_to(
        self,
        raw: Raw,
        model: DataModel,
        what: impl FnOnce() -> String,
    ) -> crate::Result<u64> {
        self.narrow(raw, model)
            .map_err(|reason| crate::Error::OutOfRange {
                function: None,
                what: what(),
                c_type: self.c_name().into(),
                model,
                reason,
            })
    }

    /// Narrows a lowered value to this type under `model`, failing (rather than
    /// truncating) when it does not fit. Returns the bits, zero-extended.
    ///
    /// Every argument of every call passes through here, so the check is
    /// inline and the message is built out of line, only on failure.
    #[inline]
    pub fn narrow(self, raw: Raw, model: DataModel) -> std::result::Result<u64, String> {
        match self.class(model) {
            WordClass::F32 | WordClass::F64 | WordClass::Int { size: 8, .. } => Ok(raw.0),
            WordClass::Int { size, signed } => {
                let shift = 64 - u32::from(size) * 8;
                let v = raw.0;
                // It fits when extending its low bits gives it back.
                let extended = if signed {
                    (((v << shift) as i64) >> shift) as u64
                } else {
                    (v << shift) >> shift
                };
                if extended == v {
                    Ok((v << shift) >> shift)
                } else {
                    Err(self.does_not_fit(v, model))
                }
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn does_not_fit(self, v: u64, model: DataModel) -> String {
        let bits = self.size(model) * 8;
        if self.signed() {
            format!(
                "{} does not fit in a {bits}-bit {} under {model}",
                v as i64,
                self.c_name()
            )
        } else {
            format!(
                "{v} does not fit in a {bits}-bit {} under {model}",
                self.c_name()
            )
        }
    }

    /// Widens bits read from a machine word or memory of this type under
    /// `model` into a [`Raw`]: sign- or zero-extends integers; keeps float bits.
    pub fn widen(self, bits: u64, model: DataModel) -> Raw {
        match self.class(model) {
            WordClass::F32 => Raw(bits & 0xffff_ffff),
            WordClass::F64 | WordClass::Int { size: 8, .. } => Raw(bits),
            WordClass::Int { size, signed } => {
                let shift = 64 - u32::from(size) * 8;
                if signed {
                    Raw((((bits << shift) as i64) >> shift) as u64)
                } else {
                    Raw((bits << shift) >> shift)
                }
            }
        }
    }
}

/// One lowered C scalar, independent of any data model: integers sign- or
/// zero-extended to 64 bits, `float` as its bits in the low half, `double` as
/// its bits, pointers as addresses in the library's address space.
///
/// `repr(transparent)`: a `&[Raw]` is a `uint64_t` array as C sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Raw(pub u64);

impl Raw {
    /// From a signed integer.
    pub fn from_i64(v: i64) -> Raw {
        Raw(v as u64)
    }
    /// From a `float`.
    pub fn from_f32(v: f32) -> Raw {
        Raw(u64::from(v.to_bits()))
    }
    /// From a `double`.
    pub fn from_f64(v: f64) -> Raw {
        Raw(v.to_bits())
    }
    /// As a signed integer.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }
    /// As a `float`.
    pub fn as_f32(self) -> f32 {
        f32::from_bits(self.0 as u32)
    }
    /// As a `double`.
    pub fn as_f64(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// The run-time description of a C type.
#[derive(Debug)]
pub enum CType {
    /// `void` (only as a return type or pointee).
    Void,
    /// A scalar.
    Prim(Prim),
    /// `char *` holding a NUL-terminated string.
    String,
    /// A `(const char *, len)` argument pair; the length has the given type.
    Buffer(Prim),
    /// `T *`.
    Pointer(Arc<CType>),
    /// A pointer to a function of the given signature.
    FunPtr(Arc<FnSig>),
    /// `struct name` or `union name`.
    Aggregate(Arc<Aggregate>),
    /// `T[n]`.
    Array(u64, Arc<CType>),
    /// A `typedef` name for another type.
    Typedef(String, Arc<CType>),
    /// The type `const`-qualified: the same words and layout; only the C
    /// spelling (and so the header check of generated stubs) differs.
    Const(Arc<CType>),
    /// A type with a custom Rust conversion; the C side is the inner type.
    View(Arc<CType>),
}

/// A C function signature at run time.
#[derive(Debug, Clone)]
pub struct FnSig {
    /// Argument types, in order.
    pub args: Vec<Arc<CType>>,
    /// Return type.
    pub ret: Arc<CType>,
}

impl FnSig {
    /// Whether `self` and `other` are the same C function type, argument by
    /// argument (spelling aside: a `typedef` or `const` counts): a callback
    /// slot C may still call through is reused only for the same type.
    pub fn same_type(&self, other: &FnSig) -> bool {
        same_sig(self, other, 0)
    }

    /// The lowered words of all arguments, in order.
    pub fn arg_words(&self) -> Result<Vec<Prim>> {
        let mut out = Vec::new();
        for (i, a) in self.args.iter().enumerate() {
            out.extend(a.words().map_err(|r| Error::NotPassable {
                what: format!("argument {}", i + 1),
                c_type: a.c_name(),
                reason: r,
            })?);
        }
        Ok(out)
    }

    /// The lowered return word, `None` for `void`.
    pub fn ret_word(&self) -> Result<Option<Prim>> {
        let words = self.ret.words().map_err(|r| Error::NotPassable {
            what: "return value".into(),
            c_type: self.ret.c_name(),
            reason: r,
        })?;
        match words.as_slice() {
            [] => Ok(None),
            [p] => Ok(Some(*p)),
            _ => Err(Error::NotPassable {
                what: "return value".into(),
                c_type: self.ret.c_name(),
                reason: "a buffer pair cannot be returned".into(),
            }),
        }
    }

    /// A C prototype for messages and generated code, e.g. `int f(char *, int)`.
    pub fn c_prototype(&self, name: &str) -> String {
        let args: Vec<String> = self.args.iter().map(|a| a.c_name()).collect();
        let args = if args.is_empty() {
            "void".to_string()
        } else {
            args.join(", ")
        };
        format!("{} {}({})", self.ret.c_name(), name, args)
    }
}

/// How deep [`FnSig::same_type`] compares before it answers "no" (a type
/// that deep is not worth reusing a slot for).
const SAME_TYPE_DEPTH: u32 = 16;

fn same_sig(a: &FnSig, b: &FnSig, depth: u32) -> bool {
    a.args.len() == b.args.len()
        && same_ctype(&a.ret, &b.ret, depth)
        && a.args
            .iter()
            .zip(&b.args)
            .all(|(x, y)| same_ctype(x, y, depth))
}

fn same_ctype(a: &CType, b: &CType, depth: u32) -> bool {
    if depth > SAME_TYPE_DEPTH {
        return false;
    }
    let d = depth + 1;
    match (a, b) {
        (CType::Void, CType::Void) | (CType::String, CType::String) => true,
        (CType::Prim(x), CType::Prim(y)) | (CType::Buffer(x), CType::Buffer(y)) => x == y,
        (CType::Pointer(x), CType::Pointer(y))
        | (CType::Typedef(_, x), CType::Typedef(_, y))
        | (CType::Const(x), CType::Const(y))
        | (CType::View(x), CType::View(y)) => same_ctype(x, y, d),
        (CType::Array(n, x), CType::Array(m, y)) => n == m && same_ctype(x, y, d),
        (CType::FunPtr(x), CType::FunPtr(y)) => same_sig(x, y, d),
        (CType::Aggregate(x), CType::Aggregate(y)) => {
            // The same description, or one of the same name, kind, layout
            // and fields (a struct that points at itself stops at the
            // depth limit: not reused, never confused).
            Arc::ptr_eq(x, y)
                || (x.name == y.name
                    && x.is_union == y.is_union
                    && x.layouts.get() == y.layouts.get()
                    && {
                        let (fx, fy) = (x.fields(), y.fields());
                        fx.len() == fy.len()
                            && fx
                                .iter()
                                .zip(&fy)
                                .all(|((n, t), (m, u))| n == m && same_ctype(t, u, d))
                    })
        }
        _ => false,
    }
}

/// Layout of a sealed struct or union under one data model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `sizeof`, including tail padding.
    pub size: u64,
    /// `_Alignof`.
    pub align: u64,
    /// Offset of each field, in declaration order.
    pub offsets: Vec<u64>,
}

/// A struct or union: a name, fields added one at a time, then sealed.
#[derive(Debug)]
pub struct Aggregate {
    /// The tag, as in `struct tag`.
    pub name: String,
    /// Union rather than struct.
    pub is_union: bool,
    pub(crate) fields: Mutex<Vec<(String, Arc<CType>)>>,
    /// Layouts for LP64 and ILP32, set when sealed; unset means incomplete.
    /// Storage measured in one library ([`crate::Foreign::opaque_sized`])
    /// has the layout of that library's data model only.
    pub(crate) layouts: OnceLock<[Option<Layout>; 2]>,
    /// For an anonymous (untagged) type: how C can name it, set where it is
    /// used (the first use wins).
    pub(crate) spelled: OnceLock<Spelling>,
}

/// How C names an anonymous struct or union.
#[derive(Debug)]
pub(crate) enum Spelling {
    /// By a typedef: `typedef struct { … } name;`.
    Typedef(String),
    /// As the type of a field (`[0]`: of an array field's elements):
    /// `__typeof__(((struct outer *)0)->field)`.
    Field(std::sync::Weak<Aggregate>, String, bool),
}

impl Aggregate {
    pub(crate) fn new(name: &str, is_union: bool) -> Aggregate {
        Aggregate {
            name: name.to_string(),
            is_union,
            fields: Mutex::new(Vec::new()),
            layouts: OnceLock::new(),
            spelled: OnceLock::new(),
        }
    }

    /// Whether it has no tag (`struct { … }`).
    pub fn is_anonymous(&self) -> bool {
        self.name.is_empty()
    }

    /// The field names and types, in order.
    pub fn fields(&self) -> Vec<(String, Arc<CType>)> {
        match self.fields.lock() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The layout under `model`, or an error if the type is still incomplete.
    pub fn layout(&self, model: DataModel) -> Result<&Layout> {
        let l = self.layouts.get().ok_or_else(|| Error::Layout {
            c_type: self.c_name(),
            reason: "the type is incomplete (not sealed)".into(),
        })?;
        let l = match model {
            DataModel::Lp64 => &l[0],
            DataModel::Ilp32 => &l[1],
        };
        l.as_ref().ok_or_else(|| Error::Layout {
            c_type: self.c_name(),
            reason: format!(
                "its size was measured in a library of the other data model, not {model:?}: \
                 take it from this library with `opaque_sized`"
            ),
        })
    }

    /// `struct name` or `union name`; for an anonymous type, the typedef
    /// that names it or `__typeof__` of the field it is the type of.
    pub fn c_name(&self) -> String {
        let kind = if self.is_union { "union" } else { "struct" };
        if !self.is_anonymous() {
            return format!("{kind} {}", self.name);
        }
        match self.spelled.get() {
            Some(Spelling::Typedef(name)) => name.clone(),
            Some(Spelling::Field(outer, field, element)) => match outer.upgrade() {
                Some(outer) => format!(
                    "__typeof__((({} *)0)->{field}{})",
                    outer.c_name(),
                    if *element { "[0]" } else { "" }
                ),
                None => format!("<anonymous {kind}>"),
            },
            None => format!("<anonymous {kind}>"),
        }
    }

    pub(crate) fn compute_layout(&self, model: DataModel) -> Result<Layout> {
        let fields = self.fields();
        if fields.is_empty() {
            return Err(Error::Layout {
                c_type: self.c_name(),
                reason: "a struct or union needs at least one field before seal".into(),
            });
        }
        let (mut size, mut align) = (0u64, 1u64);
        let mut offsets = Vec::with_capacity(fields.len());
        for (_, ty) in &fields {
            let (fsize, falign) = ty.size_align(model)?;
            align = align.max(falign);
            if self.is_union {
                offsets.push(0);
                size = size.max(fsize);
            } else {
                let off = size.next_multiple_of(falign);
                offsets.push(off);
                size = off + fsize;
            }
        }
        Ok(Layout {
            size: size.next_multiple_of(align),
            align,
            offsets,
        })
    }
}

impl FnSig {
    /// A text that identifies the signature's full structure: every
    /// argument and the result as [`CType::canonical`] renders them. Two
    /// signatures with the same key lower, lift and lay out alike; generated
    /// stubs are matched to descriptions by it.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        let mut seen = Vec::new();
        canonical_sig(self, &mut out, &mut seen);
        out
    }
}

fn canonical_sig(sig: &FnSig, out: &mut String, seen: &mut Vec<String>) {
    out.push('(');
    for (i, a) in sig.args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        a.canonical_into(out, seen);
    }
    out.push_str(")->");
    sig.ret.canonical_into(out, seen);
}

impl CType {
    /// A text that identifies the type's full structure, where
    /// [`CType::c_name`] gives only its spelling: typedefs show what they
    /// name, structs and unions their fields (once each), views their C
    /// type. `typedef int32_t tl_id_t` and `typedef long tl_id_t` spell the
    /// same but are told apart here.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.canonical_into(&mut out, &mut Vec::new());
        out
    }

    fn canonical_into(&self, out: &mut String, seen: &mut Vec<String>) {
        match self {
            CType::Void => out.push_str("void"),
            CType::Prim(p) => out.push_str(p.c_name()),
            CType::String => out.push_str("string"),
            CType::Buffer(len) => {
                out.push_str("buffer:");
                out.push_str(len.c_name());
            }
            CType::Pointer(t) => {
                out.push('*');
                t.canonical_into(out, seen);
            }
            CType::FunPtr(sig) => {
                out.push_str("fn");
                canonical_sig(sig, out, seen);
            }
            CType::Aggregate(a) => {
                let name = a.c_name();
                out.push_str(&name);
                if seen.contains(&name) {
                    return;
                }
                seen.push(name);
                out.push('{');
                for (i, (f, t)) in a.fields().iter().enumerate() {
                    if i > 0 {
                        out.push(';');
                    }
                    out.push_str(f);
                    out.push(':');
                    t.canonical_into(out, seen);
                }
                out.push('}');
            }
            CType::Array(n, t) => {
                out.push_str(&format!("[{n}]"));
                t.canonical_into(out, seen);
            }
            CType::Typedef(name, t) => {
                out.push_str(name);
                out.push('=');
                t.canonical_into(out, seen);
            }
            CType::View(t) => t.canonical_into(out, seen),
            CType::Const(t) => {
                out.push_str("const ");
                t.canonical_into(out, seen);
            }
        }
    }

    /// The C spelling, for messages and generated code.
    pub fn c_name(&self) -> String {
        match self {
            CType::Void => "void".into(),
            CType::Prim(p) => p.c_name().into(),
            CType::String => "char *".into(),
            CType::Buffer(len) => format!("const char *, {}", len.c_name()),
            CType::Pointer(t) => match &**t {
                CType::Prim(Prim::Pointer) => "void **".into(),
                t => format!("{} *", t.c_name()),
            },
            CType::FunPtr(sig) => sig.c_prototype("(*)"),
            CType::Aggregate(a) => a.c_name(),
            CType::Array(n, t) => format!("{}[{n}]", t.c_name()),
            CType::Typedef(name, _) => name.clone(),
            CType::View(t) => t.c_name(),
            CType::Const(t) => match t.resolved() {
                // A string is text the callee reads: `const char *`.
                CType::String => "const char *".into(),
                CType::Pointer(_) | CType::FunPtr(_) => {
                    format!("{} const", t.c_name())
                }
                _ => format!("const {}", t.c_name()),
            },
        }
    }

    /// Strips typedefs, views and `const`.
    pub fn resolved(&self) -> &CType {
        match self {
            CType::Typedef(_, t) | CType::View(t) | CType::Const(t) => t.resolved(),
            t => t,
        }
    }

    /// Size and alignment under `model`.
    pub fn size_align(&self, model: DataModel) -> Result<(u64, u64)> {
        match self.resolved() {
            CType::Void | CType::Buffer(_) => Err(Error::Layout {
                c_type: self.c_name(),
                reason: "the type has no size".into(),
            }),
            CType::Prim(p) => Ok((p.size(model), p.size(model))),
            CType::String | CType::Pointer(_) | CType::FunPtr(_) => {
                Ok((model.word(), model.word()))
            }
            CType::Aggregate(a) => {
                let l = a.layout(model)?;
                Ok((l.size, l.align))
            }
            CType::Array(n, t) => {
                let (s, a) = t.size_align(model)?;
                let total = s.checked_mul(*n).ok_or_else(|| Error::Layout {
                    c_type: self.c_name(),
                    reason: "the array size overflows".into(),
                })?;
                Ok((total, a))
            }
            CType::Typedef(..) | CType::View(..) | CType::Const(..) => {
                unreachable!("resolved() strips these")
            }
        }
    }

    /// The scalars this type lowers to when passed by value: none for `void`,
    /// two for a buffer pair, one otherwise. Aggregates cannot be passed.
    pub fn words(&self) -> std::result::Result<Vec<Prim>, String> {
        match self.resolved() {
            CType::Void => Ok(vec![]),
            CType::Prim(p) => Ok(vec![*p]),
            CType::String | CType::Pointer(_) | CType::FunPtr(_) => Ok(vec![Prim::Pointer]),
            CType::Buffer(len) => Ok(vec![Prim::Pointer, *len]),
            CType::Aggregate(_) => {
                Err("structs and unions are passed by pointer here, not by value".into())
            }
            CType::Array(..) => Err("arrays are passed by pointer, not by value".into()),
            CType::Typedef(..) | CType::View(..) | CType::Const(..) => {
                unreachable!("resolved() strips these")
            }
        }
    }

    /// The single scalar this type lowers to, when it is one.
    pub fn scalar(&self) -> Option<Prim> {
        match self.words() {
            Ok(w) if w.len() == 1 => Some(w[0]),
            _ => None,
        }
    }
}
