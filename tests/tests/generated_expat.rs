//! expat's bindings generated from `expat.h` (tests/build.rs, no override)
//! against `sandlink-expat`'s hand-written ones: for every function the
//! hand-written bindings bind, the C ABI is the same, and every other
//! difference, in the C declaration or in the Rust types, is one listed
//! here with its reason.

use std::collections::BTreeMap;

use sandlink::record::Recorder;
use sandlink::types::{Params, Shadow};
use sandlink::Function;
use sandlink_expat::bindings::Expat;

/// expat.h, generated.
#[allow(dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/expat_generated.rs"));
}

/// expat.h, generated with overrides.
#[allow(dead_code)]
mod overridden {
    include!(concat!(env!("OUT_DIR"), "/expat_overridden.rs"));
}

fn rust_sig<L, A: Params, R: Shadow>(_: &Function<L, A, R>) -> String
where
    L: sandlink::Foreign,
{
    std::any::type_name::<(A, R)>()
        .replace("sandlink::types::shadow::", "")
        .replace("pointer::", "")
        .replace("string::", "")
        .replace("borrowed::", "")
        .replace("funptr::", "")
        .replace("aggregate::", "")
        .replace("alloc::string::", "")
        .replace("core::option::", "")
}

/// (C name, hand-written Rust types, generated) of each listed field pair.
macro_rules! pairs_of {
    ($hand:expr, $gen:expr; $($h:ident = $c:ident),* $(,)?) => {{
        let (hand, gen) = (&$hand, &$gen);
        vec![$((stringify!($c), rust_sig(&hand.$h), rust_sig(&gen.$c))),*]
    }};
}

/// Each hand-bound function, paired with its generated binding.
macro_rules! pairs {
    ($hand:expr, $gen:expr) => {
        pairs_of![
            $hand, $gen;
            parser_create = XML_ParserCreate,
            parser_create_ns = XML_ParserCreateNS,
            parser_free = XML_ParserFree,
            parser_reset = XML_ParserReset,
            set_user_data = XML_SetUserData,
            set_element_handler = XML_SetElementHandler,
            set_character_data_handler = XML_SetCharacterDataHandler,
            set_processing_instruction_handler = XML_SetProcessingInstructionHandler,
            set_comment_handler = XML_SetCommentHandler,
            set_start_cdata_section_handler = XML_SetStartCdataSectionHandler,
            set_end_cdata_section_handler = XML_SetEndCdataSectionHandler,
            set_default_handler = XML_SetDefaultHandler,
            set_xml_decl_handler = XML_SetXmlDeclHandler,
            set_start_namespace_decl_handler = XML_SetStartNamespaceDeclHandler,
            set_end_namespace_decl_handler = XML_SetEndNamespaceDeclHandler,
            parse = XML_Parse,
            get_buffer = XML_GetBuffer,
            parse_buffer = XML_ParseBuffer,
            stop_parser = XML_StopParser,
            resume_parser = XML_ResumeParser,
            get_error_code = XML_GetErrorCode,
            error_string = XML_ErrorString,
            get_current_line_number = XML_GetCurrentLineNumber,
            get_current_column_number = XML_GetCurrentColumnNumber,
            get_current_byte_index = XML_GetCurrentByteIndex,
            expat_version = XML_ExpatVersion,
            set_hash_salt = XML_SetHashSalt,
            set_billion_laughs_max_amplification =
                XML_SetBillionLaughsAttackProtectionMaximumAmplification,
            set_billion_laughs_activation_threshold =
                XML_SetBillionLaughsAttackProtectionActivationThreshold,
        ]
    };
}

/// The differences between the hand-written and the generated bindings of
/// each pair: `C` (the declaration the stubs are checked with), `Rust`
/// (the Rust types), `Sign` (an enum word's sign). Any other ABI
/// difference fails here.
fn differences(
    hand_rec: &Recorder,
    gen_rec: &Recorder,
    pairs: Vec<(&'static str, String, String)>,
) -> Vec<(&'static str, &'static str)> {
    let hand_spec = hand_rec.spec().expect("spec");
    let gen_spec = gen_rec.spec().expect("spec");
    let hs: BTreeMap<_, _> = hand_spec
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    let gs: BTreeMap<_, _> = gen_spec
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    let normalise = |s: String| {
        s.replace("sandlink_expat::bindings::ParserStruct", "XML_ParserStruct")
            .replace(
                "generated_expat::generated::XML_ParserStruct",
                "XML_ParserStruct",
            )
            .replace(
                "generated_expat::overridden::XML_ParserStruct",
                "XML_ParserStruct",
            )
    };
    assert_eq!(pairs.len(), 29, "every hand-bound function is compared");
    let mut found = Vec::new();
    for (c, hand_rust, gen_rust) in pairs {
        let (h, g) = (hs[c], gs[c]);
        let prototype = |k: &str| k.split(" :: ").next().unwrap_or(k).to_string();
        if prototype(&h.key) != prototype(&g.key) {
            found.push((c, "C"));
        }
        if normalise(hand_rust) != normalise(gen_rust) {
            found.push((c, "Rust"));
        }
        // The ABI: as many C parameters, each the same word, but for an
        // enum's sign.
        assert_eq!(
            h.params.len(),
            g.params.len(),
            "{c}: the number of C parameters"
        );
        let abi = |params: Vec<String>, ret: String| format!("{params:?} -> {ret}");
        let hw = abi(
            h.params.iter().map(|p| format!("{:?}", p.word)).collect(),
            format!("{:?}", h.ret.as_ref().map(|r| r.word)),
        );
        let gw = abi(
            g.params.iter().map(|p| format!("{:?}", p.word)).collect(),
            format!("{:?}", g.ret.as_ref().map(|r| r.word)),
        );
        if hw != gw {
            let unsign = |w: &str| w.replace("signed: true", "signed: false");
            assert_eq!(
                unsign(&hw),
                unsign(&gw),
                "{c}: the ABI differs beyond a sign"
            );
            found.push((c, "Sign"));
        }
    }
    found
}

/// What differs, per function, and why. Each entry is (C name, what):
/// `C` the C declaration the stubs are checked with, `Rust` the Rust types,
/// `Sign` the sign of an enum word in the ABI.
///
/// - The hand-written bindings spell the handlers as anonymous function
///   pointer types and the created parser as `struct XML_ParserStruct *`;
///   the header, and so the generator, spells the typedefs (`C`). The
///   compiler's check treats both as the same type.
/// - The handlers' strings: by hand, borrowed views (`StrRef`,
///   `StrArrayRef`, no copy per event) and the character data as the
///   `(pointer, length)` pair it is (`BytesRef`); generated, copied
///   strings, NULL allowed, and the text as a NUL-terminated string it is
///   not: a header cannot say `s` is `len` bytes long (`Rust`). The
///   override that says so is `.buffer(..)`; callbacks take none yet.
/// - Nullability: expat takes NULL for an encoding, which the hand-written
///   bindings allow; the generator's default for a `const char *`
///   parameter is a string that is never NULL (`Rust`).
/// - `XML_Parse`'s `(s, len)` is one `&[u8]` by hand (`buffer_int`), two
///   arguments generated (`C`, `Rust`).
/// - `XML_GetBuffer` returns `void *`; the hand-written bindings read it as
///   bytes (`C`, `Rust`).
/// - `XML_ExpatVersion` never returns NULL, which the hand-written
///   bindings say; a generated result may be NULL unless an override
///   says otherwise (`Rust`).
/// - expat's enums have no negative value, so the C compiler makes them
///   `unsigned int`, as the generator reads them; the hand-written bindings
///   say `int` (`Rust`, `Sign`). The 32 bits are the same either way.
const DIFFERENCES: &[(&str, &str)] = &[
    ("XML_ParserCreate", "C"),
    ("XML_ParserCreate", "Rust"),
    ("XML_ParserCreateNS", "C"),
    ("XML_ParserCreateNS", "Rust"),
    ("XML_ParserReset", "Rust"),
    ("XML_SetElementHandler", "C"),
    ("XML_SetElementHandler", "Rust"),
    ("XML_SetCharacterDataHandler", "C"),
    ("XML_SetCharacterDataHandler", "Rust"),
    ("XML_SetProcessingInstructionHandler", "C"),
    ("XML_SetProcessingInstructionHandler", "Rust"),
    ("XML_SetCommentHandler", "C"),
    ("XML_SetCommentHandler", "Rust"),
    ("XML_SetStartCdataSectionHandler", "C"),
    ("XML_SetEndCdataSectionHandler", "C"),
    ("XML_SetDefaultHandler", "C"),
    ("XML_SetDefaultHandler", "Rust"),
    ("XML_SetXmlDeclHandler", "C"),
    ("XML_SetStartNamespaceDeclHandler", "C"),
    ("XML_SetEndNamespaceDeclHandler", "C"),
    ("XML_Parse", "C"),
    ("XML_Parse", "Rust"),
    ("XML_Parse", "Sign"),
    ("XML_GetBuffer", "C"),
    ("XML_GetBuffer", "Rust"),
    ("XML_ParseBuffer", "Rust"),
    ("XML_ParseBuffer", "Sign"),
    ("XML_StopParser", "Rust"),
    ("XML_StopParser", "Sign"),
    ("XML_ResumeParser", "Rust"),
    ("XML_ResumeParser", "Sign"),
    ("XML_GetErrorCode", "Rust"),
    ("XML_GetErrorCode", "Sign"),
    ("XML_ErrorString", "Rust"),
    ("XML_ErrorString", "Sign"),
    ("XML_ExpatVersion", "Rust"),
];

#[test]
fn generated_expat_bindings_differ_from_the_hand_written_only_as_documented() {
    let hand_rec = Recorder::new("hand");
    let hand = Expat::bind(&hand_rec).expect("hand-written bindings");
    let gen_rec = Recorder::new("generated");
    let gen = generated::GeneratedExpat::bind(&gen_rec).expect("generated bindings");
    let found = differences(&hand_rec, &gen_rec, pairs!(hand, gen));
    assert_eq!(
        found, DIFFERENCES,
        "differences found (left) against documented (right)"
    );
}

/// With the overrides tests/build.rs gives (nullable encodings, the
/// `(s, len)` pairs, borrowed element names and attributes, non-NULL
/// strings), what is left: typedef spellings (`C`), the enums' sign (the
/// results of `XML_Parse` and the others), and `XML_GetBuffer`'s `void *`
/// read as bytes by hand. Every Rust type of the strings, buffers and
/// handlers now matches; `XML_Parse` takes the same `&[u8]`.
const OVERRIDDEN_DIFFERENCES: &[(&str, &str)] = &[
    ("XML_ParserCreate", "C"),
    ("XML_ParserCreateNS", "C"),
    ("XML_SetElementHandler", "C"),
    ("XML_SetCharacterDataHandler", "C"),
    ("XML_SetProcessingInstructionHandler", "C"),
    ("XML_SetCommentHandler", "C"),
    ("XML_SetStartCdataSectionHandler", "C"),
    ("XML_SetEndCdataSectionHandler", "C"),
    ("XML_SetDefaultHandler", "C"),
    ("XML_SetXmlDeclHandler", "C"),
    ("XML_SetStartNamespaceDeclHandler", "C"),
    ("XML_SetEndNamespaceDeclHandler", "C"),
    ("XML_Parse", "Rust"),
    ("XML_Parse", "Sign"),
    ("XML_GetBuffer", "C"),
    ("XML_GetBuffer", "Rust"),
    ("XML_ParseBuffer", "Rust"),
    ("XML_ParseBuffer", "Sign"),
    ("XML_StopParser", "Rust"),
    ("XML_StopParser", "Sign"),
    ("XML_ResumeParser", "Rust"),
    ("XML_ResumeParser", "Sign"),
    ("XML_GetErrorCode", "Rust"),
    ("XML_GetErrorCode", "Sign"),
    ("XML_ErrorString", "Rust"),
    ("XML_ErrorString", "Sign"),
];

#[test]
fn overrides_close_the_gap_to_the_hand_written_bindings() {
    let hand_rec = Recorder::new("hand");
    let hand = Expat::bind(&hand_rec).expect("hand-written bindings");
    let gen_rec = Recorder::new("overridden");
    let gen = overridden::OverriddenExpat::bind(&gen_rec).expect("overridden bindings");
    let found = differences(&hand_rec, &gen_rec, pairs!(hand, gen));
    assert_eq!(
        found, OVERRIDDEN_DIFFERENCES,
        "differences found (left) against documented (right)"
    );
}

#[test]
fn what_expat_h_leaves_out_is_listed_with_its_reason() {
    let source = include_str!(concat!(env!("OUT_DIR"), "/expat_generated.rs"));
    let header: Vec<&str> = source.lines().take_while(|l| l.starts_with("//")).collect();
    let header = header.join("\n");
    // Passed by value; a function-like macro; a macro naming a function.
    for (what, why) in [
        ("function `XML_ExpatVersionInfo`", "passed by value"),
        ("macro `XML_GetUserData`", "function-like macro"),
        (
            "macro `XML_GetErrorLineNumber`",
            "not a constant expression",
        ),
    ] {
        assert!(
            header.lines().any(|l| l.contains(what) && l.contains(why)),
            "{what} ({why}) not listed in:\n{header}"
        );
    }
    // Every other function expat.h declares (with expat_config.h's XML_DTD)
    // is generated.
    assert!(header.contains("// 68 functions,"), "{header}");
}
