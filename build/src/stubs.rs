//! The Stubs generator (ctypes' Cstubs): C wrappers generated from a binding
//! description and compiled against the library's real headers, so the C
//! compiler checks every declared signature.
//!
//! The description reaches this crate as a [`StubSpec`]: plain data that
//! `sandlink::record::Recorder` produces by evaluating a binding module at
//! build time. For each function the generator writes a wrapper with one
//! local of each declared parameter type, passed to the real function, and
//! the result assigned to a local of the declared return type. The compiler
//! then reports a wrong argument type, a wrong arity, a wrong return type
//! or an undeclared function; the build turns its diagnostics into an
//! [`crate::Error::StubMismatch`] naming the function and the parameter.
//! Each function's table entry also carries its own address when
//! `__builtin_types_compatible_p` finds its type exactly the declared one
//! (NULL otherwise): the runtime calls such a function of plain scalars
//! through a typed pointer, skipping the wrapper.
//!
//! For each callback signature it writes a pool of trampolines: C functions
//! of that exact type that pack their arguments into words and call the
//! Rust closure registered in their slot. No libffi is involved anywhere.

use std::fmt::Write as _;

use sandlink_guest_shim::abi::stubs as abi;
use sandlink_guest_shim::spec::{Param, StubSpec, Word};

/// Declarator helpers for the generated C.
trait Declarator {
    /// The declarator naming `name`.
    fn named(&self, name: &str) -> String;
    /// The type name alone, for a cast.
    fn type_name(&self) -> String;
}

impl Declarator for Param {
    fn named(&self, name: &str) -> String {
        self.decl.replace('@', name)
    }

    fn type_name(&self) -> String {
        self.decl.replace('@', "").trim_end().to_string()
    }
}

/// Where one function's wrapper sits in the generated file, to name it in
/// the compiler's diagnostics.
#[derive(Clone, Debug)]
pub(crate) struct Span {
    /// Index into [`StubSpec::functions`].
    pub function: usize,
    /// The first and last line of the wrapper.
    pub lines: (usize, usize),
    /// The line where the result is received.
    pub ret_line: usize,
    /// The line of each argument.
    pub arg_lines: Vec<usize>,
}

/// The generated C file and the map from its lines to the functions.
pub(crate) struct Generated {
    pub c: String,
    pub spans: Vec<Span>,
    /// The line of each global's entry, with its index.
    pub global_spans: Vec<(usize, usize)>,
    /// The line of each layout assertion: the layout, and the field for an
    /// offset.
    pub layout_lines: Vec<(usize, usize, Option<usize>)>,
    /// The line of each field's type check: `(line, layout, field)`.
    pub field_type_lines: Vec<(usize, usize, usize)>,
}

/// The C type of a pointer to a function with these parameters and result
/// (`ret (*)(params)`).
fn fn_pointer_type(params: &[Param], ret: Option<&Param>) -> String {
    let types = if params.is_empty() {
        "void".to_string()
    } else {
        params
            .iter()
            .map(Declarator::type_name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match ret {
        Some(p) => p.named(&format!("(*)({types})")),
        None => format!("void (*)({types})"),
    }
}

/// A C string literal.
fn c_str(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

/// The expression turning word `w` into a value of `p`'s type.
fn from_word(p: &Param, w: &str) -> String {
    let t = p.type_name();
    match p.word {
        Word::Int { signed: true, .. } => format!("({t})(int64_t){w}"),
        Word::Int { signed: false, .. } => format!("({t}){w}"),
        Word::Pointer => format!("({t})(uintptr_t){w}"),
        Word::F32 => format!("({t})sl_f32({w})"),
        Word::F64 => format!("({t})sl_f64({w})"),
    }
}

/// The expression turning value `v` of `p`'s type into a word.
fn to_word(p: &Param, v: &str) -> String {
    match p.word {
        Word::Int { signed: true, .. } => format!("(uint64_t)(int64_t){v}"),
        Word::Int { signed: false, .. } => format!("(uint64_t){v}"),
        Word::Pointer => format!("(uint64_t)(uintptr_t){v}"),
        Word::F32 => format!("sl_w32({v})"),
        Word::F64 => format!("sl_w64({v})"),
    }
}

/// A text buffer that knows its current line (1-based).
struct Out {
    text: String,
    line: usize,
}

impl Out {
    fn line(&mut self, s: &str) -> usize {
        let at = self.line;
        self.text.push_str(s);
        self.text.push('\n');
        self.line += 1 + s.matches('\n').count();
        at
    }
}

/// Writes `static const struct <ty> <name>[] = { items };` and returns the
/// name, or `0` (a NULL pointer) for no items.
fn static_array(o: &mut Out, ty: &str, name: &str, items: &[String]) -> String {
    if items.is_empty() {
        return "0".into();
    }
    o.line(&format!(
        "static const struct {ty} {name}[] = {{\n{}\n}};",
        items.join(",\n")
    ));
    name.into()
}

/// Writes the C file for `library`'s stubs.
pub(crate) fn generate(
    library: &str,
    headers: &[String],
    spec: &StubSpec,
    slots: u32,
) -> Generated {
    let mut o = Out {
        text: String::new(),
        line: 1,
    };
    o.line(&format!(
        "/* Generated by sandlink-build for `{library}`: do not edit. */"
    ));
    for h in ["stdint.h", "string.h", "errno.h"] {
        o.line(&format!("#include <{h}>"));
    }
    for h in headers {
        if h.starts_with('<') {
            o.line(&format!("#include {h}"));
        } else {
            o.line(&format!("#include {}", c_str(h)));
        }
    }
    o.line(abi::C_DEFINITIONS.trim_end());
    o.line(
        "static inline float sl_f32(uint64_t w) { uint32_t b = (uint32_t)w; float f; \
         memcpy(&f, &b, 4); return f; }",
    );
    o.line("static inline double sl_f64(uint64_t w) { double d; memcpy(&d, &w, 8); return d; }");
    o.line(
        "static inline uint64_t sl_w32(float f) { uint32_t b; memcpy(&b, &f, 4); \
         return (uint64_t)b; }",
    );
    o.line("static inline uint64_t sl_w64(double d) { uint64_t w; memcpy(&w, &d, 8); return w; }");

    // Each field's type, through a pointer initialised from its address:
    // a field of another type is an incompatible-pointer error that names
    // both types (signedness and `const` are left to warnings: an enum
    // described as `int` is fine).
    let mut field_type_lines = Vec::new();
    for (i, l) in spec.layouts.iter().enumerate() {
        if l.field_pointers.iter().all(String::is_empty) {
            continue;
        }
        o.line("");
        o.line(&format!(
            "static inline __attribute__((unused)) void sl_field_types_{i}({} *sl_p) {{",
            l.c_type
        ));
        for (k, (f, decl)) in l.fields.iter().zip(&l.field_pointers).enumerate() {
            if decl.is_empty() {
                continue;
            }
            let var = format!("sl_f{k}");
            let at = o.line(&format!(
                "    {} = &sl_p->{f}; (void){var};",
                decl.replace('@', &var)
            ));
            field_type_lines.push((at, i, k));
        }
        o.line("}");
    }

    let mut layout_lines = Vec::new();
    for (i, l) in spec.layouts.iter().enumerate() {
        o.line("");
        for (model, (size, align, offsets)) in [("ILP32", &l.ilp32), ("LP64", &l.lp64)] {
            o.line(if model == "ILP32" {
                "#if defined(__wasm32__) || defined(__ILP32__)"
            } else {
                "#else"
            });
            let at = o.line(&format!(
                "_Static_assert(sizeof({t}) == {size}, \"sizeof({t}) is described as {size}\");",
                t = l.c_type
            ));
            layout_lines.push((at, i, None));
            let at = o.line(&format!(
                "_Static_assert(_Alignof({t}) == {align}, \"_Alignof({t}) is described as {align}\");",
                t = l.c_type
            ));
            layout_lines.push((at, i, None));
            for (k, (f, off)) in l.fields.iter().zip(offsets).enumerate() {
                let at = o.line(&format!(
                    "_Static_assert(__builtin_offsetof({t}, {f}) == {off}, \"offsetof({t}, {f}) is \
                     described as {off}\");",
                    t = l.c_type
                ));
                layout_lines.push((at, i, Some(k)));
            }
        }
        o.line("#endif");
    }

    let mut spans = Vec::new();
    for (i, f) in spec.functions.iter().enumerate() {
        o.line("");
        let first = o.line(&format!("/* {} */", f.key));
        o.line(&format!(
            "static void sl_fn_{i}(const uint64_t *a, uint64_t *r, int *e) {{"
        ));
        o.line("  (void)a; (void)r;");
        for (k, p) in f.params.iter().enumerate() {
            o.line(&format!(
                "  {} = {};",
                p.named(&format!("p{k}")),
                from_word(p, &format!("a[{k}]"))
            ));
        }
        o.line("  errno = 0;");
        let ret_line = match &f.ret {
            Some(p) => o.line(&format!("  {} = {}(", p.named("v"), f.name)),
            None => o.line(&format!("  {}(", f.name)),
        };
        let mut arg_lines = Vec::new();
        for k in 0..f.params.len() {
            let sep = if k + 1 < f.params.len() { "," } else { "" };
            arg_lines.push(o.line(&format!("      p{k}{sep}")));
        }
        o.line("    );");
        o.line("  *e = errno;");
        if let Some(p) = &f.ret {
            o.line(&format!("  *r = {};", to_word(p, "v")));
        }
        let last = o.line("}");
        spans.push(Span {
            function: i,
            lines: (first, last),
            ret_line,
            arg_lines,
        });
    }

    for (i, cb) in spec.callbacks.iter().enumerate() {
        o.line("");
        o.line(&format!("/* {} */", cb.key));
        o.line(&format!(
            "static struct sandlink_stub_slot sl_slots_{i}[{slots}];"
        ));
        let params = if cb.params.is_empty() {
            "void".to_string()
        } else {
            cb.params
                .iter()
                .enumerate()
                .map(|(k, p)| p.named(&format!("q{k}")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let words = if cb.params.is_empty() {
            "0".to_string()
        } else {
            cb.params
                .iter()
                .enumerate()
                .map(|(k, p)| to_word(p, &format!("q{k}")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let head = match &cb.ret {
            Some(p) => p.named(&format!("sl_cb_{i}_##k({params})")),
            None => format!("void sl_cb_{i}_##k({params})"),
        };
        let ret = match &cb.ret {
            Some(p) => format!("return {};", from_word(p, "w")),
            None => "(void)w;".to_string(),
        };
        o.line(&format!(
            "#define SL_CB_{i}(k) static {head} {{ \\\n  uint64_t a[] = {{ {words} }}; uint64_t w = 0; \\\n  \
             sl_slots_{i}[k].run(sl_slots_{i}[k].ctx, a, &w); \\\n  {ret} \\\n}}"
        ));
        for k in 0..slots {
            o.line(&format!("SL_CB_{i}({k})"));
        }
        let codes: Vec<String> = (0..slots)
            .map(|k| format!("(void (*)(void))sl_cb_{i}_{k}"))
            .collect();
        o.line(&format!(
            "static void (*const sl_codes_{i}[{slots}])(void) = {{\n  {}\n}};",
            codes.join(",\n  ")
        ));
        // The caller of a function pointer of this type (one the library
        // returned), as a function's wrapper calls the function.
        let fn_type = fn_pointer_type(&cb.params, cb.ret.as_ref());
        let args = (0..cb.params.len())
            .map(|k| from_word(&cb.params[k], &format!("a[{k}]")))
            .collect::<Vec<_>>()
            .join(", ");
        o.line(&format!(
            "static void sl_via_{i}(void (*c)(void), const uint64_t *a, uint64_t *r, int *e) {{"
        ));
        o.line("  (void)a; (void)r;");
        o.line("  errno = 0;");
        match &cb.ret {
            Some(p) => {
                o.line(&format!("  {} = (({fn_type})c)({args});", p.named("v")));
                o.line("  *e = errno;");
                o.line(&format!("  *r = {};", to_word(p, "v")));
            }
            None => {
                o.line(&format!("  (({fn_type})c)({args});"));
                o.line("  *e = errno;");
            }
        }
        o.line("}");
    }

    o.line("");
    let fns: Vec<String> = spec
        .functions
        .iter()
        .enumerate()
        .map(|(i, f)| {
            // The function's own address when its type is exactly the
            // declared one, for direct calls; NULL otherwise.
            let ty = fn_pointer_type(&f.params, f.ret.as_ref());
            let name = &f.name;
            format!(
                "  {{ {}, {}, sl_fn_{i},\n#ifdef {name}\n    0\n#else\n    \
                 __builtin_choose_expr(__builtin_types_compatible_p(__typeof__(&{name}), {ty}), \
                 (void (*)(void))&{name}, (void (*)(void))0)\n#endif\n  }}",
                c_str(name),
                c_str(&f.key)
            )
        })
        .collect();
    let fns_ref = static_array(&mut o, "sandlink_stub_fn", "sl_fns", &fns);
    let pools: Vec<String> = spec
        .callbacks
        .iter()
        .enumerate()
        .map(|(i, cb)| {
            format!(
                "  {{ {}, {slots}, sl_slots_{i}, sl_codes_{i}, sl_via_{i} }}",
                c_str(&cb.key)
            )
        })
        .collect();
    let pools_ref = static_array(&mut o, "sandlink_stub_pool", "sl_pools", &pools);
    // The constants live in their own file (compiled into every build);
    // the table lists them as globals.
    for c in &spec.constants {
        let p = Param {
            decl: c.decl.clone(),
            word: Word::Pointer,
        };
        o.line(&format!(
            "extern const {};",
            p.named(&sandlink_guest_shim::abi::const_symbol(&c.name))
        ));
    }
    let mut global_spans = Vec::new();
    let const_symbols: Vec<String> = spec
        .constants
        .iter()
        .map(|c| sandlink_guest_shim::abi::const_symbol(&c.name))
        .collect();
    let globals: Vec<String> = spec
        .globals
        .iter()
        .chain(&const_symbols)
        .map(|g| format!("  {{ {}, (const void *)&{g} }}", c_str(g)))
        .collect();
    let globals_ref = if globals.is_empty() {
        "0".to_string()
    } else {
        // One line each, so that a diagnostic names the global.
        o.line("static const struct sandlink_stub_global sl_globals[] = {");
        for (i, g) in globals.iter().enumerate() {
            global_spans.push((o.line(&format!("{g},")), i));
        }
        o.line("};");
        "sl_globals".to_string()
    };
    o.line(&format!(
        "const struct sandlink_stub_table {} = {{ {}, {}, {fns_ref}, {}, {pools_ref}, {}, {}, \
         {globals_ref} }};",
        abi::table_symbol(library),
        abi::VERSION,
        spec.functions.len(),
        spec.callbacks.len(),
        c_str(library),
        globals.len(),
    ));
    Generated {
        c: o.text,
        spans,
        global_spans,
        layout_lines,
        field_type_lines,
    }
}

/// The warnings that reveal a declaration disagreeing with the header,
/// made errors when the stubs are checked. A `const` the description does
/// not spell stays a warning: it changes nothing at run time.
pub(crate) const CHECK_FLAGS: [&str; 9] = [
    "-std=c11",
    "-Werror=int-conversion",
    "-Werror=incompatible-pointer-types",
    "-Wno-error=incompatible-pointer-types-discards-qualifiers",
    "-Werror=incompatible-function-pointer-types",
    "-Werror=implicit-function-declaration",
    "-Werror=conversion",
    "-Werror=float-conversion",
    "-Werror=pointer-to-int-cast",
];

/// What went wrong with one function, from the compiler's first error in its
/// wrapper: `(function, problem, compiler message)`.
pub(crate) fn explain(
    spec: &StubSpec,
    generated: &Generated,
    file_name: &str,
    diagnostics: &str,
) -> Option<(String, String, String)> {
    let spans = &generated.spans;
    let mut lines = diagnostics.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((l, msg)) = error_at(line, file_name) else {
            continue;
        };
        if let Some((_, li, k)) = generated.field_type_lines.iter().find(|(at, ..)| *at == l) {
            let layout = &spec.layouts[*li];
            let described = layout.field_pointers[*k]
                .replace("(*@)", "")
                .replace("*@", "")
                .trim()
                .to_string();
            let problem = if msg.contains("no member named") {
                format!(
                    "the header's {} has no field `{}`",
                    layout.c_type, layout.fields[*k]
                )
            } else {
                format!(
                    "field `{}` has another type in the header than the described `{}`",
                    layout.fields[*k], described
                )
            };
            return Some((layout.c_type.clone(), problem, msg.to_string()));
        }
        if let Some((_, li, field)) = generated.layout_lines.iter().find(|(at, ..)| *at == l) {
            let layout = &spec.layouts[*li];
            let problem = match field {
                Some(k) if msg.contains("no member named") => format!(
                    "the header's {} has no field `{}`",
                    layout.c_type, layout.fields[*k]
                ),
                Some(k) => format!(
                    "field `{}` is at another offset than described (or a field before it \
                     differs)",
                    layout.fields[*k]
                ),
                None => "its size or alignment differs from the description (a field is \
                         missing, extra or of another type)"
                    .into(),
            };
            let evaluated = lines
                .peek()
                .filter(|n| n.contains("expression evaluates to"))
                .and_then(|n| n.split("note:").nth(1))
                .map(|n| format!(" ({})", n.trim()))
                .unwrap_or_default();
            return Some((layout.c_type.clone(), problem, format!("{msg}{evaluated}")));
        }
        if let Some((_, g)) = generated.global_spans.iter().find(|(gl, _)| *gl == l) {
            let name = spec
                .globals
                .get(*g)
                .cloned()
                .or_else(|| {
                    let c = spec.constants.get(g - spec.globals.len())?;
                    Some(c.name.clone())
                })
                .unwrap_or_default();
            return Some((
                name,
                "the global is not declared by the headers".into(),
                msg.to_string(),
            ));
        }
        let Some(span) = spans.iter().find(|s| (s.lines.0..=s.lines.1).contains(&l)) else {
            continue;
        };
        let f = &spec.functions[span.function];
        let problem = if msg.contains("too many arguments") || msg.contains("too few arguments") {
            format!("wrong number of arguments: {} declared", f.params.len())
        } else if msg.contains("undeclared function") || msg.contains("implicit declaration") {
            "not declared by the headers".to_string()
        } else if let Some(k) = span.arg_lines.iter().position(|&a| a == l) {
            format!(
                "wrong type for argument {}: declared `{}`",
                k + 1,
                f.params[k].type_name()
            )
        } else if l == span.ret_line {
            format!(
                "wrong return type: declared `{}`",
                f.ret.as_ref().map_or("void".into(), |p| p.type_name())
            )
        } else {
            "the declaration does not match the header".to_string()
        };
        return Some((f.name.clone(), problem, msg.to_string()));
    }
    None
}

/// The Rust file that gives the crate its table: `include!` it, then
/// `unsafe { sandlink::Stubs::open(stub_table()) }`.
pub(crate) fn rust_file(library: &str, symbol: &str) -> String {
    format!(
        "// Generated by sandlink-build for `{library}`: do not edit.\n\
         extern \"C\" {{\n    \
             #[link_name = \"{symbol}\"]\n    \
             static SANDLINK_STUB_TABLE: ::sandlink::StubTable;\n\
         }}\n\n\
         /// `{library}`'s generated stub table, for `sandlink::Stubs::open`.\n\
         pub fn stub_table() -> &'static ::sandlink::StubTable {{\n    \
             // SAFETY: sandlink-build generated this table from the same ABI\n    \
             // definition as `StubTable` (`sandlink_guest_shim::abi::stubs`) and\n    \
             // linked it into this crate; it is immutable static data.\n    \
             unsafe {{ &SANDLINK_STUB_TABLE }}\n\
         }}\n"
    )
}

/// The C file defining the constants, and the line of each.
pub(crate) fn constants_file(
    library: &str,
    headers: &[String],
    spec: &StubSpec,
) -> (String, Vec<usize>) {
    let mut o = Out {
        text: String::new(),
        line: 1,
    };
    o.line(&format!(
        "/* Generated by sandlink-build for `{library}`: the constants its bindings read. */"
    ));
    // The declared types may be the standard typedefs (`size_t` for a
    // `sizeof`), whatever the headers include.
    o.line("#include <stddef.h>");
    o.line("#include <stdint.h>");
    for h in headers {
        if h.starts_with('<') {
            o.line(&format!("#include {h}"));
        } else {
            o.line(&format!("#include {}", c_str(h)));
        }
    }
    let mut lines = Vec::new();
    for c in &spec.constants {
        let symbol = sandlink_guest_shim::abi::const_symbol(&c.name);
        let decl = Param {
            decl: c.decl.clone(),
            word: Word::Pointer,
        }
        .named(&symbol);
        lines.push(o.line(&format!("const {decl} = ({});", c.name)));
    }
    (o.text, lines)
}

/// A compiler diagnostic line `file:line:col: error: message` about
/// `file_name`, as `(line, message)`; `None` for any other line.
fn error_at<'d>(line: &'d str, file_name: &str) -> Option<(usize, &'d str)> {
    let rest = line.strip_prefix(file_name)?.strip_prefix(':')?;
    let mut parts = rest.splitn(3, ':');
    let (l, _col, msg) = (parts.next()?, parts.next()?, parts.next()?);
    let msg = msg.trim().strip_prefix("error:")?.trim();
    Some((l.trim().parse().ok()?, msg))
}

/// The constant a diagnostic in the constants file is about.
pub(crate) fn explain_constant(
    spec: &StubSpec,
    lines: &[usize],
    file_name: &str,
    diagnostics: &str,
) -> Option<(String, String, String)> {
    for line in diagnostics.lines() {
        let Some((l, msg)) = error_at(line, file_name) else {
            continue;
        };
        if let Some(i) = lines.iter().position(|&at| at == l) {
            let c = &spec.constants[i];
            let problem = if msg.contains("undeclared identifier") {
                "the constant is not defined by the headers".to_string()
            } else {
                format!(
                    "its value does not fit the declared type `{}`",
                    Param {
                        decl: c.decl.clone(),
                        word: Word::Pointer
                    }
                    .type_name()
                )
            };
            return Some((c.name.clone(), problem, msg.to_string()));
        }
    }
    None
}
