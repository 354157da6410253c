/* <setjmp.h> for wasm32-wasi, from Sandlink (sandlink-build puts it ahead of
 * the sysroot's headers in every wasm compile).
 *
 * Debian's wasi-libc has no <setjmp.h>. clang lowers setjmp and longjmp to
 * wasm exception handling (sandlink-build compiles with
 * -mexception-handling -mllvm -wasm-enable-sjlj), calling a small runtime
 * that the guest shim's sjlj.c provides, and sandlink-build rewrites the
 * result into the standard exception encoding that wasmtime runs. A
 * longjmp unwinds the wasm frames between it and its setjmp; it cannot
 * cross a host callback (the call that made it fails with an error naming
 * the longjmp instead). Signal masks do not exist in WASI, so sigsetjmp's
 * mask argument is ignored. */
#ifndef SANDLINK_SETJMP_H
#define SANDLINK_SETJMP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Room for the runtime's record (sjlj.c): the invocation, the label and the
 * value in flight. */
typedef struct {
    unsigned long long __sandlink_opaque[4];
} __sandlink_jmp_buf;

typedef __sandlink_jmp_buf jmp_buf[1];
typedef __sandlink_jmp_buf sigjmp_buf[1];

int setjmp(jmp_buf env) __attribute__((returns_twice));
_Noreturn void longjmp(jmp_buf env, int val);

#define _setjmp(env) setjmp(env)
#define _longjmp(env, val) longjmp(env, val)
#define sigsetjmp(env, savemask) setjmp(env)
#define siglongjmp(env, val) longjmp(env, val)

#ifdef __cplusplus
}
#endif

#endif
