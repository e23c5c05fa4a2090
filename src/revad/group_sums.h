/* The sum group (SUMS): sums along axes, pairwise within each line, computed from a lazy
 * elementwise group's operands where it sums one, and swept together with it (fusion). */
#ifndef REVAD_GROUP_SUMS_H
#define REVAD_GROUP_SUMS_H

#include "group_ew.h"

/* A sum group: n sums over strided lines, one per output (a reduction along some axes), on n
 * consecutive output slots (C order of the kept axes), carried by the last (RV_SUMS) like the
 * groups above. Output k sums `count` slots `stride` apart from its start; the starts step
 * through the kept axes by their strides (an odometer), so the group costs O(nd) parameters,
 * not three per output as one block entry per output would (kinds.h, rv_sums_blk).
 *
 * Each line is summed in one fixed order (rv_sum_line), so the same inputs give the same bits. */

#define RV_SUMS_FOR_LINES(p, k0, k1, ...) do { \
    const int64_t nd_ = (p)->nd, *shp_ = (p)->shape, *ost_ = rv_sums_ostride(p); \
    const int64_t count = (p)->count, stride = (p)->stride; \
    int64_t idx_[RV_EW_MAXD] = {0}, start = (p)->first, r_ = (k0); \
    (void)count; (void)stride; \
    for (int64_t d_ = nd_ - 1; d_ >= 0 && (k0) < (k1); --d_) { \
        idx_[d_] = r_ % shp_[d_]; r_ /= shp_[d_]; start += idx_[d_] * ost_[d_]; \
    } \
    for (int64_t k = (k0); k < (k1); ++k) { \
        const int64_t yo = (p)->out + k; \
        __VA_ARGS__ \
        for (int64_t d_ = nd_ - 1; d_ >= 0; --d_) { \
            start += ost_[d_]; \
            if (++idx_[d_] < shp_[d_]) break; \
            start -= ost_[d_] * shp_[d_]; \
            idx_[d_] = 0; \
        } \
    } } while (0)

/* A line of up to 128 (count n, stride s): eight running sums, then the rest; inline, so that
 * the short unit-stride lines that come by the hundred thousand cost no call. */
RV_VM_INLINE double rv_sum_block(const double *x, int64_t n, int64_t s) {
    if (n < 8) {
        double r = 0.0;
        for (int64_t j = 0; j < n; ++j) r += x[j * s];
        return r;
    }
    double r0 = x[0], r1 = x[s], r2 = x[2 * s], r3 = x[3 * s];
    double r4 = x[4 * s], r5 = x[5 * s], r6 = x[6 * s], r7 = x[7 * s];
    int64_t j = 8;
    for (; j + 8 <= n; j += 8) {
        const double *y = x + j * s;
        r0 += y[0]; r1 += y[s]; r2 += y[2 * s]; r3 += y[3 * s];
        r4 += y[4 * s]; r5 += y[5 * s]; r6 += y[6 * s]; r7 += y[7 * s];
    }
    double t = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; j < n; ++j) t += x[j * s];
    return t;
}

/* One line's sum, pairwise as NumPy sums (eight running sums in blocks of up to 128, halves
 * above): rounding errors grow as log n, not n, and the eight sums vectorise. A fixed order
 * still, so the same inputs give the same bits. */
static inline int64_t rv_sum_half(int64_t n) { return n / 2 - (n / 2) % 8; }
static double rv_sum_line(const double *x, int64_t n, int64_t s) {
    if (n <= 128) return rv_sum_block(x, n, s);
    const int64_t h = rv_sum_half(n);
    return rv_sum_line(x, h, s) + rv_sum_line(x + h * s, n - h, s);
}

/* rv_sum_line of the group's next n elements, made a block of up to 128 at a time. */
static double rv_sum_lazy(const rv_ew *e, rv_ew_cursor *c, int64_t n) {
    if (n <= 128) {
        double x[128];
        rv_ew_fill(e, c, x, n);
        return rv_sum_block(x, n, 1);
    }
    const int64_t h = rv_sum_half(n);
    const double left = rv_sum_lazy(e, c, h);  /* first: the cursor moves in order */
    return left + rv_sum_lazy(e, c, n - h);
}

/* Outputs [k0, k1) of the group. */
static RV_NOINLINE void rv_sums_forward_part(const rv_sums_blk *p, double *val, int64_t k0,
                                             int64_t k1) {
    if (p->stride == 1 && p->count <= 128) {
        RV_SUMS_FOR_LINES(p, k0, k1, { val[yo] = rv_sum_block(val + start, count, 1); });
        return;
    }
    RV_SUMS_FOR_LINES(p, k0, k1, {
        val[yo] = stride == 1 ? rv_sum_line(val + start, count, 1)
                              : rv_sum_line(val + start, count, stride);
    });
}

static RV_NOINLINE void rv_sums_backward_part(const rv_sums_blk *p, double *adj, int clean,
                                              int64_t k0, int64_t k1) {
    RV_SUMS_FOR_LINES(p, k0, k1, {
        const double g = adj[yo];
        if (g != 0.0) {
            if (clean) adj[yo] = 0.0;
            double *d = adj + start;
            if (stride == 1) { for (int64_t j = 0; j < count; ++j) d[j] += g; }
            else { for (int64_t j = 0; j < count; ++j) d[j * stride] += g; }
        }
    });
}

static inline void rv_sums_backward(const rv_sums_blk *p, double *adj, int clean) {
    rv_sums_backward_part(p, adj, clean, 0, p->n);
}

/* Whether the sum group ps reads the outputs of the elementwise group q whole and in order,
 * `count` consecutive ones to each of its outputs (a sum over the last axis, or over all). */
static inline int rv_sums_over(const rv_sums_blk *ps, const rv_ew_blk *q) {
    const int64_t n = ps->n, nd = ps->nd, *shp = ps->shape, *ost = rv_sums_ostride(ps);
    const int64_t count = ps->count, stride = ps->stride;
    if (count < 1 || (stride != 1 && count > 1) || q->out != ps->first || q->n != count * n)
        return 0;
    for (int64_t d = nd - 1, step = count; d >= 0; step *= shp[d], --d)
        if (shp[d] > 1 && ost[d] != step) return 0;
    return 1;
}

/* Outputs [k0, k1) of the sum group ps over the outputs of the lazy elementwise group pe
 * (rv_ew_lazy, rv_sums_over), computed from pe's operands: the same additions in the same
 * order as summing pe's values, so the same bits. */
static RV_INLINE void rv_sums_lazy_lines(const int op, const rv_ew *e, const rv_sums_blk *ps,
                                         double *val, int64_t e0, int64_t e1) {
    const int64_t sa = e->s[0], sb = rv_ew_sb(e);
    RV_EW_FOR_LINES(e, e0, e1, line, yo, oa, ob, k0, k1, {
        double Y[128];
        const double *A = e->v[0] + oa;
        rv_ewf_range(op, Y, A, rv_ew_b(e, A, ob), sa, sb, k0, k1);
        val[ps->out + line] = rv_sum_block(Y, k1, 1);
    });
}
#define RV_EWS_U(N, name, f, ...) \
    case RV_##N: if (rv_ew_lazy(RV_##N)) rv_sums_lazy_lines(RV_##N, e, ps, val, e0, e1); break;
#define RV_EWS_B(N, name, f, da, db, ...) \
    case RV_##N: if (rv_ew_lazy(RV_##N)) rv_sums_lazy_lines(RV_##N, e, ps, val, e0, e1); break;
static RV_NOINLINE void rv_sums_forward_lazy(const rv_sums_blk *ps, const rv_ew_blk *pe,
                                             double *val, const double *cst,
                                             const double *const *cptr, int64_t k0, int64_t k1) {
    rv_ew ew, *e = &ew;
    const int64_t count = ps->count;
    if (k0 >= k1) return;
    rv_ew_init(e, pe, val, cst, cptr);
    if (count == e->len && count <= 128) {  /* a sum for each line: the op's loop inside */
        const int64_t e0 = k0 * count, e1 = k1 * count;
        switch (e->op) {
            REVAD_UNARY_OPS(RV_EWS_U)
            REVAD_BINARY_OPS(RV_EWS_B)
            default: break;
        }
        return;
    }
    rv_ew_cursor c;
    rv_ew_seek(&c, e, k0 * count);
    if (count <= 128) {  /* short sums, a batch of them at a time (one switch for the batch) */
        double x[1024];
        for (int64_t k = k0, m; k < k1; k += m) {
            m = k1 - k < 1024 / count ? k1 - k : 1024 / count;
            rv_ew_fill(e, &c, x, m * count);
            for (int64_t j = 0; j < m; ++j)
                val[ps->out + k + j] = rv_sum_block(x + j * count, count, 1);
        }
        return;
    }
    for (int64_t k = k0; k < k1; ++k) val[ps->out + k] = rv_sum_lazy(e, &c, count);
}

/* The elementwise group that the sum group ps may be swept with (rv_ew_backward_part), or NULL.
 * The sum must read the group's outputs whole and in order (rv_sums_over) and come right after
 * the group on the tape: no entry recorded between them reads the group's outputs, so when the
 * sweep reaches the sum every other reader has added its part to their adjoints, and nothing
 * after the sum adds more. Clean sweeps only: the others keep each output's adjoint, which the
 * fused loop does not write. */
static inline const rv_ew_blk *rv_sums_fused(const uint8_t *op, const int32_t *arg0,
                                             const int64_t *blk, const rv_sums_blk *ps, int clean) {
    const int64_t out = ps->out;
    if (!clean || out < 1 || op[out - 1] != RV_EW) return NULL;
    const rv_ew_blk *q = (const rv_ew_blk *)(blk + arg0[out - 1]);
    return q->out + q->n == out && rv_sums_over(ps, q) ? q : NULL;
}

static RV_NOINLINE void rv_sums_tangent(const rv_sums_blk *p, double *tng) {
    RV_SUMS_FOR_LINES(p, 0, p->n, {
        const double *t = tng + start;
        double s = 0.0;
        for (int64_t j = 0; j < count; ++j) s += t[j * stride];
        tng[yo] = s;
    });
}

/* Second order (sweep.h, rv_second_order): a sum is linear, so an adjoint's tangent passes down
 * as the adjoint does (clean, as that sweep is). */
static RV_NOINLINE void rv_sums_second(const rv_sums_blk *p, double *adj, double *adt) {
    rv_sums_backward_part(p, adj, 1, 0, p->n);
    rv_sums_backward_part(p, adt, 1, 0, p->n);
}

#endif
