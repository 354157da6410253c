/*
 * Sandlink's process worker: runs one native library on behalf of the
 * `Process` strategy, in a process of its own.
 *
 * The host starts it with its two pipes and nothing else, and then
 * drives it with length-prefixed requests (host/src/backend/process/proto.rs
 * is the other half, and documents the protocol). The worker trusts the
 * host; the host trusts nothing the worker says.
 *
 * The worker is plain C so that it needs neither a Rust target nor a
 * configuration step: sandlink's build script compiles it and the host
 * embeds the executable.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ffi.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION 4u
/* Requests arrive on one pipe and replies leave on another: with one
 * bidirectional socket, every message the host reads also woke the worker
 * (the socket's write-space wakeup), doubling the cost of a round trip. */
#define IN_FD 3
#define OUT_FD 4
/* The Landlock ruleset the host built, when it sent one (as stderr). */
#define RULESET_FD 5

/* Requests (host to worker). */
enum {
    OP_HELLO = 1,
    OP_LOAD = 2,
    /* 3 was OP_CONFINE: everything that confines the library is in force
     * before it loads (OP_LOAD), so nothing it can patch applies it. */
    OP_SYMBOL = 4,
    OP_CALL = 5,
    OP_ALLOC = 6,
    OP_FREE = 7,
    OP_READ = 8,
    OP_WRITE = 9,
    OP_CSTR = 10,
    OP_CLOSURE = 11,
    /* 12 was OP_CLOSURE_FREE: a dropped callback's trampoline stays in
     * place, and a call through it is an upcall the host answers. */
    OP_CALLBACK_RETURN = 13,
    OP_ALLOC_COPY = 14,
};

/* Replies and upcalls (worker to host). */
enum {
    RE_OK = 64,
    RE_ERROR = 65,
    RE_VALUE = 66,
    RE_DATA = 67,
    RE_RESULT = 68,
    RE_CALLBACK = 69,
    RE_BATCH = 70,
};

/* Scalar type codes, shared with the host. */
enum {
    T_VOID = 0,
    T_I8 = 1,
    T_U8 = 2,
    T_I16 = 3,
    T_U16 = 4,
    T_I32 = 5,
    T_U32 = 6,
    T_I64 = 7,
    T_U64 = 8,
    T_F32 = 9,
    T_F64 = 10,
    T_PTR = 11,
};

#define MAX_ARGS 64
/* Callback trampolines live at a fixed address, so that a callback keeps its
 * address when the host restarts the worker (reset) and re-creates it. */
#define SLOT_BASE ((uintptr_t)0x3a5d00000000ull)
#define SLOT_SIZE 128
#define SLOT_COUNT 8192

static pid_t self_pid;

/* ---- I/O ---------------------------------------------------------------- */

/* The host closed the request pipe: nothing left to serve. */
static void die_io(void) { _exit(0); }

/* The worker's own pipes failed (a descriptor the library closed or
 * replaced): a distinct status, so the host does not mistake it for an exit
 * of the library's (LOST_PIPE_EXIT in wire.rs). */
#define EXIT_LOST_PIPE 125
static void die_lost_pipe(void) { _exit(EXIT_LOST_PIPE); }

/* The request pipe is non-blocking. Waiting for the next request spins for
 * a while before sleeping in poll: on a machine with a core to spare, the
 * host's next request usually arrives within microseconds, and a sleeping
 * reader costs a wakeup (an inter-processor interrupt, expensive in a VM)
 * per message. */
static long spin_ns;

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Returns once the request pipe is readable (or, while spinning, may be). */
static void wait_readable(void) {
    long start = now_ns();
    while (now_ns() - start < spin_ns) {
        struct pollfd p = {IN_FD, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            return;
        sched_yield(); /* lets the host run if it shares this core */
    }
    struct pollfd p = {IN_FD, POLLIN, 0};
    poll(&p, 1, -1);
}

/* Incoming bytes, read in as large pieces as the host sends them, so that a
 * request costs one read system call, not two. */
static char inbuf[65536];
static size_t in_start, in_end;

static void read_exact(void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        if (in_start == in_end) {
            ssize_t n;
            in_start = in_end = 0;
            /* Large payloads go straight to their destination. */
            if (len >= sizeof inbuf)
                n = read(IN_FD, p, len);
            else
                n = read(IN_FD, inbuf, sizeof inbuf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) {
                wait_readable();
                continue;
            }
            if (n == 0)
                die_io(); /* the host went away: nothing left to serve */
            if (n < 0)
                die_lost_pipe();
            if (len >= sizeof inbuf) {
                p += n;
                len -= (size_t)n;
                continue;
            }
            in_end = (size_t)n;
        }
        size_t take_n = in_end - in_start < len ? in_end - in_start : len;
        memcpy(p, inbuf + in_start, take_n);
        in_start += take_n;
        p += take_n;
        len -= take_n;
    }
}

/* A frame: u32 length of what follows, u8 kind, payload; written with one
 * system call, so the host wakes once per message. */
static void send_frame(uint8_t kind, const void *a, size_t alen, const void *b, size_t blen) {
    uint32_t len = (uint32_t)(1 + alen + blen);
    char head[5];
    memcpy(head, &len, 4);
    head[4] = (char)kind;
    struct iovec iov[3] = {{head, 5}, {(void *)a, alen}, {(void *)b, blen}};
    int cnt = 3, i = 0;
    while (i < cnt) {
        ssize_t n = writev(OUT_FD, iov + i, cnt - i);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE)
            die_io(); /* the host closed its end */
        if (n <= 0)
            die_lost_pipe();
        while (i < cnt && (size_t)n >= iov[i].iov_len) {
            n -= (ssize_t)iov[i].iov_len;
            i++;
        }
        if (i < cnt) {
            iov[i].iov_base = (char *)iov[i].iov_base + n;
            iov[i].iov_len -= (size_t)n;
        }
    }
}

static void reply_ok(void) { send_frame(RE_OK, NULL, 0, NULL, 0); }

static void reply_value(uint64_t v) { send_frame(RE_VALUE, &v, 8, NULL, 0); }

static void vreply_error(const char *fmt, va_list ap) {
    char msg[512];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    send_frame(RE_ERROR, msg, (size_t)n, NULL, 0);
}

static void reply_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreply_error(fmt, ap);
    va_end(ap);
}

/* The current request's payload. */
static uint8_t *req;
static size_t req_len, req_cap;

static uint8_t next_request(void) {
    uint32_t len;
    read_exact(&len, 4);
    if (len == 0)
        _exit(3); /* protocol violation by the host: cannot happen */
    if (len > req_cap) {
        free(req);
        req = malloc(len);
        if (!req)
            _exit(4);
        req_cap = len;
    }
    read_exact(req, len);
    req_len = len - 1;
    return req[0];
}

/* Payload readers; a short payload is a host bug, answered by exiting. */
static size_t req_pos;

static const uint8_t *take(size_t n) {
    if (req_len - req_pos < n)
        _exit(5);
    const uint8_t *p = req + 1 + req_pos;
    req_pos += n;
    return p;
}

static uint64_t take_u64(void) {
    uint64_t v;
    memcpy(&v, take(8), 8);
    return v;
}

static uint8_t take_u8(void) { return *take(1); }

/* The rest of the payload as a NUL-terminated string for the caller to
 * free, or NULL after replying with the error. */
static char *take_string(void) {
    size_t len = req_len - req_pos;
    char *s = malloc(len + 1);
    if (!s) {
        reply_error("the worker is out of memory");
        return NULL;
    }
    memcpy(s, take(len), len);
    s[len] = 0;
    return s;
}

/* ---- types -------------------------------------------------------------- */

static ffi_type *ffi_of(uint8_t t) {
    switch (t) {
    case T_VOID: return &ffi_type_void;
    case T_I8: return &ffi_type_sint8;
    case T_U8: return &ffi_type_uint8;
    case T_I16: return &ffi_type_sint16;
    case T_U16: return &ffi_type_uint16;
    case T_I32: return &ffi_type_sint32;
    case T_U32: return &ffi_type_uint32;
    case T_I64: return &ffi_type_sint64;
    case T_U64: return &ffi_type_uint64;
    case T_F32: return &ffi_type_float;
    case T_F64: return &ffi_type_double;
    case T_PTR: return &ffi_type_pointer;
    default: return NULL;
    }
}

static size_t size_of(uint8_t t) {
    switch (t) {
    case T_I8: case T_U8: return 1;
    case T_I16: case T_U16: return 2;
    case T_I32: case T_U32: case T_F32: return 4;
    case T_VOID: return 0;
    default: return 8;
    }
}

/* ---- memory ------------------------------------------------------------- */

/* Copies through the kernel, so that a bad address is EFAULT, not SIGSEGV. */
static int copy_self(void *dst, const void *src, size_t len, int write_remote) {
    while (len > 0) {
        struct iovec local, remote;
        ssize_t n;
        if (write_remote) {
            local.iov_base = (void *)src;
            remote.iov_base = dst;
        } else {
            local.iov_base = dst;
            remote.iov_base = (void *)src;
        }
        local.iov_len = remote.iov_len = len;
        n = syscall(write_remote ? SYS_process_vm_writev : SYS_process_vm_readv, self_pid, &local,
                    1ul, &remote, 1ul, 0ul);
        if (n <= 0)
            return -1;
        dst = (char *)dst + n;
        src = (const char *)src + n;
        len -= (size_t)n;
    }
    return 0;
}

/* Bytes from `addr` to the end of its page (at most `cap`): readable if the
 * byte at `addr` is, since protection is per page. */
static size_t rest_of_page(uint64_t addr, size_t cap) {
    size_t rest = 4096 - (size_t)(addr & 4095);
    return rest < cap ? rest : cap;
}

/* u64 address, u64 length, u64 read-ahead: the `length` bytes, then as
 * many of the next `read-ahead` bytes as lie on the page of the last one
 * (the host keeps them, until the library next runs, to answer later reads
 * without a round trip). */
static void do_read(void) {
    uint64_t addr = take_u64(), len = take_u64(), ahead = take_u64();
    size_t extra = 0;
    char *buf = malloc(len + 4096);
    if (!buf) {
        reply_error("the worker cannot allocate %llu bytes to read into", (unsigned long long)len);
        return;
    }
    if (copy_self(buf, (const void *)(uintptr_t)addr, len, 0) != 0) {
        reply_error("cannot read %llu bytes at %#llx: not mapped readable in the worker",
                    (unsigned long long)len, (unsigned long long)addr);
        free(buf);
        return;
    }
    if (len > 0 && ahead > 0) {
        uint64_t next = addr + len;
        extra = (next & 4095) ? rest_of_page(next, ahead) : 0;
        if (extra && copy_self(buf + len, (const void *)(uintptr_t)next, extra, 0) != 0)
            extra = 0;
    }
    send_frame(RE_DATA, buf, len + extra, NULL, 0);
    free(buf);
}

static void do_write(void) {
    uint64_t addr = take_u64();
    size_t len = req_len - req_pos;
    const uint8_t *data = take(len);
    if (copy_self((void *)(uintptr_t)addr, data, len, 1) != 0)
        reply_error("cannot write %llu bytes at %#llx: not mapped writable in the worker",
                    (unsigned long long)len, (unsigned long long)addr);
    else
        reply_ok();
}

/* u64 address, u64 limit: the string, its NUL, and the rest of the page the
 * NUL is on (for the host's read-ahead); or the limit as a value when there
 * is no NUL within it. */
static void do_cstr(void) {
    uint64_t addr = take_u64(), max = take_u64();
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        reply_error("the worker is out of memory");
        return;
    }
    for (;;) {
        /* Read up to the end of the current page, which is mapped whole. */
        uintptr_t at = (uintptr_t)addr + len;
        size_t chunk = rest_of_page(at, 4096);
        if (len + chunk > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                reply_error("the worker is out of memory");
                return;
            }
            buf = nb;
            cap *= 2;
        }
        if (copy_self(buf + len, (const void *)at, chunk, 0) != 0) {
            free(buf);
            reply_error("cannot read the string at %#llx: byte %llu is not mapped readable in "
                        "the worker",
                        (unsigned long long)addr, (unsigned long long)len);
            return;
        }
        char *nul = memchr(buf + len, 0, chunk);
        if (nul && (uint64_t)(nul - buf) < max) {
            send_frame(RE_DATA, buf, len + chunk, NULL, 0);
            free(buf);
            return;
        }
        len += chunk;
        if (nul || len >= max) {
            free(buf);
            /* The host turns this reply into its "unterminated" error. */
            send_frame(RE_VALUE, &max, 8, NULL, 0);
            return;
        }
    }
}

/* ---- calls -------------------------------------------------------------- */

static void serve(int in_callback, uint64_t *cb_result);
static void flush_batch(void);

/* Prepares `cif` for `n` arguments of the given type codes (filling
 * `atypes`, which the cif keeps pointing at) and return code `ret`; on a bad
 * code, replies with the error (naming `what`) and returns -1. */
static int prep_cif(ffi_cif *cif, ffi_type **atypes, uint8_t ret, uint8_t n,
                    const uint8_t *types, const char *what) {
    ffi_type *rtype = ffi_of(ret);
    if (n > MAX_ARGS || !rtype) {
        reply_error("unsupported %s signature (%u arguments, return type %u)", what, n, ret);
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        atypes[i] = ffi_of(types[i]);
        if (!atypes[i] || types[i] == T_VOID) {
            reply_error("%s argument %u has an unknown type code %u", what, i + 1, types[i]);
            return -1;
        }
    }
    if (ffi_prep_cif(cif, FFI_DEFAULT_ABI, n, rtype, atypes) != FFI_OK) {
        reply_error("libffi cannot prepare the %s", what);
        return -1;
    }
    return 0;
}

static void do_call(void) {
    uint64_t addr = take_u64();
    uint8_t want_errno = take_u8(), ret = take_u8(), n = take_u8();
    const uint8_t *types = take(n);
    ffi_type *atypes[MAX_ARGS];
    uint64_t slots[MAX_ARGS];
    void *ptrs[MAX_ARGS];
    ffi_cif cif;
    if (prep_cif(&cif, atypes, ret, n, types, "call") != 0)
        return;
    for (unsigned i = 0; i < n; i++) {
        slots[i] = take_u64();
        ptrs[i] = &slots[i];
    }
    uint64_t result = 0;
    if (want_errno)
        errno = 0;
    ffi_call(&cif, FFI_FN((void (*)(void))(uintptr_t)addr), &result, ptrs);
    int32_t e = want_errno ? errno : 0;
    /* The calls it recorded reach the host before it returns. */
    flush_batch();
    send_frame(RE_RESULT, &result, 8, &e, 4);
}

/* ---- callbacks ---------------------------------------------------------- */

struct closure_data {
    ffi_cif cif;
    ffi_type *atypes[MAX_ARGS];
    uint8_t types[MAX_ARGS];
    uint8_t ret;
    uint8_t n;
    uint64_t key;
    /* A batched callback: its calls are recorded (batch_record) and each
     * argument word copies what `captures` says (enum capture). */
    uint8_t batched;
    uint8_t captures[MAX_ARGS];
};

static struct closure_data *slot_data[SLOT_COUNT];

/* Bytes sent along after each non-NULL pointer argument of an upcall, so
 * that the host's first reads through it (a name, an array of pointers)
 * need no round trip. */
#define PREFETCH 256

/* ---- batched callbacks --------------------------------------------------
 *
 * A batched callback's calls are appended to `batch` instead of crossing
 * one by one: a record per call, the argument words, and a copy of what the
 * declared strings, byte pairs and string arrays point at, with those
 * arguments rewritten to point at their copies here. The batch goes to the
 * host in one RE_BATCH upcall (answered like a callback) when it is full,
 * before any other upcall, and before a call's result; the host's lifts then
 * read the copies out of that message. Record layout (little-endian): u32
 * size (a multiple of 8, the header included), u32 key, one u64 per
 * argument word, the copies. */

enum capture { CAP_WORD = 0, CAP_STRING = 1, CAP_BYTES = 2, CAP_STRARRAY = 3 };

#define BATCH_CAP (64u << 10)
static _Alignas(8) uint8_t batch[BATCH_CAP];
static size_t batch_len;

/* A fault while copying what an argument points at ends the copy, not the
 * worker: the call is then delivered at once, and the host reads (and
 * reports) the bad pointer as it does for any callback. */
static sigjmp_buf capture_env;
static volatile sig_atomic_t capturing;

static void on_fault(int sig, siginfo_t *info, void *uc) {
    (void)info;
    (void)uc;
    if (capturing) {
        capturing = 0;
        siglongjmp(capture_env, 1);
    }
    /* Not a copy: returning re-runs the faulting instruction with the
     * default action, as if no handler were installed. */
    signal(sig, SIG_DFL);
}

/* The argument words of a call of `d`, each widened to a u64 as the host
 * reads it (an upcall's words, or a record's). */
static void arg_words(const struct closure_data *d, void **args, uint64_t *words) {
    for (unsigned i = 0; i < d->n; i++) {
        words[i] = 0;
        memcpy(&words[i], args[i], size_of(d->types[i]));
    }
}

/* Sends the recorded calls and waits until the host has run them (it may
 * call into the library meanwhile; those calls record afresh). */
static void flush_batch(void) {
    if (batch_len == 0)
        return;
    uint64_t base = (uint64_t)(uintptr_t)batch;
    size_t len = batch_len;
    batch_len = 0;
    send_frame(RE_BATCH, &base, 8, batch, len);
    uint64_t unused;
    serve(1, &unused);
}

/* A length word of type code `t` as a byte count, or -1 when negative. */
static int64_t count_of(uint8_t t, uint64_t v) {
    switch (t) {
    case T_I8: return (int8_t)v;
    case T_I16: return (int16_t)v;
    case T_I32: return (int32_t)v;
    case T_I64: return (int64_t)v < 0 ? -1 : (int64_t)v;
    case T_U64: case T_PTR: return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
    default: return (int64_t)v;
    }
}

/* Copies `n` bytes from `src` to batch[*pos..], leaving *pos past them;
 * 0 when they do not fit. */
static int put(size_t *pos, const void *src, size_t n) {
    if (n > BATCH_CAP - *pos)
        return 0;
    memcpy(batch + *pos, src, n);
    *pos += n;
    return 1;
}

/* Copies the NUL-terminated string at `s` (and its NUL); its new address,
 * or 0 when it does not fit. */
static uint64_t put_string(size_t *pos, const char *s) {
    size_t at = *pos;
    size_t len = strnlen(s, BATCH_CAP - at);
    if (!put(pos, s, len) || !put(pos, "", 1))
        return 0;
    return (uint64_t)(uintptr_t)(batch + at);
}

/* Copies what `d`'s arguments point at after the record's words, from
 * batch[*pos], rewriting `words` to point at the copies: 1 when all fit. */
static int capture(const struct closure_data *d, uint64_t *words, size_t *pos) {
    for (unsigned i = 0; i < d->n; i++) {
        uint64_t a = words[i];
        if (a == 0 || d->types[i] != T_PTR)
            continue;
        switch (d->captures[i]) {
        case CAP_STRING:
            words[i] = put_string(pos, (const char *)(uintptr_t)a);
            if (!words[i])
                return 0;
            break;
        case CAP_BYTES: {
            if (i + 1 >= d->n)
                break;
            int64_t len = count_of(d->types[i + 1], words[i + 1]);
            if (len < 0)
                break; /* left as it is: the host reports it */
            words[i] = (uint64_t)(uintptr_t)(batch + *pos);
            if ((uint64_t)len > BATCH_CAP || !put(pos, (const void *)(uintptr_t)a, (size_t)len))
                return 0;
            break;
        }
        case CAP_STRARRAY: {
            const char *const *arr = (const char *const *)(uintptr_t)a;
            size_t k = 0;
            while (arr[k] && (k + 1) * 8 <= BATCH_CAP)
                k++;
            size_t table = (*pos + 7) & ~(size_t)7;
            if (arr[k] || table > BATCH_CAP || (k + 1) * 8 > BATCH_CAP - table)
                return 0;
            *pos = table + (k + 1) * 8;
            uint64_t *copies = (uint64_t *)(void *)(batch + table);
            for (size_t j = 0; j < k; j++) {
                copies[j] = put_string(pos, arr[j]);
                if (!copies[j])
                    return 0;
            }
            copies[k] = 0;
            words[i] = (uint64_t)(uintptr_t)(batch + table);
            break;
        }
        default: break;
        }
    }
    return 1;
}

/* `capture` with a fault caught: 1 copied, 0 does not fit, -1 a fault. */
static int capture_guarded(const struct closure_data *d, uint64_t *words, size_t *pos) {
    capturing = 1;
    if (sigsetjmp(capture_env, 0) != 0)
        return -1;
    int r = capture(d, words, pos);
    capturing = 0;
    return r;
}

/* Records one call of `d`: 1 when recorded, 0 when it must cross at once
 * (it does not fit in an empty batch, or an argument cannot be read). */
static int batch_record(struct closure_data *d, void **args) {
    uint64_t args_in[MAX_ARGS];
    arg_words(d, args, args_in);
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t at = batch_len, pos = at + 8 + 8 * (size_t)d->n;
        /* `capture` rewrites copied pointers: a retry starts afresh. */
        uint64_t words[MAX_ARGS];
        memcpy(words, args_in, 8 * (size_t)d->n);
        int r = pos <= BATCH_CAP ? capture_guarded(d, words, &pos) : 0;
        if (r < 0)
            return 0; /* the partial record is dropped */
        pos = (pos + 7) & ~(size_t)7;
        if (r == 0 || pos > BATCH_CAP) {
            if (at == 0)
                return 0;
            flush_batch();
            continue;
        }
        uint32_t size = (uint32_t)(pos - at), key = (uint32_t)d->key;
        memcpy(batch + at, &size, 4);
        memcpy(batch + at + 4, &key, 4);
        memcpy(batch + at + 8, words, 8 * (size_t)d->n);
        batch_len = pos;
        return 1;
    }
    return 0;
}

static void trampoline(ffi_cif *cif, void *ret, void **args, void *ud) {
    struct closure_data *d = ud;
    if (d->batched && batch_record(d, args))
        return;
    /* Recorded calls come first. */
    flush_batch();
    uint8_t head[9];
    /* The argument words, then per pointer argument a u16 count and that
     * many bytes from where it points. */
    uint8_t body[MAX_ARGS * (8 + 2 + PREFETCH)];
    size_t used = 0;
    (void)cif;
    memcpy(head, &d->key, 8);
    head[8] = d->n;
    uint64_t words[MAX_ARGS];
    arg_words(d, args, words);
    memcpy(body, words, 8 * (size_t)d->n);
    used = 8 * (size_t)d->n;
    for (unsigned i = 0; i < d->n; i++) {
        if (d->types[i] != T_PTR)
            continue;
        uint64_t addr = words[i];
        uint16_t n = addr ? (uint16_t)rest_of_page(addr, PREFETCH) : 0;
        if (n && copy_self(body + used + 2, (const void *)(uintptr_t)addr, n, 0) != 0)
            n = 0;
        memcpy(body + used, &n, 2);
        used += 2 + n;
    }
    send_frame(RE_CALLBACK, head, 9, body, used);
    uint64_t r = 0;
    serve(1, &r);
    switch (d->ret) {
    case T_VOID: break;
    case T_F32: memcpy(ret, &r, 4); break;
    default: memcpy(ret, &r, 8); break; /* ffi_arg: integers widened */
    }
}

static void *slots_region;

static void do_closure(void) {
    uint64_t slot = take_u64(), key = take_u64();
    uint8_t ret = take_u8(), n = take_u8();
    const uint8_t *types = take(n);
    uint8_t batched = take_u8();
    const uint8_t *captures = batched ? take(n) : NULL;
    if (slot >= SLOT_COUNT || n > MAX_ARGS || (batched && ret != T_VOID)) {
        reply_error("bad callback slot %llu, argument count %u, or a batched callback returning "
                    "type %u",
                    (unsigned long long)slot, n, ret);
        return;
    }
    if (!slots_region) {
        reply_error("the callback trampolines could not be mapped at %#llx",
                    (unsigned long long)SLOT_BASE);
        return;
    }
    struct closure_data *d = slot_data[slot];
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d) {
            reply_error("the worker is out of memory");
            return;
        }
        slot_data[slot] = d;
    }
    d->ret = ret;
    d->n = n;
    d->key = key;
    memcpy(d->types, types, n);
    d->batched = batched;
    if (batched)
        memcpy(d->captures, captures, n);
    if (prep_cif(&d->cif, d->atypes, ret, n, types, "callback") != 0)
        return;
    ffi_closure *c = (ffi_closure *)((char *)slots_region + slot * SLOT_SIZE);
    memset(c, 0, SLOT_SIZE);
    if (ffi_prep_closure_loc(c, &d->cif, trampoline, d, c) != FFI_OK) {
        reply_error("libffi cannot prepare the callback");
        return;
    }
    reply_value((uint64_t)(uintptr_t)c);
}

/* ---- set-up ------------------------------------------------------------
 *
 * Everything that bounds the library is in force before its first
 * instruction (its initialisers, run by dlopen), and is applied by this
 * file's code while no library code is mapped:
 *
 *   - at start (main): non-dumpable; no core files; unless the host said
 *     "no-namespaces", new user, PID, network, IPC, UTS and mount
 *     namespaces whose root holds only the loader's directories and the
 *     library, read-only; and the worker's own identity, one no other
 *     worker and not the host has (a root host's worker becomes uid and
 *     gid IDENTITY_BASE + its pid; an ordinary host's keeps the host's
 *     uid, which the namespaces make unreachable);
 *   - in OP_LOAD: the address-space limit, no_new_privs, the Landlock
 *     ruleset and the one seccomp filter, then dlopen.
 *
 * With namespaces the worker is three processes: the monitor (the host's
 * child, outside the namespaces, which relays how the library ended), the
 * namespaces' init (which reaps), and the library's process, which serves
 * the host. The monitor and init run no library code and hold no pipe to
 * the host. */

static void *library;

/* A root host's workers each take a uid and gid of their own. */
#define IDENTITY_BASE 0x5a000000u

/* Why a set-up step failed, sent to the host as the reply to its first
 * request (an ERROR frame, read as the handshake's answer). */
static void setup_failed(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreply_error(fmt, ap);
    va_end(ap);
    _exit(1);
}

/* As root, becomes `id` (uid and gid), with no supplementary groups. */
static void take_identity(uid_t id) {
    if (geteuid() != 0)
        return;
    gid_t none[1];
    if (setgroups(0, none) != 0 || setresgid(id, id, id) != 0 || setresuid(id, id, id) != 0)
        setup_failed("cannot take the worker's own identity (uid %u): %s", id, strerror(errno));
}

/* Writes `text` to /proc/<pid>/<file>: 0, or -1 with errno set. */
static int write_proc(pid_t pid, const char *file, const char *text) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)len ? 0 : -1;
}

/* Creates the directories leading to `path` (not `path` itself). */
static int make_parents(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* Bind-mounts `src` (a directory or a file; missing: nothing to do) at the
 * same path under `root`, read-only; 0, or -1 after naming what failed in
 * `why`. */
static int bind_read_only(const char *root, const char *src, char *why, size_t why_len) {
    struct stat st;
    if (stat(src, &st) != 0)
        return errno == ENOENT ? 0 : (snprintf(why, why_len, "%s: %s", src, strerror(errno)), -1);
    char dst[4096];
    if ((size_t)snprintf(dst, sizeof dst, "%s%s", root, src) >= sizeof dst) {
        snprintf(why, why_len, "%s: the path is too long", src);
        return -1;
    }
    if (make_parents(dst) != 0)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        if (mkdir(dst, 0755) != 0 && errno != EEXIST)
            goto fail;
    } else {
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            goto fail;
        close(fd);
    }
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
        goto fail;
    /* A remount may add "read-only" but must keep the flags the original
     * mount was locked with. */
    struct statvfs vfs;
    if (statvfs(dst, &vfs) != 0)
        goto fail;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
    if (vfs.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (vfs.f_flag & ST_NOATIME)
        flags |= MS_NOATIME;
    if (vfs.f_flag & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (vfs.f_flag & ST_RELATIME)
        flags |= MS_RELATIME;
    if (mount(NULL, dst, NULL, flags, NULL) != 0)
        goto fail;
    return 0;
fail:
    snprintf(why, why_len, "%s: %s", src, strerror(errno));
    return -1;
}

/* What the loader reads: the host's list (confine.rs, LOADER_PATHS), given
 * as the arguments after the library's path. */
static char *const *loader_paths;
static size_t loader_count;

/* In the new mount namespace: a root of its own holding only the loader's
 * paths and the library (`lib`, absolute, or a bare name the loader
 * searches for), all read-only, and nothing else: no /proc, /tmp or home. */
static void make_root(const char *lib) {
    char why[600];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        setup_failed("cannot make the worker's mounts private: %s", strerror(errno));
    /* The new root is built on a directory that holds none of the paths
     * bound into it. */
    static const char *const spots[] = {"/tmp", "/mnt", "/media", "/srv", "/run", "/dev"};
    const char *root = NULL;
    for (size_t i = 0; i < sizeof spots / sizeof spots[0] && !root; i++) {
        size_t n = strlen(spots[i]);
        struct stat st;
        if (stat(spots[i], &st) == 0 && S_ISDIR(st.st_mode) &&
            !(strncmp(lib, spots[i], n) == 0 && lib[n] == '/'))
            root = spots[i];
    }
    if (!root)
        setup_failed("no directory to build the worker's root on");
    if (mount("sandlink", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") != 0)
        setup_failed("cannot mount the worker's root (tmpfs on %s): %s", root, strerror(errno));
    for (size_t i = 0; i < loader_count; i++)
        if (bind_read_only(root, loader_paths[i], why, sizeof why) != 0)
            setup_failed("cannot bind the loader's path %s", why);
    /* A library beneath a loader path (`/usr/lib/x86_64-linux-gnu/libz.so.1`)
     * is there already, and that mount is read-only: nothing to bind. */
    int beneath = 0;
    for (size_t i = 0; i < loader_count; i++) {
        size_t n = strlen(loader_paths[i]);
        if (strncmp(lib, loader_paths[i], n) == 0 && lib[n] == '/')
            beneath = 1;
    }
    if (lib[0] == '/' && !beneath && bind_read_only(root, lib, why, sizeof why) != 0)
        setup_failed("cannot bind the library %s", why);
    if (mount(NULL, root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) !=
        0)
        setup_failed("cannot make the worker's root read-only: %s", strerror(errno));
    if (chdir(root) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 ||
        umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        setup_failed("cannot enter the worker's root: %s", strerror(errno));
}

/* Reads all of `len` bytes, or fails. */
static int read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Ends this process as `status` (a wait status) says its child ended, so
 * that the host sees how the library's process ended. */
static void end_as(int status) {
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        sigset_t all;
        signal(sig, SIG_DFL);
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        kill(getpid(), sig);
    }
    _exit(127);
}

/* Waits for `pid`; its wait status. */
static int wait_for(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 0;
    return status;
}

/* Enters the namespaces (see above) and returns in the library's process;
 * the monitor and init never return. `lib` is the library's path, `id` the
 * worker's own uid and gid when the host is root.
 *
 * A root host's monitor creates the namespaces while still root (which any
 * kernel allows, even one that refuses them to ordinary users), maps the
 * worker's own `id` to root inside, and only then becomes `id` itself; init
 * takes that identity inside (uid and gid 0 there, `id` outside) and drops
 * the host's supplementary groups. An ordinary host's worker maps its own
 * uid, as any process may. */
static void enter_namespaces(const char *lib, uid_t id) {
    int go[2], told[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(told, O_CLOEXEC) != 0)
        setup_failed("pipe: %s", strerror(errno));
    int root = geteuid() == 0;
    uid_t uid = root ? id : geteuid();
    gid_t gid = root ? (gid_t)id : getegid();
    /* Until its identity is mapped, the new process's /proc files must be
     * its own uid's (not root's, as a non-dumpable process's are), for the
     * monitor to write them. No library code runs in between. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    long init = syscall(SYS_clone,
                        CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWNS |
                            CLONE_NEWUTS | SIGCHLD,
                        NULL, NULL, NULL, NULL);
    if (init < 0)
        setup_failed("cannot create the worker's namespaces (user, PID, network, IPC, UTS, "
                     "mount): %s",
                     strerror(errno));
    if (init > 0) {
        /* The monitor: maps the worker's identity to root inside, and waits. */
        char map[64];
        close(go[0]);
        close(told[1]);
        snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
        /* An ordinary user may map its own gid only with setgroups off. */
        int ok = write_proc((pid_t)init, "uid_map", map) == 0 &&
                 (root || write_proc((pid_t)init, "setgroups", "deny\n") == 0);
        snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
        ok = ok && write_proc((pid_t)init, "gid_map", map) == 0;
        if (!ok) {
            int saved = errno;
            kill((pid_t)init, SIGKILL);
            wait_for((pid_t)init);
            errno = saved;
            setup_failed("cannot map the worker's identity into its user namespace: %s",
                         strerror(errno));
        }
        take_identity(id);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* `go` stays open for as long as the monitor lives: init checks it
         * after arming its parent-death signal. */
        if (write(go[1], "g", 1) != 1)
            _exit(1);
        close(IN_FD);
        close(OUT_FD);
        close(RULESET_FD);
        int init_status = wait_for((pid_t)init);
        int status;
        end_as(read_all(told[0], &status, sizeof status) == 0 ? status : init_status);
    }
    /* Init, pid 1 of the new PID namespace. */
    close(go[1]);
    close(told[0]);
    char g;
    if (read_all(go[0], &g, 1) != 0)
        _exit(1); /* the monitor failed, and said so */
    /* Root inside, the worker's identity outside; no supplementary groups
     * (an ordinary host's worker cannot have any to drop: EPERM). */
    gid_t no_groups[1];
    if (setgroups(0, no_groups) != 0 && errno != EPERM)
        setup_failed("cannot drop the worker's groups: %s", strerror(errno));
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
        setup_failed("cannot take the worker's identity in its namespace: %s", strerror(errno));
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* When the monitor dies (the host killed it: a deadline, a drop), init
     * dies, and with it every process of the namespace, the library's
     * whatever it is doing. Armed after the identity changes, which clear
     * it; a monitor that died before is seen as `go` hanging up. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    struct pollfd hup = {go[0], 0, 0};
    if (poll(&hup, 1, 0) != 0)
        _exit(1);
    close(go[0]);
    make_root(lib);
    pid_t worker = fork();
    if (worker < 0)
        setup_failed("fork: %s", strerror(errno));
    if (worker > 0) {
        close(IN_FD);
        close(OUT_FD);
        close(RULESET_FD);
        int status = wait_for(worker);
        if (write(told[1], &status, sizeof status) != sizeof status)
            _exit(1);
        _exit(0);
    }
    /* The library's process: root in its namespaces, without capabilities. */
    close(told[1]);
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &head, none) != 0)
        setup_failed("cannot drop the worker's capabilities: %s", strerror(errno));
}

/* Installs a seccomp program of `len` bytes (no_new_privs is set). */
static int install_filter(const uint8_t *prog, size_t len) {
    if (len % sizeof(struct sock_filter) != 0 || len == 0) {
        reply_error("the seccomp program is %zu bytes, not a whole number of instructions", len);
        return -1;
    }
    struct sock_filter *filter = malloc(len);
    if (!filter) {
        reply_error("the worker is out of memory");
        return -1;
    }
    memcpy(filter, prog, len);
    struct sock_fprog fprog = {(unsigned short)(len / sizeof(struct sock_filter)), filter};
    int r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0);
    int saved = errno;
    free(filter);
    if (r != 0)
        reply_error("cannot install the seccomp filter: %s", strerror(saved));
    return r;
}

/* u8 Landlock flag (the ruleset is on RULESET_FD), u64 address-space limit
 * (0: none), u32 length and the seccomp filter (none when empty), then the
 * path. Confines, then loads: every limit is in force before the library's
 * first instruction, and nothing after this needs the library's consent. */
static void do_load(void) {
    uint8_t landlock = take_u8();
    uint64_t limit = take_u64();
    uint32_t prog_len;
    memcpy(&prog_len, take(4), 4);
    const uint8_t *prog = take(prog_len);
    char *path = take_string();
    if (!path)
        return;
    if (library) {
        reply_error("a library is loaded already");
        free(path);
        return;
    }
    if (limit) {
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0) {
            reply_error("setrlimit(RLIMIT_AS): %s", strerror(errno));
            free(path);
            return;
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        reply_error("cannot set no_new_privs: %s", strerror(errno));
        free(path);
        return;
    }
    if (landlock && syscall(SYS_landlock_restrict_self, RULESET_FD, 0u) != 0) {
        reply_error("cannot apply the Landlock ruleset: %s", strerror(errno));
        free(path);
        return;
    }
    close(RULESET_FD);
    if (prog_len > 0 && install_filter(prog, prog_len) != 0) {
        free(path);
        return;
    }
    library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *e = dlerror();
        reply_error("%s", e ? e : "dlopen failed");
    } else {
        reply_ok();
    }
    free(path);
}

static void do_symbol(void) {
    char *name = take_string();
    if (!name)
        return;
    dlerror();
    void *p = library ? dlsym(library, name) : NULL;
    if (!p) {
        const char *e = library ? dlerror() : "no library is loaded";
        reply_error("%s", e ? e : "the symbol's address is NULL");
    } else {
        reply_value((uint64_t)(uintptr_t)p);
    }
    free(name);
}

static void serve(int in_callback, uint64_t *cb_result) {
    for (;;) {
        uint8_t op = next_request();
        req_pos = 0;
        switch (op) {
        case OP_HELLO: {
            /* The version, and this process's id as it sees itself (the
             * seccomp filter names it). */
            uint32_t v[2] = {PROTOCOL_VERSION, (uint32_t)self_pid};
            send_frame(RE_VALUE, v, 8, NULL, 0);
            break;
        }
        case OP_LOAD: do_load(); break;
        case OP_SYMBOL: do_symbol(); break;
        case OP_CALL: do_call(); break;
        case OP_ALLOC: {
            uint64_t size = take_u64(), align = take_u64();
            void *p = NULL;
            if (align <= 16)
                p = malloc(size ? size : 1);
            else if (posix_memalign(&p, align, size ? size : 1) != 0)
                p = NULL;
            if (p)
                reply_value((uint64_t)(uintptr_t)p);
            else
                reply_error("malloc returned NULL");
            break;
        }
        case OP_FREE:
            /* No reply: the host does not wait for frees. */
            free((void *)(uintptr_t)take_u64());
            break;
        case OP_ALLOC_COPY: {
            uint8_t nul = take_u8();
            size_t len = req_len - req_pos;
            const uint8_t *data = take(len);
            size_t n = len + nul;
            char *p = malloc(n ? n : 1);
            if (!p) {
                reply_error("malloc returned NULL");
                break;
            }
            memcpy(p, data, len);
            if (nul)
                p[len] = 0;
            reply_value((uint64_t)(uintptr_t)p);
            break;
        }
        case OP_READ: do_read(); break;
        case OP_WRITE: do_write(); break;
        case OP_CSTR: do_cstr(); break;
        case OP_CLOSURE: do_closure(); break;
        case OP_CALLBACK_RETURN:
            if (!in_callback)
                _exit(6);
            *cb_result = take_u64();
            return;
        default:
            _exit(7);
        }
    }
}

/* argv[1] is "namespaces" or "no-namespaces", argv[2] the library's path
 * (absolute, or a bare name for the loader to search), and the rest the
 * loader's paths, which the worker's root holds. */
int main(int argc, char **argv) {
    /* The host passes the request pipe as stdin, the reply pipe as stdout
     * and the Landlock ruleset (or /dev/null) as stderr; they move out of
     * the way of the library's own stdio, and every other descriptor is
     * closed. */
    if (dup2(0, IN_FD) != IN_FD || dup2(1, OUT_FD) != OUT_FD || dup2(2, RULESET_FD) != RULESET_FD)
        return 9;
    syscall(SYS_close_range, 0u, 2u, 0u);
    syscall(SYS_close_range, RULESET_FD + 1u, ~0u, 0u);
    if (argc < 3)
        setup_failed("the worker takes a mode and a path, not %d arguments", argc - 1);
    loader_paths = argv + 3;
    loader_count = (size_t)(argc - 3);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* a crashing library leaves no core file */
    /* Nothing of this process may be read or traced through /proc or
     * ptrace by another of the same uid, for its whole life. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* Counted here: the worker's root has no /sys. */
    spin_ns = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 50000 : 0;
    uid_t id = IDENTITY_BASE + (uid_t)getpid();
    if (strcmp(argv[1], "namespaces") == 0)
        enter_namespaces(argv[2], id);
    else if (strcmp(argv[1], "no-namespaces") == 0)
        take_identity(id);
    else
        setup_failed("unknown worker mode %s", argv[1]);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    fcntl(IN_FD, F_SETFL, fcntl(IN_FD, F_GETFL) | O_NONBLOCK);
    struct sigaction fault = {0};
    fault.sa_sigaction = on_fault;
    fault.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &fault, NULL);
    sigaction(SIGBUS, &fault, NULL);
    self_pid = getpid();
    /* Reserved before the library loads, so that nothing else is there. */
    slots_region = mmap((void *)SLOT_BASE, (size_t)SLOT_SIZE * SLOT_COUNT,
                        PROT_READ | PROT_WRITE | PROT_EXEC,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (slots_region == MAP_FAILED || slots_region != (void *)SLOT_BASE)
        slots_region = NULL;
    uint64_t unused;
    serve(0, &unused);
    return 0;
}
