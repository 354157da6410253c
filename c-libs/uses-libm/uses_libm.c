/* A library that uses the maths library: built twice by c-libs/build.rs,
 * once naming libm with `.link_lib("m")` and once without, so the tests see
 * what each strategy makes of the difference. */
#include <math.h>

/* volatile: the compiler must call log2, not fold it. */
double um_log2(double x) {
    volatile double v = x;
    return log2(v);
}
