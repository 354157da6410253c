//! expat's C API, described once as values and bound with any strategy
//! (the Rust form of the seed's `Bindings(F : FOREIGN)` functor).

use sandlink::types::*;
use sandlink::{Foreign, Function, Result};

/// Tag for the opaque `struct XML_ParserStruct`.
pub enum ParserStruct {}

/// `XML_Parser`: a pointer to the opaque parser struct, in the library's
/// address space.
pub type XmlParser = Ptr<Struct<ParserStruct>>;

/// `void *` user data, as handlers receive it.
pub type UserData = Option<Ptr<()>>;

/// `XML_StartElementHandler`: `(void *ud, const XML_Char *name, const XML_Char **atts)`.
/// The name comes as a pointer, read by the handler into a reused buffer
/// (no allocation per event).
pub type StartElementFn = FunPtr<(UserData, StrRef, StrArrayRef), ()>;
/// `XML_EndElementHandler`: `(void *ud, const XML_Char *name)`.
pub type EndElementFn = FunPtr<(UserData, StrRef), ()>;
/// `XML_CharacterDataHandler` and `XML_DefaultHandler`: `(void *ud, const XML_Char *s, int len)`.
/// The text comes as a borrowed `(pointer, length)` pair, read into a reused buffer.
pub type TextFn = FunPtr<(UserData, BytesRef), ()>;
/// `XML_ProcessingInstructionHandler`: `(void *ud, target, data)`.
pub type PiFn = FunPtr<(UserData, String, String), ()>;
/// `XML_CommentHandler`: `(void *ud, const XML_Char *data)`.
pub type CommentFn = FunPtr<(UserData, String), ()>;
/// `XML_StartCdataSectionHandler` / `XML_EndCdataSectionHandler`: `(void *ud)`.
pub type CdataFn = FunPtr<(UserData,), ()>;
/// `XML_XmlDeclHandler`: `(void *ud, version, encoding, int standalone)`; version
/// and encoding may be NULL.
pub type XmlDeclFn = FunPtr<(UserData, Option<String>, Option<String>, i32), ()>;
/// `XML_StartNamespaceDeclHandler`: `(void *ud, prefix, uri)`, both nullable.
pub type StartNsFn = FunPtr<(UserData, Option<String>, Option<String>), ()>;
/// `XML_EndNamespaceDeclHandler`: `(void *ud, prefix)`, nullable.
pub type EndNsFn = FunPtr<(UserData, Option<String>), ()>;

/// A handler setter: `void XML_SetXHandler(XML_Parser, handler)`.
pub type SetHandler<L, F> = Function<L, (XmlParser, Option<F>), ()>;

/// The handler function types, for making callbacks.
#[derive(Clone)]
pub struct HandlerTypes {
    /// See [`StartElementFn`].
    pub start_element: Typ<StartElementFn>,
    /// See [`EndElementFn`].
    pub end_element: Typ<EndElementFn>,
    /// See [`TextFn`].
    pub text: Typ<TextFn>,
    /// See [`PiFn`].
    pub pi: Typ<PiFn>,
    /// See [`CommentFn`].
    pub comment: Typ<CommentFn>,
    /// See [`CdataFn`].
    pub cdata: Typ<CdataFn>,
    /// See [`XmlDeclFn`].
    pub xml_decl: Typ<XmlDeclFn>,
    /// See [`StartNsFn`].
    pub start_ns: Typ<StartNsFn>,
    /// See [`EndNsFn`].
    pub end_ns: Typ<EndNsFn>,
}

impl HandlerTypes {
    fn new() -> HandlerTypes {
        let ud = || ptr_opt(void());
        let name = || str_ref(ptr(const_(char())));
        HandlerTypes {
            start_element: funptr(
                ud() >> name() >> str_array_ref(ptr(ptr_opt(const_(char())))) >> returning(void()),
            ),
            end_element: funptr(ud() >> name() >> returning(void())),
            text: funptr(ud() >> bytes_ref_int() >> returning(void())),
            pi: funptr(ud() >> string() >> string() >> returning(void())),
            comment: funptr(ud() >> string() >> returning(void())),
            cdata: funptr(ud() >> returning(void())),
            xml_decl: funptr(ud() >> string_opt() >> string_opt() >> int() >> returning(void())),
            start_ns: funptr(ud() >> string_opt() >> string_opt() >> returning(void())),
            end_ns: funptr(ud() >> string_opt() >> returning(void())),
        }
    }
}

/// expat's functions, bound with strategy `L`. Cloning shares the bound
/// functions (each clone is a few reference counts).
#[derive(Clone)]
pub struct Expat<L: Foreign> {
    /// The library they are bound in.
    pub lib: L,
    /// The handler function types.
    pub types: HandlerTypes,
    /// `XML_Parser XML_ParserCreate(const XML_Char *encoding)`.
    pub parser_create: Function<L, (Option<String>,), Option<XmlParser>>,
    /// `XML_Parser XML_ParserCreateNS(const XML_Char *encoding, XML_Char sep)`.
    pub parser_create_ns: Function<L, (Option<String>, i8), Option<XmlParser>>,
    /// `void XML_ParserFree(XML_Parser)`.
    pub parser_free: Function<L, (XmlParser,), ()>,
    /// `XML_Bool XML_ParserReset(XML_Parser, const XML_Char *encoding)`.
    pub parser_reset: Function<L, (XmlParser, Option<String>), u8>,
    /// `void XML_SetUserData(XML_Parser, void *)`.
    pub set_user_data: Function<L, (XmlParser, UserData), ()>,
    /// `void XML_SetElementHandler(XML_Parser, start, end)`.
    pub set_element_handler:
        Function<L, (XmlParser, Option<StartElementFn>, Option<EndElementFn>), ()>,
    /// `XML_SetCharacterDataHandler`.
    pub set_character_data_handler: SetHandler<L, TextFn>,
    /// `XML_SetProcessingInstructionHandler`.
    pub set_processing_instruction_handler: SetHandler<L, PiFn>,
    /// `XML_SetCommentHandler`.
    pub set_comment_handler: SetHandler<L, CommentFn>,
    /// `XML_SetStartCdataSectionHandler`.
    pub set_start_cdata_section_handler: SetHandler<L, CdataFn>,
    /// `XML_SetEndCdataSectionHandler`.
    pub set_end_cdata_section_handler: SetHandler<L, CdataFn>,
    /// `XML_SetDefaultHandler`.
    pub set_default_handler: SetHandler<L, TextFn>,
    /// `XML_SetXmlDeclHandler`.
    pub set_xml_decl_handler: SetHandler<L, XmlDeclFn>,
    /// `XML_SetStartNamespaceDeclHandler`.
    pub set_start_namespace_decl_handler: SetHandler<L, StartNsFn>,
    /// `XML_SetEndNamespaceDeclHandler`.
    pub set_end_namespace_decl_handler: SetHandler<L, EndNsFn>,
    /// `enum XML_Status XML_Parse(XML_Parser, const char *s, int len, int isFinal)`.
    pub parse: Function<L, (XmlParser, Buffer, i32), i32>,
    /// `void *XML_GetBuffer(XML_Parser, int len)`.
    pub get_buffer: Function<L, (XmlParser, i32), Option<Ptr<u8>>>,
    /// `enum XML_Status XML_ParseBuffer(XML_Parser, int len, int isFinal)`.
    pub parse_buffer: Function<L, (XmlParser, i32, i32), i32>,
    /// `enum XML_Status XML_StopParser(XML_Parser, XML_Bool resumable)`.
    pub stop_parser: Function<L, (XmlParser, u8), i32>,
    /// `enum XML_Status XML_ResumeParser(XML_Parser)`.
    pub resume_parser: Function<L, (XmlParser,), i32>,
    /// `enum XML_Error XML_GetErrorCode(XML_Parser)`.
    pub get_error_code: Function<L, (XmlParser,), i32>,
    /// `const XML_LChar *XML_ErrorString(enum XML_Error)`; NULL for unknown codes.
    pub error_string: Function<L, (i32,), Option<String>>,
    /// `XML_Size XML_GetCurrentLineNumber(XML_Parser)`.
    pub get_current_line_number: Function<L, (XmlParser,), u64>,
    /// `XML_Size XML_GetCurrentColumnNumber(XML_Parser)`.
    pub get_current_column_number: Function<L, (XmlParser,), u64>,
    /// `XML_Index XML_GetCurrentByteIndex(XML_Parser)`.
    pub get_current_byte_index: Function<L, (XmlParser,), i64>,
    /// `const XML_LChar *XML_ExpatVersion(void)`.
    pub expat_version: Function<L, (), String>,
    /// `int XML_SetHashSalt(XML_Parser, unsigned long salt)`.
    pub set_hash_salt: Function<L, (XmlParser, u64), i32>,
    /// `XML_Bool XML_SetBillionLaughsAttackProtectionMaximumAmplification(XML_Parser, float)`.
    pub set_billion_laughs_max_amplification: Function<L, (XmlParser, f32), u8>,
    /// `XML_Bool XML_SetBillionLaughsAttackProtectionActivationThreshold(XML_Parser, unsigned long long)`.
    pub set_billion_laughs_activation_threshold: Function<L, (XmlParser, u64), u8>,
}

/// Binds `void name(XML_Parser, handler)`, with the shared `XML_Parser` description.
fn setter<L: Foreign, A: Params, R: Shadow>(
    lib: &L,
    xml_parser: &Typ<XmlParser>,
    name: &str,
    handler: &Typ<FunPtr<A, R>>,
) -> Result<SetHandler<L, FunPtr<A, R>>> {
    let handler = funptr_opt(handler.fn_type().clone());
    lib.function(name, &(xml_parser.clone() >> handler >> returning(void())))
}

impl<L: Foreign> Expat<L> {
    /// Binds every function in `lib`; fails on the first missing or
    /// mismatched one.
    pub fn bind(lib: &L) -> Result<Expat<L>> {
        // `struct XML_ParserStruct` is described once; every binding shares it.
        let parser_struct = structure::<ParserStruct>("XML_ParserStruct").opaque();
        let parser = typedef(ptr(parser_struct.clone()), "XML_Parser");
        let xml_parser = || parser.clone();
        let xml_parser_opt = || ptr_opt(parser_struct.clone());
        let xml_bool = || typedef(uchar(), "XML_Bool");
        let status = || typedef(int(), "enum XML_Status");
        let types = HandlerTypes::new();
        Ok(Expat {
            parser_create: lib.function(
                "XML_ParserCreate",
                &(string_opt() >> returning(xml_parser_opt())),
            )?,
            parser_create_ns: lib.function(
                "XML_ParserCreateNS",
                &(string_opt() >> char() >> returning(xml_parser_opt())),
            )?,
            parser_free: lib.function("XML_ParserFree", &(xml_parser() >> returning(void())))?,
            parser_reset: lib.function(
                "XML_ParserReset",
                &(xml_parser() >> string_opt() >> returning(xml_bool())),
            )?,
            set_user_data: lib.function(
                "XML_SetUserData",
                &(xml_parser() >> ptr_opt(void()) >> returning(void())),
            )?,
            set_element_handler: lib.function(
                "XML_SetElementHandler",
                &(xml_parser()
                    >> funptr_opt(types.start_element.fn_type().clone())
                    >> funptr_opt(types.end_element.fn_type().clone())
                    >> returning(void())),
            )?,
            set_character_data_handler: setter(
                lib,
                &parser,
                "XML_SetCharacterDataHandler",
                &types.text,
            )?,
            set_processing_instruction_handler: setter(
                lib,
                &parser,
                "XML_SetProcessingInstructionHandler",
                &types.pi,
            )?,
            set_comment_handler: setter(lib, &parser, "XML_SetCommentHandler", &types.comment)?,
            set_start_cdata_section_handler: setter(
                lib,
                &parser,
                "XML_SetStartCdataSectionHandler",
                &types.cdata,
            )?,
            set_end_cdata_section_handler: setter(
                lib,
                &parser,
                "XML_SetEndCdataSectionHandler",
                &types.cdata,
            )?,
            set_default_handler: setter(lib, &parser, "XML_SetDefaultHandler", &types.text)?,
            set_xml_decl_handler: setter(lib, &parser, "XML_SetXmlDeclHandler", &types.xml_decl)?,
            set_start_namespace_decl_handler: setter(
                lib,
                &parser,
                "XML_SetStartNamespaceDeclHandler",
                &types.start_ns,
            )?,
            set_end_namespace_decl_handler: setter(
                lib,
                &parser,
                "XML_SetEndNamespaceDeclHandler",
                &types.end_ns,
            )?,
            parse: lib.function(
                "XML_Parse",
                &(xml_parser() >> buffer_int() >> int() >> returning(status())),
            )?,
            get_buffer: lib.function(
                "XML_GetBuffer",
                &(xml_parser() >> int() >> returning(ptr_opt(uchar()))),
            )?,
            parse_buffer: lib.function(
                "XML_ParseBuffer",
                &(xml_parser() >> int() >> int() >> returning(status())),
            )?,
            stop_parser: lib.function(
                "XML_StopParser",
                &(xml_parser() >> xml_bool() >> returning(status())),
            )?,
            resume_parser: lib
                .function("XML_ResumeParser", &(xml_parser() >> returning(status())))?,
            get_error_code: lib.function(
                "XML_GetErrorCode",
                &(xml_parser() >> returning(typedef(int(), "enum XML_Error"))),
            )?,
            error_string: lib.function(
                "XML_ErrorString",
                &(typedef(int(), "enum XML_Error") >> returning(string_opt())),
            )?,
            get_current_line_number: lib.function(
                "XML_GetCurrentLineNumber",
                &(xml_parser() >> returning(typedef(ulong(), "XML_Size"))),
            )?,
            get_current_column_number: lib.function(
                "XML_GetCurrentColumnNumber",
                &(xml_parser() >> returning(typedef(ulong(), "XML_Size"))),
            )?,
            get_current_byte_index: lib.function(
                "XML_GetCurrentByteIndex",
                &(xml_parser() >> returning(typedef(long(), "XML_Index"))),
            )?,
            expat_version: lib.function("XML_ExpatVersion", &(void() >> returning(string())))?,
            set_hash_salt: lib.function(
                "XML_SetHashSalt",
                &(xml_parser() >> ulong() >> returning(int())),
            )?,
            set_billion_laughs_max_amplification: lib.function(
                "XML_SetBillionLaughsAttackProtectionMaximumAmplification",
                &(xml_parser() >> float() >> returning(xml_bool())),
            )?,
            set_billion_laughs_activation_threshold: lib.function(
                "XML_SetBillionLaughsAttackProtectionActivationThreshold",
                &(xml_parser() >> ullong() >> returning(xml_bool())),
            )?,
            types,
            lib: lib.clone(),
        })
    }
}
