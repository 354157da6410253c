/* testlib: a C library written for Sandlink's conformance suite. Every
 * function exercises one kind of C type so that a wrong value anywhere in the
 * marshalling path changes a result the tests check. */
#ifndef SANDLINK_TESTLIB_H
#define SANDLINK_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Scalars: each returns a value derived from every argument bit. */
bool tl_not(bool b);
char tl_char_succ(char c);
signed char tl_schar_neg(signed char c);
unsigned char tl_uchar_compl(unsigned char c);
short tl_short_neg(short s);
unsigned short tl_ushort_compl(unsigned short s);
int tl_int_add(int a, int b);
unsigned int tl_uint_compl(unsigned int u);
long tl_long_id(long l);
unsigned long tl_ulong_id(unsigned long l);
long long tl_llong_neg(long long l);
unsigned long long tl_ullong_compl(unsigned long long l);
int8_t tl_i8_neg(int8_t v);
int16_t tl_i16_neg(int16_t v);
int32_t tl_i32_neg(int32_t v);
int64_t tl_i64_neg(int64_t v);
uint8_t tl_u8_compl(uint8_t v);
uint16_t tl_u16_compl(uint16_t v);
uint32_t tl_u32_compl(uint32_t v);
uint64_t tl_u64_compl(uint64_t v);
size_t tl_size_id(size_t v);
ssize_t tl_ssize_id(ssize_t v);
intptr_t tl_intptr_id(intptr_t v);
uintptr_t tl_uintptr_id(uintptr_t v);
ptrdiff_t tl_ptrdiff_id(ptrdiff_t v);
float tl_float_mul(float a, float b);
double tl_double_fma(double a, double b, double c);
/* Many mixed arguments: more than fit in registers on x86-64. */
double tl_mixed(int8_t a, uint16_t b, int32_t c, int64_t d, float e, double f, uint8_t g,
                long h, float i, unsigned long long j);
size_t tl_sizeof_long(void);

/* Strings and buffers. */
size_t tl_strlen(const char *s);
const char *tl_greeting(void);
/* A new uppercased copy of s for the caller to free with tl_free_str (NULL
   for ""); with corrupt != 0 its first byte is 0xff (not UTF-8). */
char *tl_dup_upper(const char *s, int corrupt);
void tl_free_str(char *s);
/* How many tl_dup_upper strings are not yet freed. */
int tl_live_strs(void);
const char *tl_name_or_null(int i);
const char *tl_invalid_utf8(void);
uint32_t tl_checksum(const char *buf, size_t len);
/* The same, with a length type narrower than size_t. */
uint32_t tl_checksum_short(const char *buf, unsigned short len);
void tl_upper_into(char *out, size_t len);

/* Out-parameters and errno. */
int tl_divmod(int a, int b, int *quot, int *rem);
int tl_fail_with(int err);
int tl_edom(void); /* EDOM differs between glibc (33) and WASI (18) */

/* Structs, unions, arrays. */
struct tl_inner {
    char tag;
    double weight;
};
struct tl_record {
    char c;
    int32_t id;
    struct tl_inner inner;
    short s;
    int64_t big;
    char name[7];
    long l;
    void *p;
};
union tl_num {
    int32_t i;
    float f;
    double d;
    unsigned char bytes[12];
};
typedef int32_t tl_id_t;

void tl_record_fill(struct tl_record *r, tl_id_t id);
int64_t tl_record_sum(const struct tl_record *r);
size_t tl_record_layout(int field); /* -1: sizeof; -2: alignof; n: offsetof field n */
size_t tl_inner_layout(int field);
size_t tl_num_layout(int which); /* 0: sizeof, 1: alignof */
void tl_num_set_float(union tl_num *n, float f);
int32_t tl_num_int(const union tl_num *n);
int tl_sum_ints(const int *xs, size_t n);
const int *tl_find(const int *xs, size_t n, int x);

/* A global variable and functions that use it. */
extern int tl_counter;
int tl_bump(void);

/* Views: an enum and a boolean carried as int. */
enum tl_color { TL_RED, TL_GREEN, TL_BLUE };
/* Constants bindings read through the compiler: a plain value, and one that
   differs between LP64 and ILP32. */
#define TL_SCALE (-3)
#define TL_RECORD_SIZE (sizeof(struct tl_record))
int tl_color_next(int c);
int tl_is_even(int v);

/* Callbacks. */
typedef int (*tl_int_fn)(int);
int tl_apply(tl_int_fn f, int x);
/* Keeps `f`; tl_call_stored(x) = f(x) + 1. */
void tl_store_int_fn(tl_int_fn f);
int tl_call_stored(int x);
int tl_fold(int (*f)(int acc, int x), const int *xs, size_t n, int init);
double tl_apply_float(double (*f)(double, float), double x);
void tl_each_word(const char *s, void (*f)(void *ud, const char *word, int len), void *ud);
void tl_visit(void (*f)(void *ud, const char *name, const char **attrs), void *ud);
/* Calls f(ud, "0"), f(ud, "1"), ... f(ud, "n-1"), each number written into
 * the same buffer; when `every` > 0, also g(i) after every `every`-th one.
 * Returns the sum of g's results. */
int tl_count(int n, void (*f)(void *ud, const char *s), int (*g)(int), int every, void *ud);
tl_int_fn tl_get_doubler(void);
/* What tl_store_int_fn stored (NULL before). */
tl_int_fn tl_get_stored(void);

/* setjmp/longjmp. tl_sjlj recurses `depth` frames below a setjmp and
   longjmps `val` back to it; it returns what the second return of setjmp
   gave (val, or 1 for 0) plus 1000 times the number of times setjmp
   returned (2). */
int tl_sjlj(int depth, int val);
/* Calls f(x) under a setjmp: f's result, or -v when tl_sjlj_raise(v)
   longjmps out of it. */
int tl_sjlj_guarded(tl_int_fn f, int x);
/* longjmps v to the innermost running tl_sjlj_guarded (none: returns). */
void tl_sjlj_raise(int v);
/* longjmps to a jmp_buf whose setjmp's function has returned: undefined
   behaviour in C; for the Sandbox's isolation tests only. */
void tl_sjlj_stale(void);

/* What the C library says to calls WASI has no system call for, as bits:
   1 system(NULL) == 0 (no shell), 2 system("true") == -1 with ENOSYS,
   4 tmpfile() == NULL with ENOSYS, 8 tmpnam() == NULL with ENOSYS. */
int tl_wasi_gaps(void);

/* Files: reads up to len bytes of path into buf (the count, or -errno);
   creates or truncates path and writes text to it (0, or -errno). */
long tl_read_file(const char *path, char *buf, size_t len);
int tl_write_file(const char *path, const char *text);
/* The function pointer as an integer (from tl_get_doubler), called as a tl_int_fn. */
int tl_call_fnptr(uintptr_t f, int x);

#endif
