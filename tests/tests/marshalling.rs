//! Random values through every type description, Dynamic against Sandbox,
//! Process and Stubs: the sandbox's ILP32 marshalling must give the same
//! results as native calls, or a range error where a value cannot fit 32
//! bits; the worker process and the generated stubs (LP64, like the host)
//! must give exactly the same results.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use sandlink::types::*;
use sandlink::{Dynamic, Error, Foreign, Process, Result, Sandbox, Stubs};
use sandlink_testlib::RecordType;

fn libs() -> (Dynamic, Sandbox, Process, Stubs) {
    // SAFETY: testlib is our own library.
    let d = unsafe { Dynamic::open(sandlink_clibs::TESTLIB_SO) }.unwrap_or_else(|e| panic!("{e}"));
    let s = Sandbox::open(sandlink_clibs::TESTLIB_WASM).unwrap_or_else(|e| panic!("{e}"));
    let p = Process::open(sandlink_clibs::TESTLIB_SO).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: as above; the stubs were checked against testlib.h.
    let st = unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) }
        .unwrap_or_else(|e| panic!("{e}"));
    (d, s, p, st)
}

thread_local! {
    static LIBS: (Dynamic, Sandbox, Process, Stubs) = libs();
}

/// Calls `name` with `v` on both strategies; results must match, except that
/// the sandbox may refuse a value that does not fit ILP32.
fn same<T, F>(
    name: &str,
    ty: &FnType<(T,), T>,
    v: T::In<'static>,
    fits_ilp32: bool,
    eq: F,
) -> Result<()>
where
    T: Shadow,
    T::In<'static>: Clone,
    T::Out: std::fmt::Debug,
    F: Fn(&T::Out, &T::Out) -> bool,
{
    LIBS.with(|(d, s, p, st)| {
        let native = d.function(name, ty)?.call((v.clone(),))?;
        let worker = p.function(name, ty)?.call((v.clone(),))?;
        assert!(
            eq(&native, &worker),
            "{name}: native {native:?} vs process {worker:?}"
        );
        let stubbed = st.function(name, ty)?.call((v.clone(),))?;
        assert!(
            eq(&native, &stubbed),
            "{name}: native {native:?} vs stubs {stubbed:?}"
        );
        let sandboxed = s.function(name, ty)?.call((v,));
        match sandboxed {
            Ok(out) => {
                assert!(
                    fits_ilp32,
                    "{name}: the sandbox accepted a value that cannot fit ILP32"
                );
                assert!(
                    eq(&native, &out),
                    "{name}: native {native:?} vs sandbox {out:?}"
                );
            }
            Err(e) => assert!(
                !fits_ilp32 && matches!(&e, Error::OutOfRange { .. }),
                "{name}: {e}"
            ),
        }
        Ok(())
    })
}

fn eq<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

proptest! {
    #![proptest_config(Config {
        cases: 128,
        rng_seed: RngSeed::Fixed(0x3a75_11a1),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn integers(a: i8, b: u8, c: i16, d: u16, e: i32, f: u32, g: i64, h: u64) {
        let r = (|| -> Result<()> {
            same("tl_schar_neg", &(schar() >> returning(schar())), a, true, eq)?;
            same("tl_char_succ", &(char() >> returning(char())), a, true, eq)?;
            same("tl_uchar_compl", &(uchar() >> returning(uchar())), b, true, eq)?;
            same("tl_i8_neg", &(int8_t() >> returning(int8_t())), a, true, eq)?;
            same("tl_u8_compl", &(uint8_t() >> returning(uint8_t())), b, true, eq)?;
            same("tl_short_neg", &(short() >> returning(short())), c, true, eq)?;
            same("tl_i16_neg", &(int16_t() >> returning(int16_t())), c, true, eq)?;
            same("tl_ushort_compl", &(ushort() >> returning(ushort())), d, true, eq)?;
            same("tl_u16_compl", &(uint16_t() >> returning(uint16_t())), d, true, eq)?;
            same("tl_i32_neg", &(int32_t() >> returning(int32_t())), e, true, eq)?;
            same("tl_uint_compl", &(uint() >> returning(uint())), f, true, eq)?;
            same("tl_u32_compl", &(uint32_t() >> returning(uint32_t())), f, true, eq)?;
            same("tl_llong_neg", &(llong() >> returning(llong())), g, true, eq)?;
            same("tl_i64_neg", &(int64_t() >> returning(int64_t())), g, true, eq)?;
            same("tl_ullong_compl", &(ullong() >> returning(ullong())), h, true, eq)?;
            same("tl_u64_compl", &(uint64_t() >> returning(uint64_t())), h, true, eq)?;
            let g_fits = i32::try_from(g).is_ok();
            let h_fits = u32::try_from(h).is_ok();
            same("tl_long_id", &(long() >> returning(long())), g, g_fits, eq)?;
            same("tl_ssize_id", &(ssize_t() >> returning(ssize_t())), g, g_fits, eq)?;
            same("tl_intptr_id", &(intptr_t() >> returning(intptr_t())), g, g_fits, eq)?;
            same("tl_ptrdiff_id", &(ptrdiff_t() >> returning(ptrdiff_t())), g, g_fits, eq)?;
            same("tl_ulong_id", &(ulong() >> returning(ulong())), h, h_fits, eq)?;
            same("tl_size_id", &(size_t() >> returning(size_t())), h, h_fits, eq)?;
            same("tl_uintptr_id", &(uintptr_t() >> returning(uintptr_t())), h, h_fits, eq)?;
            // Small values always fit.
            same("tl_long_id", &(long() >> returning(long())), i64::from(e), true, eq)?;
            same("tl_size_id", &(size_t() >> returning(size_t())), u64::from(f), true, eq)?;
            Ok(())
        })();
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn floats_bool_and_views(a in any::<u32>(), b in any::<u64>(), t: bool, n in -1000i32..1000) {
        let r = (|| -> Result<()> {
            let bits_eq32 = |x: &f32, y: &f32| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
            let bits_eq64 = |x: &f64, y: &f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
            LIBS.with(|(d, s, p, st)| -> Result<()> {
                let ty = float() >> float() >> returning(float());
                let x = f32::from_bits(a);
                let nd = d.function("tl_float_mul", &ty)?.call((x, 1.5))?;
                let ns = s.function("tl_float_mul", &ty)?.call((x, 1.5))?;
                let np = p.function("tl_float_mul", &ty)?.call((x, 1.5))?;
                assert!(bits_eq32(&nd, &ns), "float {x}: {nd} vs {ns}");
                assert!(bits_eq32(&nd, &np), "float {x}: {nd} vs process {np}");
                let nt = st.function("tl_float_mul", &ty)?.call((x, 1.5))?;
                assert!(bits_eq32(&nd, &nt), "float {x}: {nd} vs stubs {nt}");
                let ty = double() >> double() >> double() >> returning(double());
                let y = f64::from_bits(b);
                let nd = d.function("tl_double_fma", &ty)?.call((y, 0.5, 1.0))?;
                let ns = s.function("tl_double_fma", &ty)?.call((y, 0.5, 1.0))?;
                let np = p.function("tl_double_fma", &ty)?.call((y, 0.5, 1.0))?;
                assert!(bits_eq64(&nd, &ns), "double {y}: {nd} vs {ns}");
                assert!(bits_eq64(&nd, &np), "double {y}: {nd} vs process {np}");
                let nt = st.function("tl_double_fma", &ty)?.call((y, 0.5, 1.0))?;
                assert!(bits_eq64(&nd, &nt), "double {y}: {nd} vs stubs {nt}");
                Ok(())
            })?;
            same("tl_not", &(bool() >> returning(bool())), t, true, eq)?;
            let even = || view(int(), |i| Ok(i != 0), |b| i32::from(*b));
            LIBS.with(|(d, s, p, st)| -> Result<()> {
                let ty = int() >> returning(even());
                let native = d.function("tl_is_even", &ty)?.call((n,))?;
                assert_eq!(native, s.function("tl_is_even", &ty)?.call((n,))?);
                assert_eq!(native, p.function("tl_is_even", &ty)?.call((n,))?);
                assert_eq!(native, st.function("tl_is_even", &ty)?.call((n,))?);
                Ok(())
            })
        })();
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn strings_and_buffers(text in "[^\u{0}]{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let r = LIBS.with(|(d, s, p, st)| -> Result<()> {
            let strlen = string() >> returning(size_t());
            let native = d.function("tl_strlen", &strlen)?.call((&text,))?;
            assert_eq!(native, s.function("tl_strlen", &strlen)?.call((&text,))?);
            assert_eq!(native, p.function("tl_strlen", &strlen)?.call((&text,))?);
            assert_eq!(native, st.function("tl_strlen", &strlen)?.call((&text,))?);
            let checksum = buffer() >> returning(uint32_t());
            let native = d.function("tl_checksum", &checksum)?.call((&bytes,))?;
            assert_eq!(native, s.function("tl_checksum", &checksum)?.call((&bytes,))?);
            assert_eq!(native, p.function("tl_checksum", &checksum)?.call((&bytes,))?);
            assert_eq!(native, st.function("tl_checksum", &checksum)?.call((&bytes,))?);
            let upper = buffer_mut() >> returning(void());
            let (mut a, mut b, mut c) = (bytes.clone(), bytes.clone(), bytes.clone());
            let mut e = bytes.clone();
            d.function("tl_upper_into", &upper)?.call((&mut a,))?;
            s.function("tl_upper_into", &upper)?.call((&mut b,))?;
            p.function("tl_upper_into", &upper)?.call((&mut c,))?;
            st.function("tl_upper_into", &upper)?.call((&mut e,))?;
            assert_eq!(a, b);
            assert_eq!(a, c);
            assert_eq!(a, e);
            Ok(())
        });
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn struct_fields_round_trip(c: i8, id: i32, tag: i8, weight in -1e6f64..1e6, sh: i16, big: i64, l: i32) {
        let r = LIBS.with(|(d, s, p, st)| -> Result<()> {
            let native = record_sum(d, c, id, tag, weight, sh, big, l)?;
            assert_eq!(native, record_sum(s, c, id, tag, weight, sh, big, l)?);
            assert_eq!(native, record_sum(p, c, id, tag, weight, sh, big, l)?);
            assert_eq!(native, record_sum(st, c, id, tag, weight, sh, big, l)?);
            Ok(())
        });
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}

/// Writes every field of a `struct tl_record` from Rust under the library's
/// layout, reads each back, and lets C sum them.
#[allow(clippy::too_many_arguments)]
fn record_sum<L: Foreign>(
    lib: &L,
    c: i8,
    id: i32,
    tag: i8,
    weight: f64,
    sh: i16,
    big: i64,
    l: i32,
) -> Result<i64> {
    let t = RecordType::new()?;
    let sum = lib.function(
        "tl_record_sum",
        &(ptr(t.record.clone()) >> returning(int64_t())),
    )?;
    let rec_mem = lib.alloc(&t.record, 1)?;
    let rec = rec_mem.ptr();
    let inner = lib.field_ptr(rec, &t.inner_f)?;
    lib.write_field(rec, &t.c, c)?;
    lib.write_field(rec, &t.id, id)?;
    lib.write_field(inner, &t.tag, tag)?;
    lib.write_field(inner, &t.weight, weight)?;
    lib.write_field(rec, &t.s, sh)?;
    lib.write_field(rec, &t.big, big)?;
    lib.write_field(rec, &t.l, i64::from(l))?;
    assert_eq!(lib.read_field(rec, &t.c)?, c);
    assert_eq!(lib.read_field(rec, &t.id)?, id);
    assert_eq!(lib.read_field(inner, &t.tag)?, tag);
    assert_eq!(
        lib.read_field(inner, &t.weight)?.to_bits(),
        weight.to_bits()
    );
    assert_eq!(lib.read_field(rec, &t.s)?, sh);
    assert_eq!(lib.read_field(rec, &t.big)?, big);
    assert_eq!(lib.read_field(rec, &t.l)?, i64::from(l));
    let out = sum.call((rec,))?;
    rec_mem.free()?;
    Ok(out)
}
