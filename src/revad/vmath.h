/* tanh, and the exp inside tanh's derivative, as arithmetic the compiler can vectorise. libm's
 * are calls, one element at a time (NumPy's np.tanh calls the same libm), which makes tanh the
 * dearest row of a network's value and gradient.
 *
 * No branches, only doubles and their bits: x = k ln2 + r with |r| <= ln2 / 2 (ln2 in two
 * parts, so that k ln2 is exact), expm1(r) by its Taylor polynomial to r^13 (the next term is
 * below 2^-56 of r), and 2^k written into an exponent field. k comes from adding 1.5 * 2^52,
 * which leaves it in the low bits: no conversion to an integer, which SSE2 and AVX2 lack for
 * 64-bit lanes. The conditions only pick between values; GCC turns them into blends under
 * -fno-trapping-math (setup.py; clang's default). Within 2 ulps of mpmath for tanh, 4 for its
 * derivative (tests/test_ops.py). */
#ifndef REVAD_VMATH_H
#define REVAD_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Inlined even into the big group loops (where GCC's limits stopped at rv_vm_exp_neg, a call
 * per element): a call cannot be vectorised. */
#if defined(_MSC_VER)
#define RV_VM_INLINE static __forceinline
#else
#define RV_VM_INLINE static inline __attribute__((always_inline))
#endif

#define RV_VM_SHIFTER 6755399441055744.0   /* 1.5 * 2^52 */
#define RV_VM_INV_LN2 1.4426950408889634
#define RV_VM_LN2_HI 6.93147180369123816490e-01  /* its low 32 bits are zero: k * LN2_HI is exact */
#define RV_VM_LN2_LO 1.90821492927058770002e-10

RV_VM_INLINE double rv_vm_double(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
RV_VM_INLINE uint64_t rv_vm_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* expm1(r) for |r| <= ln2 / 2. */
RV_VM_INLINE double rv_vm_expm1_reduced(double r) {
    double q = 1.0 / 6227020800.0;
    q = q * r + 1.0 / 479001600.0;
    q = q * r + 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    return r + r * (r * q);
}

/* x = k ln2 + r: r, and 2^k (k in [-1021, 1023], x in [-708, 709]). */
RV_VM_INLINE double rv_vm_reduce(double x, double *scale) {
    const double s = x * RV_VM_INV_LN2 + RV_VM_SHIFTER;
    const double k = s - RV_VM_SHIFTER;
    *scale = rv_vm_double((rv_vm_bits(s) - rv_vm_bits(RV_VM_SHIFTER) + 1023) << 52);
    return (x - k * RV_VM_LN2_HI) - k * RV_VM_LN2_LO;
}

/* exp(x) for x <= 0; 0 below -708, where exp(x) < 2^-1021 (nan stays nan). */
RV_VM_INLINE double rv_vm_exp_neg(double x) {
    double scale;
    const double p = rv_vm_expm1_reduced(rv_vm_reduce(x < -708.0 ? -708.0 : x, &scale));
    return x < -708.0 ? 0.0 : scale + scale * p;
}

/* tanh a = t / (t + 2) with t = expm1(2|a|) >= 0: no cancellation anywhere; |a| is taken as
 * 20 beyond 20, where tanh is 1 in doubles (nan stays nan). */
RV_VM_INLINE double rv_vm_tanh(double a) {
    const double m = fabs(a);
    double scale;
    const double p = rv_vm_expm1_reduced(rv_vm_reduce(2.0 * (m > 20.0 ? 20.0 : m), &scale));
    const double t = (scale - 1.0) + scale * p;  /* 2^k - 1 is exact for k <= 53 */
    return a != a ? a : copysign(t / (t + 2.0), a);  /* -0.0 stays -0.0 */
}

/* d tanh / da = sech^2 a = 4e / (1 + e)^2 with e = exp(-2|a|); 0 beyond |a| = 354, where it is
 * below 2^-1019. */
RV_VM_INLINE double rv_vm_dtanh(double a) {
    const double e = rv_vm_exp_neg(-2.0 * fabs(a));
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}

#endif /* REVAD_VMATH_H */
