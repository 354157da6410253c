/* The runtime clang's setjmp/longjmp lowering calls (LLVM 19's ABI for
 * -mllvm -wasm-enable-sjlj with wasm exception handling), written for
 * Sandlink. Compiled by sandlink-build with -mexception-handling into every
 * wasm module; the linker drops it when nothing calls setjmp.
 *
 * A function that calls setjmp gets a fresh invocation id (the address of a
 * slot in its frame) and numbers its setjmp calls. `__wasm_setjmp` records
 * both in the jmp_buf; `longjmp` throws the `__c_longjmp` exception carrying
 * the jmp_buf and the value; each function on the way out that called
 * setjmp catches it and asks `__wasm_setjmp_test` whether the jmp_buf is
 * one of its own (by invocation id): if so it resumes at that setjmp,
 * otherwise it throws again. An exception that no frame claims (a longjmp
 * to a setjmp whose function returned, or across a host callback) reaches
 * the host, which reports it as an error. */
#include <stdint.h>

struct sandlink_sjlj {
    void *invocation;
    uint32_t label;
    /* What the exception carries: the handler reads env, then val. */
    struct {
        void *env;
        int val;
    } thrown;
};

_Static_assert(sizeof(struct sandlink_sjlj) <= 32, "jmp_buf (setjmp.h) is too small");

void __wasm_setjmp(void *env, uint32_t label, void *invocation) {
    struct sandlink_sjlj *j = env;
    j->invocation = invocation;
    j->label = label;
}

uint32_t __wasm_setjmp_test(void *env, void *invocation) {
    struct sandlink_sjlj *j = env;
    return j->invocation == invocation ? j->label : 0;
}

_Noreturn void __wasm_longjmp(void *env, int val) {
    struct sandlink_sjlj *j = env;
    j->thrown.env = env;
    /* longjmp(env, 0) makes setjmp return 1 (C11 7.13.2.1). */
    j->thrown.val = val == 0 ? 1 : val;
    __builtin_wasm_throw(1, &j->thrown);
}

/* For code that takes longjmp's address (a direct call is lowered to
 * __wasm_longjmp by the compiler). */
__attribute__((weak)) _Noreturn void longjmp(void *env, int val) {
    __wasm_longjmp(env, val);
}
