/* WASI's gaps, filled for Sandlink: functions that wasi-libc's headers
 * declare (so C code using them compiles) but that its library does not
 * define (so the link would fail). Each fails at run time the way POSIX
 * says it may when the system cannot do it, with errno ENOSYS. They are
 * weak: a definition of the library's own wins. sandlink-build compiles
 * this into every wasm module; the linker drops what nothing calls.
 *
 * The list, for the README: system, tmpfile, tmpnam, vfork, flock,
 * getlogin, gethostname, ctermid, cuserid, mlock, munlock, mprotect, msync,
 * madvise. (signal, raise, clock, times, getrusage, getpid, mmap and munmap
 * come from wasi-libc's emulation libraries, which sandlink-build enables.) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#define GAP __attribute__((weak))

/* No command processor: system(NULL) says so with 0 (C11 7.22.4.8). */
GAP int system(const char *command) {
    if (command == NULL) {
        return 0;
    }
    errno = ENOSYS;
    return -1;
}

GAP FILE *tmpfile(void) {
    errno = ENOSYS;
    return NULL;
}

GAP char *tmpnam(char *s) {
    (void)s;
    errno = ENOSYS;
    return NULL;
}

GAP pid_t vfork(void) {
    errno = ENOSYS;
    return -1;
}

GAP int flock(int fd, int op) {
    (void)fd;
    (void)op;
    errno = ENOSYS;
    return -1;
}

GAP char *getlogin(void) {
    errno = ENOSYS;
    return NULL;
}

GAP int gethostname(char *name, size_t len) {
    (void)name;
    (void)len;
    errno = ENOSYS;
    return -1;
}

/* An empty string: no controlling terminal can be named. */
GAP char *ctermid(char *s) {
    static char none[1];
    if (s != NULL) {
        s[0] = '\0';
        return s;
    }
    return none;
}

GAP char *cuserid(char *s) {
    (void)s;
    errno = ENOSYS;
    return NULL;
}

GAP int mlock(const void *addr, size_t len) {
    (void)addr;
    (void)len;
    errno = ENOSYS;
    return -1;
}

GAP int munlock(const void *addr, size_t len) {
    (void)addr;
    (void)len;
    errno = ENOSYS;
    return -1;
}

GAP int mprotect(void *addr, size_t len, int prot) {
    (void)addr;
    (void)len;
    (void)prot;
    errno = ENOSYS;
    return -1;
}

GAP int msync(void *addr, size_t len, int flags) {
    (void)addr;
    (void)len;
    (void)flags;
    errno = ENOSYS;
    return -1;
}

GAP int madvise(void *addr, size_t len, int advice) {
    (void)addr;
    (void)len;
    (void)advice;
    errno = ENOSYS;
    return -1;
}
