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

/// Each hand-bound function: (C name, hand-written Rust types, generated).
fn pairs(
    hand: &Expat<Recorder>,
    gen: &generated::GeneratedExpat<Recorder>,
) -> Vec<(&'static str, String, String)> {
    macro_rules! pair {
        ($($h:ident = $c:ident),* $(,)?) => {
            vec![$((stringify!($c), rust_sig(&hand.$h), rust_sig(&gen.$c))),*]
        };
    }
    pair![
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
    };
    let mut found = Vec::new();
    let pairs = pairs(&hand, &gen);
    assert_eq!(pairs.len(), 29, "every hand-bound function is compared");
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
        let unsign = |w: String| w.replace("signed: true", "signed: false");
        let hw = format!(
            "{:?} -> {:?}",
            h.params.iter().map(|p| p.word).collect::<Vec<_>>(),
            h.ret.as_ref().map(|r| r.word)
        );
        let gw = format!(
            "{:?} -> {:?}",
            g.params.iter().map(|p| p.word).collect::<Vec<_>>(),
            g.ret.as_ref().map(|r| r.word)
        );
        if hw != gw {
            assert_eq!(
                unsign(hw.clone()),
                unsign(gw.clone()),
                "{c}: the ABI differs beyond a sign"
            );
            found.push((c, "Sign"));
        }
    }
    let expected: Vec<(&str, &str)> = DIFFERENCES.to_vec();
    assert_eq!(
        found, expected,
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
        ("macro `XML_GetErrorLineNumber`", "not a generated constant"),
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
