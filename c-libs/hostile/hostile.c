/* hostile: a C library that misbehaves on purpose, to show that the Sandbox
 * and Process strategies contain it. Built for wasm32-wasi, and natively for
 * the Process strategy's worker only: loaded into the host (Dynamic), most of
 * these functions would crash or corrupt it, which is the point. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Volatile sizes and addresses keep the compiler from proving anything. */
static volatile size_t huge = SIZE_MAX;

void h_memcpy_huge(void *dst, const void *src) { memcpy(dst, src, huge); }

int h_write_wild(uintptr_t addr, int value) {
    *(volatile int *)addr = value;
    return 0;
}

int h_read_wild(uintptr_t addr) { return *(volatile int *)addr; }

/* In wasm, address 0 is ordinary linear memory: a NULL write lands in the
 * library's own memory and cannot reach the host. */
int h_write_null(int value) {
    volatile int *volatile p = NULL;
    *p = value;
    return *p;
}

int h_write_far(void) {
    *(volatile int *)(uintptr_t)0xfffffff0u = 1;
    return 0;
}

#ifdef __wasm__
size_t h_memory_size(void) { return __builtin_wasm_memory_size(0) * 65536; }

const char *h_wild_pointer(void) { return (const char *)(uintptr_t)0xffffff00u; }

/* The last 16 bytes of linear memory, with no NUL before the end. */
const char *h_unterminated(void) {
    char *end = (char *)(uintptr_t)h_memory_size();
    memset(end - 16, 'A', 16);
    return end - 16;
}
#else
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

size_t h_memory_size(void) { return 0; }

/* Kernel space: never mapped in a user process. */
const char *h_wild_pointer(void) { return (const char *)(uintptr_t)0xffffffffffff0000ull; }

/* The last 16 bytes of a page followed by an inaccessible one. */
const char *h_unterminated(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) return NULL;
    mprotect(p + page, (size_t)page, PROT_NONE);
    memset(p + page - 16, 'A', 16);
    return p + page - 16;
}

/* Native only: a network socket, which the worker's seccomp filter forbids. */
int h_socket(void) { return socket(AF_INET, SOCK_STREAM, 0); }

/* Native only: writes a forged, oversized frame header on descriptor `fd`,
 * which in the Process strategy's worker may be the pipe to the host. */
int h_forge_frame(int fd) { return (int)write(fd, "\xff\xff\xff\xff\x44", 5); }

/* Native only: writes a forged error frame of `mib` MiB on descriptor `fd`
 * (the worker's reply pipe), header and body, as far as the reader takes
 * it; what was written. */
long h_forge_error(int fd, int mib) {
    static char chunk[65536];
    uint32_t len = (uint32_t)mib << 20;
    char head[5];
    memcpy(head, &len, 4);
    head[4] = 65; /* RE_ERROR */
    if (write(fd, head, 5) != 5)
        return -1;
    memset(chunk, 'E', sizeof chunk);
    long done = 0;
    while (done + 1 < (long)len) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n <= 0)
            break;
        done += n;
    }
    return done;
}

/* Native only: calls `f` for ever, whatever it returns. */
void h_call_back_forever(int (*f)(int)) {
    for (int i = 0;; i++)
        f(i);
}

/* Native only: raises `sig` in itself. */
int h_raise(int sig) { return raise(sig); }

/* Native only: closes descriptor `fd` (in the worker, one of its pipes to
 * the host), then calls `f`. */
int h_close_then_call(int fd, int (*f)(int)) {
    close(fd);
    return f(1);
}
#endif

const char *h_invalid_utf8(void) { return "\xc3\x28 not utf-8"; }

size_t h_huge_length(void) { return SIZE_MAX; }

void h_huge_buffer_callback(void (*f)(void *, const char *, int), void *ud) {
    f(ud, "tiny", INT_MAX);
}

void h_negative_buffer_callback(void (*f)(void *, const char *, int), void *ud) {
    f(ud, "tiny", -5);
}

/* A string argument that points nowhere: a batched callback's copy of it
 * faults where the library runs. */
void h_wild_string_callback(void (*f)(void *, const char *), void *ud) {
    f(ud, (const char *)(uintptr_t)-16);
}

/* Calls f, then writes value at addr: a library that overwrites what was
 * recorded of the call (a batched callback's record) before the host has
 * it. */
void h_call_then_write(void (*f)(void *, const char *), void *ud, uintptr_t addr, int value) {
    f(ud, "recorded");
    *(volatile int *)addr = value;
}

static volatile int spin_counter;
void h_spin(void) {
    for (;;) spin_counter++;
}

/* Unbounded recursion; the volatile depth bound is never reached. */
static volatile int recurse_limit = INT_MAX;
int h_recurse(int n) {
    volatile char frame[512];
    frame[n % 512] = (char)n;
    if (n >= recurse_limit) return 0;
    return h_recurse(n + 1) + frame[0];
}

/* Allocates `chunk`-sized blocks until malloc fails; returns the total. */
static void *volatile last_block;
size_t h_malloc_all(size_t chunk) {
    size_t total = 0;
    while ((last_block = malloc(chunk)) != NULL) total += chunk;
    return total;
}

void h_abort(void) { abort(); }
void h_exit(int status) { exit(status); }

int h_call_bogus(uintptr_t fn) {
    int (*f)(int) = (int (*)(int))fn;
    return f(1);
}

static int (*stored_callback)(int);
void h_store_callback(int (*f)(int)) { stored_callback = f; }
int h_call_stored(int x) { return stored_callback(x); }

static char *stored_buffer;
void h_keep_buffer(char *p, size_t n) {
    (void)n;
    stored_buffer = p;
}
void h_scribble_kept(int n) { memset(stored_buffer, 'X', (size_t)n); }

int h_puts(const char *s) {
    int r = puts(s);
    fflush(stdout);
    return r;
}

int h_eputs(const char *s) { return fputs(s, stderr); }

/* Writes lines until writing fails; returns how many got through. */
int h_print_until_error(void) {
    int lines = 0;
    for (;;) {
        if (fputs("spam spam spam spam spam spam spam spam spam spam spam spam\n", stdout) == EOF ||
            fflush(stdout) == EOF)
            return lines;
        lines++;
    }
}

/* An honest string function, for the random sequences' string marshalling. */
size_t h_strlen(const char *s) { return strlen(s); }

/* Sleeps `seconds` (in the sandbox, a WASI poll_oneoff on a clock). */
int h_sleep(unsigned seconds) { return (int)sleep(seconds); }

/* Opens `path` over and over without closing it, at most `max` times: how
 * many opens succeeded before the first failure (whose errno is then in
 * h_last_errno). */
static int last_errno;
int h_open_many(const char *path, int max) {
    int n = 0;
    last_errno = 0;
    while (n < max) {
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            last_errno = errno;
            break;
        }
        n++;
    }
    return n;
}
int h_last_errno(void) { return last_errno; }

/* WASI capabilities: the sandbox grants none. */
int h_can_open(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    fclose(f);
    return 1;
}

int h_has_env(const char *name) { return getenv(name) != NULL; }

/* A well-behaved function, to show the sandbox works after a reset. */
int h_add(int a, int b) { return a + b; }
