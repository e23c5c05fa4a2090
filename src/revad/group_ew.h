/* The elementwise group (EW): one array op over broadcast operands, its cursor over lines,
 * its forward, backward (alone or fused with the sum after it), tangent and lazy fill. */
#ifndef REVAD_GROUP_EW_H
#define REVAD_GROUP_EW_H

#include "engine_common.h"
#include "kinds.h"

/* An elementwise group: one array op, y = f(a) or f(a, b) with NumPy's broadcasting, on n
 * consecutive output slots (C order). As in a matrix product group, only the LAST output slot
 * carries the group (RV_EW) and the others are RV_GROUP_SLOT placeholders; the reverse sweep
 * takes all n outputs there in one tight loop per line and then jumps below the group. So an array op
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
 * the line's start (a, b) and at the plane's (pa, pb). Lines can be short (ten elements, by the
 * hundred thousand): the rows of a plane are a plain step, and the odometer, whose step costs
 * as much as a short line's arithmetic, runs once a plane. */
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

/* Runs the body (its last argument) once per line of the innermost dimension that the
 * group's elements [e0, e1) (C order) reach, declaring for it: line (its index), yo (its
 * first output slot), oa, ob (its operands' first offsets) and [k0, k1) (the part of it to take: a whole group is [0, n);
 * threads take pieces of it, _core_threads.pxi). The rows of a plane are a loop over locals:
 * kept in the cursor, the compiler holds them in memory. */
#define RV_EW_FOR_LINES(e, e0, e1, line, yo, oa, ob, k0, k1, ...) do { \
    if ((e)->n <= 0 || (e0) >= (e1)) break; \
    rv_ew_cursor c_; \
    rv_ew_seek(&c_, (e), (e0)); \
    const int64_t len_ = (e)->len, lend_ = ((e1) - 1) / len_ + 1, ra_ = c_.ra, rb_ = c_.rb; \
    int64_t line = (e0) / len_; \
    while (line < lend_) { \
        const int64_t rend_ = lend_ - line < c_.rows - c_.row ? lend_ : line + (c_.rows - c_.row); \
        for (int64_t a_ = c_.a, b_ = c_.b; line < rend_; ++line, a_ += ra_, b_ += rb_) { \
            const int64_t yo = (e)->out + line * len_, oa = a_, ob = b_; \
            const int64_t k0 = (e0) > line * len_ ? (e0) - line * len_ : 0; \
            const int64_t k1 = (e1) - line * len_ < len_ ? (e1) - line * len_ : len_; \
            (void)yo; (void)oa; (void)ob; \
            __VA_ARGS__ \
        } \
        rv_ew_next_plane(&c_, (e)); \
    } } while (0)

/* A row's value and partials as functions of a constant op code: each call, inlined, folds to
 * the one row's expression (the table's rows are the loop bodies). */
#define RV_VALUE_U(N, name, f, ...) case RV_##N: return (f);
#define RV_VALUE_B(N, name, f, da, db, ...) case RV_##N: return (f);
#define RV_VALUE_C(N, name, f, ...) case RV_##N: return (f) ? 1.0 : 0.0;
#define RV_DA_U(N, name, f, da, ...) case RV_##N: return (da);
#define RV_DA_B(N, name, f, da, db, ...) case RV_##N: return (da);
#define RV_DB_B(N, name, f, da, db, ...) case RV_##N: return (db);
static RV_INLINE double rv_row_value(const int op, double a, double b) {
    switch (op) {
        REVAD_UNARY_OPS(RV_VALUE_U)
        REVAD_BINARY_OPS(RV_VALUE_B)
        REVAD_COMPARE_OPS(RV_VALUE_C)
        default: return 0.0;
    }
}
static RV_INLINE double rv_row_da(const int op, double a, double b, double y) {
    switch (op) { REVAD_UNARY_OPS(RV_DA_U) REVAD_BINARY_OPS(RV_DA_B) default: return 0.0; }
}
static RV_INLINE double rv_row_db(const int op, double a, double b, double y) {
    switch (op) { REVAD_BINARY_OPS(RV_DB_B) default: return 0.0; }
}
/* Its second partials (the rows' last columns): d2/da2, d2/dadb, d2/db2 (0 for what a unary
 * row lacks). */
#define RV_DAA_U(N, name, f, da, lazy, example, note, daa) case RV_##N: return (daa);
#define RV_DAA_B(N, name, f, da, db, lazy, example, note, daa, dab, dbb) case RV_##N: return (daa);
#define RV_DAB_B(N, name, f, da, db, lazy, example, note, daa, dab, dbb) case RV_##N: return (dab);
#define RV_DBB_B(N, name, f, da, db, lazy, example, note, daa, dab, dbb) case RV_##N: return (dbb);
static RV_INLINE double rv_row_daa(const int op, double a, double b, double y) {
    switch (op) { REVAD_UNARY_OPS(RV_DAA_U) REVAD_BINARY_OPS(RV_DAA_B) default: return 0.0; }
}
static RV_INLINE double rv_row_dab(const int op, double a, double b, double y) {
    switch (op) { REVAD_BINARY_OPS(RV_DAB_B) default: return 0.0; }
}
static RV_INLINE double rv_row_dbb(const int op, double a, double b, double y) {
    switch (op) { REVAD_BINARY_OPS(RV_DBB_B) default: return 0.0; }
}

/* Forward values, Y[k] = f(A[k*sa], B[k*sb]) for k in [k0, k1) (recording, lazy values, lazy
 * sums). Unit and zero strides get their own loops so that the compiler can vectorise the cheap
 * rows. */
static RV_INLINE void rv_ewf_loop(const int op, double *Y, const double *A, const double *B,
                                  int64_t sa, int64_t sb, int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) Y[k] = rv_row_value(op, A[k * sa], B[k * sb]);
}
static RV_INLINE void rv_ewf_range(const int op, double *Y, const double *A, const double *B,
                                   int64_t sa, int64_t sb, int64_t k0, int64_t k1) {
    if (rv_ew_arity(op) == 1) {  /* (B is not read) */
        if (sa == 1) rv_ewf_loop(op, Y, A, A, 1, 0, k0, k1);
        else rv_ewf_loop(op, Y, A, A, sa, 0, k0, k1);
    } else if (sa == 1 && sb == 1) rv_ewf_loop(op, Y, A, B, 1, 1, k0, k1);
    else if (sa == 1 && sb == 0) rv_ewf_loop(op, Y, A, B, 1, 0, k0, k1);
    else if (sa == 0 && sb == 1) rv_ewf_loop(op, Y, A, B, 0, 1, k0, k1);
    else rv_ewf_loop(op, Y, A, B, sa, sb, k0, k1);
}
/* Operand B of a line at offset ob, and its stride: a unary row's B is A, never read. */
static inline const double *rv_ew_b(const rv_ew *e, const double *A, int64_t ob) {
    return e->v[1] ? e->v[1] + ob : A;
}
static inline int64_t rv_ew_sb(const rv_ew *e) { return e->v[1] ? e->s[1] : 0; }

static RV_INLINE void rv_ewf_lines(const int op, const rv_ew *e, double *val, int64_t e0,
                                   int64_t e1) {
    const int64_t sa = e->s[0], sb = rv_ew_sb(e);
    RV_EW_FOR_LINES(e, e0, e1, line, yo, oa, ob, k0, k1, {
        const double *A = e->v[0] + oa;
        rv_ewf_range(op, val + yo, A, rv_ew_b(e, A, ob), sa, sb, k0, k1);
    });
}
#define RV_EWF_U(N, name, f, ...) case RV_##N: rv_ewf_lines(RV_##N, e, val, e0, e1); break;
#define RV_EWF_B(N, name, f, da, db, ...) case RV_##N: rv_ewf_lines(RV_##N, e, val, e0, e1); break;
#define RV_EWF_C(N, name, f, ...) case RV_##N: rv_ewf_lines(RV_##N, e, val, e0, e1); break;
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
 * ua/ub (constants) say which operands are slots; the dead half folds away. `clean` (see
 * rv_backward) zeroes each output's adjoint once it is read. G holds the adjoints of elements
 * [k0, k1) from G[0].
 *
 * Two loop shapes. The dense one computes every element's partial and adds zero where the
 * adjoint is zero (a select, not a skip: 0 * inf is still not taken), so that the compiler can
 * vectorise it; it is used on unit-stride lines where no two elements write one adjoint, which
 * RV_IVDEP then promises the compiler. Everything else (broadcast operands that sum into one
 * adjoint, overlapping operands such as x[1:] * x[:-1], strided lines) skips zero adjoints. */
static RV_INLINE void rv_ewb_dense(const int op, const int ua, const int ub, const int64_t sa,
                                   const int64_t sb, const double *Y, const double *A,
                                   const double *B, double *DA, double *DB, double *G, int clean,
                                   int64_t k0, int64_t k1) {
    RV_IVDEP for (int64_t k = k0; k < k1; ++k) {
        const double g = G[k - k0];
        G[k - k0] = clean ? 0.0 : g;  /* a store either way: a conditional one stops GCC */
        const double a = A[k * sa], b = B[k * sb], y = Y[k];
        if (ua) DA[k * sa] += g != 0.0 ? g * rv_row_da(op, a, b, y) : 0.0;
        if (ub) DB[k * sb] += g != 0.0 ? g * rv_row_db(op, a, b, y) : 0.0;
    }
}
static RV_INLINE void rv_ewb_sparse(const int op, const int ua, const int ub, const int64_t sa,
                                    const int64_t sb, const double *Y, const double *A,
                                    const double *B, double *DA, double *DB, double *G,
                                    int clean, int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
        const double g = G[k - k0];
        G[k - k0] = clean ? 0.0 : g;
        if (g == 0.0) continue;
        const double a = A[k * sa], b = B[k * sb], y = Y[k];
        if (ua) DA[k * sa] += g * rv_row_da(op, a, b, y);
        if (ub) DB[k * sb] += g * rv_row_db(op, a, b, y);
    }
}
/* Elements [k0, k1) of the line whose output starts at yo and operands at oa, ob: the loop
 * shape and index forms for its strides. A unary row has one operand, a slot. */
static RV_INLINE void rv_ewb_line(const int op, const rv_ew *e, const double *val, double *adj,
                                  double *G, int clean, int64_t yo, int64_t oa, int64_t ob,
                                  int64_t k0, int64_t k1) {
    const double *Y = val + yo, *A = e->v[0] + oa, *B = rv_ew_b(e, A, ob);
    double *DA = adj + oa, *DB = adj + ob;
    const int64_t len = e->len, sa = e->s[0], sb = rv_ew_sb(e);
    if (rv_ew_arity(op) == 1) {
        if (sa != 1) rv_ewb_sparse(op, 1, 0, sa, 0, Y, A, A, DA, DA, G, clean, k0, k1);
        else rv_ewb_dense(op, 1, 0, 1, 0, Y, A, A, DA, DA, G, clean, k0, k1);
    } else if (e->slots[0] && e->slots[1]) {
        if (sa == 1 && sb == 1 && (DA == DB || DA - DB >= len || DB - DA >= len))
            rv_ewb_dense(op, 1, 1, 1, 1, Y, A, B, DA, DB, G, clean, k0, k1);
        else rv_ewb_sparse(op, 1, 1, sa, sb, Y, A, B, DA, DB, G, clean, k0, k1);
    } else if (e->slots[0]) {
        if (sa != 1) rv_ewb_sparse(op, 1, 0, sa, sb, Y, A, B, DA, DB, G, clean, k0, k1);
        else if (sb == 0) rv_ewb_dense(op, 1, 0, 1, 0, Y, A, B, DA, DB, G, clean, k0, k1);
        else if (sb == 1) rv_ewb_dense(op, 1, 0, 1, 1, Y, A, B, DA, DB, G, clean, k0, k1);
        else rv_ewb_dense(op, 1, 0, 1, sb, Y, A, B, DA, DB, G, clean, k0, k1);
    } else {
        if (sb != 1) rv_ewb_sparse(op, 0, 1, sa, sb, Y, A, B, DA, DB, G, clean, k0, k1);
        else if (sa == 0) rv_ewb_dense(op, 0, 1, 0, 1, Y, A, B, DA, DB, G, clean, k0, k1);
        else if (sa == 1) rv_ewb_dense(op, 0, 1, 1, 1, Y, A, B, DA, DB, G, clean, k0, k1);
        else rv_ewb_dense(op, 0, 1, sa, 1, Y, A, B, DA, DB, G, clean, k0, k1);
    }
}

/* Fused with a sum over the group's last axis (rv_sums_fused): the sum's outputs' adjoints
 * gs[o], one for each `count` consecutive elements of this group; r counts the elements of
 * output o already passed. An element's adjoint is then its own, G[k], plus its sum's: the
 * sum's backward would have written gs into every G[k] and this loop read it back, two passes
 * over memory as large as the group. zero: no other entry the sweep has met reads this group's
 * outputs (rv_reads_below), so their own adjoints are all zero and are not read at all (an
 * element's adjoint is its sum's, and a line whose sum's adjoint is zero passes nothing). */
typedef struct { const double *gs; int64_t count, o, r; int zero; } rv_ewb_sum;

/* The fused adjoints of elements [b0, b1) of a line (at most RV_EWB_BLOCK), G[k] + gs (or gs
 * alone, zero) into tmp: passed to the same loops as a group's own adjoints, they make the same
 * additions, so the same bits, from loops compiled once. Returns whether any G[k] was nonzero. */
#define RV_EWB_BLOCK 256
static inline uint64_t rv_ewb_fused_block(double *tmp, const double *G, double gs, int zero,
                                          int64_t b0, int64_t b1) {
    uint64_t nz = 0;
    if (zero) {
        for (int64_t k = b0; k < b1; ++k) tmp[k - b0] = gs;
    } else {
        for (int64_t k = b0; k < b1; ++k) {
            nz |= rv_vm_bits(G[k]) << 1;  /* (<< 1: -0.0 is zero too) */
            tmp[k - b0] = G[k] + gs;
        }
    }
    return nz;
}

/* Elements [e0, e1): line by line, and with a sum (s) piece by piece, one piece for each of
 * its outputs, a block at a time. One call of rv_ewb_line, so one copy of its loops per row. */
static RV_INLINE void rv_ewb_lines(const int op, const rv_ew *e, const double *val, double *adj,
                                   int clean, rv_ewb_sum *s, int64_t e0, int64_t e1) {
    double tmp[RV_EWB_BLOCK];
    RV_EW_FOR_LINES(e, e0, e1, line, yo, oa, ob, k0, k1, {
        double *G = adj + yo;
        for (int64_t j0 = k0, j1; j0 < k1; j0 = j1) {
            const int64_t left = s ? s->count - s->r : k1 - j0;
            const double gs = s ? s->gs[s->o] : 0.0;
            uint64_t nz = 0;
            j1 = k1 - j0 < left ? k1 : j0 + left;
            if (!s || !s->zero || gs != 0.0) {
                for (int64_t b0 = j0, b1; b0 < j1; b0 = b1) {
                    b1 = !s || j1 - b0 < RV_EWB_BLOCK ? j1 : b0 + RV_EWB_BLOCK;
                    if (s) nz |= rv_ewb_fused_block(tmp, G, gs, s->zero, b0, b1);
                    rv_ewb_line(op, e, val, adj, s ? tmp : G + b0, s ? 0 : clean, yo, oa, ob,
                                b0, b1);
                }
            }
            if (nz && clean) memset(G + j0, 0, (size_t)(j1 - j0) * sizeof(double));
            if (s && (s->r += j1 - j0) == s->count) { s->r = 0; ++s->o; }
        }
    });
}
#define RV_EWB_U(N, name, f, da, ...) \
    case RV_##N: rv_ewb_lines(RV_##N, e, val, adj, clean, s, e0, e1); break;
#define RV_EWB_B(N, name, f, da, db, ...) \
    case RV_##N: rv_ewb_lines(RV_##N, e, val, adj, clean, s, e0, e1); break;

/* A product summed line by line (one sum for each line of the group), fused, its own adjoints
 * all zero: a contraction. Its loop on its own: inside rv_ew_backward_part's switch the
 * per-line bookkeeping spills to the stack and costs as much as the arithmetic on short lines.
 * The same additions in the same order as there. */
static RV_NOINLINE void rv_mul_sum_backward(const rv_ew *e, double *adj, const double *gs,
                                            int64_t e0, int64_t e1) {
    const int64_t sa = e->s[0], sb = e->s[1], len = e->len;
    const int ua = e->slots[0], ub = e->slots[1];
    RV_EW_FOR_LINES(e, e0, e1, line, yo, oa, ob, k0, k1, {
        const double g = gs[line];
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

/* Tangents: the same partials the other way, one plain loop (forward mode is not the hot
 * path). An operand that is not slots has tangent zero: read from a zero with stride 0, so that
 * the loop holds no test (0.0 + t + 0.0 is 0.0 + t: a sum from +0.0 is never -0.0). */
static const double rv_zero_tangent[1] = {0.0};
static RV_INLINE void rv_ewt_lines(const int op, const rv_ew *e, const double *val, double *tng) {
    const int64_t sa = e->s[0], sb = rv_ew_sb(e);
    const int64_t ta = e->slots[0] ? sa : 0, tb = e->slots[1] ? sb : 0;
    RV_EW_FOR_LINES(e, 0, e->n, line, yo, oa, ob, k0, k1, {
        const double *A = e->v[0] + oa, *B = rv_ew_b(e, A, ob);
        const double *TA = e->slots[0] ? tng + oa : rv_zero_tangent;
        const double *TB = e->slots[1] ? tng + ob : rv_zero_tangent;
        for (int64_t k = k0; k < k1; ++k) {
            const double a = A[k * sa], b = B[k * sb], y = val[yo + k];
            double t = 0.0;
            t += RV_TNG(TA[k * ta], rv_row_da(op, a, b, y));
            t += RV_TNG(TB[k * tb], rv_row_db(op, a, b, y));
            tng[yo + k] = t;
        }
    });
}
#define RV_EWT_U(N, name, f, da, ...) case RV_##N: rv_ewt_lines(RV_##N, e, val, tng); break;
#define RV_EWT_B(N, name, f, da, db, ...) case RV_##N: rv_ewt_lines(RV_##N, e, val, tng); break;
static RV_NOINLINE void rv_ew_tangent(const rv_ew_blk *h, const double *val, const double *cst,
                                      const double *const *cptr, double *tng) {
    rv_ew ew, *e = &ew;
    rv_ew_init(e, h, val, cst, cptr);
    switch (e->op) {
        REVAD_UNARY_OPS(RV_EWT_U)
        REVAD_BINARY_OPS(RV_EWT_B)
        default: /* comparisons: no derivative */
            for (int64_t k = 0; k < e->n; ++k) tng[e->out + k] = 0.0;
            break;
    }
}

/* Second order (sweep.h, rv_second_order): each output's adjoint g and its tangent gt into
 * its operands' (ADOL-C's hess_vec), with the operands' tangents ta, tb from the tangent sweep:
 * adj[a] += g fa, adt[a] += gt fa + g (faa ta + fab tb), and likewise for b; each output's g
 * and gt are zeroed once read (the sweep is clean). The same arithmetic as the scalar entries'
 * (RV_SO_B), so a group gives their numbers (signed zeros apart); a zero passes nothing on
 * there too. ua, ub: which operands are slots (constants); the loop shapes are the backward's
 * (rv_ewb_dense, rv_ewb_sparse, with the same conditions, rv_ew2_line). */
static RV_INLINE void rv_ew2_range(const int op, const int dense, const int ua, const int ub,
                                   const int64_t sa, const int64_t sb, const double *Y,
                                   const double *A, const double *B, const double *TA,
                                   const double *TB, double *DA, double *DB, double *HA,
                                   double *HB, double *G, double *GT, int64_t k0, int64_t k1) {
    if (dense) {
        RV_IVDEP for (int64_t k = k0; k < k1; ++k) {
            const double g = G[k], gt = GT[k];
            G[k] = 0.0;
            GT[k] = 0.0;
            const double a = A[k * sa], b = B[k * sb], y = Y[k];
            const double ta = ua ? TA[k * sa] : 0.0, tb = ub ? TB[k * sb] : 0.0;
            const double pa = rv_row_da(op, a, b, y), pb = rv_row_db(op, a, b, y);
            const double saa = rv_row_daa(op, a, b, y), sab = rv_row_dab(op, a, b, y);
            const double sbb = rv_row_dbb(op, a, b, y);
            if (ua) {
                DA[k * sa] += g != 0.0 ? g * pa : 0.0;
                HA[k * sa] += RV_TNG(gt, pa)
                              + (g != 0.0 ? g * (RV_TNG(ta, saa) + RV_TNG(tb, sab)) : 0.0);
            }
            if (ub) {
                DB[k * sb] += g != 0.0 ? g * pb : 0.0;
                HB[k * sb] += RV_TNG(gt, pb)
                              + (g != 0.0 ? g * (RV_TNG(ta, sab) + RV_TNG(tb, sbb)) : 0.0);
            }
        }
        return;
    }
    for (int64_t k = k0; k < k1; ++k) {
        const double g = G[k], gt = GT[k];
        if (g == 0.0 && gt == 0.0) continue;
        G[k] = 0.0;
        GT[k] = 0.0;
        const double a = A[k * sa], b = B[k * sb], y = Y[k];
        const double ta = ua ? TA[k * sa] : 0.0, tb = ub ? TB[k * sb] : 0.0;
        const double pa = rv_row_da(op, a, b, y), pb = rv_row_db(op, a, b, y);
        double ha = RV_TNG(gt, pa), hb = RV_TNG(gt, pb);
        if (g != 0.0) {
            const double saa = rv_row_daa(op, a, b, y), sab = rv_row_dab(op, a, b, y);
            const double sbb = rv_row_dbb(op, a, b, y);
            if (ua) DA[k * sa] += g * pa;
            if (ub) DB[k * sb] += g * pb;
            ha += g * (RV_TNG(ta, saa) + RV_TNG(tb, sab));
            hb += g * (RV_TNG(ta, sab) + RV_TNG(tb, sbb));
        }
        if (ua) HA[k * sa] += ha;
        if (ub) HB[k * sb] += hb;
    }
}
static RV_INLINE void rv_ew2_lines(const int op, const rv_ew *e, const double *val,
                                   const double *tng, double *adj, double *adt) {
    const int64_t sa = e->s[0], sb = rv_ew_sb(e), len = e->len;
    const int ua = e->slots[0], ub = e->slots[1];
    RV_EW_FOR_LINES(e, 0, e->n, line, yo, oa, ob, k0, k1, {
        const double *A = e->v[0] + oa, *B = rv_ew_b(e, A, ob), *Y = val + yo;
        const double *TA = tng + oa, *TB = tng + ob;
        double *DA = adj + oa, *DB = adj + ob, *HA = adt + oa, *HB = adt + ob;
        double *G = adj + yo, *GT = adt + yo;
        if (rv_ew_arity(op) == 1) {  /* one operand, a slot (B is A, never read) */
            if (sa == 1) rv_ew2_range(op, 1, 1, 0, 1, 0, Y, A, A, TA, TA, DA, DA, HA, HA, G, GT, k0, k1);
            else rv_ew2_range(op, 0, 1, 0, sa, 0, Y, A, A, TA, TA, DA, DA, HA, HA, G, GT, k0, k1);
        } else if (ua && ub && sa == 1 && sb == 1 && (DA == DB || DA - DB >= len || DB - DA >= len))
            rv_ew2_range(op, 1, 1, 1, 1, 1, Y, A, B, TA, TB, DA, DB, HA, HB, G, GT, k0, k1);
        else if (ua && !ub && sa == 1 && sb == 0)
            rv_ew2_range(op, 1, 1, 0, 1, 0, Y, A, B, TA, TB, DA, DB, HA, HB, G, GT, k0, k1);
        else if (ua && !ub && sa == 1 && sb == 1)
            rv_ew2_range(op, 1, 1, 0, 1, 1, Y, A, B, TA, TB, DA, DB, HA, HB, G, GT, k0, k1);
        else if (!ua && ub && sb == 1 && sa == 0)
            rv_ew2_range(op, 1, 0, 1, 0, 1, Y, A, B, TA, TB, DA, DB, HA, HB, G, GT, k0, k1);
        else if (!ua && ub && sb == 1 && sa == 1)
            rv_ew2_range(op, 1, 0, 1, 1, 1, Y, A, B, TA, TB, DA, DB, HA, HB, G, GT, k0, k1);
        else  /* broadcast into one adjoint, overlapping operands, other strides */
            rv_ew2_range(op, 0, ua, ub, sa, sb, Y, A, B, TA, TB, DA, DB, HA, HB, G, GT, k0, k1);
    });
}
#define RV_EW2_U(N, name, f, da, ...) case RV_##N: rv_ew2_lines(RV_##N, e, val, tng, adj, adt); break;
#define RV_EW2_B(N, name, f, da, db, ...) case RV_##N: rv_ew2_lines(RV_##N, e, val, tng, adj, adt); break;
static RV_NOINLINE void rv_ew_second(const rv_ew_blk *h, const double *val, const double *cst,
                                     const double *const *cptr, const double *tng, double *adj,
                                     double *adt) {
    rv_ew ew, *e = &ew;
    rv_ew_init(e, h, val, cst, cptr);
    switch (e->op) {
        REVAD_UNARY_OPS(RV_EW2_U)
        REVAD_BINARY_OPS(RV_EW2_B)
        default: /* comparisons pass nothing down */
            memset(adj + e->out, 0, (size_t)e->n * sizeof(double));
            memset(adt + e->out, 0, (size_t)e->n * sizeof(double));
            break;
    }
}

/* Lazy groups. Rows whose partials read the operands only, never the output y: a sweep never
 * reads such a group's values, so they may stay unwritten until something else does
 * (_array.pyx: a lazy Array computes them when it is first used), and a sum over its outputs
 * computes them on the fly instead (rv_sums_forward_lazy): a large product summed along its
 * last axis then never writes its values nor reads them back. Of those rows (log, sin, tanh,
 * ... qualify too), the cheap arithmetic, marked `lazy` in ops_table.h: a value a sum made and
 * something reads later is computed twice, and only these rows have a loop in the lazy sums.
 * tests/test_lazy.py checks their partials. */
static inline int rv_ew_lazy(int64_t op) { return rv_op_lazy(op); }

/* The next n elements of the group (C order, from the cursor) into Y; rows that are not lazy
 * have no loop here. */
static RV_INLINE void rv_ew_fill_row(const int op, const rv_ew *e, rv_ew_cursor *c, double *Y,
                                     int64_t n) {
    const int64_t sa = e->s[0], sb = rv_ew_sb(e);
    while (n > 0) {
        const int64_t m = e->len - c->k < n ? e->len - c->k : n;
        const double *A = e->v[0] + c->a + c->k * sa, *B = e->v[1] ? e->v[1] + c->b + c->k * sb : A;
        rv_ewf_range(op, Y, A, B, sa, sb, 0, m);
        Y += m; n -= m; c->k += m;
        if (c->k == e->len) rv_ew_next_line(c, e);
    }
}
/* (rv_ew_lazy of a constant folds: the rows that are not lazy get no loop.) */
#define RV_EWL_U(N, name, f, ...) \
    case RV_##N: if (rv_ew_lazy(RV_##N)) rv_ew_fill_row(RV_##N, e, c, Y, n); break;
#define RV_EWL_B(N, name, f, da, db, ...) \
    case RV_##N: if (rv_ew_lazy(RV_##N)) rv_ew_fill_row(RV_##N, e, c, Y, n); break;
static inline void rv_ew_fill(const rv_ew *e, rv_ew_cursor *c, double *Y, int64_t n) {
    switch (e->op) {
        REVAD_UNARY_OPS(RV_EWL_U)
        REVAD_BINARY_OPS(RV_EWL_B)
        default: break;
    }
}

#endif
