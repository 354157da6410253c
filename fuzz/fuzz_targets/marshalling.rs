//! Fuzz target (c): values decoded from the input marshalled through every
//! scalar, string and buffer description, Dynamic against Sandbox (same
//! results, or a range error where a value cannot fit ILP32) and against
//! Stubs (the same results: both LP64).
#![no_main]

use std::cell::OnceCell;

use libfuzzer_sys::fuzz_target;
use sandlink::types::*;
use sandlink::{Dynamic, Error, Foreign, Sandbox, Stubs};

thread_local! {
    static LIBS: OnceCell<(Dynamic, Sandbox, Stubs)> = const { OnceCell::new() };
}

fn check<T: Shadow>(libs: &(Dynamic, Sandbox, Stubs), name: &str, ty: &FnType<(T,), T>, v: T::In<'_>, v2: T::In<'_>, v3: T::In<'_>, fits: bool)
where
    T::Out: PartialEq + std::fmt::Debug,
{
    let (d, s, st) = libs;
    let native = d.function(name, ty).expect("bind").call((v,)).expect("native call");
    let stubbed = st.function(name, ty).expect("bind").call((v3,)).expect("stubs call");
    assert_eq!(native, stubbed, "{name}: native vs stubs");
    match s.function(name, ty).expect("bind").call((v2,)) {
        Ok(out) => {
            assert!(fits, "{name}: accepted a value that cannot fit ILP32");
            assert_eq!(native, out, "{name}");
        }
        Err(e) => assert!(!fits && matches!(&e, Error::OutOfRange { .. }), "{name}: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    LIBS.with(|cell| {
        let libs = cell.get_or_init(|| {
            // SAFETY: testlib is our own library; its stubs were checked against testlib.h.
            (
                unsafe { Dynamic::open(sandlink_clibs::TESTLIB_SO) }.expect("open"),
                Sandbox::open(sandlink_clibs::TESTLIB_WASM).expect("open"),
                unsafe { Stubs::open(sandlink_clibs::testlib_stubs::stub_table()) }.expect("open"),
            )
        });
        let (d, s, st) = libs;
        let mut w = [0u8; 8];
        for (i, b) in data.iter().take(8).enumerate() {
            w[i] = *b;
        }
        let v = u64::from_le_bytes(w);
        check(libs, "tl_i8_neg", &(int8_t() >> returning(int8_t())), v as i8, v as i8, v as i8, true);
        check(libs, "tl_short_neg", &(short() >> returning(short())), v as i16, v as i16, v as i16, true);
        check(libs, "tl_i32_neg", &(int32_t() >> returning(int32_t())), v as i32, v as i32, v as i32, true);
        check(libs, "tl_u64_compl", &(uint64_t() >> returning(uint64_t())), v, v, v, true);
        check(libs, "tl_long_id", &(long() >> returning(long())), v as i64, v as i64, v as i64, i32::try_from(v as i64).is_ok());
        check(libs, "tl_size_id", &(size_t() >> returning(size_t())), v, v, v, u32::try_from(v).is_ok());
        check(libs, "tl_not", &(bool() >> returning(bool())), v & 1 == 1, v & 1 == 1, v & 1 == 1, true);
        let rest = data.get(8..).unwrap_or(&[]);
        let cs = buffer() >> returning(uint32_t());
        let native = d.function("tl_checksum", &cs).expect("bind").call((rest,)).expect("native");
        assert_eq!(native, s.function("tl_checksum", &cs).expect("bind").call((rest,)).expect("sandbox"));
        assert_eq!(native, st.function("tl_checksum", &cs).expect("bind").call((rest,)).expect("stubs"));
        let text = String::from_utf8_lossy(rest).replace('\0', "");
        let sl = string() >> returning(size_t());
        let native = d.function("tl_strlen", &sl).expect("bind").call((text.as_str(),)).expect("native");
        assert_eq!(native, s.function("tl_strlen", &sl).expect("bind").call((text.as_str(),)).expect("sandbox"));
        assert_eq!(native, st.function("tl_strlen", &sl).expect("bind").call((text.as_str(),)).expect("stubs"));
    });
});
