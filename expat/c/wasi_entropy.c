/* arc4random_buf for expat's hash salt under WASI, where wasi-libc does not
 * declare one: entropy comes from WASI random_get. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <wasi/api.h>

void arc4random_buf(void *buf, size_t n) {
    if (__wasi_random_get((uint8_t *)buf, n) != 0) abort();
}
