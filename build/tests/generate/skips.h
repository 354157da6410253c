/* Declarations the generator must get past: one it cannot lower never
 * stops the others (tests/generate.rs, `what_cannot_be_lowered_is_skipped`). */
#include <netinet/ip.h>
#include <setjmp.h>
#include <stddef.h>

typedef struct skip_state_s skip_state;

/* An untagged struct named by its typedef, reached through the other. */
typedef struct {
    int version;
    unsigned width;
} skip_image, *skip_imagep;
int skip_image_begin(skip_imagep image, const char *file_name);

/* A callback taking a jmp_buf (an array parameter): not passable. */
typedef void (*skip_longjmp_fn)(jmp_buf, int);
jmp_buf *skip_set_longjmp_fn(skip_state *s, skip_longjmp_fn f, size_t size);

/* A struct holding a jmp_buf: glibc's `struct __jmp_buf_tag` holds an
 * untagged struct named by its typedef (`__sigset_t`). */
typedef struct {
    jmp_buf env;
    int code;
} skip_with_jb;
int skip_uses_with_jb(skip_with_jb *w);

/* A struct holding, by value, a system header's struct with bit-fields
 * (`struct ip`): incomplete, as that one is. */
typedef struct {
    struct ip header;
    int length;
} skip_packet;
int skip_send(skip_packet *p);

/* Text as `unsigned char`: not a `char *` string. */
const unsigned char *skip_name(skip_state *s);

void skip_plain(int x);
