/* Sandlink guest shim: linked into every wasm module the Sandbox strategy
 * runs. It gives the host an allocator (to copy strings and buffers into
 * linear memory) and access to the guest's errno. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#define SANDLINK_EXPORT(name) __attribute__((export_name(#name), used, visibility("default")))

SANDLINK_EXPORT(sandlink_malloc)
void *sandlink_malloc(size_t size, size_t align) {
    if (align <= _Alignof(max_align_t)) return malloc(size);
    /* C11 wants the size to be a multiple of the alignment. */
    size_t rounded = (size + align - 1) / align * align;
    return rounded < size ? NULL : aligned_alloc(align, rounded);
}

SANDLINK_EXPORT(sandlink_free)
void sandlink_free(void *p) { free(p); }

SANDLINK_EXPORT(sandlink_errno_get)
int sandlink_errno_get(void) { return errno; }

SANDLINK_EXPORT(sandlink_errno_set)
void sandlink_errno_set(int e) { errno = e; }
