/* What every group and sweep header shares: inlining, vectorisation promises, atomic claims,
 * and the reach of a strided view. */
#ifndef REVAD_ENGINE_COMMON_H
#define REVAD_ENGINE_COMMON_H

#include "ops_table.h"

/* Group sweeps are big loops run once per array op: kept out of line, so that the per-entry
 * loop of the scalar sweeps stays small and tight. */
#if defined(_MSC_VER)
#define RV_NOINLINE __declspec(noinline)
#else
#define RV_NOINLINE __attribute__((noinline))
#endif

/* A loop template: a function whose `const int` arguments (an op code, which operands are
 * slots, a unit stride) are constants at each call, so that each call, inlined, compiles to its
 * own loop with the dead branches gone. */
#if defined(_MSC_VER)
#define RV_INLINE __forceinline
#else
#define RV_INLINE inline __attribute__((always_inline))
#endif

/* RV_IVDEP: the loop after it writes no element that another iteration reads (the caller
 * has checked), so the compiler may vectorise it. */
#if defined(__clang__)
#define RV_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define RV_IVDEP _Pragma("GCC ivdep")
#elif defined(_MSC_VER)
#define RV_IVDEP __pragma(loop(ivdep))
#else
#define RV_IVDEP
#endif

/* A zero tangent passes nothing on (see rv_forward_tangent). */
#define RV_TNG(t, d) ((t) == 0.0 ? 0.0 : (t) * (d))

/* Work shared by threads is cut into pieces that each thread claims from one counter, the next
 * piece when it is free: a thread that another process (or a BLAS thread spinning on the same
 * core) slows down takes fewer pieces instead of holding the others up. Returns the counter's
 * old value. */
#if defined(_MSC_VER)
#include <intrin.h>
static inline int64_t rv_claim(int64_t *next) {
    return _InterlockedExchangeAdd64((volatile __int64 *)next, 1);
}
#else
static inline int64_t rv_claim(int64_t *next) { return __atomic_fetch_add(next, 1, __ATOMIC_RELAXED); }
#endif

/* A lowest value that threads lower (a batch's first failing row): rv_lower_to lowers *p to v
 * if v is lower, rv_peek reads it. */
#if defined(_MSC_VER)
static inline void rv_lower_to(int64_t *p, int64_t v) {
    int64_t old = *(volatile int64_t *)p;
    while (v < old) {
        const int64_t seen = _InterlockedCompareExchange64((volatile __int64 *)p, v, old);
        if (seen == old) break;
        old = seen;
    }
}
static inline int64_t rv_peek(int64_t *p) { return *(volatile int64_t *)p; }
#else
static inline void rv_lower_to(int64_t *p, int64_t v) {
    int64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < old
           && !__atomic_compare_exchange_n(p, &old, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}
static inline int64_t rv_peek(int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
#endif

/* The lowest and highest slots that a view (off, nd extents, strides) reaches; 0 if empty. */
static inline int rv_view_span(int64_t off, int64_t nd, const int64_t *shape, const int64_t *st,
                               int64_t *lo, int64_t *hi) {
    *lo = *hi = off;
    for (int64_t d = 0; d < nd; ++d) {
        if (shape[d] <= 0) return 0;
        const int64_t r = st[d] * (shape[d] - 1);
        if (r < 0) *lo += r; else *hi += r;
    }
    return 1;
}
static inline int rv_meets(int64_t lo, int64_t hi, int64_t a, int64_t b) {
    return lo < b && hi >= a;
}

/* Whether x[0, n) is all zero (-0.0 too), or (any) has a zero: a block at a time, so that
 * the first block that answers ends it and each block's test vectorises. */
static inline int rv_all_zero(const double *x, int64_t n) {
    for (int64_t k0 = 0; k0 < n; k0 += 64) {
        const int64_t k1 = n - k0 < 64 ? n : k0 + 64;
        uint64_t nz = 0;
        for (int64_t k = k0; k < k1; ++k) nz |= rv_vm_bits(x[k]) << 1;
        if (nz) return 0;
    }
    return 1;
}
static inline int rv_any_zero(const double *x, int64_t n) {
    for (int64_t k0 = 0; k0 < n; k0 += 64) {
        const int64_t k1 = n - k0 < 64 ? n : k0 + 64;
        int z = 0;
        for (int64_t k = k0; k < k1; ++k) z |= x[k] == 0.0;
        if (z) return 1;
    }
    return 0;
}

#endif
