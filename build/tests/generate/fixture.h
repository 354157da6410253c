/* A header with one of everything the generator handles, or refuses. */
#ifndef FIXTURE_H
#define FIXTURE_H
#include <stddef.h>
#include <stdarg.h>
#include <sys/types.h>

#define FIX_ANSWER 42
#define FIX_NEG (-7)
#define FIX_BIG 0x100000000
#define FIX_MASK 0xffffffffu
#define FIX_NAME "fixture"
#define FIX_ALIAS FIX_ANSWER
#define FIX_EXPR (FIX_ANSWER + 1)
#define FIX_MAX(a, b) ((a) > (b) ? (a) : (b))
#define FIX_SHIFTED (1 << 5)
#define FIX_GREETING "fix" "ture" " " FIX_NAME
#define FIX_PTR_SIZE sizeof(void *)
#define FIX_TYPE unsigned long
#define FIX_RATIO (FIX_ANSWER / 8.0)

typedef unsigned int fix_len;
typedef struct fix_node fix_node;
struct fix_node {
    fix_node *next;
    struct fix_node *prev;
    const char *label;
    int value;
    unsigned char tag[4];
};

typedef struct {
    double x, y;
} fix_point;

union fix_word {
    int i;
    float f;
};

struct fix_flags {
    unsigned ready : 1;
    unsigned count : 7;
};

struct fix_handle;

enum fix_kind { FIX_A, FIX_B = 5, FIX_C };

typedef int (*fix_visit)(void *ctx, const char *label, int value);
typedef void (*fix_chunk)(void *ctx, const char *data, int len);
typedef void (*fix_open_tag)(void *ctx, const char *name, const char **atts);

int fix_sum(const unsigned char *buf, fix_len len);
const char *fix_name(void);
char *fix_strdup(const char *s);
void fix_free(char *s);
fix_node *fix_push(fix_node *head, const char *label, int value);
int fix_walk(const fix_node *head, fix_visit visit, void *ctx);
enum fix_kind fix_kind_of(int v);
double fix_norm(const fix_point *p);
int fix_word_bits(union fix_word *w);
int fix_flags_count(struct fix_flags *f);
struct fix_handle *fix_open(const char *path, off_t offset);
int fix_log(const char *fmt, ...);
int fix_vlog(const char *fmt, va_list ap);
fix_point fix_origin(void);
int fix_eleven(int a, int b, int c, int d, int e, int f, int g, int h, int i, int j, int k);
static inline int fix_inline(int x) { return x + 1; }
int fix_internal_helper(void);
void fix_on_chunk(fix_chunk cb, void *ctx);
void fix_on_tag(fix_open_tag cb);

#endif
