//! The conformance suite: every check is generic over the strategy and binds
//! `testlib` through the value-level API, so each strategy runs the same code.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sandlink::types::*;
use sandlink::{Error, Foreign, Result};
pub use sandlink_testlib::{color, Color, Inner, Num, NumType, Record, RecordType, Testlib};

/// Fails the check with a message when `r` is not an error matching `pred`.
fn expect_err<T: std::fmt::Debug>(r: Result<T>, what: &str, pred: impl Fn(&Error) -> bool) {
    match r {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => assert!(pred(&e), "{what}: unexpected error: {e}"),
    }
}

/// Every scalar type at its limits and in the middle, both directions.
pub fn scalars_at_limits<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let not = &t.not;
    assert!(not.call((false,))?);
    assert!(!not.call((true,))?);

    let f = &t.char_succ;
    assert_eq!(f.call((b'a' as i8,))?, b'b' as i8);
    assert_eq!(f.call((i8::MAX,))?, i8::MIN);
    let f = &t.schar_neg;
    assert_eq!(f.call((-128,))?, -128);
    assert_eq!(f.call((127,))?, -127);
    let f = &t.uchar_compl;
    assert_eq!(f.call((0,))?, 255);
    assert_eq!(f.call((0x5a,))?, 0xa5);

    let f = &t.short_neg;
    assert_eq!(f.call((i16::MAX,))?, -i16::MAX);
    assert_eq!(f.call((-300,))?, 300);
    let f = &t.ushort_compl;
    assert_eq!(f.call((u16::MAX,))?, 0);
    assert_eq!(f.call((0x1234,))?, 0xedcb);

    let f = &t.int_add;
    assert_eq!(f.call((i32::MAX, 1))?, i32::MIN);
    assert_eq!(f.call((-7, 3))?, -4);
    let f = &t.uint_compl;
    assert_eq!(f.call((u32::MAX,))?, 0);
    assert_eq!(f.call((0xdead_beef,))?, !0xdead_beef);

    let f = &t.llong_neg;
    assert_eq!(f.call((i64::MAX,))?, -i64::MAX);
    assert_eq!(f.call((i64::MIN,))?, i64::MIN);
    let f = &t.ullong_compl;
    assert_eq!(f.call((0,))?, u64::MAX);

    let f = &t.i8_neg;
    assert_eq!(f.call((-5,))?, 5);
    let f = &t.i16_neg;
    assert_eq!(f.call((i16::MIN + 1,))?, i16::MAX);
    let f = &t.i32_neg;
    assert_eq!(f.call((i32::MIN,))?, i32::MIN);
    assert_eq!(f.call((123_456,))?, -123_456);
    let f = &t.i64_neg;
    assert_eq!(f.call((1 << 40,))?, -(1 << 40));
    let f = &t.u8_compl;
    assert_eq!(f.call((1,))?, 254);
    let f = &t.u16_compl;
    assert_eq!(f.call((1,))?, 65534);
    let f = &t.u32_compl;
    assert_eq!(f.call((1,))?, u32::MAX - 1);
    let f = &t.u64_compl;
    assert_eq!(f.call((1,))?, u64::MAX - 1);

    let f = &t.ssize_id;
    assert_eq!(f.call((-1,))?, -1);
    assert_eq!(f.call((i32::MIN as i64,))?, i32::MIN as i64);
    let f = &t.intptr_id;
    assert_eq!(f.call((-42,))?, -42);
    let f = &t.uintptr_id;
    assert_eq!(f.call((u32::MAX as u64,))?, u32::MAX as u64);
    let f = &t.ptrdiff_id;
    assert_eq!(f.call((-9,))?, -9);
    Ok(())
}

/// `long` and `size_t` follow the library's data model: the full 64-bit
/// range under LP64, a range-checked error (never truncation) under ILP32.
pub fn long_and_size_follow_model<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let model = lib.model();
    let sizeof_long = &t.sizeof_long;
    assert_eq!(sizeof_long.call(())?, model.word());

    let long_id = &t.long_id;
    let ulong_id = &t.ulong_id;
    let size_id = &t.size_id;
    assert_eq!(long_id.call((-5,))?, -5);
    assert_eq!(long_id.call((i32::MIN as i64,))?, i32::MIN as i64);
    assert_eq!(ulong_id.call((u32::MAX as u64,))?, u32::MAX as u64);
    assert_eq!(size_id.call((u32::MAX as u64,))?, u32::MAX as u64);
    let big_long = long_id.call((i64::MAX,));
    let big_size = size_id.call((1 << 40,));
    match model {
        DataModel::Lp64 => {
            assert_eq!(big_long?, i64::MAX);
            assert_eq!(big_size?, 1 << 40);
        }
        DataModel::Ilp32 => {
            let out_of_range = |e: &Error| matches!(e, Error::OutOfRange { .. });
            expect_err(big_long, "long i64::MAX under ILP32", out_of_range);
            expect_err(big_size, "size_t 2^40 under ILP32", out_of_range);
            expect_err(
                long_id.call((i32::MIN as i64 - 1,)),
                "long below i32",
                out_of_range,
            );
        }
    }
    Ok(())
}

/// `float`, `double`, and ten mixed arguments (more than fit in registers).
pub fn floats_and_many_arguments<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let mul = &t.float_mul;
    assert_eq!(mul.call((1.5, -4.0))?, -6.0);
    assert_eq!(mul.call((f32::MAX, 2.0))?, f32::INFINITY);
    let fma = &t.double_fma;
    assert_eq!(fma.call((1e300, 10.0, -1e301))?, 0.0);
    assert_eq!(fma.call((0.1, 3.0, 0.25))?, 0.1 * 3.0 + 0.25);

    let mixed = &t.mixed;
    let got = mixed.call((-1, 2, -3, 4, 0.5, 0.25, 200, -6, 1.5, 7))?;
    let want = -1.0
        + 2.0 * 2.0
        + -3.0 * 3.0
        + 4.0 * 4.0
        + 0.5 * 5.0
        + 0.25 * 6.0
        + 200.0 * 7.0
        + -6.0 * 8.0
        + 1.5 * 9.0
        + 7.0 * 10.0;
    assert_eq!(got, want);
    Ok(())
}

/// Strings in and out: UTF-8, NULL handling, interior NUL, invalid UTF-8.
pub fn strings<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let strlen = &t.strlen;
    assert_eq!(strlen.call(("héllo",))?, 6);
    assert_eq!(strlen.call(("",))?, 0);
    let long = "x".repeat(100_000);
    assert_eq!(strlen.call((&long,))?, 100_000);
    expect_err(strlen.call(("a\0b",)), "interior NUL", |e| {
        matches!(e, Error::InteriorNul { index: 1, .. })
    });

    let greeting = &t.greeting;
    assert_eq!(greeting.call(())?, "héllo from testlib");

    let name = &t.name_or_null;
    assert_eq!(name.call((1,))?.as_deref(), Some("one"));
    assert_eq!(name.call((5,))?, None);
    let name_strict = &t.name_strict;
    assert_eq!(name_strict.call((2,))?, "two");
    expect_err(name_strict.call((-1,)), "NULL as string", |e| {
        matches!(e, Error::NullPointer { .. })
    });

    let bad = &t.invalid_utf8;
    expect_err(bad.call(()), "invalid UTF-8", |e| {
        matches!(e, Error::InvalidUtf8 { .. })
    });
    // The bytes are still reachable, as bytes, through a pointer.
    let bad_ptr = &t.invalid_utf8_ptr;
    let p = bad_ptr.call(())?;
    // SAFETY: `tl_invalid_utf8` returns a static string of 15 bytes.
    assert_eq!(
        unsafe { lib.read_bytes_unchecked(p, 8) }?,
        b"bad \xff\xfe b"
    );

    // Strings and bytes appended to reused buffers, borrowed by range; a
    // failed read leaves the buffer as it was.
    let s = lib.alloc_string("héllo")?;
    let mut text = String::from("x");
    // SAFETY: `alloc_string` made a NUL-terminated string; it is alive.
    let r = unsafe { lib.read_string_into_unchecked(s.ptr(), &mut text) }?;
    assert_eq!((&text[r.clone()], r.start), ("héllo", 1));
    // SAFETY: as above.
    let r = unsafe { lib.read_string_into_unchecked(s.ptr(), &mut text) }?;
    assert_eq!((&text[r], text.as_str()), ("héllo", "xhéllohéllo"));
    // SAFETY: `tl_invalid_utf8` returns a static NUL-terminated string.
    let bad = unsafe { lib.read_string_into_unchecked(p, &mut text) };
    expect_err(bad, "invalid UTF-8 into a buffer", |e| {
        matches!(e, Error::InvalidUtf8 { .. })
    });
    assert_eq!(text, "xhéllohéllo");
    let mut bytes = vec![1u8];
    // SAFETY: as above: at least 8 bytes.
    let r = unsafe { lib.read_bytes_into_unchecked(p, 4, &mut bytes) }?;
    assert_eq!(
        (&bytes[r], bytes.as_slice()),
        (&b"bad "[..], &b"\x01bad "[..])
    );
    Ok(())
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

/// `(const char *, size_t)` buffers in, and a mutable buffer copied back.
pub fn buffers<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let checksum = &t.checksum;
    for data in [&b""[..], b"abc", b"with\0nul\0bytes", &[0xffu8; 4096][..]] {
        assert_eq!(checksum.call((data,))?, fnv1a(data), "checksum of {data:?}");
    }
    // A pair whose length is the library's own type (`unsigned short`).
    let short = &t.checksum_short;
    let big = vec![7u8; 65_536];
    assert_eq!(short.call((&big[..65_535],))?, fnv1a(&big[..65_535]));
    expect_err(
        short.call((&big[..],)),
        "a slice too long for the length type",
        |e| matches!(e, Error::OutOfRange { c_type, .. } if c_type == "unsigned short"),
    );
    let upper = &t.upper_into;
    let mut buf = *b"hello, world 42";
    upper.call((&mut buf[..],))?;
    assert_eq!(&buf, b"HELLO, WORLD 42");
    Ok(())
}

/// Strings the library allocates and the caller frees with the library's
/// function: read, then freed exactly once, even when the read fails.
pub fn owned_strings<L: Foreign>(lib: &L) -> Result<()> {
    let _one = owned_strings_user();
    let t = Testlib::bind(lib)?;
    let live = || t.live_strs.call(());
    let before = live()?;
    let s = t.dup_upper.call(("hello, world", 0))?.expect("a copy");
    assert_eq!(live()?, before + 1);
    assert_eq!(lib.read_str(s.borrow())?, "HELLO, WORLD");
    assert_eq!(lib.take_str(s, &t.free_str)?, "HELLO, WORLD");
    assert_eq!(live()?, before, "take_str freed it");
    assert!(t.dup_upper.call(("", 0))?.is_none(), "NULL is None");
    // Not UTF-8: the read fails, and the string is freed all the same.
    let bad = t.dup_upper.call(("abc", 1))?.expect("a copy");
    expect_err(lib.take_str(bad, &t.free_str), "invalid UTF-8", |e| {
        matches!(e, Error::InvalidUtf8 { .. })
    });
    assert_eq!(live()?, before, "freed after a failed read");
    Ok(())
}

/// Storage sized by the compiler: `struct tl_record` allocated with no
/// description of its fields, filled and summed by C, the same size as the
/// described struct; a type measured in one data model is refused in the
/// other.
pub fn opaque_sized_storage<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let (size, align) = t.record_storage.size_align(lib.model())?;
    assert_eq!(size, t.record_size);
    assert_eq!((size, align), t.record_t.record.size_align(lib.model())?);
    let mem = lib.alloc(&t.record_storage, 2)?;
    t.record_fill.call((mem.ptr(), 5))?;
    let described = lib.alloc(&t.record_t.record, 1)?;
    t.record_fill.call((described.ptr(), 5))?;
    assert_eq!(
        t.record_sum.call((mem.ptr(),))?,
        t.record_sum.call((described.ptr(),))?
    );
    let other = match lib.model() {
        sandlink::types::DataModel::Lp64 => sandlink::types::DataModel::Ilp32,
        sandlink::types::DataModel::Ilp32 => sandlink::types::DataModel::Lp64,
    };
    expect_err(
        t.record_storage.size_align(other),
        "a size from the other data model",
        |e| matches!(e, Error::Layout { .. }),
    );
    Ok(())
}

/// setjmp/longjmp inside the library: a longjmp out of nested frames, with
/// 0 turned into 1, and a guarded callback that returns normally. The
/// library stays usable after each.
pub fn setjmp_longjmp<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    // setjmp returned twice: 1000 × 2, plus the value longjmp passed.
    assert_eq!(t.sjlj.call((0, 5))?, 2005);
    assert_eq!(t.sjlj.call((50, 42))?, 2042);
    assert_eq!(
        t.sjlj.call((3, 0))?,
        2001,
        "longjmp(env, 0) makes setjmp return 1"
    );
    let triple = lib.callback(&t.int_fn, |(x,)| Ok(x * 3))?;
    assert_eq!(t.sjlj_guarded.call((&triple, 7))?, 21);
    t.sjlj_raise.call((9,))?; // no guard running: returns
    for i in 0..100 {
        assert_eq!(t.sjlj.call((i % 7, i))?, 2000 + i.max(1));
    }
    assert_eq!(t.int_add.call((2, 3))?, 5);
    Ok(())
}

/// Out-parameters through allocated memory, and `errno` capture.
pub fn out_params_and_errno<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let divmod = &t.divmod;
    let q_mem = lib.alloc(&int(), 1)?;
    let q = q_mem.ptr();
    let r_mem = lib.alloc(&int(), 1)?;
    let r = r_mem.ptr();
    let (ret, _) = divmod.call_errno((17, 5, q, r))?;
    assert_eq!(ret, 0);
    assert_eq!(lib.read(&int(), q)?, 3);
    assert_eq!(lib.read(&int(), r)?, 2);
    let edom = t.edom.call(())?;
    let (ret, errno) = divmod.call_errno((-17, 0, q, r))?;
    assert_eq!((ret, errno), (-1, edom), "EDOM");
    q_mem.free()?;
    r_mem.free()?;

    let fail = &t.fail_with;
    assert_eq!(fail.call_errno((2,))?, (-1, 2));
    assert_eq!(fail.call_errno((84,))?, (-1, 84));
    let no_errno = &t.fail_with_no_errno;
    assert_eq!(no_errno.call((2,))?, -1);
    expect_err(no_errno.call_errno((2,)), "errno not bound", |e| {
        matches!(e, Error::Usage { function: Some(f), .. } if f.contains("fail_with"))
            && e.kind() == sandlink::ErrorKind::Misuse
    });
    Ok(())
}

/// Struct layouts computed from the field list match the C compiler's, for
/// the library's data model.
pub fn struct_layout_matches_c<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let r = &t.record_t;
    let model = lib.model();
    let rec_layout = &t.record_layout;
    let inner_layout = &t.inner_layout;
    let rl = r.record.layout(model)?;
    assert_eq!(rl.size, rec_layout.call((-1,))?, "sizeof(struct tl_record)");
    assert_eq!(
        rl.align,
        rec_layout.call((-2,))?,
        "alignof(struct tl_record)"
    );
    for (i, off) in rl.offsets.iter().enumerate() {
        assert_eq!(
            *off,
            rec_layout.call((i as i32,))?,
            "offset of tl_record field {i}"
        );
    }
    let il = r.inner.layout(model)?;
    assert_eq!(il.size, inner_layout.call((-1,))?);
    assert_eq!(il.align, inner_layout.call((-2,))?);
    assert_eq!(il.offsets[1], inner_layout.call((1,))?);
    assert_eq!(r.id.typ().c_name(), "tl_id_t");
    Ok(())
}

/// Fields written by C are read by Rust and vice versa, nested and padded.
pub fn struct_fields<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let r = &t.record_t;
    let fill = &t.record_fill;
    let sum = &t.record_sum;
    let rec_mem = lib.alloc(&r.record, 1)?;
    let rec = rec_mem.ptr();
    fill.call((rec, 7))?;
    assert_eq!(lib.read_field(rec, &r.c)?, b'R' as i8);
    assert_eq!(lib.read_field(rec, &r.id)?, 7);
    let inner = lib.field_ptr(rec, &r.inner_f)?;
    assert_eq!(lib.read_field(inner, &r.tag)?, b'i' as i8);
    assert_eq!(lib.read_field(inner, &r.weight)?, 17.5);
    assert_eq!(lib.read_field(rec, &r.s)?, -7);
    assert_eq!(lib.read_field(rec, &r.big)?, 7 * 1_000_000_007);
    let name: Vec<u8> = lib
        .read_field(rec, &r.name)?
        .iter()
        .map(|c| *c as u8)
        .collect();
    assert_eq!(name, b"record\0");
    assert_eq!(lib.read_field(rec, &r.l)?, -21);
    assert_eq!(
        lib.read_field(rec, &r.p)?.map(|p| p.addr()),
        Some(rec.addr())
    );

    // Rust writes, C reads.
    lib.write_field(rec, &r.c, 1)?;
    lib.write_field(rec, &r.id, -100)?;
    lib.write_field(inner, &r.tag, 2)?;
    lib.write_field(inner, &r.weight, 0.75)?;
    lib.write_field(rec, &r.s, 300)?;
    lib.write_field(rec, &r.big, -(1 << 40))?;
    lib.write_field(rec, &r.l, -1)?;
    lib.write_field(rec, &r.p, None)?;
    // SAFETY: `name` is a `char[7]` field of the live record, so its first
    // char starts 7 writable bytes.
    unsafe {
        let name_ptr = lib.field_ptr(rec, &r.name)?.cast::<i8>();
        lib.write_bytes_unchecked(name_ptr, b"abcdefg")?;
    }
    let name_sum: i64 = b"abcdefg"
        .iter()
        .enumerate()
        .map(|(k, c)| i64::from(*c) * (k as i64 + 1))
        .sum();
    let want = 1 - 100 + 2 + 7 + 300 - (1 << 40) - 1 + name_sum;
    assert_eq!(sum.call((rec,))?, want);
    rec_mem.free()?;
    Ok(())
}

/// A union: every field at offset 0, size and alignment from C.
pub fn unions<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let NumType {
        num,
        i,
        f,
        d,
        bytes,
    } = &t.num_t;
    let layout = &t.num_layout;
    let l = num.layout(lib.model())?;
    assert_eq!(l.size, layout.call((0,))?);
    assert_eq!(l.align, layout.call((1,))?);
    assert!(l.offsets.iter().all(|o| *o == 0));

    let set = &t.num_set_float;
    let get = &t.num_int;
    let p_mem = lib.alloc(num, 1)?;
    let p = p_mem.ptr();
    set.call((p, 1.5))?;
    assert_eq!(lib.read_field(p, i)?, 1.5f32.to_bits() as i32);
    assert_eq!(lib.read_field(p, f)?, 1.5);
    lib.write_field(p, d, 0.0)?;
    lib.write_field(p, i, 0x0102_0304)?;
    assert_eq!(get.call((p,))?, 0x0102_0304);
    assert_eq!(&lib.read_field(p, bytes)?[..4], &[4, 3, 2, 1]);
    p_mem.free()?;
    Ok(())
}

/// Arrays by pointer, element addressing, and a nullable returned pointer.
pub fn arrays_and_pointers<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let sum = &t.sum_ints;
    let find = &t.find;
    let xs = [5, -3, 12, 0, 7];
    let p_mem = lib.alloc(&int(), xs.len() as u64)?;
    let p = p_mem.ptr();
    for (k, x) in xs.iter().enumerate() {
        lib.write(&int(), p_mem.elem(k as u64)?, *x)?;
    }
    let want: i32 = xs.iter().enumerate().map(|(k, x)| x * (k as i32 + 1)).sum();
    assert_eq!(sum.call((p, xs.len() as u64))?, want);
    assert_eq!(find.call((p, 5, 12))?, Some(p_mem.elem(2)?));
    assert!(p_mem.elem(5).is_err(), "one past the block is refused");
    assert_eq!(find.call((p, 5, 99))?, None);
    let arr = array(5, int());
    // SAFETY: the block holds five `int`s, which is an `int[5]`.
    assert_eq!(lib.read(&arr, unsafe { p.cast() })?, xs.to_vec());
    p_mem.free()?;
    // An empty block still has one zeroed element behind its pointer (safe
    // code may read a `T` through any `Ptr<T>`), and indexes nothing.
    let empty = lib.alloc(&int(), 0)?;
    assert!(empty.is_empty() && empty.elem(0).is_err());
    assert_eq!(lib.read(&int(), empty.ptr())?, 0);
    Ok(())
}

/// A global variable, read and written from both sides.
pub fn globals<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let counter = t.counter;
    let bump = &t.bump;
    let before = lib.read(&int(), counter)?;
    assert_eq!(bump.call(())?, before + 1);
    assert_eq!(lib.read(&int(), counter)?, before + 1);
    lib.write(&int(), counter, 1000)?;
    assert_eq!(bump.call(())?, 1001);
    expect_err(
        lib.global("tl_no_such_global", &int()),
        "missing global",
        |e| matches!(e, Error::MissingSymbol { .. }),
    );
    Ok(())
}

/// Constants (`#define`s and enum values) come from the C compiler, for the
/// library's own data model.
pub fn constants<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    assert_eq!(t.blue, Color::Blue as i32);
    assert_eq!(t.scale, -3);
    let size = t.record_t.record.layout(lib.model())?.size;
    assert_eq!(t.record_size, size, "sizeof(struct tl_record)");
    assert_eq!(t.record_size, t.record_layout.call((-1,))?);
    expect_err(
        lib.constant("TL_NO_SUCH_CONSTANT", &int()),
        "undeclared constant",
        |e| matches!(e, Error::MissingSymbol { symbol, .. } if symbol == "TL_NO_SUCH_CONSTANT"),
    );
    Ok(())
}

/// Views: an `int` as a Rust enum and as a `bool`, with rejection.
pub fn views<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let next = &t.color_next;
    assert_eq!(next.call((Color::Red,))?, Color::Green);
    assert_eq!(next.call((Color::Blue,))?, Color::Red);
    let add_as_color = &t.add_as_color;
    assert_eq!(add_as_color.call((1, 1))?, Color::Blue);
    expect_err(
        add_as_color.call((5, 2)),
        "7 as color",
        |e| matches!(e, Error::InvalidValue { reason, .. } if reason.contains("7 is not a tl_color")),
    );
    let is_even = &t.is_even;
    assert!(is_even.call((10,))?);
    assert!(!is_even.call((-3,))?);
    Ok(())
}

/// A callback called once; `float`/`double` arguments in callbacks.
pub fn callback_once<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let int_fn = &t.int_fn;
    let apply = &t.apply;
    let triple = lib.callback(int_fn, |(x,)| Ok(x * 3))?;
    assert_eq!(apply.call((&triple, 5))?, 16);
    assert_eq!(apply.call((&triple, -5))?, -14);

    let fd = &t.double_float_fn;
    let apply_f = &t.apply_float;
    let cb = lib.callback(fd, |(d, f)| Ok(d + f64::from(f)))?;
    assert_eq!(apply_f.call((&cb, 3.0))?, (3.0 + 1.5) * 2.0);
    Ok(())
}

/// A callback called many times with state in the closure.
pub fn callback_many_times<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let step = &t.step_fn;
    let fold = &t.fold;
    let n = 1000u64;
    let xs_mem = lib.alloc(&int(), n)?;
    let xs = xs_mem.ptr();
    for k in 0..n {
        lib.write(&int(), xs_mem.elem(k)?, k as i32)?;
    }
    let calls = Arc::new(AtomicI32::new(0));
    let seen = calls.clone();
    let cb = lib.callback(step, move |(acc, x)| {
        seen.fetch_add(1, Ordering::Relaxed);
        Ok(acc.wrapping_mul(31).wrapping_add(x))
    })?;
    let want = (0..n as i32).fold(17i32, |acc, x| acc.wrapping_mul(31).wrapping_add(x));
    assert_eq!(fold.call((&cb, xs, n, 17))?, want);
    assert_eq!(calls.load(Ordering::Relaxed), n as i32);
    xs_mem.free()?;
    Ok(())
}

/// A callback that calls back into the library, which calls another callback.
pub fn callback_reentrant<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let int_fn = &t.int_fn;
    let apply = &t.apply;
    let inner = Arc::new(lib.callback(int_fn, |(x,)| Ok(x * 10))?);
    let (apply2, inner2) = (apply.clone(), inner.clone());
    let outer = lib.callback(int_fn, move |(x,)| {
        // C -> Rust -> C -> Rust: tl_apply(inner, x + 1) = (x + 1) * 10 + 1.
        apply2.call((&*inner2, x + 1))
    })?;
    // tl_apply(outer, 4) = outer(4) + 1 = ((4 + 1) * 10 + 1) + 1.
    assert_eq!(apply.call((&outer, 4))?, 52);

    // The same closure re-entered gives an error, not a panic or a deadlock.
    type IntCallback = sandlink::Callback<(i32,), i32>;
    let slot: Arc<OnceLock<IntCallback>> = Arc::new(OnceLock::new());
    let (apply3, slot2) = (apply.clone(), slot.clone());
    let selfish = lib.callback(int_fn, move |(x,)| match slot2.get() {
        Some(cb) if x < 3 => apply3.call((cb, x + 1)),
        _ => Ok(x),
    })?;
    let cb = slot.get_or_init(|| selfish);
    let r = apply.call((cb, 0));
    expect_err(r, "self re-entry", |e| matches!(e, Error::Callback { .. }));
    // The library is still usable afterwards.
    assert_eq!(apply.call((&inner, 1))?, 11);
    Ok(())
}

/// A callback whose closure drops the callback's own handle while C is
/// running it: the call completes, and nothing is freed under the running
/// closure (the strategy keeps what the running callback uses alive).
pub fn callback_dropped_while_running<L: Foreign>(lib: &L) -> Result<()> {
    let _one = stored_callback_user();
    let t = Testlib::bind(lib)?;
    type IntCallback = sandlink::Callback<(i32,), i32>;
    let int_fn = &t.int_fn;
    let store = &t.store_int_fn;
    let call_stored = &t.call_stored;
    let slot: Arc<Mutex<Option<IntCallback>>> = Arc::new(Mutex::new(None));
    let slot2 = slot.clone();
    // Big captured state, so that a use after free would read freed heap.
    let payload = vec![7u8; 1 << 16];
    let cb = lib.callback(int_fn, move |(x,)| {
        let own = lock(&slot2).take();
        drop(own);
        Ok(x * 2 + i32::from(payload[payload.len() - 1]))
    })?;
    store.call((&cb,))?;
    *lock(&slot) = Some(cb);
    // tl_call_stored(5) = f(5) + 1 = (10 + 7) + 1; f drops its own handle.
    assert_eq!(call_stored.call((5,))?, 18);
    assert!(lock(&slot).is_none(), "the closure did not drop its handle");
    // The library is still usable, with a new callback.
    let again = lib.callback(int_fn, |(x,)| Ok(x))?;
    store.call((&again,))?;
    assert_eq!(call_stored.call((1,))?, 2);
    Ok(())
}

/// The library keeps a callback (as expat keeps its handlers), the host drops
/// the handle, then calls a function that calls the kept address: all safe
/// code, so it must be defined behaviour on every strategy. C sees zero,
/// and the call fails with `Error::CallbackDropped` naming the address; the
/// library stays usable, and the address may serve a later callback. (On
/// Dynamic, Stubs and the Sandbox this test also runs under valgrind.)
pub fn callback_called_after_its_handle_dropped<L: Foreign>(lib: &L) -> Result<()> {
    let _one = stored_callback_user();
    let t = Testlib::bind(lib)?;
    let (int_fn, store, call_stored) = (&t.int_fn, &t.store_int_fn, &t.call_stored);
    // Captured state on the heap, so that a run of a freed closure would
    // read freed memory.
    let payload = vec![3i32; 1 << 12];
    let cb = lib.callback(int_fn, move |(x,)| Ok(x * payload[payload.len() - 1]))?;
    let addr = cb.addr();
    store.call((&cb,))?;
    // tl_call_stored(x) = f(x) + 1.
    assert_eq!(call_stored.call((5,))?, 16);
    drop(cb);
    for _ in 0..2 {
        expect_err(call_stored.call((5,)), "call of a dropped callback", |e| {
            matches!(e, Error::CallbackDropped { address, function: Some(f) }
                if *address == addr && f.contains("call_stored"))
                && e.kind() == sandlink::ErrorKind::Misuse
        });
    }
    // The error belonged to that call only.
    assert_eq!(t.int_add.call((2, 3))?, 5);
    let again = lib.callback(int_fn, |(x,)| Ok(x - 1))?;
    store.call((&again,))?;
    assert_eq!(call_stored.call((5,))?, 5);
    Ok(())
}

/// Callbacks that receive strings, buffers, user data and a NULL-terminated
/// `const char **`, as expat's handlers do.
pub fn callback_strings_and_arrays<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let word_fn = &t.word_fn;
    let each = &t.each_word;
    let words = Arc::new(Mutex::new(Vec::new()));
    let w2 = words.clone();
    let cb = lib.callback(word_fn, move |(_ud, bytes)| {
        lock(&w2).push(String::from_utf8_lossy(&bytes).into_owned());
        Ok(())
    })?;
    each.call(("  the quick  brown fox ", &cb, None))?;
    assert_eq!(*lock(&words), ["the", "quick", "brown", "fox"]);

    let visit_fn = &t.visit_fn;
    let visit = &t.visit;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s2, l2) = (seen.clone(), lib.clone());
    let ud_marker_mem = lib.alloc(&int(), 1)?;
    let ud_marker = ud_marker_mem.ptr();
    let cb = lib.callback(visit_fn, move |(ud, name, attrs)| {
        // SAFETY: `tl_visit` passes a NULL-terminated array of
        // NUL-terminated strings.
        let attrs = unsafe { l2.read_terminated_unchecked(&ptr_opt(char()), attrs, 1024) }?;
        let attrs = attrs
            .into_iter()
            // SAFETY: as above: each element is a string.
            .map(|a| unsafe { l2.read_string_unchecked(a) })
            .collect::<Result<Vec<_>>>()?;
        lock(&s2).push((ud.map(|p| p.addr()), name, attrs));
        Ok(())
    })?;
    visit.call((&cb, Some(ud_marker.to_void())))?;
    let ud = Some(ud_marker.addr());
    assert_eq!(
        *lock(&seen),
        [
            (
                ud,
                "first".to_string(),
                vec!["id".to_string(), "1".into(), "class".into(), "x".into()]
            ),
            (ud, "second".to_string(), vec![]),
        ]
    );
    ud_marker_mem.free()?;
    Ok(())
}

/// The same callbacks as `callback_strings_and_arrays`, with what C passes
/// borrowed (`bytes_ref_int`, `str_ref`, `str_array_ref`): nothing is copied
/// until the closure reads it, into buffers it reuses, and the reads are
/// safe on every strategy because the types say what the pointers are.
pub fn borrowed_strings_buffers_and_arrays<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let words = Arc::new(Mutex::new(Vec::new()));
    let (w2, l2) = (words.clone(), lib.clone());
    let mut buf = Vec::new();
    let cb = lib.callback(&t.word_ref_fn, move |(_ud, word)| {
        buf.clear();
        let r = l2.read_bytes_ref_into(word, &mut buf)?;
        assert_eq!(r, 0..word.len() as usize);
        lock(&w2).push(String::from_utf8_lossy(&buf).into_owned());
        Ok(())
    })?;
    t.each_word_ref
        .call(("  the quick  brown fox ", &cb, None))?;
    assert_eq!(*lock(&words), ["the", "quick", "brown", "fox"]);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s2, l2) = (seen.clone(), lib.clone());
    let mut name = String::new();
    let cb = lib.callback(&t.visit_ref_fn, move |(_ud, tag, attrs)| {
        name.clear();
        let r = l2.read_str_into(tag, &mut name)?;
        // Every string of the array appended to one buffer, by range.
        let mut text = String::new();
        let mut ranges = Vec::new();
        let n = l2.for_each_str(attrs, 64, |s| {
            ranges.push(l2.read_str_into(s, &mut text)?);
            Ok(())
        })?;
        assert_eq!(n as usize, ranges.len());
        // A limit below the array's length is an error, not a truncation.
        if n > 1 {
            let short = l2.for_each_str(attrs, 1, |_| Ok(()));
            assert!(
                matches!(&short, Err(Error::InvalidValue { reason, .. }) if reason.contains("terminator")),
                "{short:?}"
            );
        }
        let attrs: Vec<String> = ranges.into_iter().map(|r| text[r].to_string()).collect();
        lock(&s2).push((name[r].to_string(), attrs, l2.read_str(tag)?));
        Ok(())
    })?;
    t.visit_ref.call((&cb, None))?;
    assert_eq!(
        *lock(&seen),
        [
            (
                "first".to_string(),
                vec!["id".to_string(), "1".into(), "class".into(), "x".into()],
                "first".to_string()
            ),
            ("second".to_string(), vec![], "second".to_string()),
        ]
    );
    Ok(())
}

/// The tag and then every string of the array that `tl_visit` lends a
/// callback, each read out of the library (at most `limit` strings).
pub fn visit_strings<L: Foreign>(
    lib: &L,
    tag: StrRef,
    attrs: StrArrayRef,
    limit: u64,
) -> Result<Vec<String>> {
    let mut all = vec![lib.read_str(tag)?];
    lib.for_each_str(attrs, limit, |s| {
        all.push(lib.read_str(s)?);
        Ok(())
    })?;
    Ok(all)
}

/// Batched callbacks (`Foreign::callback_batched`): every call reaches the
/// closure, in order, before the next unbatched callback and before the call
/// into the library returns; the string each one lent is read as it was
/// when C made the call, though C rewrote its buffer since; byte pairs and
/// string arrays arrive whole; a closure may call into the library; an
/// error ends the call that made it and later recorded calls run nothing.
pub fn callback_batched<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l2, lib2) = (log.clone(), lib.clone());
    let mut text = String::new();
    let numbers = lib.callback_batched(&t.count_fn, move |(_ud, s)| {
        text.clear();
        lib2.read_str_into(s, &mut text)?;
        lock(&l2).push(text.clone());
        Ok(())
    })?;
    let l3 = log.clone();
    let every = lib.callback(&t.int_fn, move |(i,)| {
        lock(&l3).push(format!("g{i}"));
        Ok(i + 1)
    })?;
    // 5,000 calls are more than one batch holds on a strategy that
    // batches: deliveries when it fills, before each of `every`'s calls,
    // and at the return.
    let n = 5000;
    let sum = t.count.call((n, &numbers, &every, 1000, None))?;
    assert_eq!(sum, 1000 + 2000 + 3000 + 4000 + 5000);
    let mut want = Vec::new();
    for i in 0..n {
        want.push(i.to_string());
        if (i + 1) % 1000 == 0 {
            want.push(format!("g{i}"));
        }
    }
    assert_eq!(*lock(&log), want);

    // Byte pairs and string arrays, with a call into the library from the
    // closure (it sees the library after the calls recorded so far):
    // `tl_apply(f, x)` is `f(x) + 1`.
    let words = Arc::new(Mutex::new(Vec::new()));
    let (w2, lib2) = (words.clone(), lib.clone());
    let apply = t.apply.clone();
    let double = lib.callback(&t.int_fn, |(x,)| Ok(2 * x))?;
    let cb = lib.callback_batched(&t.word_ref_fn, move |(_ud, word)| {
        let mut buf = Vec::new();
        lib2.read_bytes_ref_into(word, &mut buf)?;
        let doubled = apply.call((&double, word.len() as i32))?;
        lock(&w2).push((String::from_utf8_lossy(&buf).into_owned(), doubled));
        Ok(())
    })?;
    t.each_word_ref
        .call(("  the quick  brown fox ", &cb, None))?;
    assert_eq!(
        *lock(&words),
        [
            ("the".to_string(), 7),
            ("quick".into(), 11),
            ("brown".into(), 11),
            ("fox".into(), 7)
        ]
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s2, lib2) = (seen.clone(), lib.clone());
    let cb = lib.callback_batched(&t.visit_ref_fn, move |(_ud, tag, attrs)| {
        lock(&s2).push(visit_strings(&lib2, tag, attrs, 64)?.join(" "));
        Ok(())
    })?;
    t.visit_ref.call((&cb, None))?;
    assert_eq!(*lock(&seen), ["first id 1 class x", "second"]);

    // An error ends the call; the calls recorded after it run nothing.
    let runs = Arc::new(AtomicI32::new(0));
    let (r2, lib2) = (runs.clone(), lib.clone());
    let failing = lib.callback_batched(&t.count_fn, move |(_ud, s)| {
        r2.fetch_add(1, Ordering::Relaxed);
        if lib2.read_str(s)? == "7" {
            return Err(Error::Unsupported("the closure refuses 7".into()));
        }
        Ok(())
    })?;
    expect_err(
        t.count.call((100, &failing, &every, 0, None)),
        "a failing batched callback",
        |e| matches!(e, Error::Callback { source, .. } if source.to_string().contains("refuses 7")),
    );
    assert_eq!(runs.load(Ordering::Relaxed), 8);
    // The library is usable afterwards, and the callback again.
    runs.store(0, Ordering::Relaxed);
    assert_eq!(t.count.call((5, &failing, &every, 0, None))?, 0);
    assert_eq!(runs.load(Ordering::Relaxed), 5);
    Ok(())
}

/// `Foreign::hold`, the single-owner path: calls on the holding thread work
/// (callbacks calling back in too), while a clone on another thread waits
/// for the hold to end and then calls as usual.
pub fn hold_for_one_thread<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let (started_tx, started) = std::sync::mpsc::channel();
    let (done_tx, done) = std::sync::mpsc::channel();
    let held = lib.hold();
    let mut acc = 0;
    for i in 0..100 {
        acc = t.int_add.call((acc, i))?;
    }
    assert_eq!(acc, 4950);
    // A callback that calls back in, under the hold.
    let add = t.int_add.clone();
    let cb = lib.callback(&t.step_fn, move |(a, x)| add.call((a, x)))?;
    let xs = lib.alloc(&int(), 3)?;
    for k in 0..3 {
        lib.write(&int(), xs.elem(k)?, 10 * (k as i32 + 1))?;
    }
    assert_eq!(t.fold.call((&cb, xs.ptr(), 3, 1))?, 61);
    // A clone on another thread waits for the hold.
    let other = std::thread::spawn({
        let add = t.int_add.clone();
        move || {
            let _ = started_tx.send(());
            let r = add.call((20, 22));
            let _ = done_tx.send(());
            r
        }
    });
    started
        .recv()
        .map_err(|e| Error::Unsupported(e.to_string()))?;
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        done.try_recv().is_err(),
        "a call on another thread ran while the library was held"
    );
    drop(held);
    let r = other
        .join()
        .map_err(|_| Error::Unsupported("the other thread panicked".into()))?;
    assert_eq!(r?, 42);
    Ok(())
}

/// A failing or panicking callback ends the C call with an error naming it;
/// the library stays usable.
pub fn callback_errors<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let step = &t.step_fn;
    let fold = &t.fold;
    let xs_mem = lib.alloc(&int(), 10)?;
    let xs = xs_mem.ptr();
    let calls = Arc::new(AtomicI32::new(0));
    let c2 = calls.clone();
    let failing = lib.callback(step, move |(_, x)| {
        c2.fetch_add(1, Ordering::Relaxed);
        if x == 0 {
            Err(Error::Unsupported("the closure refuses zero".into()))
        } else {
            Ok(x)
        }
    })?;
    expect_err(
        fold.call((&failing, xs, 10, 0)),
        "failing callback",
        |e| matches!(e, Error::Callback { source, .. } if source.to_string().contains("refuses zero")),
    );
    // After the first failure no more Rust code ran for that call.
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    let panicking = lib.callback(step, |(_, _)| -> Result<i32> { panic!("boom in callback") })?;
    expect_err(
        fold.call((&panicking, xs, 10, 0)),
        "panicking callback",
        |e| matches!(e, Error::CallbackPanicked { message, .. } if message.contains("boom")),
    );

    let ok = lib.callback(step, |(acc, _)| Ok(acc + 1))?;
    assert_eq!(fold.call((&ok, xs, 10, 0))?, 10);
    xs_mem.free()?;
    Ok(())
}

/// A function pointer returned by the library, passed back in.
pub fn returned_function_pointer<L: Foreign>(lib: &L) -> Result<()> {
    let t = Testlib::bind(lib)?;
    let code = t.get_doubler.call(())?;
    // As an integer, back to C.
    assert_eq!(t.call_fnptr.call((code.addr(), 21))?, 42);
    // Bound, and called like any function.
    let doubler = lib.function_at(&code)?;
    assert_eq!(doubler.call((21,))?, 42);
    assert_eq!(doubler.call((-7,))?, -14);
    assert_eq!(
        code,
        t.get_doubler.call(())?,
        "the same function, the same pointer"
    );
    // A callback's own pointer, handed back by C, is a function like any
    // other: calling it runs the closure.
    let _guard = stored_callback_user();
    let cb = lib.callback(&t.int_fn, |(x,)| Ok(x * 3))?;
    t.store_int_fn.call((&cb,))?;
    let stored = t.get_stored.call(())?.expect("a callback was stored");
    let via_c = lib.function_at(&stored)?;
    assert_eq!(via_c.call((5,))?, 15);
    // Once the handle is dropped, C's pointer runs a dead stub and the call
    // says so.
    drop(cb);
    expect_err(
        via_c.call((5,)),
        "dropped callback through its pointer",
        |e| matches!(e, Error::CallbackDropped { .. }),
    );
    Ok(())
}

/// Binding errors: a missing symbol, a struct passed by value.
pub fn binding_errors<L: Foreign>(lib: &L) -> Result<()> {
    expect_err(
        lib.function("tl_no_such_function", &(int() >> returning(int()))),
        "missing function",
        |e| matches!(e, Error::MissingSymbol { symbol, .. } if symbol == "tl_no_such_function"),
    );
    let t = RecordType::new()?;
    expect_err(
        lib.function("tl_record_sum", &(t.record.clone() >> returning(int64_t()))),
        "struct by value",
        |e| matches!(e, Error::NotPassable { c_type, .. } if c_type == "struct tl_record"),
    );
    let opaque = structure::<Record>("tl_record").opaque();
    expect_err(lib.alloc(&opaque, 1), "alloc of an incomplete type", |e| {
        matches!(e, Error::Layout { .. })
    });
    Ok(())
}

/// Generates one `#[test]` per conformance check, each opening the library
/// with `$open` (an expression giving an `L: Foreign`).
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr) => {
        $crate::conformance_tests!(@each $open;
            scalars_at_limits, long_and_size_follow_model, floats_and_many_arguments,
            strings, buffers, owned_strings, setjmp_longjmp, opaque_sized_storage,
            out_params_and_errno,
            struct_layout_matches_c, struct_fields,
            unions, arrays_and_pointers, globals, constants, views, callback_once,
            callback_many_times,
            callback_reentrant, callback_dropped_while_running,
            callback_called_after_its_handle_dropped, callback_strings_and_arrays,
            borrowed_strings_buffers_and_arrays,
            callback_batched, callback_errors, hold_for_one_thread,
            returned_function_pointer, binding_errors);
    };
    (@each $open:expr; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let lib = $open;
            if let Err(e) = $crate::conformance::$name(&lib) {
                panic!("{}: {e}", stringify!($name));
            }
        }
    )*};
}

/// Serialises the checks that use testlib's stored callback (`tl_stored`):
/// on Dynamic and Stubs every handle shares the one loaded copy of the
/// library, so two tests running at once would call each other's callbacks.
fn stored_callback_user() -> std::sync::MutexGuard<'static, ()> {
    static STORED: Mutex<()> = Mutex::new(());
    lock(&STORED)
}

/// Serialises the checks that count testlib's live strings (one loaded
/// copy of the library on Dynamic and Stubs).
fn owned_strings_user() -> std::sync::MutexGuard<'static, ()> {
    static LIVE: Mutex<()> = Mutex::new(());
    lock(&LIVE)
}

/// Locks a test's shared record (a panic elsewhere fails the test anyway).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
