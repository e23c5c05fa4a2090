/* Products on the tape: dot-product block entries (DOTC, DOT) and the matrix-product group
 * (MM): their layouts in blk, their loops and their tangents. */
#ifndef REVAD_GROUP_PRODUCTS_H
#define REVAD_GROUP_PRODUCTS_H

#include "engine_common.h"

/* Block entries: one tape entry whose operand is a whole strided line of slots, so that a
 * reduction or a dot product costs one entry per OUTPUT, not one per input. Such an entry's arg0
 * indexes the tape's int64 side table `blk`, where its parameters are; `cptr` is the tape's table
 * of constant data (NumPy arrays the tape holds), read by DOTC. Strides count slots or doubles.
 *
 *   DOTC  blk: start, stride, count, c, coff, cstride   y = sum_k x[..] * cptr[c][coff + k*cstride]
 *   DOT   blk: start0, stride0, start1, stride1, count   y = sum_k x[start0 + ..] * x[start1 + ..]
 *
 * Their backward is a plain loop: DOTC scales the constant (an axpy), DOT swaps the two lines
 * (as mul does). Sums along axes are groups (SUMS, below). */
#define RV_BLK_DOTC 6
#define RV_BLK_DOT 5

/* A matrix product group: Y = A @ B, A (m, n), B (n, q), Y on m*q consecutive slots (C order).
 * One entry per output, as above, but only the LAST slot carries the group (RV_MM); the slots
 * before it are RV_MMP placeholders. The reverse sweep meets the group at its last slot, after
 * every consumer of every output, so it can pass the whole adjoint block G down at once:
 * dA += G @ B^T, dB += A^T @ G -- one BLAS call each, where DOTC/DOT entries would run m*q
 * scalar axpys. An operand is either slots (c < 0: a strided block of val/adj) or a constant
 * (cptr[c]); strides count slots or doubles.
 *
 *   MM  blk: out, m, n, q, ca, a0, ars, acs, cb, b0, brs, bcs, blas
 *
 * `blas` set: rv_backward stops at the group and returns its slot, so that the caller (which
 * holds NumPy's BLAS) can take it; unset (small groups), the plain loops below run in place. */
#define RV_BLK_MM 13

static inline double rv_mm_at(const int64_t *o, int64_t i, int64_t k, const double *val,
                              const double *const *cptr) {
    const double *base = o[0] < 0 ? val : cptr[o[0]];
    return base[o[1] + i * o[2] + k * o[3]];
}

/* Y = A @ B into val[out..]: what a replay re-evaluates. */
static inline void rv_mm_forward(const int64_t *p, double *val, const double *const *cptr) {
    const int64_t m = p[1], n = p[2], q = p[3];
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < q; ++j) {
            double s = 0.0;
            for (int64_t k = 0; k < n; ++k)
                s += rv_mm_at(p + 4, i, k, val, cptr) * rv_mm_at(p + 8, k, j, val, cptr);
            val[p[0] + i * q + j] = s;
        }
}

/* The group's backward as loops: each output's adjoint spread as DOTC/DOT entries spread it. */
static RV_NOINLINE void rv_mm_backward(const int64_t *p, const double *val, const double *const *cptr,
                                  double *adj, int clean) {
    const int64_t m = p[1], n = p[2], q = p[3];
    const int64_t *a = p + 4, *b = p + 8;
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < q; ++j) {
            const double g = adj[p[0] + i * q + j];
            if (g == 0.0) continue;
            if (clean) adj[p[0] + i * q + j] = 0.0;
            for (int64_t k = 0; k < n; ++k) {
                if (a[0] < 0) adj[a[1] + i * a[2] + k * a[3]] += g * rv_mm_at(b, k, j, val, cptr);
                if (b[0] < 0) adj[b[1] + k * b[2] + j * b[3]] += g * rv_mm_at(a, i, k, val, cptr);
            }
        }
}

static inline double rv_block_forward(int op, const int64_t *p, const double *val,
                                      const double *const *cptr) {
    double s = 0.0;
    switch (op) {
    case RV_DOTC: {
        const double *x = val + p[0], *c = cptr[p[3]] + p[4];
        for (int64_t k = 0; k < p[2]; ++k) s += x[k * p[1]] * c[k * p[5]];
    } break;
    case RV_DOT: {
        const double *x = val + p[0], *z = val + p[2];
        for (int64_t k = 0; k < p[4]; ++k) s += x[k * p[1]] * z[k * p[3]];
    } break;
    default: return NAN;
    }
    return s;
}

static inline void rv_block_backward(int op, const int64_t *p, double g, const double *val,
                                     const double *const *cptr, double *adj) {
    switch (op) {
    case RV_DOTC: {
        double *d = adj + p[0];
        const double *c = cptr[p[3]] + p[4];
        const int64_t st = p[1], n = p[2], cs = p[5];
        if (st == 1 && cs == 1) { for (int64_t k = 0; k < n; ++k) d[k] += g * c[k]; }
        else { for (int64_t k = 0; k < n; ++k) d[k * st] += g * c[k * cs]; }
    } break;
    case RV_DOT: {
        double *d0 = adj + p[0], *d1 = adj + p[2];
        const double *x0 = val + p[0], *x1 = val + p[2];
        const int64_t s0 = p[1], s1 = p[3], n = p[4];
        for (int64_t k = 0; k < n; ++k) {
            const double a = x0[k * s0], b = x1[k * s1];
            d0[k * s0] += g * b;
            d1[k * s1] += g * a;
        }
    } break;
    default: break;
    }
}

/* A block entry's tangent: the same sums over its lines, on tangents (DOTC scales them by the
 * constant, DOT is the product rule). */
static inline double rv_block_tangent(int op, const int64_t *p, const double *val,
                                      const double *const *cptr, const double *tng) {
    double s = 0.0;
    switch (op) {
    case RV_DOTC: {
        const double *t = tng + p[0], *c = cptr[p[3]] + p[4];
        for (int64_t k = 0; k < p[2]; ++k) s += RV_TNG(t[k * p[1]], c[k * p[5]]);
    } break;
    case RV_DOT: {
        const double *x0 = val + p[0], *x1 = val + p[2], *t0 = tng + p[0], *t1 = tng + p[2];
        for (int64_t k = 0; k < p[4]; ++k)
            s += RV_TNG(t0[k * p[1]], x1[k * p[3]]) + RV_TNG(t1[k * p[3]], x0[k * p[1]]);
    } break;
    default: return NAN;
    }
    return s;
}

/* A group's tangents, all at once at its last slot: dY = dA @ B + A @ dB (the product rule). */
static RV_NOINLINE void rv_mm_tangent(const int64_t *p, const double *val, const double *const *cptr,
                                 double *tng) {
    const int64_t m = p[1], n = p[2], q = p[3];
    const int64_t *a = p + 4, *b = p + 8;
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < q; ++j) {
            double s = 0.0;
            for (int64_t k = 0; k < n; ++k) {
                if (a[0] < 0) s += RV_TNG(tng[a[1] + i * a[2] + k * a[3]], rv_mm_at(b, k, j, val, cptr));
                if (b[0] < 0) s += RV_TNG(tng[b[1] + k * b[2] + j * b[3]], rv_mm_at(a, i, k, val, cptr));
            }
            tng[p[0] + i * q + j] = s;
        }
}

#endif
