#include "testlib.h"

#include <setjmp.h>

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool tl_not(bool b) { return !b; }
char tl_char_succ(char c) { return (char)(c + 1); }
signed char tl_schar_neg(signed char c) { return (signed char)-c; }
unsigned char tl_uchar_compl(unsigned char c) { return (unsigned char)~c; }
short tl_short_neg(short s) { return (short)-s; }
unsigned short tl_ushort_compl(unsigned short s) { return (unsigned short)~s; }
int tl_int_add(int a, int b) { return (int)((unsigned)a + (unsigned)b); }
unsigned int tl_uint_compl(unsigned int u) { return ~u; }
long tl_long_id(long l) { return l; }
unsigned long tl_ulong_id(unsigned long l) { return l; }
long long tl_llong_neg(long long l) { return (long long)(0ULL - (unsigned long long)l); }
unsigned long long tl_ullong_compl(unsigned long long l) { return ~l; }
int8_t tl_i8_neg(int8_t v) { return (int8_t)-v; }
int16_t tl_i16_neg(int16_t v) { return (int16_t)-v; }
int32_t tl_i32_neg(int32_t v) { return (int32_t)(0U - (uint32_t)v); }
int64_t tl_i64_neg(int64_t v) { return (int64_t)(0ULL - (uint64_t)v); }
uint8_t tl_u8_compl(uint8_t v) { return (uint8_t)~v; }
uint16_t tl_u16_compl(uint16_t v) { return (uint16_t)~v; }
uint32_t tl_u32_compl(uint32_t v) { return ~v; }
uint64_t tl_u64_compl(uint64_t v) { return ~v; }
size_t tl_size_id(size_t v) { return v; }
ssize_t tl_ssize_id(ssize_t v) { return v; }
intptr_t tl_intptr_id(intptr_t v) { return v; }
uintptr_t tl_uintptr_id(uintptr_t v) { return v; }
ptrdiff_t tl_ptrdiff_id(ptrdiff_t v) { return v; }
float tl_float_mul(float a, float b) { return a * b; }
double tl_double_fma(double a, double b, double c) { return a * b + c; }

double tl_mixed(int8_t a, uint16_t b, int32_t c, int64_t d, float e, double f, uint8_t g,
                long h, float i, unsigned long long j) {
    return (double)a + (double)b * 2 + (double)c * 3 + (double)d * 4 + (double)e * 5 +
           f * 6 + (double)g * 7 + (double)h * 8 + (double)i * 9 + (double)j * 10;
}

size_t tl_sizeof_long(void) { return sizeof(long); }

size_t tl_strlen(const char *s) { return strlen(s); }
const char *tl_greeting(void) { return "h\xc3\xa9llo from testlib"; }

const char *tl_name_or_null(int i) {
    static const char *names[] = {"zero", "one", "two"};
    return (i >= 0 && i < 3) ? names[i] : NULL;
}

static int live_strs;

char *tl_dup_upper(const char *s, int corrupt) {
    size_t n = strlen(s);
    if (n == 0) return NULL;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    for (size_t k = 0; k <= n; k++) d[k] = (s[k] >= 'a' && s[k] <= 'z') ? (char)(s[k] - 32) : s[k];
    if (corrupt) d[0] = (char)0xff;
    live_strs++;
    return d;
}

void tl_free_str(char *s) {
    if (s) live_strs--;
    free(s);
}

int tl_live_strs(void) { return live_strs; }

const char *tl_invalid_utf8(void) { return "bad \xff\xfe bytes"; }

uint32_t tl_checksum(const char *buf, size_t len) {
    /* FNV-1a: any changed, missing or extra byte changes the result. */
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < len; k++) {
        h ^= (unsigned char)buf[k];
        h *= 16777619u;
    }
    return h;
}

uint32_t tl_checksum_short(const char *buf, unsigned short len) {
    return tl_checksum(buf, len);
}

void tl_upper_into(char *out, size_t len) {
    for (size_t k = 0; k < len; k++) {
        if (out[k] >= 'a' && out[k] <= 'z') out[k] = (char)(out[k] - 'a' + 'A');
    }
}

int tl_divmod(int a, int b, int *quot, int *rem) {
    if (b == 0) {
        errno = EDOM;
        return -1;
    }
    *quot = a / b;
    *rem = a % b;
    return 0;
}

int tl_edom(void) { return EDOM; }

int tl_fail_with(int err) {
    errno = err;
    return -1;
}

void tl_record_fill(struct tl_record *r, tl_id_t id) {
    r->c = 'R';
    r->id = id;
    r->inner.tag = 'i';
    r->inner.weight = 2.5 * id;
    r->s = (short)-id;
    r->big = (int64_t)id * 1000000007LL;
    memcpy(r->name, "record", 7);
    r->l = -(long)id * 3;
    r->p = r;
}

int64_t tl_record_sum(const struct tl_record *r) {
    int64_t sum = r->c + r->id + r->inner.tag + (int64_t)(r->inner.weight * 10) + r->s + r->big +
                  r->l;
    for (int k = 0; k < 7; k++) sum += r->name[k] * (k + 1);
    return sum + (r->p == r ? 1 : 0);
}

size_t tl_record_layout(int field) {
    switch (field) {
    case -2: return alignof(struct tl_record);
    case -1: return sizeof(struct tl_record);
    case 0: return offsetof(struct tl_record, c);
    case 1: return offsetof(struct tl_record, id);
    case 2: return offsetof(struct tl_record, inner);
    case 3: return offsetof(struct tl_record, s);
    case 4: return offsetof(struct tl_record, big);
    case 5: return offsetof(struct tl_record, name);
    case 6: return offsetof(struct tl_record, l);
    case 7: return offsetof(struct tl_record, p);
    default: return (size_t)-1;
    }
}

size_t tl_inner_layout(int field) {
    switch (field) {
    case -2: return alignof(struct tl_inner);
    case -1: return sizeof(struct tl_inner);
    case 0: return offsetof(struct tl_inner, tag);
    case 1: return offsetof(struct tl_inner, weight);
    default: return (size_t)-1;
    }
}

size_t tl_num_layout(int which) {
    return which == 0 ? sizeof(union tl_num) : alignof(union tl_num);
}

void tl_num_set_float(union tl_num *n, float f) { n->f = f; }
int32_t tl_num_int(const union tl_num *n) { return n->i; }

int tl_sum_ints(const int *xs, size_t n) {
    int s = 0;
    for (size_t k = 0; k < n; k++) s += xs[k] * (int)(k + 1);
    return s;
}

const int *tl_find(const int *xs, size_t n, int x) {
    for (size_t k = 0; k < n; k++)
        if (xs[k] == x) return &xs[k];
    return NULL;
}

int tl_counter = 41;
int tl_bump(void) { return ++tl_counter; }

int tl_color_next(int c) { return (c + 1) % 3; }
int tl_is_even(int v) { return v % 2 == 0; }

int tl_apply(tl_int_fn f, int x) { return f(x) + 1; }

static tl_int_fn tl_stored;
void tl_store_int_fn(tl_int_fn f) { tl_stored = f; }
int tl_call_stored(int x) { return tl_stored(x) + 1; }
tl_int_fn tl_get_stored(void) { return tl_stored; }

static int tl_sjlj_dive(jmp_buf *jb, int depth, int val) {
    if (depth <= 0) {
        longjmp(*jb, val);
    }
    return 1 + tl_sjlj_dive(jb, depth - 1, val);
}

int tl_sjlj(int depth, int val) {
    jmp_buf jb;
    volatile int returns = 0;
    int got = setjmp(jb);
    returns++;
    if (got == 0) {
        tl_sjlj_dive(&jb, depth, val);
        return -1;
    }
    return got + 1000 * returns;
}

static jmp_buf *tl_guard;

int tl_sjlj_guarded(tl_int_fn f, int x) {
    jmp_buf here;
    jmp_buf *outer = tl_guard;
    int r;
    int got = setjmp(here);
    if (got == 0) {
        tl_guard = &here;
        r = f(x);
    } else {
        r = -got;
    }
    tl_guard = outer;
    return r;
}

void tl_sjlj_raise(int v) {
    if (tl_guard != NULL) {
        longjmp(*tl_guard, v);
    }
}

/* wasi-libc marks tmpfile and tmpnam deprecated: calling them is the test. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
int tl_wasi_gaps(void) {
    char name[L_tmpnam];
    int bits = 0;
    if (system(NULL) == 0)
        bits |= 1;
    errno = 0;
    if (system("true") == -1 && errno == ENOSYS)
        bits |= 2;
    errno = 0;
    if (tmpfile() == NULL && errno == ENOSYS)
        bits |= 4;
    errno = 0;
    if (tmpnam(name) == NULL && errno == ENOSYS)
        bits |= 8;
    return bits;
}
#pragma clang diagnostic pop

long tl_read_file(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    size_t n = fread(buf, 1, len, f);
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    return failed ? -failed : (long)n;
}

int tl_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -errno;
    size_t len = strlen(text);
    int failed = fwrite(text, 1, len, f) != len ? errno : 0;
    if (fclose(f) != 0 && failed == 0)
        failed = errno;
    return failed ? -failed : 0;
}

static jmp_buf tl_stale_jb;

static __attribute__((noinline)) int tl_sjlj_arm(void) { return setjmp(tl_stale_jb); }

void tl_sjlj_stale(void) {
    if (tl_sjlj_arm() == 0) {
        longjmp(tl_stale_jb, 7);
    }
}

int tl_fold(int (*f)(int acc, int x), const int *xs, size_t n, int init) {
    int acc = init;
    for (size_t k = 0; k < n; k++) acc = f(acc, xs[k]);
    return acc;
}

double tl_apply_float(double (*f)(double, float), double x) { return f(x, (float)x / 2) * 2; }

void tl_each_word(const char *s, void (*f)(void *ud, const char *word, int len), void *ud) {
    while (*s) {
        while (*s == ' ') s++;
        const char *start = s;
        while (*s && *s != ' ') s++;
        if (s > start) f(ud, start, (int)(s - start));
    }
}

void tl_visit(void (*f)(void *ud, const char *name, const char **attrs), void *ud) {
    const char *a1[] = {"id", "1", "class", "x", NULL};
    const char *a2[] = {NULL};
    f(ud, "first", a1);
    f(ud, "second", a2);
}

int tl_count(int n, void (*f)(void *ud, const char *s), int (*g)(int), int every, void *ud) {
    char buf[16];
    int sum = 0;
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        f(ud, buf);
        if (every > 0 && (i + 1) % every == 0)
            sum += g(i);
    }
    /* The buffer is gone once this returns: a callback must have read it. */
    memset(buf, 'x', sizeof buf);
    return sum;
}

static int doubler(int x) { return 2 * x; }
tl_int_fn tl_get_doubler(void) { return doubler; }
int tl_call_fnptr(uintptr_t f, int x) { return ((tl_int_fn)f)(x); }
