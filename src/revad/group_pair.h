/* The ufunc-pair group (PAIR): a SciPy ufunc over whole arrays (gammaln, jv, ...), whose values
 * and partials SciPy computed at record time (revad/scipy/_rows.py, _array_special.pxi). The
 * tape owns the partials (one float64 array per operand on the tape, in cptr), so the backward,
 * adj[a(k)] += adj[y(k)] * d[k], and the tangent run here in C without the GIL, as every other
 * group's do. Layout: kinds.h's rv_pair_blk and an rv_pair_operand per operand.
 *
 * As in the elementwise group, a zero adjoint (or tangent) passes nothing on: 0 * inf is not
 * taken (gammaln's partial at 0 is inf).
 *
 * Its values and partials hold at the recorded point only: C cannot recompute them. A sweep
 * that re-evaluates a tape at new inputs (a replay, a second-order sweep) must stop here and
 * ask Python (SciPy) again, as the tangent sweep stops at a CALL group. */
#ifndef REVAD_GROUP_PAIR_H
#define REVAD_GROUP_PAIR_H

#include <string.h>

#include "engine_common.h"
#include "kinds.h"

#define RV_PAIR_MAXD 64

/* Runs the body once per line of the innermost dimension, declaring yk (the line's first
 * output index, 0-based) and oa (the operand's slot for it); an odometer steps the outer
 * dimensions once a line. */
#define RV_PAIR_FOR_LINES(h, q, yk, oa, ...) do { \
    const int64_t nd_ = (h)->nd, len_ = (h)->shape[nd_ - 1]; \
    int64_t idx_[RV_PAIR_MAXD] = {0}, oa = (q)->off; \
    for (int64_t yk = 0; yk < (h)->n; yk += len_) { \
        __VA_ARGS__ \
        for (int64_t d_ = nd_ - 2; d_ >= 0; --d_) { \
            oa += (q)->stride[d_]; \
            if (++idx_[d_] < (h)->shape[d_]) break; \
            oa -= (q)->stride[d_] * (h)->shape[d_]; \
            idx_[d_] = 0; \
        } \
    } } while (0)

/* Reverse: the adjoints of the n outputs times each operand's partials into its adjoints;
 * `clean` zeroes the outputs' adjoints after (sweep.h, rv_backward). */
static inline void rv_pair_backward(const rv_pair_blk *h, const double *const *cptr, double *adj,
                                    int clean) {
    const double *G = adj + h->out;
    const int64_t len = h->shape[h->nd - 1];
    for (int64_t j = 0; j < h->nargs; ++j) {
        const rv_pair_operand *q = rv_pair_operand_at(h, j);
        const double *D = cptr[q->d];
        const int64_t s = q->stride[h->nd - 1];
        RV_PAIR_FOR_LINES(h, q, yk, oa, {
            for (int64_t k = 0; k < len; ++k) {
                const double g = G[yk + k];
                if (g != 0.0) adj[oa + k * s] += g * D[yk + k];
            }
        });
    }
    if (clean) memset(adj + h->out, 0, (size_t)h->n * sizeof(double));
}

/* Forward mode: tng(y[k]) = sum over operands of d[k] * tng(operand at k). */
static inline void rv_pair_tangent(const rv_pair_blk *h, const double *const *cptr, double *tng) {
    double *T = tng + h->out;
    const int64_t len = h->shape[h->nd - 1];
    memset(T, 0, (size_t)h->n * sizeof(double));
    for (int64_t j = 0; j < h->nargs; ++j) {
        const rv_pair_operand *q = rv_pair_operand_at(h, j);
        const double *D = cptr[q->d];
        const int64_t s = q->stride[h->nd - 1];
        RV_PAIR_FOR_LINES(h, q, yk, oa, {
            for (int64_t k = 0; k < len; ++k) T[yk + k] += RV_TNG(tng[oa + k * s], D[yk + k]);
        });
    }
}

/* Whether an operand may be a slot in [a, b) (the fusion walk, kind_table.h). */
static inline int rv_pair_reads_slots(const rv_pair_blk *h, int64_t a, int64_t b) {
    int64_t lo, hi;
    for (int64_t j = 0; j < h->nargs; ++j) {
        const rv_pair_operand *q = rv_pair_operand_at(h, j);
        if (rv_view_span(q->off, h->nd, h->shape, q->stride, &lo, &hi) && rv_meets(lo, hi, a, b))
            return 1;
    }
    return 0;
}

#endif
