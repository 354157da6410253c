//! expat's C API, described once as values and bound with any strategy
//! (the Rust form of the seed's `Bindings(F : FOREIGN)` functor).

use sandlink::types::*;

/// `XML_Parser`: a pointer to the opaque parser struct, in the library's
/// address space.
pub type XmlParser = Ptr<Struct<ParserStruct>>;

sandlink::bindings! {
    /// Tag for the opaque `struct XML_ParserStruct`.
    pub struct ParserStruct = "XML_ParserStruct";
    /// `typedef struct XML_ParserStruct *XML_Parser`.
    pub type XML_Parser = typedef("XML_Parser", ptr(ParserStruct));
    /// `typedef unsigned char XML_Bool`.
    pub type XML_Bool = typedef("XML_Bool", uchar);
    /// `enum XML_Status`: `XML_STATUS_ERROR`, `_OK`, `_SUSPENDED`.
    pub type XML_Status = typedef("enum XML_Status", int);
    /// `enum XML_Error`.
    pub type XML_Error = typedef("enum XML_Error", int);

    /// `XML_StartElementHandler`: `(void *ud, const XML_Char *name, const
    /// XML_Char **atts)`. The name comes as a pointer, read by the handler
    /// into a reused buffer (no allocation per event).
    pub type StartElement = funptr(fn(
        ptr_opt(void),
        str_ref(ptr(const_(char))),
        str_array_ref(ptr(ptr_opt(const_(char)))),
    ) -> void);
    /// [`StartElement`] for a handler that never reads attributes: `atts`
    /// as a plain pointer, so a batched callback copies no attribute.
    pub type StartElementNames = funptr(fn(
        ptr_opt(void),
        str_ref(ptr(const_(char))),
        ptr_opt(ptr_opt(const_(char))),
    ) -> void);
    /// `XML_EndElementHandler`: `(void *ud, const XML_Char *name)`.
    pub type EndElement = funptr(fn(ptr_opt(void), str_ref(ptr(const_(char)))) -> void);
    /// `XML_CharacterDataHandler` and `XML_DefaultHandler`: `(void *ud, const
    /// XML_Char *s, int len)`. The text comes as a borrowed `(pointer,
    /// length)` pair, read into a reused buffer.
    pub type Text = funptr(fn(ptr_opt(void), bytes_ref_int) -> void);
    /// `XML_ProcessingInstructionHandler`: `(void *ud, target, data)`.
    pub type Pi = funptr(fn(ptr_opt(void), string, string) -> void);
    /// `XML_CommentHandler`: `(void *ud, const XML_Char *data)`.
    pub type Comment = funptr(fn(ptr_opt(void), string) -> void);
    /// `XML_StartCdataSectionHandler` / `XML_EndCdataSectionHandler`: `(void *ud)`.
    pub type Cdata = funptr(fn(ptr_opt(void)) -> void);
    /// `XML_XmlDeclHandler`: `(void *ud, version, encoding, int standalone)`;
    /// version and encoding may be NULL.
    pub type XmlDecl = funptr(fn(ptr_opt(void), string_opt, string_opt, int) -> void);
    /// `XML_StartNamespaceDeclHandler`: `(void *ud, prefix, uri)`, both nullable.
    pub type StartNs = funptr(fn(ptr_opt(void), string_opt, string_opt) -> void);
    /// `XML_EndNamespaceDeclHandler`: `(void *ud, prefix)`, nullable.
    pub type EndNs = funptr(fn(ptr_opt(void), string_opt) -> void);

    /// expat's functions, bound with strategy `L`. Cloning shares the bound
    /// functions (each clone is a few reference counts).
    pub struct Expat<L> {
        type {
            /// See [`StartElement`].
            start_element = StartElement;
            /// See [`StartElementNames`].
            start_element_names = StartElementNames;
            /// See [`EndElement`].
            end_element = EndElement;
            /// See [`Text`].
            text = Text;
            /// See [`Pi`].
            pi = Pi;
            /// See [`Comment`].
            comment = Comment;
            /// See [`Cdata`].
            cdata = Cdata;
            /// See [`XmlDecl`].
            xml_decl = XmlDecl;
            /// See [`StartNs`].
            start_ns = StartNs;
            /// See [`EndNs`].
            end_ns = EndNs;
        }
        /// `XML_Parser XML_ParserCreate(const XML_Char *encoding)`.
        pub fn parser_create = "XML_ParserCreate"(string_opt) -> ptr_opt(ParserStruct);
        /// `XML_Parser XML_ParserCreateNS(const XML_Char *encoding, XML_Char sep)`.
        pub fn parser_create_ns = "XML_ParserCreateNS"(string_opt, char) -> ptr_opt(ParserStruct);
        /// `void XML_ParserFree(XML_Parser)`.
        pub fn parser_free = "XML_ParserFree"(XML_Parser) -> void;
        /// `XML_Bool XML_ParserReset(XML_Parser, const XML_Char *encoding)`.
        pub fn parser_reset = "XML_ParserReset"(XML_Parser, string_opt) -> XML_Bool;
        /// `void XML_SetUserData(XML_Parser, void *)`.
        pub fn set_user_data = "XML_SetUserData"(XML_Parser, ptr_opt(void)) -> void;
        /// `void XML_SetElementHandler(XML_Parser, start, end)`.
        pub fn set_element_handler = "XML_SetElementHandler"(
            XML_Parser,
            funptr_opt(StartElement),
            funptr_opt(EndElement),
        ) -> void;
        /// `XML_SetElementHandler` with a start handler that takes no
        /// attributes ([`StartElementNames`]).
        pub fn set_element_handler_names = "XML_SetElementHandler"(
            XML_Parser,
            funptr_opt(StartElementNames),
            funptr_opt(EndElement),
        ) -> void;
        /// `XML_SetCharacterDataHandler`.
        pub fn set_character_data_handler = "XML_SetCharacterDataHandler"(
            XML_Parser,
            funptr_opt(Text),
        ) -> void;
        /// `XML_SetProcessingInstructionHandler`.
        pub fn set_processing_instruction_handler = "XML_SetProcessingInstructionHandler"(
            XML_Parser,
            funptr_opt(Pi),
        ) -> void;
        /// `XML_SetCommentHandler`.
        pub fn set_comment_handler = "XML_SetCommentHandler"(
            XML_Parser,
            funptr_opt(Comment),
        ) -> void;
        /// `XML_SetStartCdataSectionHandler`.
        pub fn set_start_cdata_section_handler = "XML_SetStartCdataSectionHandler"(
            XML_Parser,
            funptr_opt(Cdata),
        ) -> void;
        /// `XML_SetEndCdataSectionHandler`.
        pub fn set_end_cdata_section_handler = "XML_SetEndCdataSectionHandler"(
            XML_Parser,
            funptr_opt(Cdata),
        ) -> void;
        /// `XML_SetDefaultHandler`.
        pub fn set_default_handler = "XML_SetDefaultHandler"(XML_Parser, funptr_opt(Text)) -> void;
        /// `XML_SetXmlDeclHandler`.
        pub fn set_xml_decl_handler = "XML_SetXmlDeclHandler"(
            XML_Parser,
            funptr_opt(XmlDecl),
        ) -> void;
        /// `XML_SetStartNamespaceDeclHandler`.
        pub fn set_start_namespace_decl_handler = "XML_SetStartNamespaceDeclHandler"(
            XML_Parser,
            funptr_opt(StartNs),
        ) -> void;
        /// `XML_SetEndNamespaceDeclHandler`.
        pub fn set_end_namespace_decl_handler = "XML_SetEndNamespaceDeclHandler"(
            XML_Parser,
            funptr_opt(EndNs),
        ) -> void;
        /// `enum XML_Status XML_Parse(XML_Parser, const char *s, int len, int isFinal)`.
        pub fn parse = "XML_Parse"(XML_Parser, buffer_int, int) -> XML_Status;
        /// `void *XML_GetBuffer(XML_Parser, int len)`.
        pub fn get_buffer = "XML_GetBuffer"(XML_Parser, int) -> ptr_opt(uchar);
        /// `enum XML_Status XML_ParseBuffer(XML_Parser, int len, int isFinal)`.
        pub fn parse_buffer = "XML_ParseBuffer"(XML_Parser, int, int) -> XML_Status;
        /// `enum XML_Status XML_StopParser(XML_Parser, XML_Bool resumable)`.
        pub fn stop_parser = "XML_StopParser"(XML_Parser, XML_Bool) -> XML_Status;
        /// `enum XML_Status XML_ResumeParser(XML_Parser)`.
        pub fn resume_parser = "XML_ResumeParser"(XML_Parser) -> XML_Status;
        /// `enum XML_Error XML_GetErrorCode(XML_Parser)`.
        pub fn get_error_code = "XML_GetErrorCode"(XML_Parser) -> XML_Error;
        /// `const XML_LChar *XML_ErrorString(enum XML_Error)`; NULL for unknown codes.
        pub fn error_string = "XML_ErrorString"(XML_Error) -> string_opt;
        /// `XML_Size XML_GetCurrentLineNumber(XML_Parser)`.
        pub fn get_current_line_number = "XML_GetCurrentLineNumber"(XML_Parser)
            -> typedef("XML_Size", ulong);
        /// `XML_Size XML_GetCurrentColumnNumber(XML_Parser)`.
        pub fn get_current_column_number = "XML_GetCurrentColumnNumber"(XML_Parser)
            -> typedef("XML_Size", ulong);
        /// `XML_Index XML_GetCurrentByteIndex(XML_Parser)`.
        pub fn get_current_byte_index = "XML_GetCurrentByteIndex"(XML_Parser)
            -> typedef("XML_Index", long);
        /// `const XML_LChar *XML_ExpatVersion(void)`.
        pub fn expat_version = "XML_ExpatVersion"() -> string;
        /// `int XML_SetHashSalt(XML_Parser, unsigned long salt)`.
        pub fn set_hash_salt = "XML_SetHashSalt"(XML_Parser, ulong) -> int;
        /// `XML_Bool XML_SetBillionLaughsAttackProtectionMaximumAmplification(XML_Parser,
        /// float)`.
        pub fn set_billion_laughs_max_amplification =
            "XML_SetBillionLaughsAttackProtectionMaximumAmplification"(XML_Parser, float)
            -> XML_Bool;
        /// `XML_Bool XML_SetBillionLaughsAttackProtectionActivationThreshold(XML_Parser,
        /// unsigned long long)`.
        pub fn set_billion_laughs_activation_threshold =
            "XML_SetBillionLaughsAttackProtectionActivationThreshold"(XML_Parser, ullong)
            -> XML_Bool;
    }
}
