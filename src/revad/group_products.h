/* Products on the tape: dot-product block entries (DOTC, DOT) and the matrix-product group
 * (MM): their layouts in blk, their loops and their tangents. */
#ifndef REVAD_GROUP_PRODUCTS_H
#define REVAD_GROUP_PRODUCTS_H

#include "engine_common.h"
#include "kinds.h"

/* Block entries: one tape entry whose operand is a whole strided line of slots, so that a
 * reduction or a dot product costs one entry per OUTPUT, not one per input (kinds.h: DOTC, DOT;
 * `cptr` is the tape's table of constant data, NumPy arrays the tape holds). Their backward is a
 * plain loop: DOTC scales the constant (an axpy), DOT swaps the two lines (as mul does). Sums
 * along axes are groups (SUMS, group_sums.h). */

/* A matrix product group (kinds.h, MM): one entry per output, as above, but only the LAST slot
 * carries the group (RV_MM); the slots before it are RV_GROUP_SLOT placeholders. The reverse sweep
 * meets the group at its last slot, after every consumer of every output, so it can pass the
 * whole adjoint block G down at once: dA += G @ B^T, dB += A^T @ G -- one BLAS call each, where
 * DOTC/DOT entries would run m*q scalar axpys. With `blas` set rv_backward stops at the group
 * and returns its slot, so that the caller (which holds NumPy's BLAS) can take it; unset (small
 * groups), the plain loops below run in place. */

static inline double rv_mm_at(const rv_mm_operand *o, int64_t i, int64_t k, const double *val,
                              const double *const *cptr) {
    const double *base = o->src < 0 ? val : cptr[o->src];
    return base[o->off + i * o->rs + k * o->cs];
}
static inline int64_t rv_mm_index(const rv_mm_operand *o, int64_t i, int64_t k) {
    return o->off + i * o->rs + k * o->cs;
}

/* The group's backward as loops: each output's adjoint spread as DOTC/DOT entries spread it. */
static RV_NOINLINE void rv_mm_backward(const rv_mm_blk *h, const double *val,
                                       const double *const *cptr, double *adj, int clean) {
    const rv_mm_operand *a = &h->a, *b = &h->b;
    for (int64_t i = 0; i < h->m; ++i)
        for (int64_t j = 0; j < h->q; ++j) {
            const int64_t y = h->out + i * h->q + j;
            const double g = adj[y];
            if (g == 0.0) continue;
            if (clean) adj[y] = 0.0;
            for (int64_t k = 0; k < h->n; ++k) {
                if (a->src < 0) adj[rv_mm_index(a, i, k)] += g * rv_mm_at(b, k, j, val, cptr);
                if (b->src < 0) adj[rv_mm_index(b, k, j)] += g * rv_mm_at(a, i, k, val, cptr);
            }
        }
}

static inline void rv_dotc_backward(const rv_dotc_blk *h, double g, const double *const *cptr,
                                    double *adj) {
    double *d = adj + h->start;
    const double *c = cptr[h->c] + h->coff;
    const int64_t st = h->stride, n = h->count, cs = h->cstride;
    if (st == 1 && cs == 1) { for (int64_t k = 0; k < n; ++k) d[k] += g * c[k]; }
    else { for (int64_t k = 0; k < n; ++k) d[k * st] += g * c[k * cs]; }
}

static inline void rv_dot_backward(const rv_dot_blk *h, double g, const double *val, double *adj) {
    double *d0 = adj + h->start0, *d1 = adj + h->start1;
    const double *x0 = val + h->start0, *x1 = val + h->start1;
    const int64_t s0 = h->stride0, s1 = h->stride1, n = h->count;
    for (int64_t k = 0; k < n; ++k) {
        const double a = x0[k * s0], b = x1[k * s1];
        d0[k * s0] += g * b;
        d1[k * s1] += g * a;
    }
}

/* A block entry's tangent: the same sums over its lines, on tangents (DOTC scales them by the
 * constant, DOT is the product rule). */
static inline double rv_dotc_tangent(const rv_dotc_blk *h, const double *const *cptr,
                                     const double *tng) {
    const double *t = tng + h->start, *c = cptr[h->c] + h->coff;
    double s = 0.0;
    for (int64_t k = 0; k < h->count; ++k) s += RV_TNG(t[k * h->stride], c[k * h->cstride]);
    return s;
}

static inline double rv_dot_tangent(const rv_dot_blk *h, const double *val, const double *tng) {
    const double *x0 = val + h->start0, *x1 = val + h->start1;
    const double *t0 = tng + h->start0, *t1 = tng + h->start1;
    double s = 0.0;
    for (int64_t k = 0; k < h->count; ++k)
        s += RV_TNG(t0[k * h->stride0], x1[k * h->stride1])
             + RV_TNG(t1[k * h->stride1], x0[k * h->stride0]);
    return s;
}

/* A group's tangents, all at once at its last slot: dY = dA @ B + A @ dB (the product rule). */
static RV_NOINLINE void rv_mm_tangent(const rv_mm_blk *h, const double *val,
                                      const double *const *cptr, double *tng) {
    const rv_mm_operand *a = &h->a, *b = &h->b;
    for (int64_t i = 0; i < h->m; ++i)
        for (int64_t j = 0; j < h->q; ++j) {
            double s = 0.0;
            for (int64_t k = 0; k < h->n; ++k) {
                const double bkj = rv_mm_at(b, k, j, val, cptr), aik = rv_mm_at(a, i, k, val, cptr);
                if (a->src < 0) s += RV_TNG(tng[rv_mm_index(a, i, k)], bkj);
                if (b->src < 0) s += RV_TNG(tng[rv_mm_index(b, k, j)], aik);
            }
            tng[h->out + i * h->q + j] = s;
        }
}

/* Second order (sweep.h, rv_second_order): a product is bilinear, so an adjoint's tangent gt
 * passes down as the adjoint does, and the adjoint g meets the other operand's tangent (the
 * cross term): adt[x0] += gt x1 + g t1 for DOT, likewise for x1; DOTC's constant has none. */
static inline void rv_dot_second(const rv_dot_blk *h, double g, double gt, const double *val,
                                 const double *tng, double *adj, double *adt) {
    const double *x0 = val + h->start0, *x1 = val + h->start1;
    const double *t0 = tng + h->start0, *t1 = tng + h->start1;
    double *d0 = adj + h->start0, *d1 = adj + h->start1;
    double *e0 = adt + h->start0, *e1 = adt + h->start1;
    const int64_t s0 = h->stride0, s1 = h->stride1, n = h->count;
    for (int64_t k = 0; k < n; ++k) {
        const double a = x0[k * s0], b = x1[k * s1], ta = t0[k * s0], tb = t1[k * s1];
        if (g != 0.0) { d0[k * s0] += g * b; d1[k * s1] += g * a; }
        e0[k * s0] += RV_TNG(gt, b) + RV_TNG(g, tb);
        e1[k * s1] += RV_TNG(gt, a) + RV_TNG(g, ta);
    }
}

/* MM's as loops (small groups; the caller takes a `blas` group through NumPy's BLAS):
 * dA += G B^T, dB += A^T G, and their tangents dA' += G' B^T + G B'^T, dB' += A^T G' + A'^T G;
 * the outputs' adjoints and their tangents zeroed once read (the sweep is clean). */
static RV_NOINLINE void rv_mm_second(const rv_mm_blk *h, const double *val,
                                     const double *const *cptr, const double *tng, double *adj,
                                     double *adt) {
    const rv_mm_operand *a = &h->a, *b = &h->b;
    for (int64_t i = 0; i < h->m; ++i)
        for (int64_t j = 0; j < h->q; ++j) {
            const int64_t y = h->out + i * h->q + j;
            const double g = adj[y], gt = adt[y];
            if (g == 0.0 && gt == 0.0) continue;
            adj[y] = adt[y] = 0.0;
            for (int64_t k = 0; k < h->n; ++k) {
                const double bkj = rv_mm_at(b, k, j, val, cptr), aik = rv_mm_at(a, i, k, val, cptr);
                const double tbkj = b->src < 0 ? tng[rv_mm_index(b, k, j)] : 0.0;
                const double taik = a->src < 0 ? tng[rv_mm_index(a, i, k)] : 0.0;
                if (a->src < 0) {
                    if (g != 0.0) adj[rv_mm_index(a, i, k)] += g * bkj;
                    adt[rv_mm_index(a, i, k)] += RV_TNG(gt, bkj) + RV_TNG(g, tbkj);
                }
                if (b->src < 0) {
                    if (g != 0.0) adj[rv_mm_index(b, k, j)] += g * aik;
                    adt[rv_mm_index(b, k, j)] += RV_TNG(gt, aik) + RV_TNG(g, taik);
                }
            }
        }
}

#endif
