/* Sandlink's configuration of expat 2.5.0, the same for the native and the
 * wasm32-wasi build (replaces the header expat's configure would generate). */
#ifndef EXPAT_CONFIG_H
#define EXPAT_CONFIG_H 1

#define BYTEORDER 1234
#define HAVE_FCNTL_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_MEMORY_H 1
#define HAVE_STDINT_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRINGS_H 1
#define HAVE_STRING_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_UNISTD_H 1
#define STDC_HEADERS 1

#define PACKAGE "expat"
#define PACKAGE_NAME "expat"
#define PACKAGE_TARNAME "expat"
#define PACKAGE_VERSION "2.5.0"
#define PACKAGE_STRING "expat 2.5.0"

/* Features: as Debian's libexpat1 and CPython's pyexpat. */
#define XML_CONTEXT_BYTES 1024
#define XML_DTD 1
#define XML_NS 1

/* Hash-salt entropy: glibc (2.36+) has arc4random_buf; for WASI the guest
 * gets one from wasi_entropy.c, backed by WASI random_get. */
#define HAVE_ARC4RANDOM_BUF 1
#ifdef __wasi__
#include <stddef.h>
void arc4random_buf(void *buf, size_t n);
#endif

#endif
