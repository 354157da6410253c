//! zlib through bindings generated from zlib.h, on all four strategies:
//! `crc32` and `adler32`, one-shot `compress2`/`uncompress`, and a
//! streaming `deflate`/`inflate` round trip in 16 KiB chunks. Every
//! strategy must give the same bytes, and they must be the bytes Python's
//! `zlib` module gives for the same input.
//!
//! `cargo run --release -- [FILE]` (default: a generated 400 KB sample).

use std::process::{Command, ExitCode, Stdio};

use sandlink::prelude::*;
use sandlink::{Dynamic, Owned, Precompiled, Process, Sandbox, Stubs};

/// The generated bindings (`OUT_DIR/zlib.rs`, written by build.rs): all of
/// zlib.h, of which this program uses a part.
mod zlib {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/zlib.rs"));
}
use zlib::{z_stream_s, Zlib, ZLIB_VERSION, Z_FINISH, Z_NO_FLUSH, Z_OK, Z_STREAM_END};

// `stub_table()`: zlib's generated stubs, linked into this binary.
include!(env!("SANDLINK_ZLIB_STUBS"));

/// The chunk size of the streaming round trip.
const CHUNK: usize = 16 * 1024;
/// The one-shot compression level, and the streaming one.
const LEVEL_ONE_SHOT: i32 = 9;
const LEVEL_STREAM: i32 = 6;

/// What one strategy computed.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    crc32: u64,
    adler32: u64,
    compress2: Vec<u8>,
    deflate_stream: Vec<u8>,
}

/// Fails with zlib's own message unless `r` is one of `ok`.
fn check<L: Foreign>(z: &Zlib<L>, what: &str, r: i32, ok: &[i32]) -> Result<()> {
    if ok.contains(&r) {
        return Ok(());
    }
    Err(Error::InvalidValue {
        function: Some(what.into()),
        what: "the result".into(),
        reason: format!("{r} ({})", z.zError.call((r,))?),
    })
}

fn run<L: Foreign>(lib: &L, data: &[u8]) -> Result<Outcome> {
    let z = Zlib::bind(lib)?;
    let version = z.zlibVersion.call(())?;
    if version != ZLIB_VERSION {
        return Err(Error::InvalidValue {
            function: Some("zlibVersion".into()),
            what: "the result".into(),
            reason: format!("{version}, but zlib.h says {ZLIB_VERSION}"),
        });
    }
    let crc32 = z.crc32.call((0, data))?;
    let adler32 = z.adler32.call((1, data))?;

    // One shot: compress2 into a buffer of compressBound bytes, and back.
    let bound = z.compressBound.call((data.len() as u64,))?;
    let dest = lib.alloc(&uchar(), bound)?;
    let dest_len = lib.alloc(&ulong(), 1)?;
    lib.write(&ulong(), dest_len.ptr(), bound)?;
    let r = z
        .compress2
        .call((dest.ptr(), dest_len.ptr(), data, LEVEL_ONE_SHOT))?;
    check(&z, "compress2", r, &[Z_OK])?;
    let compressed = dest.read_bytes(0, lib.read(&ulong(), dest_len.ptr())?)?;
    let back = lib.alloc(&uchar(), data.len().max(1) as u64)?;
    lib.write(&ulong(), dest_len.ptr(), back.byte_len())?;
    let r = z
        .uncompress
        .call((back.ptr(), dest_len.ptr(), &compressed[..]))?;
    check(&z, "uncompress", r, &[Z_OK])?;
    let n = lib.read(&ulong(), dest_len.ptr())?;
    if back.read_bytes(0, n)? != data {
        return Err(mismatch("uncompress"));
    }

    // Streaming, 16 KiB at a time, through a z_stream in the library's memory.
    let (stream_type, f) = z_stream_s::describe()?;
    let size = stream_type.size_align(lib.model())?.0 as i32;
    let io = Io {
        lib,
        f: &f,
        input: lib.alloc(&uchar(), CHUNK as u64)?,
        output: lib.alloc(&uchar(), CHUNK as u64)?,
    };
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(CHUNK).collect()
    };

    let strm = lib.alloc(&stream_type, 1)?;
    let s = strm.ptr();
    let r = z.deflateInit_.call((s, LEVEL_STREAM, ZLIB_VERSION, size))?;
    check(&z, "deflateInit_", r, &[Z_OK])?;
    let mut deflate_stream = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let flush = if i + 1 == chunks.len() {
            Z_FINISH
        } else {
            Z_NO_FLUSH
        };
        io.pump(s, chunk, &mut deflate_stream, || {
            let r = z.deflate.call((s, flush))?;
            check(&z, "deflate", r, &[Z_OK, Z_STREAM_END, zlib::Z_BUF_ERROR])?;
            Ok(r)
        })?;
    }
    check(&z, "deflateEnd", z.deflateEnd.call((s,))?, &[Z_OK])?;

    let strm = lib.alloc(&stream_type, 1)?;
    let s = strm.ptr();
    let r = z.inflateInit_.call((s, ZLIB_VERSION, size))?;
    check(&z, "inflateInit_", r, &[Z_OK])?;
    let mut inflated = Vec::new();
    let mut ended = false;
    for chunk in deflate_stream.chunks(CHUNK) {
        let r = io.pump(s, chunk, &mut inflated, || {
            let r = z.inflate.call((s, Z_NO_FLUSH))?;
            check(&z, "inflate", r, &[Z_OK, Z_STREAM_END])?;
            Ok(r)
        })?;
        ended = r == Z_STREAM_END;
    }
    check(&z, "inflateEnd", z.inflateEnd.call((s,))?, &[Z_OK])?;
    if !ended || inflated != data {
        return Err(mismatch("inflate"));
    }
    Ok(Outcome {
        crc32,
        adler32,
        compress2: compressed,
        deflate_stream,
    })
}

/// A stream's input and output buffers in the library's memory.
struct Io<'a, L: Foreign> {
    lib: &'a L,
    f: &'a z_stream_s,
    input: Owned<L, u8>,
    output: Owned<L, u8>,
}

impl<L: Foreign> Io<'_, L> {
    /// Gives the stream at `s` `chunk` as input, then runs `step` (one
    /// `deflate` or `inflate`) until it leaves output room or ends the
    /// stream, appending what it wrote to `out`. The last result.
    fn pump(
        &self,
        s: Ptr<Struct<z_stream_s>>,
        chunk: &[u8],
        out: &mut Vec<u8>,
        mut step: impl FnMut() -> Result<i32>,
    ) -> Result<i32> {
        let (lib, f) = (self.lib, self.f);
        self.input.write_bytes(0, chunk)?;
        lib.write_field(s, &f.next_in, Some(self.input.ptr()))?;
        lib.write_field(s, &f.avail_in, chunk.len() as u32)?;
        loop {
            lib.write_field(s, &f.next_out, Some(self.output.ptr()))?;
            lib.write_field(s, &f.avail_out, CHUNK as u32)?;
            let r = step()?;
            let left = lib.read_field(s, &f.avail_out)?;
            out.extend(self.output.read_bytes(0, CHUNK as u64 - u64::from(left))?);
            if left != 0 || r == Z_STREAM_END {
                return Ok(r);
            }
        }
    }
}

fn mismatch(what: &str) -> Error {
    Error::InvalidValue {
        function: Some(what.into()),
        what: "the round trip".into(),
        reason: "the bytes that came back differ from the input".into(),
    }
}

/// The same computations by Python's `zlib` module (the system's zlib).
fn python(data: &[u8]) -> std::result::Result<Outcome, String> {
    const SCRIPT: &str = r#"
import sys, zlib
data = sys.stdin.buffer.read()
chunk = int(sys.argv[1])
d = zlib.compressobj(int(sys.argv[3]))
stream = b"".join(d.compress(data[i:i + chunk]) for i in range(0, len(data), chunk)) + d.flush()
print(zlib.crc32(data))
print(zlib.adler32(data))
print(zlib.compress(data, int(sys.argv[2])).hex())
print(stream.hex())
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .args([
            CHUNK.to_string(),
            LEVEL_ONE_SHOT.to_string(),
            LEVEL_STREAM.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run python3 (scripts/setup.sh installs it): {e}"))?;
    let mut stdin = child.stdin.take().ok_or("python3 has no stdin")?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("python3: {e}"))?;
    writer
        .join()
        .map_err(|_| "the writer thread panicked".to_string())?
        .map_err(|e| format!("writing to python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("python3 failed: {}", out.status));
    }
    let text = String::from_utf8(out.stdout).map_err(|e| format!("python3's output: {e}"))?;
    let lines: Vec<&str> = text.lines().collect();
    let [crc, adler, one_shot, stream] = lines[..] else {
        return Err(format!("python3 printed {} lines, not 4", lines.len()));
    };
    let num = |s: &str| {
        s.parse::<u64>()
            .map_err(|e| format!("python3 printed `{s}`: {e}"))
    };
    Ok(Outcome {
        crc32: num(crc)?,
        adler32: num(adler)?,
        compress2: unhex(one_shot)?,
        deflate_stream: unhex(stream)?,
    })
}

fn unhex(s: &str) -> std::result::Result<Vec<u8>, String> {
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| format!("bad hex from python3 at {i}"))
        })
        .collect()
}

/// 400 KB of text that compresses like a real document: words from a small
/// vocabulary in a pseudo-random order, and some binary noise.
fn sample() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "sandbox",
        "zlib",
        "deflate",
        "inflate",
        "window",
        "huffman",
        "stream",
        "chunk",
        "crc",
        "adler",
        "the",
        "a",
        "of",
        "memory",
        "isolation",
        "callback",
        "strategy",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(400_000);
    while out.len() < 400_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(50) {
            out.extend(x.to_le_bytes());
        } else {
            out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
            out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
        }
    }
    out
}

fn main() -> ExitCode {
    let inputs: Vec<(String, Vec<u8>)> = match std::env::args_os().nth(1) {
        Some(path) => match std::fs::read(&path) {
            Ok(d) => vec![(path.to_string_lossy().into_owned(), d)],
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.to_string_lossy());
                return ExitCode::FAILURE;
            }
        },
        None => vec![
            ("the sample".into(), sample()),
            ("empty input".into(), Vec::new()),
        ],
    };
    let opened: Vec<(&str, Result<Run>)> = vec![
        (
            "Dynamic",
            open(|| unsafe { Dynamic::open(env!("SANDLINK_ZLIB_SO")) }),
        ),
        ("Stubs", open(|| unsafe { Stubs::open(stub_table()) })),
        (
            "Sandbox",
            // SAFETY: both files are what sandlink-build wrote for this
            // build (the module and its machine code, compiled by build.rs).
            open(|| {
                Sandbox::open_precompiled(
                    unsafe {
                        Precompiled::new(
                            include_bytes!(env!("SANDLINK_ZLIB_WASM")),
                            include_bytes!(env!("SANDLINK_ZLIB_CWASM")),
                        )
                    },
                    "zlib",
                )
            }),
        ),
        ("Process", open(|| Process::open(env!("SANDLINK_ZLIB_SO")))),
    ];
    let mut failed = false;
    for (name, data) in &inputs {
        let expected = match python(data) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for (strategy, lib) in &opened {
            let run = match lib {
                Ok(run) => run,
                Err(e) => {
                    failed = true;
                    eprintln!("{strategy}: cannot open zlib: {e}");
                    continue;
                }
            };
            match run(data) {
                Ok(o) if o == expected => println!(
                    "{strategy:8} {name}: {} bytes, crc32 {:08x}, adler32 {:08x}, \
                     compress2 {} bytes, deflate stream {} bytes: same as Python's zlib",
                    data.len(),
                    o.crc32,
                    o.adler32,
                    o.compress2.len(),
                    o.deflate_stream.len()
                ),
                Ok(o) => {
                    failed = true;
                    eprintln!(
                        "{strategy} {name}: differs from Python's zlib: {}",
                        diff(&o, &expected)
                    );
                }
                Err(e) => {
                    failed = true;
                    eprintln!("{strategy} {name}: {e}");
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one input through one opened library.
type Run = Box<dyn Fn(&[u8]) -> Result<Outcome>>;

/// Opens a library and binds `run` to it.
fn open<L: Foreign>(open: impl FnOnce() -> Result<L>) -> Result<Run> {
    let lib = open()?;
    Ok(Box::new(move |data| run(&lib, data)))
}

fn diff(got: &Outcome, want: &Outcome) -> String {
    let mut d = Vec::new();
    if got.crc32 != want.crc32 {
        d.push(format!(
            "crc32 {:08x} against {:08x}",
            got.crc32, want.crc32
        ));
    }
    if got.adler32 != want.adler32 {
        d.push(format!(
            "adler32 {:08x} against {:08x}",
            got.adler32, want.adler32
        ));
    }
    if got.compress2 != want.compress2 {
        d.push(format!(
            "compress2 {} bytes against {}",
            got.compress2.len(),
            want.compress2.len()
        ));
    }
    if got.deflate_stream != want.deflate_stream {
        d.push(format!(
            "deflate stream {} bytes against {}",
            got.deflate_stream.len(),
            want.deflate_stream.len()
        ));
    }
    d.join("; ")
}
