//! The worker protocol, host side: framing, message kinds, type codes, and
//! reading under a deadline. `host/worker/worker.c` is the other half.
//!
//! Every message is a frame: a little-endian `u32` length of what follows,
//! one kind byte, then the payload (little-endian integers). The host sends
//! requests and waits for the reply; during a call, the worker may instead
//! send callback upcalls, each answered by the host with a
//! `CALLBACK_RETURN` after any nested requests of its own. The host checks
//! every frame the worker sends: its length, its kind for the request it
//! answers, and its payload's size.

use std::fs::File;
use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::types::{DataModel, Prim, WordClass};

/// The protocol version both halves speak; the handshake checks it.
pub const VERSION: u32 = 4;

/// The worker's exit status when its own pipes fail (a descriptor the
/// library closed or replaced), as opposed to 0 when the host closed them:
/// `EXIT_LOST_PIPE` in worker.c.
pub const LOST_PIPE_EXIT: i32 = 125;

/// Requests, host to worker.
pub mod op {
    /// Answered by a `u32` version and the worker's `u32` pid as it sees
    /// itself (or an `ERROR` when its set-up failed).
    pub const HELLO: u8 = 1;
    /// `u8` Landlock flag (the ruleset is the worker's descriptor 5), `u64`
    /// address-space limit, `u32` length and the seccomp filter (none when
    /// empty), then the path bytes: confine, then `dlopen` the library.
    pub const LOAD: u8 = 2;
    // 3 was CONFINE: the worker is confined before the library loads.
    /// Name bytes: `dlsym`.
    pub const SYMBOL: u8 = 4;
    /// `u64` code address, `u8` errno flag, `u8` return type, `u8` count,
    /// the argument types, one `u64` per argument.
    pub const CALL: u8 = 5;
    /// `u64` size, `u64` alignment.
    pub const ALLOC: u8 = 6;
    /// `u64` address. No reply: a failure (a crash in `free`) shows at
    /// the next request.
    pub const FREE: u8 = 7;
    /// `u64` address, `u64` length.
    pub const READ: u8 = 8;
    /// `u64` address, then the bytes.
    pub const WRITE: u8 = 9;
    /// `u64` address, `u64` limit: the bytes before the NUL.
    pub const CSTR: u8 = 10;
    /// `u64` slot, `u64` key, `u8` return type, `u8` count, argument types,
    /// `u8` batched flag, and for a batched callback one capture code per
    /// argument (`types::Capture`).
    pub const CLOSURE: u8 = 11;
    // 12 was CLOSURE_FREE: a dropped callback's trampoline now stays in
    // place, so that a call through it is an upcall the host answers.
    /// `u64` result bits, ending the innermost callback or batch.
    pub const CALLBACK_RETURN: u8 = 13;
    /// `u8` NUL flag, then the bytes: a block holding them (and a NUL).
    pub const ALLOC_COPY: u8 = 14;
}

/// Replies and upcalls, worker to host.
pub mod reply {
    /// Done, no payload.
    pub const OK: u8 = 64;
    /// A message (UTF-8 from the worker, checked).
    pub const ERROR: u8 = 65;
    /// A `u64` (or, for `HELLO`, two `u32`s).
    pub const VALUE: u8 = 66;
    /// Bytes.
    pub const DATA: u8 = 67;
    /// A call's `u64` result bits and `i32` errno.
    pub const RESULT: u8 = 68;
    /// An upcall: `u64` key, `u8` count, one `u64` per argument, then for
    /// each pointer argument a `u16` count and at most [`super::PREFETCH`]
    /// bytes from where it points (none for NULL or unreadable memory).
    pub const CALLBACK: u8 = 69;
    /// Recorded calls of batched callbacks, answered like an upcall: the
    /// `u64` address of the worker's batch buffer, then the records as they
    /// lie there (see [`super::BATCH_CAP`] and `worker.c`): each a `u32`
    /// size (a multiple of 8, at least its header and words), a `u32` key,
    /// one `u64` per argument word, then the copies its rewritten pointer
    /// arguments point at.
    pub const BATCH: u8 = 70;
}

/// The size of the worker's batch buffer (`BATCH_CAP` in worker.c): the
/// most a `BATCH` upcall carries.
pub const BATCH_CAP: usize = 64 << 10;

/// Bytes the worker sends along with each pointer argument of an upcall.
pub const PREFETCH: usize = 256;

/// The worker's limit on arguments per call or callback.
pub const MAX_ARGS: usize = 64;

/// Callback trampolines per worker (the worker maps them at a fixed
/// address, so a callback's address survives a reset).
pub const CALLBACK_SLOTS: usize = 8192;

/// Where the worker maps callback trampoline `slot`, `SLOT_SIZE` bytes each
/// from `SLOT_BASE` (worker.c): for messages about a slot, never accessed.
pub fn slot_addr(slot: u64) -> u64 {
    const SLOT_BASE: u64 = 0x3a5d_0000_0000;
    const SLOT_SIZE: u64 = 128;
    SLOT_BASE.wrapping_add(slot.wrapping_mul(SLOT_SIZE))
}

/// The type code the worker's libffi call is prepared with.
pub fn type_code(p: Prim, model: DataModel) -> u8 {
    match p.class(model) {
        WordClass::F32 => 9,
        WordClass::F64 => 10,
        WordClass::Int { .. } if p == Prim::Pointer => 11,
        WordClass::Int { size, signed } => match (size, signed) {
            (1, true) => 1,
            (1, false) => 2,
            (2, true) => 3,
            (2, false) => 4,
            (4, true) => 5,
            (4, false) => 6,
            (_, true) => 7,
            (_, false) => 8,
        },
    }
}

/// The code for a `void` return.
pub const VOID: u8 = 0;

/// Builds one request frame.
pub fn frame(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut v = Vec::with_capacity(4 + len);
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v.push(kind);
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// The most an `ERROR` message may hold: the worker's are under 512 bytes.
pub const MAX_MESSAGE: usize = 1024;

/// The largest payload a frame of `kind` may carry (`DATA`: `data`, what
/// the request it answers asked for); anything longer is a protocol
/// violation, found before the host allocates for it.
fn max_payload(kind: u8, data: usize) -> usize {
    match kind {
        reply::OK => 0,
        reply::ERROR => MAX_MESSAGE,
        reply::VALUE => 8,
        reply::RESULT => 12,
        reply::DATA => data,
        reply::CALLBACK => 9 + MAX_ARGS * (8 + 2 + PREFETCH),
        reply::BATCH => 8 + BATCH_CAP,
        // Unknown: refused by whoever reads it; no need to read much.
        _ => 0,
    }
}

/// An `ERROR` message as text (at most [`MAX_MESSAGE`] bytes, checked when
/// the frame arrived), with bytes that are not UTF-8 replaced.
pub fn message(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(MAX_MESSAGE)]).into_owned()
}

/// Why talking to the worker failed (before the host looks at its exit).
pub enum WireError {
    /// A pipe closed or failed: the worker is gone or closed it.
    Closed(String),
    /// No complete message arrived within the deadline.
    Deadline,
    /// The worker sent something the protocol does not allow.
    Violation(String),
}

/// One connection's reading and writing, each bounded by a deadline.
///
/// Requests go down one pipe and replies come up another (a single socket
/// would wake the worker every time the host reads, doubling the cost of a
/// round trip). The host's ends are non-blocking; when one would block, the
/// host waits in `poll` for what is left of the deadline, which is checked
/// after every read, so a worker sending a byte at a time cannot stretch a
/// message past it.
pub struct Wire {
    tx: File,
    rx: File,
    deadline: Duration,
    /// The most a `DATA` frame may carry now: what the pending read asked
    /// for, else nothing.
    data_limit: usize,
    /// Bytes read ahead of the current frame.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Every frame received, when recording (`ProcessConfig::record_replies`).
    #[cfg(feature = "fuzzing")]
    pub log: Option<Vec<u8>>,
}

fn nonblocking(f: &File) -> std::io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this `File` owns, with integer
    // arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// How long a wait spins (polling without sleeping) before it sleeps: on a
/// machine with a core to spare, a reply usually comes within microseconds,
/// and a sleeping waiter costs a wakeup per message (an inter-processor
/// interrupt, which is expensive in a VM). None on a single core.
fn spin_time() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| match std::thread::available_parallelism() {
        Ok(n) if n.get() > 1 => Duration::from_micros(50),
        _ => Duration::ZERO,
    })
}

fn poll_once(f: &File, events: libc::c_short, ms: libc::c_int) -> std::io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == IoKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    // Ready, or hung up / in error: the read or write says which.
    Ok(n > 0)
}

/// Waits until `f` is ready for `events` or `end` passes.
fn wait(f: &File, events: libc::c_short, end: Instant) -> Result<(), WireError> {
    let closed = |e: std::io::Error| WireError::Closed(e.to_string());
    let spin_until = Instant::now() + spin_time();
    while Instant::now() < spin_until {
        if poll_once(f, events, 0).map_err(closed)? {
            return Ok(());
        }
        // Lets the worker run if it shares this core (more busy threads
        // than cores, as in a parallel test run).
        std::thread::yield_now();
    }
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WireError::Deadline);
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        if poll_once(f, events, ms).map_err(closed)? {
            return Ok(());
        }
    }
}

impl Wire {
    /// Wraps the host's ends of the two pipes: requests go to `tx`,
    /// replies come from `rx`.
    pub fn new(tx: File, rx: File, deadline: Duration) -> std::io::Result<Wire> {
        nonblocking(&tx)?;
        nonblocking(&rx)?;
        Ok(Wire {
            tx,
            rx,
            deadline,
            data_limit: 0,
            buf: vec![0u8; 64 << 10].into_boxed_slice(),
            start: 0,
            end: 0,
            #[cfg(feature = "fuzzing")]
            log: None,
        })
    }

    /// Sends a whole frame within the deadline (a worker that stops reading
    /// cannot block the host).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let end = Instant::now() + self.deadline;
        let mut done = 0;
        while done < bytes.len() {
            match self.tx.write(&bytes[done..]) {
                Ok(0) => return Err(WireError::Closed("the pipe is closed".into())),
                Ok(n) => done += n,
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) if e.kind() == IoKind::WouldBlock => wait(&self.tx, libc::POLLOUT, end)?,
                Err(e) => return Err(WireError::Closed(e.to_string())),
            }
        }
        Ok(())
    }

    /// Lets the next frame received be a `DATA` frame of up to `bytes`
    /// bytes (the answer to a read of that much).
    pub fn expect_data(&mut self, bytes: u64) {
        self.data_limit = usize::try_from(bytes).unwrap_or(usize::MAX);
    }

    /// Receives one frame, whole, within the deadline: its kind and payload.
    pub fn recv(&mut self) -> Result<(u8, Vec<u8>), WireError> {
        self.recv_within(self.deadline)
    }

    /// [`Wire::recv`] within `limit` instead of the whole deadline.
    pub fn recv_within(&mut self, limit: Duration) -> Result<(u8, Vec<u8>), WireError> {
        if limit.is_zero() {
            return Err(WireError::Deadline);
        }
        let end = Instant::now() + limit.min(self.deadline);
        let mut head = [0u8; 5];
        self.read_exact(&mut head, end)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let max = max_payload(head[4], std::mem::take(&mut self.data_limit));
        if len == 0 || len - 1 > max {
            return Err(WireError::Violation(format!(
                "a frame of kind {} with {} payload bytes (at most {max} allowed)",
                head[4],
                len.saturating_sub(1)
            )));
        }
        // The body grows as its bytes arrive: a length the worker claims
        // but does not send costs the host nothing.
        let len = len - 1;
        let mut body = Vec::new();
        while body.len() < len {
            let have = body.len();
            let piece = (len - have).min(self.buf.len());
            body.resize(have + piece, 0);
            self.read_exact(&mut body[have..], end)?;
        }
        #[cfg(feature = "fuzzing")]
        if let Some(log) = &mut self.log {
            log.extend_from_slice(&head);
            log.extend_from_slice(&body);
        }
        Ok((head[4], body))
    }

    fn read_exact(&mut self, mut out: &mut [u8], end: Instant) -> Result<(), WireError> {
        while !out.is_empty() {
            if self.start < self.end {
                let n = out.len().min(self.end - self.start);
                out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
                self.start += n;
                out = &mut out[n..];
                continue;
            }
            // Large payloads are read straight into place.
            let direct = out.len() >= self.buf.len();
            let r = if direct {
                self.rx.read(out)
            } else {
                self.rx.read(&mut self.buf)
            };
            match r {
                Ok(0) => return Err(WireError::Closed("the pipe closed".into())),
                Ok(n) if direct => out = &mut out[n..],
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                }
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) if e.kind() == IoKind::WouldBlock => wait(&self.rx, libc::POLLIN, end)?,
                Err(e) => return Err(WireError::Closed(e.to_string())),
            }
        }
        Ok(())
    }
}

/// A payload reader that reports a short or long payload as a violation.
pub struct Payload<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> Payload<'a> {
    /// Reads the payload of a `what` message.
    pub fn new(what: &'static str, bytes: &'a [u8]) -> Payload<'a> {
        Payload { what, rest: bytes }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Violation(format!(
                "a {} message ends {} bytes short",
                self.what,
                n - self.rest.len()
            )));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// The next little-endian `i32`.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.bytes(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The next byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    /// Checks that nothing is left over.
    pub fn end(self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            return Ok(());
        }
        Err(WireError::Violation(format!(
            "a {} message has {} bytes too many",
            self.what,
            self.rest.len()
        )))
    }
}
