/* Sandlink guest shim: linked into every wasm module the Sandbox strategy
 * runs. It gives the host an allocator (to copy strings and buffers into
 * linear memory) and access to the guest's errno.
 *
 * The export names are not written here: sandlink-build passes them as
 * SANDLINK_ABI_* macros from its `abi` module, the one definition the
 * runtime reads too. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#if !defined(SANDLINK_ABI_MALLOC) || !defined(SANDLINK_ABI_FREE) || \
    !defined(SANDLINK_ABI_ERRNO_GET) || !defined(SANDLINK_ABI_ERRNO_SET)
#error "build the guest shim with sandlink-build: it defines the SANDLINK_ABI_* export names"
#endif

#define SANDLINK_EXPORT(name) __attribute__((export_name(name), used, visibility("default")))

SANDLINK_EXPORT(SANDLINK_ABI_MALLOC)
void *sandlink_shim_malloc(size_t size, size_t align) {
    if (align <= _Alignof(max_align_t)) return malloc(size);
    /* C11 wants the size to be a multiple of the alignment. */
    size_t rounded = (size + align - 1) / align * align;
    return rounded < size ? NULL : aligned_alloc(align, rounded);
}

SANDLINK_EXPORT(SANDLINK_ABI_FREE)
void sandlink_shim_free(void *p) { free(p); }

SANDLINK_EXPORT(SANDLINK_ABI_ERRNO_GET)
int sandlink_shim_errno_get(void) { return errno; }

SANDLINK_EXPORT(SANDLINK_ABI_ERRNO_SET)
void sandlink_shim_errno_set(int e) { errno = e; }
