/* Cutting a group for threads: which pieces of a backward write disjoint adjoints. */
#ifndef REVAD_PARALLEL_H
#define REVAD_PARALLEL_H

#include "group_ew.h"

/* Threads may each take parts of a group's backward if no adjoint is written from two parts.
 * A forward writes only the group's own outputs: any cut will do. A backward is cut along one
 * dimension d of the output (ranges of indices along d): each slot operand must move along d (a
 * nonzero stride there) and, broadcast dimensions aside, reach each slot at most once (its
 * other dimensions cannot bring it back to a slot of another part);
 * two slot operands must be one view or lie apart. So y = x[None, :] * A splits along A's
 * columns (x's adjoints sum the rows, each in one part); x[1:] * x[:-1] does not split. */
static inline int rv_view_injective(int64_t nd, const int64_t *shape, const int64_t *st,
                                    int64_t *lo, int64_t *hi) {
    int64_t ext[RV_EW_MAXD + 1], len[RV_EW_MAXD + 1], m = 0;
    *lo = *hi = 0;
    for (int64_t d = 0; d < nd; ++d) {
        if (shape[d] <= 1 || st[d] == 0) continue;  /* broadcast dimensions aside */
        const int64_t a = st[d] < 0 ? -st[d] : st[d];
        int64_t j = m++;  /* insertion sort by |stride| */
        while (j > 0 && ext[j - 1] > a) { ext[j] = ext[j - 1]; len[j] = len[j - 1]; --j; }
        ext[j] = a; len[j] = shape[d];
        if (st[d] < 0) *lo += st[d] * (shape[d] - 1); else *hi += st[d] * (shape[d] - 1);
    }
    int64_t reach = 0;  /* the farthest slot the dimensions below reach */
    for (int64_t j = 0; j < m; ++j) {
        if (ext[j] <= reach) return 0;
        reach += ext[j] * (len[j] - 1);
    }
    return 1;
}

/* The dimension to cut an elementwise group's backward along, or -1: it may not be cut. */
static inline int64_t rv_ew_split_dim(const rv_ew_blk *h) {
    const int64_t nd = h->nd, *shape = h->shape;
    const int arity = rv_ew_arity(h->op);
    const rv_ew_operand *q[2] = {rv_ew_operand_at(h, 0), rv_ew_operand_at(h, 1)};
    int64_t lo[2], hi[2], off[2];
    int slot[2] = {0, 0}, slots = 0;
    for (int j = 0; j < arity; ++j) {
        if (q[j]->src != RV_SRC_SLOTS) continue;
        if (!rv_view_injective(nd, shape, q[j]->stride, lo + j, hi + j)) return -1;
        off[j] = q[j]->off;
        slot[j] = 1;
        ++slots;
    }
    if (slots == 2 && memcmp(q[0], q[1], (size_t)(2 + nd) * sizeof(int64_t)) != 0
        && !(off[0] + hi[0] < off[1] + lo[1] || off[1] + hi[1] < off[0] + lo[0]))
        return -1;
    for (int64_t d = 0; d < nd; ++d) {
        if (shape[d] <= 1) continue;
        if ((!slot[0] || q[0]->stride[d] != 0) && (!slot[1] || q[1]->stride[d] != 0)) return d;
    }
    return -1;
}

/* Backward of the outputs whose index along dimension d is in [a, b): one run of C-order
 * outputs per index of the dimensions before d. */
static RV_NOINLINE void rv_ew_backward_box(const rv_ew_blk *p, const double *val,
                                           const double *cst, const double *const *cptr,
                                           double *adj, int clean, int64_t d, int64_t a,
                                           int64_t b, const rv_sums_blk *ps, int zero) {
    const int64_t nd = p->nd, *shape = p->shape;
    int64_t inner = 1, outer = 1;
    for (int64_t j = d + 1; j < nd; ++j) inner *= shape[j];
    for (int64_t j = 0; j < d; ++j) outer *= shape[j];
    const int64_t span = shape[d] * inner;
    for (int64_t o = 0; o < outer; ++o)
        rv_ew_backward_part(p, val, cst, cptr, adj, clean, o * span + a * inner,
                            o * span + b * inner, ps, zero);
}

static inline int rv_sums_splittable(const rv_sums_blk *p) {
    int64_t shape[RV_EW_MAXD + 1], st[RV_EW_MAXD + 1], lo, hi;
    const int64_t nd = p->nd, *ost = rv_sums_ostride(p);
    for (int64_t d = 0; d < nd; ++d) {  /* outputs are split anywhere: none may be broadcast */
        shape[d] = p->shape[d]; st[d] = ost[d];
        if (shape[d] > 1 && st[d] == 0) return 0;
    }
    shape[nd] = p->count; st[nd] = p->stride;  /* a broadcast line: one part adds it */
    return rv_view_injective(nd + 1, shape, st, &lo, &hi);
}

#endif
