//! testlib's C API (`c-libs/testlib/testlib.h`), described once as values.
//!
//! The conformance suite calls these bindings on every strategy; the
//! `sandlink-clibs` build script evaluates [`Testlib::bind`] against the
//! recorder to generate the Stubs strategy's wrappers, so the C compiler
//! checks every description here against `testlib.h`. Some C functions are
//! bound more than once, under different descriptions of the same C type
//! (a string as a `char` pointer, an `int` as a Rust enum): each is a
//! declaration the header must agree with.

use sandlink::types::*;
use sandlink::{Foreign, Function, Result};

/// Tag for `struct tl_inner`.
pub enum Inner {}
/// Tag for `struct tl_record`.
pub enum Record {}

/// `struct tl_record` and its fields, described once.
pub struct RecordType {
    /// `struct tl_inner`.
    pub inner: Typ<Struct<Inner>>,
    /// `struct tl_record`.
    pub record: Typ<Struct<Record>>,
    /// `tl_inner.tag`.
    pub tag: Field<Inner, i8>,
    /// `tl_inner.weight`.
    pub weight: Field<Inner, f64>,
    /// `tl_record.c`.
    pub c: Field<Record, i8>,
    /// `tl_record.id` (a `tl_id_t`).
    pub id: Field<Record, i32>,
    /// `tl_record.inner`.
    pub inner_f: Field<Record, Struct<Inner>>,
    /// `tl_record.s`.
    pub s: Field<Record, i16>,
    /// `tl_record.big`.
    pub big: Field<Record, i64>,
    /// `tl_record.name`.
    pub name: Field<Record, Array<i8>>,
    /// `tl_record.l`.
    pub l: Field<Record, i64>,
    /// `tl_record.p`.
    pub p: Field<Record, Option<Ptr<()>>>,
}

impl RecordType {
    /// Describes the structs with the value-level API.
    pub fn new() -> Result<RecordType> {
        let mut inner = structure::<Inner>("tl_inner");
        let tag = inner.field("tag", char());
        let weight = inner.field("weight", double());
        let inner = inner.seal()?;
        let mut record = structure::<Record>("tl_record");
        let c = record.field("c", char());
        let id = record.field("id", typedef(int32_t(), "tl_id_t"));
        let inner_f = record.field("inner", inner.clone());
        let s = record.field("s", short());
        let big = record.field("big", int64_t());
        let name = record.field("name", array(7, char()));
        let l = record.field("l", long());
        let p = record.field("p", ptr_opt(void()));
        let record = record.seal()?;
        Ok(RecordType {
            inner,
            record,
            tag,
            weight,
            c,
            id,
            inner_f,
            s,
            big,
            name,
            l,
            p,
        })
    }
}

/// Tag for `union tl_num`.
pub enum Num {}

/// `union tl_num` and its fields.
pub struct NumType {
    /// `union tl_num`.
    pub num: Typ<Struct<Num>>,
    /// `int32_t i`.
    pub i: Field<Num, i32>,
    /// `float f`.
    pub f: Field<Num, f32>,
    /// `double d`.
    pub d: Field<Num, f64>,
    /// `unsigned char bytes[12]`.
    pub bytes: Field<Num, Array<u8>>,
}

impl NumType {
    /// Describes the union.
    pub fn new() -> Result<NumType> {
        let mut u = union::<Num>("tl_num");
        let i = u.field("i", int32_t());
        let f = u.field("f", float());
        let d = u.field("d", double());
        let bytes = u.field("bytes", array(12, uchar()));
        Ok(NumType {
            num: u.seal()?,
            i,
            f,
            d,
            bytes,
        })
    }
}

/// A Rust enum over `enum tl_color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// `TL_RED`.
    Red,
    /// `TL_GREEN`.
    Green,
    /// `TL_BLUE`.
    Blue,
}

/// The view of `int` as [`Color`]; out-of-range values are rejected.
pub fn color() -> Typ<View<Color, i32>> {
    view(
        int(),
        |i| match i {
            0 => Ok(Color::Red),
            1 => Ok(Color::Green),
            2 => Ok(Color::Blue),
            other => Err(format!("{other} is not a tl_color")),
        },
        |c| *c as i32,
    )
}

/// `int` viewed as a Rust `bool` (non-zero is true).
pub fn int_bool() -> Typ<View<bool, i32>> {
    view(int(), |i| Ok(i != 0), |b| i32::from(*b))
}

/// `int (*)(int)`.
pub type IntFn = FunPtr<(i32,), i32>;
/// `int (*)(int acc, int x)`.
pub type StepFn = FunPtr<(i32, i32), i32>;
/// `double (*)(double, float)`.
pub type DoubleFloatFn = FunPtr<(f64, f32), f64>;
/// `void (*)(void *ud, const char *word, int len)`.
pub type WordFn = FunPtr<(Option<Ptr<()>>, Buffer), ()>;
/// `void (*)(void *ud, const char *name, const char **attrs)`.
pub type VisitFn = FunPtr<(Option<Ptr<()>>, String, Ptr<Option<Ptr<i8>>>), ()>;
/// [`WordFn`] with the word borrowed: read on demand, no copy per call.
pub type WordRefFn = FunPtr<(Option<Ptr<()>>, BytesRef), ()>;
/// [`VisitFn`] with the name and the array borrowed: read on demand.
pub type VisitRefFn = FunPtr<(Option<Ptr<()>>, StrRef, StrArrayRef), ()>;
/// `void (*)(void *ud, const char *s)`, the string borrowed.
pub type CountFn = FunPtr<(Option<Ptr<()>>, StrRef), ()>;

/// A one-argument function of `T` returning `T`.
pub type Unary<L, T> = Function<L, (T,), T>;

/// testlib's functions, bound with strategy `L`.
#[allow(missing_docs)] // each field is the C function its name spells, `tl_<name>`
pub struct Testlib<L: Foreign> {
    pub lib: L,
    // Callback types.
    pub int_fn: Typ<IntFn>,
    pub step_fn: Typ<StepFn>,
    pub double_float_fn: Typ<DoubleFloatFn>,
    pub word_fn: Typ<WordFn>,
    pub visit_fn: Typ<VisitFn>,
    pub word_ref_fn: Typ<WordRefFn>,
    pub visit_ref_fn: Typ<VisitRefFn>,
    pub count_fn: Typ<CountFn>,
    // Scalars.
    pub not: Unary<L, bool>,
    pub char_succ: Unary<L, i8>,
    pub schar_neg: Unary<L, i8>,
    pub uchar_compl: Unary<L, u8>,
    pub short_neg: Unary<L, i16>,
    pub ushort_compl: Unary<L, u16>,
    pub int_add: Function<L, (i32, i32), i32>,
    pub uint_compl: Unary<L, u32>,
    pub long_id: Unary<L, i64>,
    pub ulong_id: Unary<L, u64>,
    pub llong_neg: Unary<L, i64>,
    pub ullong_compl: Unary<L, u64>,
    pub i8_neg: Unary<L, i8>,
    pub i16_neg: Unary<L, i16>,
    pub i32_neg: Unary<L, i32>,
    pub i64_neg: Unary<L, i64>,
    pub u8_compl: Unary<L, u8>,
    pub u16_compl: Unary<L, u16>,
    pub u32_compl: Unary<L, u32>,
    pub u64_compl: Unary<L, u64>,
    pub size_id: Unary<L, u64>,
    pub ssize_id: Unary<L, i64>,
    pub intptr_id: Unary<L, i64>,
    pub uintptr_id: Unary<L, u64>,
    pub ptrdiff_id: Unary<L, i64>,
    pub float_mul: Function<L, (f32, f32), f32>,
    pub double_fma: Function<L, (f64, f64, f64), f64>,
    #[allow(clippy::type_complexity)]
    pub mixed: Function<L, (i8, u16, i32, i64, f32, f64, u8, i64, f32, u64), f64>,
    pub sizeof_long: Function<L, (), u64>,
    // Strings and buffers.
    pub strlen: Function<L, (String,), u64>,
    pub greeting: Function<L, (), String>,
    pub dup_upper: Function<L, (String, i32), Option<OwnedStr>>,
    pub free_str: Function<L, (OwnedStr,), ()>,
    pub live_strs: Function<L, (), i32>,
    /// `tl_name_or_null`, NULL as `None`.
    pub name_or_null: Function<L, (i32,), Option<String>>,
    /// `tl_name_or_null`, NULL as an error.
    pub name_strict: Function<L, (i32,), String>,
    pub invalid_utf8: Function<L, (), String>,
    /// `tl_invalid_utf8` as a `char` pointer, to read its bytes.
    pub invalid_utf8_ptr: Function<L, (), Ptr<i8>>,
    pub checksum: Function<L, (Buffer,), u32>,
    pub checksum_short: Function<L, (Buffer,), u32>,
    pub upper_into: Function<L, (BufferMut,), ()>,
    // errno.
    pub divmod: Function<L, (i32, i32, Ptr<i32>, Ptr<i32>), i32>,
    pub edom: Function<L, (), i32>,
    /// `tl_fail_with`, capturing errno.
    pub fail_with: Unary<L, i32>,
    /// `tl_fail_with`, not capturing errno.
    pub fail_with_no_errno: Unary<L, i32>,
    // Structs, unions, arrays.
    pub record_t: RecordType,
    pub num_t: NumType,
    pub record_fill: Function<L, (Ptr<Struct<Record>>, i32), ()>,
    pub record_sum: Function<L, (Ptr<Struct<Record>>,), i64>,
    pub record_layout: Function<L, (i32,), u64>,
    pub inner_layout: Function<L, (i32,), u64>,
    pub num_layout: Function<L, (i32,), u64>,
    pub num_set_float: Function<L, (Ptr<Struct<Num>>, f32), ()>,
    pub num_int: Function<L, (Ptr<Struct<Num>>,), i32>,
    pub sum_ints: Function<L, (Ptr<i32>, u64), i32>,
    pub find: Function<L, (Ptr<i32>, u64, i32), Option<Ptr<i32>>>,
    // Globals.
    pub counter: Ptr<i32>,
    pub bump: Function<L, (), i32>,
    // Views.
    pub color_next: Unary<L, View<Color, i32>>,
    /// `tl_int_add` with its result viewed as a [`Color`].
    pub add_as_color: Function<L, (i32, i32), View<Color, i32>>,
    pub is_even: Function<L, (i32,), View<bool, i32>>,
    // Callbacks.
    pub apply: Function<L, (IntFn, i32), i32>,
    pub apply_float: Function<L, (DoubleFloatFn, f64), f64>,
    pub store_int_fn: Function<L, (IntFn,), ()>,
    pub call_stored: Unary<L, i32>,
    pub fold: Function<L, (StepFn, Ptr<i32>, u64, i32), i32>,
    pub each_word: Function<L, (String, WordFn, Option<Ptr<()>>), ()>,
    pub visit: Function<L, (VisitFn, Option<Ptr<()>>), ()>,
    pub each_word_ref: Function<L, (String, WordRefFn, Option<Ptr<()>>), ()>,
    pub visit_ref: Function<L, (VisitRefFn, Option<Ptr<()>>), ()>,
    pub count: Function<L, (i32, CountFn, IntFn, i32, Option<Ptr<()>>), i32>,
    pub get_doubler: Function<L, (), IntFn>,
    pub get_stored: Function<L, (), Option<IntFn>>,
    pub call_fnptr: Function<L, (u64, i32), i32>,
    // setjmp/longjmp.
    pub sjlj: Function<L, (i32, i32), i32>,
    pub sjlj_guarded: Function<L, (IntFn, i32), i32>,
    pub sjlj_raise: Function<L, (i32,), ()>,
    pub sjlj_stale: Function<L, (), ()>,
    pub wasi_gaps: Function<L, (), i32>,
    pub read_file: Function<L, (String, BufferMut), i64>,
    pub write_file: Function<L, (String, String), i32>,
    // Constants, as the C compiler evaluated them for this build.
    /// `TL_BLUE` (an enum value).
    pub blue: i32,
    /// `TL_SCALE` (a `#define`).
    pub scale: i32,
    /// `TL_RECORD_SIZE`: `sizeof(struct tl_record)` in the library's model.
    pub record_size: u64,
    /// `struct tl_record` as storage only: its size and alignment taken
    /// from the compiler for this library (`opaque_sized`).
    pub record_storage: Typ<Struct<Record>>,
}

impl<L: Foreign> Testlib<L> {
    /// Binds every function in `lib`; fails on the first missing or
    /// mismatched one.
    pub fn bind(lib: &L) -> Result<Testlib<L>> {
        let int_fn = funptr(int() >> returning(int()));
        let step_fn = funptr(int() >> int() >> returning(int()));
        let double_float_fn = funptr(double() >> float() >> returning(double()));
        let word_fn = funptr(ptr_opt(void()) >> buffer_int() >> returning(void()));
        let visit_fn = funptr(
            ptr_opt(void()) >> string() >> ptr(ptr_opt(const_(char()))) >> returning(void()),
        );
        let word_ref_fn = funptr(ptr_opt(void()) >> bytes_ref_int() >> returning(void()));
        let count_fn = funptr(ptr_opt(void()) >> str_ref(ptr(const_(char()))) >> returning(void()));
        let visit_ref_fn = funptr(
            ptr_opt(void())
                >> str_ref(ptr(const_(char())))
                >> str_array_ref(ptr(ptr_opt(const_(char()))))
                >> returning(void()),
        );
        let record_t = RecordType::new()?;
        let num_t = NumType::new()?;
        let rec = || ptr(record_t.record.clone());
        let num = || ptr(num_t.num.clone());
        let f = |name: &str| format!("tl_{name}");
        Ok(Testlib {
            not: lib.function(&f("not"), &(bool() >> returning(bool())))?,
            char_succ: lib.function(&f("char_succ"), &(char() >> returning(char())))?,
            schar_neg: lib.function(&f("schar_neg"), &(schar() >> returning(schar())))?,
            uchar_compl: lib.function(&f("uchar_compl"), &(uchar() >> returning(uchar())))?,
            short_neg: lib.function(&f("short_neg"), &(short() >> returning(short())))?,
            ushort_compl: lib.function(&f("ushort_compl"), &(ushort() >> returning(ushort())))?,
            int_add: lib.function(&f("int_add"), &(int() >> int() >> returning(int())))?,
            uint_compl: lib.function(&f("uint_compl"), &(uint() >> returning(uint())))?,
            long_id: lib.function(&f("long_id"), &(long() >> returning(long())))?,
            ulong_id: lib.function(&f("ulong_id"), &(ulong() >> returning(ulong())))?,
            llong_neg: lib.function(&f("llong_neg"), &(llong() >> returning(llong())))?,
            ullong_compl: lib.function(&f("ullong_compl"), &(ullong() >> returning(ullong())))?,
            i8_neg: lib.function(&f("i8_neg"), &(int8_t() >> returning(int8_t())))?,
            i16_neg: lib.function(&f("i16_neg"), &(int16_t() >> returning(int16_t())))?,
            i32_neg: lib.function(&f("i32_neg"), &(int32_t() >> returning(int32_t())))?,
            i64_neg: lib.function(&f("i64_neg"), &(int64_t() >> returning(int64_t())))?,
            u8_compl: lib.function(&f("u8_compl"), &(uint8_t() >> returning(uint8_t())))?,
            u16_compl: lib.function(&f("u16_compl"), &(uint16_t() >> returning(uint16_t())))?,
            u32_compl: lib.function(&f("u32_compl"), &(uint32_t() >> returning(uint32_t())))?,
            u64_compl: lib.function(&f("u64_compl"), &(uint64_t() >> returning(uint64_t())))?,
            size_id: lib.function(&f("size_id"), &(size_t() >> returning(size_t())))?,
            ssize_id: lib.function(&f("ssize_id"), &(ssize_t() >> returning(ssize_t())))?,
            intptr_id: lib.function(&f("intptr_id"), &(intptr_t() >> returning(intptr_t())))?,
            uintptr_id: lib.function(&f("uintptr_id"), &(uintptr_t() >> returning(uintptr_t())))?,
            ptrdiff_id: lib.function(&f("ptrdiff_id"), &(ptrdiff_t() >> returning(ptrdiff_t())))?,
            float_mul: lib
                .function(&f("float_mul"), &(float() >> float() >> returning(float())))?,
            double_fma: lib.function(
                &f("double_fma"),
                &(double() >> double() >> double() >> returning(double())),
            )?,
            mixed: lib.function(
                &f("mixed"),
                &(int8_t()
                    >> uint16_t()
                    >> int32_t()
                    >> int64_t()
                    >> float()
                    >> double()
                    >> uint8_t()
                    >> long()
                    >> float()
                    >> ullong()
                    >> returning(double())),
            )?,
            sizeof_long: lib.function(&f("sizeof_long"), &(void() >> returning(size_t())))?,
            strlen: lib.function(&f("strlen"), &(string() >> returning(size_t())))?,
            greeting: lib.function(&f("greeting"), &(void() >> returning(string())))?,
            dup_upper: lib.function(
                &f("dup_upper"),
                &(string() >> int() >> returning(str_owned_opt(ptr_opt(char())))),
            )?,
            free_str: lib.function(
                &f("free_str"),
                &(str_owned(ptr(char())) >> returning(void())),
            )?,
            live_strs: lib.function(&f("live_strs"), &(void() >> returning(int())))?,
            name_or_null: lib.function(&f("name_or_null"), &(int() >> returning(string_opt())))?,
            name_strict: lib.function(&f("name_or_null"), &(int() >> returning(string())))?,
            invalid_utf8: lib.function(&f("invalid_utf8"), &(void() >> returning(string())))?,
            invalid_utf8_ptr: lib
                .function(&f("invalid_utf8"), &(void() >> returning(ptr(char()))))?,
            checksum: lib.function(&f("checksum"), &(buffer() >> returning(uint32_t())))?,
            checksum_short: lib.function(
                &f("checksum_short"),
                &(buffer().len_type(&ushort()) >> returning(uint32_t())),
            )?,
            upper_into: lib.function(&f("upper_into"), &(buffer_mut() >> returning(void())))?,
            divmod: lib.function(
                &f("divmod"),
                &(int() >> int() >> ptr(int()) >> ptr(int()) >> returning_errno(int())),
            )?,
            edom: lib.function(&f("edom"), &(void() >> returning(int())))?,
            fail_with: lib.function(&f("fail_with"), &(int() >> returning_errno(int())))?,
            fail_with_no_errno: lib.function(&f("fail_with"), &(int() >> returning(int())))?,
            record_fill: lib.function(
                &f("record_fill"),
                &(rec() >> typedef(int32_t(), "tl_id_t") >> returning(void())),
            )?,
            record_sum: lib.function(&f("record_sum"), &(rec() >> returning(int64_t())))?,
            record_layout: lib.function(&f("record_layout"), &(int() >> returning(size_t())))?,
            inner_layout: lib.function(&f("inner_layout"), &(int() >> returning(size_t())))?,
            num_layout: lib.function(&f("num_layout"), &(int() >> returning(size_t())))?,
            num_set_float: lib.function(
                &f("num_set_float"),
                &(num() >> float() >> returning(void())),
            )?,
            num_int: lib.function(&f("num_int"), &(num() >> returning(int32_t())))?,
            sum_ints: lib.function(
                &f("sum_ints"),
                &(ptr(int()) >> size_t() >> returning(int())),
            )?,
            find: lib.function(
                &f("find"),
                &(ptr(int()) >> size_t() >> int() >> returning(ptr_opt(int()))),
            )?,
            counter: lib.global(&f("counter"), &int())?,
            bump: lib.function(&f("bump"), &(void() >> returning(int())))?,
            color_next: lib.function(&f("color_next"), &(color() >> returning(color())))?,
            add_as_color: lib.function(&f("int_add"), &(int() >> int() >> returning(color())))?,
            is_even: lib.function(&f("is_even"), &(int() >> returning(int_bool())))?,
            apply: lib.function(&f("apply"), &(int_fn.clone() >> int() >> returning(int())))?,
            apply_float: lib.function(
                &f("apply_float"),
                &(double_float_fn.clone() >> double() >> returning(double())),
            )?,
            store_int_fn: lib
                .function(&f("store_int_fn"), &(int_fn.clone() >> returning(void())))?,
            call_stored: lib.function(&f("call_stored"), &(int() >> returning(int())))?,
            fold: lib.function(
                &f("fold"),
                &(step_fn.clone() >> ptr(int()) >> size_t() >> int() >> returning(int())),
            )?,
            each_word: lib.function(
                &f("each_word"),
                &(string() >> word_fn.clone() >> ptr_opt(void()) >> returning(void())),
            )?,
            visit: lib.function(
                &f("visit"),
                &(visit_fn.clone() >> ptr_opt(void()) >> returning(void())),
            )?,
            each_word_ref: lib.function(
                &f("each_word"),
                &(string() >> word_ref_fn.clone() >> ptr_opt(void()) >> returning(void())),
            )?,
            visit_ref: lib.function(
                &f("visit"),
                &(visit_ref_fn.clone() >> ptr_opt(void()) >> returning(void())),
            )?,
            count: lib.function(
                &f("count"),
                &(int()
                    >> count_fn.clone()
                    >> int_fn.clone()
                    >> int()
                    >> ptr_opt(void())
                    >> returning(int())),
            )?,
            get_doubler: lib.function(&f("get_doubler"), &(void() >> returning(int_fn.clone())))?,
            get_stored: lib.function(
                &f("get_stored"),
                &(void() >> returning(funptr_opt(int() >> returning(int())))),
            )?,
            call_fnptr: lib.function(
                &f("call_fnptr"),
                &(uintptr_t() >> int() >> returning(int())),
            )?,
            sjlj: lib.function(&f("sjlj"), &(int() >> int() >> returning(int())))?,
            sjlj_guarded: lib.function(
                &f("sjlj_guarded"),
                &(int_fn.clone() >> int() >> returning(int())),
            )?,
            sjlj_raise: lib.function(&f("sjlj_raise"), &(int() >> returning(void())))?,
            sjlj_stale: lib.function(&f("sjlj_stale"), &(void() >> returning(void())))?,
            wasi_gaps: lib.function(&f("wasi_gaps"), &(void() >> returning(int())))?,
            read_file: lib.function(
                &f("read_file"),
                &(const_(string()) >> buffer_mut() >> returning(long())),
            )?,
            write_file: lib.function(
                &f("write_file"),
                &(const_(string()) >> const_(string()) >> returning(int())),
            )?,
            blue: lib.constant("TL_BLUE", &int())?,
            scale: lib.constant("TL_SCALE", &int())?,
            record_size: lib.constant("TL_RECORD_SIZE", &size_t())?,
            record_storage: lib.opaque_sized::<Record>("struct tl_record")?,
            int_fn,
            step_fn,
            double_float_fn,
            word_fn,
            visit_fn,
            word_ref_fn,
            visit_ref_fn,
            count_fn,
            record_t,
            num_t,
            lib: lib.clone(),
        })
    }
}
