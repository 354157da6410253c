//! The stub specification: plain data describing what a binding module
//! declares, produced by `sandlink::record::Recorder` when a build script
//! evaluates the binding module, and consumed by `sandlink-build`'s Stubs
//! generator. It lives here so that neither crate depends on the other.

/// How one C scalar travels between Rust and a stub: a 64-bit word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// An integer of `size` bytes, sign- or zero-extended.
    Int {
        /// Size in bytes.
        size: u8,
        /// Whether it is sign-extended.
        signed: bool,
    },
    /// A data or function pointer, as an address.
    Pointer,
    /// `float`, as its bits in the low half.
    F32,
    /// `double`, as its bits.
    F64,
}

/// One C parameter (or result) of a stub or trampoline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The C declarator with `@` where the name goes: `int @`,
    /// `const char *@`, `void (*@)(void *)`.
    pub decl: String,
    /// How it travels.
    pub word: Word,
}

/// A function to wrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubFunction {
    /// Its C name.
    pub name: String,
    /// The declared prototype, as the runtime renders it: the runtime binds
    /// a description to this stub only if it renders to the same text.
    pub key: String,
    /// One per C parameter (a buffer argument is two).
    pub params: Vec<Param>,
    /// The result, `None` for `void`. Its declarator receives the real
    /// function's result, so a pointer's pointee is `const`-qualified there
    /// (a `const char *` result may be received as a string).
    pub ret: Option<Param>,
}

/// A callback signature to make trampolines for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubCallback {
    /// The signature as the runtime renders it, `ret (*)(args)`.
    pub key: String,
    /// One per C parameter.
    pub params: Vec<Param>,
    /// The result, `None` for `void`.
    pub ret: Option<Param>,
}

/// Everything a binding module declared: what the generator needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StubSpec {
    /// The functions, each once.
    pub functions: Vec<StubFunction>,
    /// The callback signatures, each once.
    pub callbacks: Vec<StubCallback>,
    /// The globals whose address the bindings take, each once.
    pub globals: Vec<String>,
    /// The structs and unions the functions reach, with their described
    /// layouts: checked against the compiler's `sizeof`/`offsetof`.
    pub layouts: Vec<StubLayout>,
    /// The constants (`#define`s, enum values) the bindings read.
    pub constants: Vec<StubConstant>,
}

/// A C constant the bindings read: compiled into every build of the library
/// as `const <type> sandlink_const_<name> = <name>;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubConstant {
    /// The constant's C name.
    pub name: String,
    /// Its declared type's declarator, `@` where the name goes.
    pub decl: String,
}

/// A struct or union as the description lays it out, per data model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubLayout {
    /// `struct tag` or `union tag`.
    pub c_type: String,
    /// The fields' names, in order.
    pub fields: Vec<String>,
    /// Each field's described type as a declarator of a pointer to it, `@`
    /// where the name goes (`uLong *@`, `char (*@)[16]`): the check
    /// initialises one from the field's address, so the compiler compares
    /// the types. Empty when the description cannot be spelled.
    pub field_pointers: Vec<String>,
    /// `(size, align, offsets)` under LP64 (x86-64).
    pub lp64: (u64, u64, Vec<u64>),
    /// `(size, align, offsets)` under ILP32 (wasm32).
    pub ilp32: (u64, u64, Vec<u64>),
}

impl StubSpec {
    /// Adds what `other` declares and `self` does not: for one library
    /// bound by two modules (a generated one and a few hand-written
    /// declarations, say), whose stubs are built once. A declaration both
    /// make must be the same; one that differs (a function of the same name
    /// with another prototype, a struct laid out otherwise) is an error
    /// naming it, and `self` is left as it was.
    pub fn merge(&mut self, other: &StubSpec) -> Result<(), String> {
        let mut merged = self.clone();
        add(
            &mut merged.functions,
            &other.functions,
            |f| &f.name,
            "function",
        )?;
        add(
            &mut merged.callbacks,
            &other.callbacks,
            |c| &c.key,
            "callback",
        )?;
        add(&mut merged.globals, &other.globals, |g| g, "global")?;
        add(&mut merged.layouts, &other.layouts, |l| &l.c_type, "type")?;
        add(
            &mut merged.constants,
            &other.constants,
            |c| &c.name,
            "constant",
        )?;
        *self = merged;
        Ok(())
    }
}

/// Appends the items of `more` not in `to`, by `key`; an item whose key is
/// there with other contents is an error naming the `kind` and the key.
fn add<T: Clone + PartialEq>(
    to: &mut Vec<T>,
    more: &[T],
    key: impl Fn(&T) -> &String,
    kind: &str,
) -> Result<(), String> {
    for item in more {
        match to.iter().find(|t| key(t) == key(item)) {
            Some(t) if t == item => {}
            Some(_) => {
                return Err(format!(
                    "the {kind} `{}` is declared differently by the two specs",
                    key(item)
                ))
            }
            None => to.push(item.clone()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, decl: &str) -> StubFunction {
        StubFunction {
            name: name.into(),
            key: format!("int {name}({decl})"),
            params: vec![Param {
                decl: format!("{decl} @"),
                word: Word::Int {
                    size: 4,
                    signed: true,
                },
            }],
            ret: None,
        }
    }

    #[test]
    fn merging_adds_what_is_new_keeps_what_is_shared_and_refuses_a_conflict() {
        let mut a = StubSpec {
            functions: vec![function("f", "int"), function("g", "int")],
            globals: vec!["x".into()],
            ..StubSpec::default()
        };
        let b = StubSpec {
            functions: vec![function("g", "int"), function("h", "long")],
            globals: vec!["x".into(), "y".into()],
            ..StubSpec::default()
        };
        a.merge(&b).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = a.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["f", "g", "h"]);
        assert_eq!(a.globals, ["x", "y"]);
        // `g` with another prototype: an error, and nothing changed.
        let before = a.clone();
        let c = StubSpec {
            functions: vec![function("z", "int"), function("g", "long")],
            ..StubSpec::default()
        };
        let e = a
            .merge(&c)
            .err()
            .unwrap_or_else(|| panic!("merged a conflict"));
        assert!(e.contains("function `g`"), "{e}");
        assert_eq!(a, before);
    }
}
