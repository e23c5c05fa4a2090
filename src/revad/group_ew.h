/* The elementwise group (EW): one array op over broadcast operands, its cursor over lines,
 * its forward, backward (alone or fused with the sum after it), tangent and lazy fill. */
#ifndef REVAD_GROUP_EW_H
#define REVAD_GROUP_EW_H

#include "engine_common.h"
#include "kinds.h"

/* An elementwise group: one array op, y = f(a) or f(a, b) with NumPy's broadcasting, on n
 * consecutive output slots (C order). As in a matrix product group, only the LAST output slot
 * carries the group (RV_EW) and the others are RV_MMP placeholders; the reverse sweep takes all
 * n outputs there in one tight loop per line and then jumps below the group. So an array op
 * costs 9 bytes per element (its value and a placeholder byte), and its backward reads no
 * operand slots or op codes per element. The row's own formulas are the loop bodies.
 *
 * The shape is collapsed before recording (unit dimensions dropped, mergeable ones merged;
 * nd >= 1); the parameters are kinds.h's rv_ew_blk and an rv_ew_operand per operand.
 *
 * A zero adjoint passes nothing on here either (0 * inf is not taken), so a group gives the
 * scalar entries' gradients exactly. */
#define RV_EW_MAXD 64

static inline int rv_ew_arity(int64_t op) { return op < RV_ADD ? 1 : 2; } /* unary rows come first */

typedef struct {
    int64_t out, n, op, nd, len;
    const int64_t *shape, *st[2];
    int64_t off[2], s[2];   /* offsets; innermost strides */
    int slots[2];           /* operand j is tape slots (it has adjoints and tangents) */
    const double *v[2];     /* operand j's values */
} rv_ew;

static inline void rv_ew_init(rv_ew *e, const rv_ew_blk *h, const double *val, const double *cst,
                              const double *const *cptr) {
    e->out = h->out; e->n = h->n; e->op = h->op; e->nd = h->nd; e->shape = h->shape;
    const int arity = rv_ew_arity(e->op);
    for (int j = 0; j < 2; ++j) {
        if (j == arity) { /* unary: a second operand that is never read */
            e->st[1] = e->st[0]; e->off[1] = 0; e->s[1] = 0; e->slots[1] = 0; e->v[1] = NULL;
            break;
        }
        const rv_ew_operand *q = rv_ew_operand_at(h, j);
        e->slots[j] = q->src == RV_SRC_SLOTS;
        e->v[j] = q->src == RV_SRC_SLOTS ? val : (q->src == RV_SRC_POOL ? cst : cptr[q->src]);
        e->off[j] = q->off;
        e->st[j] = q->stride;
        e->s[j] = q->stride[e->nd - 1];
    }
    e->len = e->shape[e->nd - 1];
}

/* A position in a group's elements, C order: in line (c.k), row of its plane (the next
 * dimension out), plane (an odometer over the dimensions before), with the operands' offsets at
 * the line's start (a, b) and at the plane's (pa, pb). Lines can be short (GMM's d = 10
 * elements, by the hundred thousand): the rows of a plane are a plain step, and the odometer,
 * whose step for each line cost as much as the line's arithmetic, runs once a plane. */
typedef struct {
    int64_t k, row, rows, ra, rb, a, b, pa, pb;
    int64_t idx[RV_EW_MAXD];
} rv_ew_cursor;

static inline void rv_ew_seek(rv_ew_cursor *c, const rv_ew *e, int64_t i) {
    const int64_t nd = e->nd, line = i / e->len;
    c->k = i % e->len;
    c->rows = nd >= 2 ? e->shape[nd - 2] : 1;
    c->ra = nd >= 2 ? e->st[0][nd - 2] : 0;
    c->rb = nd >= 2 ? e->st[1][nd - 2] : 0;
    c->row = line % c->rows;
    c->pa = e->off[0]; c->pb = e->off[1];
    for (int64_t d = nd - 3, r = line / c->rows; d >= 0; --d) {
        c->idx[d] = r % e->shape[d]; r /= e->shape[d];
        c->pa += c->idx[d] * e->st[0][d]; c->pb += c->idx[d] * e->st[1][d];
    }
    c->a = c->pa + c->row * c->ra; c->b = c->pb + c->row * c->rb;
}

static inline void rv_ew_next_plane(rv_ew_cursor *c, const rv_ew *e) {
    c->k = c->row = 0;
    for (int64_t d = e->nd - 3; d >= 0; --d) {
        c->pa += e->st[0][d]; c->pb += e->st[1][d];
        if (++c->idx[d] < e->shape[d]) break;
        c->pa -= e->st[0][d] * e->shape[d]; c->pb -= e->st[1][d] * e->shape[d];
        c->idx[d] = 0;
    }
    c->a = c->pa; c->b = c->pb;
}

static inline void rv_ew_next_line(rv_ew_cursor *c, const rv_ew *e) {
    c->k = 0;
    if (++c->row < c->rows) { c->a += c->ra; c->b += c->rb; }
    else rv_ew_next_plane(c, e);
}

/* Runs the body once per line of the innermost dimension that the group's elements [e0, e1)
 * (C order) reach, with yo the line's first output slot, oa, ob its operands' first offsets and
 * [k0, k1) the part of the line to take: a whole group is [0, n); threads take pieces of it
 * (_core.pyx, _run_group). The rows of a plane are a loop over locals (in the cursor, which
 * the compiler keeps in memory, they took a third longer on GMM's backward). */
#define RV_EW_FOR_LINES(e, e0, e1, ...) do { \
    if ((e)->n <= 0 || (e0) >= (e1)) break; \
    rv_ew_cursor c_; \
    rv_ew_seek(&c_, (e), (e0)); \
    const int64_t len_ = (e)->len, lend_ = ((e1) - 1) / len_ + 1, ra_ = c_.ra, rb_ = c_.rb; \
    int64_t line_ = (e0) / len_; \
    while (line_ < lend_) { \
        const int64_t rend_ = lend_ - line_ < c_.rows - c_.row ? lend_ : line_ + (c_.rows - c_.row); \
        for (int64_t a_ = c_.a, b_ = c_.b; line_ < rend_; ++line_, a_ += ra_, b_ += rb_) { \
            const int64_t yo = (e)->out + line_ * len_, oa = a_, ob = b_; \
            const int64_t k0 = (e0) > line_ * len_ ? (e0) - line_ * len_ : 0; \
            const int64_t k1 = (e1) - line_ * len_ < len_ ? (e1) - line_ * len_ : len_; \
            (void)yo; (void)oa; (void)ob; \
            __VA_ARGS__ \
        } \
        rv_ew_next_plane(&c_, (e)); \
    } } while (0)

/* Forward values (recording, and what a replay re-evaluates). Unit strides get their own loop
 * so that the compiler can vectorise the cheap rows. */
#define RV_EWF_LOOP(IA, IB, expr) \
    for (int64_t k = k0; k < k1; ++k) { const double a = A[IA], b = B[IB]; (void)a; (void)b; Y[k] = (expr); }
#define RV_EWF_RANGE(expr) do { \
        if (sa == 1 && sb == 1) { RV_EWF_LOOP(k, k, expr) } \
        else if (sa == 1 && sb == 0) { RV_EWF_LOOP(k, 0, expr) } \
        else if (sa == 0 && sb == 1) { RV_EWF_LOOP(0, k, expr) } \
        else { RV_EWF_LOOP(k * sa, k * sb, expr) } } while (0)
#define RV_EWF_LINES(expr) RV_EW_FOR_LINES(e, e0, e1, { \
        double *Y = val + yo; const double *A = e->v[0] + oa, *B = e->v[1] ? e->v[1] + ob : A; \
        const int64_t sa = e->s[0], sb = e->v[1] ? e->s[1] : 0; \
        RV_EWF_RANGE(expr); })
#define RV_EWF_U(N, name, f, da, ...) case RV_##N: RV_EWF_LINES(f); break;
#define RV_EWF_B(N, name, f, da, db, ...) case RV_##N: RV_EWF_LINES(f); break;
#define RV_EWF_C(N, name, f) case RV_##N: RV_EWF_LINES((f) ? 1.0 : 0.0); break;
/* Elements [e0, e1) of the group's output (all of it: [0, n)). */
static RV_NOINLINE void rv_ew_forward_part(const rv_ew_blk *h, double *val, const double *cst,
                                           const double *const *cptr, int64_t e0, int64_t e1) {
    rv_ew ew, *e = &ew;
    rv_ew_init(e, h, val, cst, cptr);
    switch (e->op) {
        REVAD_UNARY_OPS(RV_EWF_U)
        REVAD_BINARY_OPS(RV_EWF_B)
        REVAD_COMPARE_OPS(RV_EWF_C)
        default: break;
    }
}

/* Backward: the adjoint of each output, times the row's partials, into its operands' adjoints.
 * UA/UB (literal 0 or 1) say which operands are slots; the dead half folds away. `clean` (see
 * rv_backward) zeroes each output's adjoint once it is read.
 *
 * Two loop shapes. The dense one computes every element's partial and adds zero where the
 * adjoint is zero (a select, not a skip: 0 * inf is still not taken), so that the compiler can
 * vectorise it; it is used on unit-stride lines where no two elements write one adjoint, which
 * RV_IVDEP then promises the compiler. Everything else (broadcast operands that sum into one
 * adjoint, overlapping operands such as x[1:] * x[:-1], strided lines) skips zero adjoints.
 *
 * F (literal 0, 1 or 2): 1 when a sum over the group's last axis follows it and is swept here
 * too (see rv_sums_fused): an output's adjoint is then its own, G[k], plus its sum's, gs. The
 * sum's backward would have written gs into every G[k] and this loop read it back, two passes
 * over memory as large as the group (GMM's (n, K, d, d) product: 20 MB each). G[k] is only read
 * then: nz says whether any was nonzero, and the caller zeroes the line only if so. 2: fused,
 * and G is known to be all zero (rv_ewb_sum's zero): it is not read, an adjoint is gs. */
#define RV_EWB_G(F) \
        const double gp = F == 2 ? 0.0 : G[k], g = F == 2 ? gs : F ? gp + gs : gp; \
        if (F == 1) nz |= rv_vm_bits(gp) << 1;  /* (<< 1: -0.0 is zero too) */ \
        if (F == 0) G[k] = clean ? 0.0 : gp;  /* a store either way: a conditional one stopped GCC */
#define RV_EWB_DENSE(F, IA, IB, UA, UB, da, db) \
    RV_IVDEP for (int64_t k = k0; k < k1; ++k) { \
        RV_EWB_G(F) \
        const double a = A[IA], b = B[IB], y = Y[k]; (void)a; (void)b; (void)y; \
        if (UA) DA[IA] += g != 0.0 ? g * (da) : 0.0; \
        if (UB) DB[IB] += g != 0.0 ? g * (db) : 0.0; \
    }
#define RV_EWB_SPARSE(F, IA, IB, UA, UB, da, db) \
    for (int64_t k = k0; k < k1; ++k) { \
        RV_EWB_G(F) \
        if (g == 0.0) continue; \
        const double a = A[IA], b = B[IB], y = Y[k]; (void)a; (void)b; (void)y; \
        if (UA) DA[IA] += g * (da); \
        if (UB) DB[IB] += g * (db); \
    }
/* Elements [k0, k1) of the line at yo (operands at oa, ob). */
#define RV_EWB_RUN(F, da, db) do { \
        const double *Y = val + yo; \
        const double *A = e->v[0] + oa, *B = e->v[1] ? e->v[1] + ob : A; \
        double *DA = adj + oa, *DB = adj + ob; \
        const int64_t len = e->len, sa = e->s[0], sb = e->v[1] ? e->s[1] : 0; \
        if (e->slots[0] && e->slots[1]) { \
            if (sa == 1 && sb == 1 && (DA == DB || DA - DB >= len || DB - DA >= len)) \
                { RV_EWB_DENSE(F, k, k, 1, 1, da, db) } \
            else { RV_EWB_SPARSE(F, k * sa, k * sb, 1, 1, da, db) } \
        } else if (e->slots[0]) { \
            if (sa != 1) { RV_EWB_SPARSE(F, k * sa, k * sb, 1, 0, da, db) } \
            else if (sb == 0) { RV_EWB_DENSE(F, k, 0, 1, 0, da, db) } \
            else if (sb == 1) { RV_EWB_DENSE(F, k, k, 1, 0, da, db) } \
            else { RV_EWB_DENSE(F, k, k * sb, 1, 0, da, db) } \
        } else { \
            if (sb != 1) { RV_EWB_SPARSE(F, k * sa, k * sb, 0, 1, da, db) } \
            else if (sa == 0) { RV_EWB_DENSE(F, 0, k, 0, 1, da, db) } \
            else if (sa == 1) { RV_EWB_DENSE(F, k, k, 0, 1, da, db) } \
            else { RV_EWB_DENSE(F, k * sa, k, 0, 1, da, db) } \
        } } while (0)
/* Fused with a sum: its outputs' adjoints gs[o], one for each `count` consecutive elements of
 * this group; r counts the elements of output o already passed. zero: no other entry the sweep
 * has met reads this group's outputs (rv_reads_below), so their own adjoints are all zero and
 * are not read at all (F = 2: an element's adjoint is its sum's, and a line whose sum's adjoint
 * is zero passes nothing); GMM's product then reads none of its 20 MB of adjoints. */
typedef struct { const double *gs; int64_t count, o, r; int zero; } rv_ewb_sum;
#define RV_EWB_LINES(da, db) RV_EW_FOR_LINES(e, e0, e1, { \
        double *G = adj + yo; \
        if (!s) { const double gs = 0.0; uint64_t nz = 0; (void)gs; (void)nz; RV_EWB_RUN(0, da, db); } \
        else { \
            const int64_t k0_ = k0, k1_ = k1; \
            for (int64_t k0 = k0_, k1; k0 < k1_; k0 = k1) { \
                k1 = k1_ - k0 < s->count - s->r ? k1_ : k0 + (s->count - s->r); \
                const double gs = s->gs[s->o]; \
                uint64_t nz = 0; \
                if (s->zero) { if (gs != 0.0) RV_EWB_RUN(2, da, db); } \
                else { \
                    RV_EWB_RUN(1, da, db); \
                    if (nz && clean) memset(G + k0, 0, (size_t)(k1 - k0) * sizeof(double)); \
                } \
                s->r += k1 - k0; \
                if (s->r == s->count) { s->r = 0; ++s->o; } \
            } \
        } })
#define RV_EWB_U(N, name, f, da, ...) case RV_##N: RV_EWB_LINES(da, 0.0); break;
#define RV_EWB_B(N, name, f, da, db, ...) case RV_##N: RV_EWB_LINES(da, db); break;
/* A product summed line by line (one sum for each line of the group: GMM's Q times x over d),
 * fused, its own adjoints all zero: a contraction. Its loop on its own: inside
 * rv_ew_backward_part's switch the per-line bookkeeping spilled to the stack and cost twice
 * the arithmetic (GMM: 250,000 lines of 10). The same additions in the same order as there. */
static RV_NOINLINE void rv_mul_sum_backward(const rv_ew *e, double *adj, const double *gs,
                                            int64_t e0, int64_t e1) {
    const int64_t sa = e->s[0], sb = e->s[1], len = e->len;
    const int ua = e->slots[0], ub = e->slots[1];
    RV_EW_FOR_LINES(e, e0, e1, {
        const double g = gs[line_];
        if (g == 0.0) continue;
        const double *A = e->v[0] + oa, *B = e->v[1] + ob;
        double *DA = adj + oa, *DB = adj + ob;
        if (ua && ub && sa == 1 && sb == 1 && (DA - DB >= len || DB - DA >= len)) {
            RV_IVDEP for (int64_t k = k0; k < k1; ++k) { DA[k] += g * B[k]; DB[k] += g * A[k]; }
        } else {
            for (int64_t k = k0; k < k1; ++k) {
                if (ua) DA[k * sa] += g * B[k * sb];
                if (ub) DB[k * sb] += g * A[k * sa];
            }
        }
    });
}

/* ps: the parameters of the sum fused with this group (rv_sums_fused), or NULL; zero: see
 * rv_ewb_sum. */
static RV_NOINLINE void rv_ew_backward_part(const rv_ew_blk *h, const double *val,
                                            const double *cst, const double *const *cptr,
                                            double *adj, int clean, int64_t e0, int64_t e1,
                                            const rv_sums_blk *ps, int zero) {
    rv_ew ew, *e = &ew;
    rv_ewb_sum sum, *s = NULL;
    rv_ew_init(e, h, val, cst, cptr);
    if (ps) {
        sum.zero = zero;
        sum.gs = adj + ps->out;
        sum.count = ps->count;
        sum.o = e0 / sum.count;
        sum.r = e0 % sum.count;
        s = &sum;
        if (zero && e->op == RV_MUL && sum.count == e->len) {
            rv_mul_sum_backward(e, adj, sum.gs, e0, e1);
            return;
        }
    }
    switch (e->op) {
        REVAD_UNARY_OPS(RV_EWB_U)
        REVAD_BINARY_OPS(RV_EWB_B)
        default: /* comparisons pass nothing down (nor does the sum through them) */
            if (clean && e1 > e0) memset(adj + e->out + e0, 0, (size_t)(e1 - e0) * sizeof(double));
            break;
    }
}
static inline void rv_ew_backward(const rv_ew_blk *h, const double *val, const double *cst,
                                  const double *const *cptr, double *adj, int clean,
                                  const rv_sums_blk *ps, int zero) {
    rv_ew_backward_part(h, val, cst, cptr, adj, clean, 0, h->n, ps, zero);
}

/* Tangents: the same partials the other way (one plain loop: forward mode is not the hot path). */
#define RV_EWT_LINES(da, db) RV_EW_FOR_LINES(e, e0, e1, { \
        const double *A = e->v[0] + oa, *B = e->v[1] ? e->v[1] + ob : A; \
        const double *TA = tng + oa, *TB = tng + ob; \
        const int64_t sa = e->s[0], sb = e->v[1] ? e->s[1] : 0; \
        for (int64_t k = k0; k < k1; ++k) { \
            const double a = A[k * sa], b = B[k * sb], y = val[yo + k]; (void)a; (void)b; (void)y; \
            double t = 0.0; \
            if (e->slots[0]) t += RV_TNG(TA[k * sa], (da)); \
            if (e->slots[1]) t += RV_TNG(TB[k * sb], (db)); \
            tng[yo + k] = t; \
        } })
#define RV_EWT_U(N, name, f, da, ...) case RV_##N: RV_EWT_LINES(da, 0.0); break;
#define RV_EWT_B(N, name, f, da, db, ...) case RV_##N: RV_EWT_LINES(da, db); break;
static RV_NOINLINE void rv_ew_tangent(const rv_ew_blk *h, const double *val, const double *cst,
                                      const double *const *cptr, double *tng) {
    rv_ew ew, *e = &ew;
    const int64_t e0 = 0, e1 = h->n;
    rv_ew_init(e, h, val, cst, cptr);
    switch (e->op) {
        REVAD_UNARY_OPS(RV_EWT_U)
        REVAD_BINARY_OPS(RV_EWT_B)
        default: /* comparisons: no derivative */
            for (int64_t k = 0; k < e->n; ++k) tng[e->out + k] = 0.0;
            break;
    }
}

/* Lazy groups. Rows whose partials read the operands only, never the output y: a sweep never
 * reads such a group's values, so they may stay unwritten until something else does
 * (_array.pyx: a lazy Array computes them when it is first used), and a sum over its outputs
 * computes them on the fly instead (rv_sums_forward_lazy): GMM's (n, K, d, d) product then never
 * writes its 20 MB nor reads them back. Of those rows (log, sin, tanh, ... qualify too), the
 * cheap arithmetic: a value a sum made and something reads later is computed twice, and only
 * these rows have a loop in the lazy sums. tests/test_lazy.py checks their partials. */
static inline int rv_ew_lazy(int64_t op) {
    return op == RV_NEG || op == RV_SQUARE || op == RV_ADD || op == RV_SUB || op == RV_MUL;
}

/* The next n elements of the group (C order, from the cursor) into Y; the rows that are not
 * lazy fold away. */
#define RV_EWL_U(N, name, f, da, ...) case RV_##N: if (rv_ew_lazy(RV_##N)) RV_EWF_RANGE(f); break;
#define RV_EWL_B(N, name, f, da, db, ...) case RV_##N: if (rv_ew_lazy(RV_##N)) RV_EWF_RANGE(f); break;
static inline void rv_ew_fill(const rv_ew *e, rv_ew_cursor *c, double *Y, int64_t n) {
    const int64_t sa = e->s[0], sb = e->v[1] ? e->s[1] : 0;
    while (n > 0) {
        const int64_t k0 = 0, k1 = e->len - c->k < n ? e->len - c->k : n;
        const double *A = e->v[0] + c->a + c->k * sa, *B = e->v[1] ? e->v[1] + c->b + c->k * sb : A;
        switch (e->op) {
            REVAD_UNARY_OPS(RV_EWL_U)
            REVAD_BINARY_OPS(RV_EWL_B)
            default: break;
        }
        Y += k1; n -= k1; c->k += k1;
        if (c->k == e->len) rv_ew_next_line(c, e);
    }
}

#endif
