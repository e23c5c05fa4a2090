/* The kind table: for each kind of tape entry that is not an op row (block entries DOTC, DOT;
 * groups MM, EW, SUMS), one descriptor that says how each sweep runs it, what it reads, how
 * threads may cut it and how a graph draws it. The sweeps (sweep.h), the fusion walk
 * (rv_reads_below), the thread runner (_core_threads.pxi) and graph export (_core_inspect.pxi)
 * dispatch through it; a new kind is a struct in kinds.h, its functions and one row here. The
 * op rows themselves stay the op table's (ops_table.h), one switch case each. */
#ifndef REVAD_KIND_TABLE_H
#define REVAD_KIND_TABLE_H

#include "group_pair.h"
#include "group_products.h"
#include "group_sums.h"
#include "parallel.h"
#include "sparsity.h"

/* The tape's columns, as every kind's functions read them. */
typedef struct {
    const uint8_t *op;
    const int32_t *arg0, *arg1;
    const double *val, *cst;
    const int64_t *blk;
    const double *const *cptr;
} rv_cols;

/* A reverse sweep in progress: see rv_backward for clean, split and seed. */
typedef struct {
    rv_cols t;
    double *adj;
    int clean;
    int64_t split, seed;
} rv_sweep;

/* A second-order sweep in progress (sweep.h, rv_second_order): the adjoints, their tangents
 * (adt) and the tangents the tangent sweep left (tng). It is clean (rv_sweep's clean): each
 * entry zeroes its outputs' adj and adt once it has read them. */
typedef struct {
    rv_cols t;
    const double *tng;
    double *adj, *adt;
} rv_sweep2;

/* A forward replay in progress (sweep.h, rv_forward_replay); t.val is the replay's values.
 * lazy: the last slots, ascending (n_lazy of them), of the elementwise groups whose values it
 * leaves unwritten, as eager recording left them: lazy rows (rv_ew_lazy) that nothing read but
 * a sum over them (rv_sums_over), which computes from their operands (rv_sums_forward_lazy).
 * Eager recording writes a lazy group's values before anything else can read them (_array.pyx,
 * _slot0), so a group still unwritten when the recording ends has no other reader: not an op
 * row, a guard, a check of ties, nor an operand that the activity pass makes read the values
 * (activity.h: it rewrites operands on the slots, which were read, so written). split: a group
 * of that many outputs or more stops the replay, for the caller to share out to threads. */
typedef struct {
    rv_cols t;
    const int64_t *lazy;
    int64_t n_lazy, split;
} rv_replay;

/* The first of s->lazy at or above slot i (n_lazy if none). */
static inline int64_t rv_replay_lazy_from(const rv_replay *s, int64_t i) {
    int64_t lo = 0, hi = s->n_lazy;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (s->lazy[mid] < i) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Whether the replay leaves the group carried at slot i unwritten. */
static inline int rv_replay_skips(const rv_replay *s, int64_t i) {
    const int64_t k = rv_replay_lazy_from(s, i);
    return k < s->n_lazy && s->lazy[k] == i;
}

/* What a group's loops run as, on this thread or shared by threads (_core_threads.pxi). */
enum rv_run {
    RV_RUN_NONE,               /* no loops of its own to share (block entries) */
    RV_RUN_EW_FORWARD,         /* an elementwise group's values */
    RV_RUN_EW_BACKWARD,        /* its backward */
    RV_RUN_EW_SUM_BACKWARD,    /* its backward fused with the sum after it (rv_sums_fused) */
    RV_RUN_SUMS_FORWARD,       /* a sum group's values */
    RV_RUN_SUMS_LAZY_FORWARD,  /* its values from a lazy elementwise group's operands */
    RV_RUN_SUMS_BACKWARD,      /* its backward */
    RV_RUN_BLAS,               /* a matrix product's backward through NumPy's BLAS (Cython) */
    RV_RUN_PYTHON              /* a Python function's backward (Cython, with the GIL) */
};

/* How threads may cut a kind's backward (rv_kind.cut): along a dimension d >= 0 of its
 * outputs, anywhere, or not at all. */
#define RV_CUT_ANY (-2)
#define RV_CUT_NONE (-1)

static inline int rv_reads_below(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                                 const int64_t *blk, int64_t top, int64_t stop, int64_t a,
                                 int64_t b);

/* Whether an op row (code c below RV_DOTC, not a leaf or constant; operands a0, a1) reads a
 * slot in [lo, hi): a unary row or a guard its a0; a binary row or comparison, VV, VC (a1 a
 * constant) or CV, those of a0 and a1 that are slots. */
static inline int rv_row_reads(int c, int64_t a0, int64_t a1, int64_t lo, int64_t hi) {
    if (c == RV_GUARD || c < RV_ADD) return a0 >= lo && a0 < hi;
    const int j = (c - RV_ADD) % 3;
    return (j != 2 && a0 >= lo && a0 < hi) || (j != 1 && a1 >= lo && a1 < hi);
}

typedef struct {
    const char *name;  /* as graphs draw it */
    /* 1: the entry is a group, carried by the last of its output slots (RV_GROUP_SLOT before it) */
    int group;
    /* The first output slot of the entry at slot i (a group's first; i itself otherwise). */
    int64_t (*first)(const int64_t *p, int64_t i);
    /* Reverse: pass the adjoints of the entry at slot i down. Returns the slot the sweep goes
     * on below (its first slot, or a fused group's), or -1: stop here for the caller
     * (threads, BLAS), the adjoints untouched. */
    int64_t (*backward)(const rv_sweep *s, const int64_t *p, int64_t i);
    /* Forward mode: the tangents of the entry's outputs (slot i's, or the group's); NULL: the
     * tangent sweep stops here for the caller (a Python function's). */
    void (*tangent)(const rv_cols *t, const int64_t *p, int64_t i, double *tng);
    /* Second order: pass the adjoints and their tangents of the entry's outputs down (sweep.h,
     * rv_second_order). Returns as backward does (-1: a BLAS product, for the caller); NULL: no
     * rule (a Python function, a SciPy function), and revad.hvp takes the recorded route. */
    int64_t (*second)(const rv_sweep2 *s, const int64_t *p, int64_t i);
    /* Replay (sweep.h, rv_forward_replay): write the entry's values into val (s->t.val is val)
     * from its operands there. Returns 0, or 1: stop here for the caller (a BLAS product, a
     * Python function, a SciPy row, a group for threads: _core_replay.pxi). */
    int (*forward)(const rv_replay *s, const int64_t *p, int64_t i, double *val);
    /* Whether it may read a slot in [a, b) (add to its adjoint in a reverse sweep). */
    int (*reads)(const int64_t *p, int64_t a, int64_t b);
    /* Its backward's loops as run on threads (enum rv_run), and where they may be cut. */
    int run_backward;
    int64_t (*cut)(const int64_t *p);
    /* The op code its slots show in a graph (an elementwise group: its row's). */
    int (*shows)(const int64_t *p, int code);
    /* Sparsity (sparsity.h): for each of its outputs, the slots it reads through a nonzero
     * derivative (rv_pat_dep) and the pairs of them it is nonlinear in (rv_pat_cross). */
    void (*pattern)(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P);
} rv_kind;

static inline int64_t rv_self_first(const int64_t *p, int64_t i) { (void)p; return i; }
/* A group's first output slot: the `out` its struct begins with (rv_group_head, kinds.h). */
static inline int64_t rv_group_first(const int64_t *p, int64_t i) {
    (void)i;
    return ((const rv_group_head *)p)->out;
}
static inline int rv_shows_code(const int64_t *p, int code) { (void)p; return code; }

/* DOTC */
static inline int64_t rv_dotc_kind_backward(const rv_sweep *s, const int64_t *p, int64_t i) {
    const double g = s->adj[i];
    if (g == 0.0) return i;
    if (s->clean) s->adj[i] = 0.0;
    rv_dotc_backward((const rv_dotc_blk *)p, g, s->t.cptr, s->adj);
    return i;
}
static inline void rv_dotc_kind_tangent(const rv_cols *t, const int64_t *p, int64_t i,
                                        double *tng) {
    tng[i] = rv_dotc_tangent((const rv_dotc_blk *)p, t->cptr, tng);
}
static inline int64_t rv_dotc_kind_second(const rv_sweep2 *s, const int64_t *p, int64_t i) {
    const double g = s->adj[i], gt = s->adt[i];  /* linear: each passes down alone */
    s->adj[i] = s->adt[i] = 0.0;
    if (g != 0.0) rv_dotc_backward((const rv_dotc_blk *)p, g, s->t.cptr, s->adj);
    if (gt != 0.0) rv_dotc_backward((const rv_dotc_blk *)p, gt, s->t.cptr, s->adt);
    return i;
}
static inline int rv_dotc_kind_forward(const rv_replay *s, const int64_t *p, int64_t i,
                                       double *val) {
    const rv_dotc_blk *h = (const rv_dotc_blk *)p;
    const double *x = val + h->start, *c = s->t.cptr[h->c] + h->coff;
    double y = 0.0;
    for (int64_t k = 0; k < h->count; ++k) y += x[k * h->stride] * c[k * h->cstride];
    val[i] = y;
    return 0;
}
static inline int rv_dotc_reads(const int64_t *p, int64_t a, int64_t b) {
    const rv_dotc_blk *h = (const rv_dotc_blk *)p;
    int64_t lo, hi;
    return rv_view_span(h->start, 1, &h->count, &h->stride, &lo, &hi) && rv_meets(lo, hi, a, b);
}

static void rv_dotc_pattern(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P) {
    const rv_dotc_blk *h = (const rv_dotc_blk *)p;
    (void)t;
    if (!rv_pat_begin(P, i)) return;
    for (int64_t k = 0; k < h->count; ++k) rv_pat_dep(P, h->start + k * h->stride);
    rv_pat_end(P);
}

/* DOT */
static inline int64_t rv_dot_kind_backward(const rv_sweep *s, const int64_t *p, int64_t i) {
    const double g = s->adj[i];
    if (g == 0.0) return i;
    if (s->clean) s->adj[i] = 0.0;
    rv_dot_backward((const rv_dot_blk *)p, g, s->t.val, s->adj);
    return i;
}
static inline void rv_dot_kind_tangent(const rv_cols *t, const int64_t *p, int64_t i, double *tng) {
    tng[i] = rv_dot_tangent((const rv_dot_blk *)p, t->val, tng);
}
static inline int64_t rv_dot_kind_second(const rv_sweep2 *s, const int64_t *p, int64_t i) {
    const double g = s->adj[i], gt = s->adt[i];
    s->adj[i] = s->adt[i] = 0.0;
    if (g != 0.0 || gt != 0.0)
        rv_dot_second((const rv_dot_blk *)p, g, gt, s->t.val, s->tng, s->adj, s->adt);
    return i;
}
static inline int rv_dot_kind_forward(const rv_replay *s, const int64_t *p, int64_t i,
                                      double *val) {
    const rv_dot_blk *h = (const rv_dot_blk *)p;
    const double *x0 = val + h->start0, *x1 = val + h->start1;
    double y = 0.0;
    (void)s;
    for (int64_t k = 0; k < h->count; ++k) y += x0[k * h->stride0] * x1[k * h->stride1];
    val[i] = y;
    return 0;
}
static inline int rv_dot_reads(const int64_t *p, int64_t a, int64_t b) {
    const rv_dot_blk *h = (const rv_dot_blk *)p;
    int64_t lo, hi;
    return (rv_view_span(h->start0, 1, &h->count, &h->stride0, &lo, &hi) && rv_meets(lo, hi, a, b))
        || (rv_view_span(h->start1, 1, &h->count, &h->stride1, &lo, &hi) && rv_meets(lo, hi, a, b));
}

/* Bilinear: each pair of factors interacts, nothing else. */
static void rv_dot_pattern(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P) {
    const rv_dot_blk *h = (const rv_dot_blk *)p;
    (void)t;
    if (!rv_pat_begin(P, i)) return;
    for (int64_t k = 0; k < h->count; ++k) {
        rv_pat_dep(P, h->start0 + k * h->stride0);
        rv_pat_dep(P, h->start1 + k * h->stride1);
    }
    rv_pat_end(P);
    for (int64_t k = 0; k < h->count; ++k)
        rv_pat_cross(P, h->start0 + k * h->stride0, h->start1 + k * h->stride1);
}

/* MM */
static inline int64_t rv_mm_kind_backward(const rv_sweep *s, const int64_t *p, int64_t i) {
    const rv_mm_blk *h = (const rv_mm_blk *)p;
    (void)i;
    if (h->blas) return -1;
    rv_mm_backward(h, s->t.val, s->t.cptr, s->adj, s->clean);
    return h->out;
}
static inline void rv_mm_kind_tangent(const rv_cols *t, const int64_t *p, int64_t i, double *tng) {
    (void)i;
    rv_mm_tangent((const rv_mm_blk *)p, t->val, t->cptr, tng);
}
static inline int64_t rv_mm_kind_second(const rv_sweep2 *s, const int64_t *p, int64_t i) {
    const rv_mm_blk *h = (const rv_mm_blk *)p;
    (void)i;
    if (h->blas) return -1;
    rv_mm_second(h, s->t.val, s->t.cptr, s->tng, s->adj, s->adt);
    return h->out;
}
/* The values of a product BLAS does not take, recording (_emit_mm) and replaying alike: the
 * same loop, so that a replay gives the recording's bits. */
static inline void rv_mm_values(const int64_t *p, double *val, const double *const *cptr) {
    const rv_mm_blk *h = (const rv_mm_blk *)p;
    for (int64_t r = 0; r < h->m; ++r)
        for (int64_t j = 0; j < h->q; ++j) {
            double s = 0.0;
            for (int64_t k = 0; k < h->n; ++k)
                s += rv_mm_at(&h->a, r, k, val, cptr) * rv_mm_at(&h->b, k, j, val, cptr);
            val[h->out + r * h->q + j] = s;
        }
}
/* A product BLAS takes (h->blas) stops for the caller, which multiplies through NumPy. */
static inline int rv_mm_kind_forward(const rv_replay *s, const int64_t *p, int64_t i,
                                     double *val) {
    (void)i;
    if (((const rv_mm_blk *)p)->blas) return 1;
    rv_mm_values(p, val, s->t.cptr);
    return 0;
}
static inline int rv_mm_operand_reads(const rv_mm_operand *o, int64_t rows, int64_t cols,
                                      int64_t a, int64_t b) {
    const int64_t shape[2] = {rows, cols}, st[2] = {o->rs, o->cs};
    int64_t lo, hi;
    return o->src < 0 && rv_view_span(o->off, 2, shape, st, &lo, &hi) && rv_meets(lo, hi, a, b);
}
static inline int rv_mm_reads(const int64_t *p, int64_t a, int64_t b) {
    const rv_mm_blk *h = (const rv_mm_blk *)p;
    return rv_mm_operand_reads(&h->a, h->m, h->n, a, b)
        || rv_mm_operand_reads(&h->b, h->n, h->q, a, b);
}

/* Y[i, j] reads row i of A and column j of B (those on the tape); A[i, k] B[k, j] interact. */
static void rv_mm_pattern(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P) {
    const rv_mm_blk *h = (const rv_mm_blk *)p;
    const rv_mm_operand *a = &h->a, *b = &h->b;
    (void)t; (void)i;
    for (int64_t r = 0; r < h->m; ++r)
        for (int64_t c = 0; c < h->q; ++c) {
            if (!rv_pat_begin(P, h->out + r * h->q + c)) continue;
            for (int64_t k = 0; k < h->n; ++k) {
                if (a->src < 0) rv_pat_dep(P, rv_mm_index(a, r, k));
                if (b->src < 0) rv_pat_dep(P, rv_mm_index(b, k, c));
            }
            rv_pat_end(P);
            if (a->src < 0 && b->src < 0)
                for (int64_t k = 0; k < h->n; ++k)
                    rv_pat_cross(P, rv_mm_index(a, r, k), rv_mm_index(b, k, c));
        }
}

/* EW */
static inline int64_t rv_ew_kind_backward(const rv_sweep *s, const int64_t *p, int64_t i) {
    const rv_ew_blk *h = (const rv_ew_blk *)p;
    (void)i;
    if (h->n >= s->split) return -1;  /* for threads */
    rv_ew_backward(h, s->t.val, s->t.cst, s->t.cptr, s->adj, s->clean, NULL, 0);
    return h->out;
}
static inline void rv_ew_kind_tangent(const rv_cols *t, const int64_t *p, int64_t i, double *tng) {
    (void)i;
    rv_ew_tangent((const rv_ew_blk *)p, t->val, t->cst, t->cptr, tng);
}
static inline int64_t rv_ew_kind_second(const rv_sweep2 *s, const int64_t *p, int64_t i) {
    const rv_ew_blk *h = (const rv_ew_blk *)p;
    (void)i;
    rv_ew_second(h, s->t.val, s->t.cst, s->t.cptr, s->tng, s->adj, s->adt);
    return h->out;
}
static inline int rv_ew_kind_forward(const rv_replay *s, const int64_t *p, int64_t i,
                                     double *val) {
    const rv_ew_blk *h = (const rv_ew_blk *)p;
    if (rv_replay_skips(s, i)) return 0;  /* (rv_replay) */
    if (h->n >= s->split) return 1;       /* for threads */
    rv_ew_forward_part(h, val, s->t.cst, s->t.cptr, 0, h->n);
    return 0;
}
static inline int rv_ew_reads(const int64_t *p, int64_t a, int64_t b) {
    const rv_ew_blk *h = (const rv_ew_blk *)p;
    int64_t lo, hi;
    for (int j = 0; j < rv_ew_arity(h->op); ++j) {
        const rv_ew_operand *q = rv_ew_operand_at(h, j);
        if (q->src == RV_SRC_SLOTS && rv_view_span(q->off, h->nd, h->shape, q->stride, &lo, &hi)
            && rv_meets(lo, hi, a, b)) return 1;
    }
    return 0;
}
static inline int64_t rv_ew_cut(const int64_t *p) {
    const int64_t d = rv_ew_split_dim((const rv_ew_blk *)p);
    return d >= 0 ? d : RV_CUT_NONE;
}
static inline int rv_ew_shows(const int64_t *p, int code) {
    (void)code;
    return (int)((const rv_ew_blk *)p)->op;
}

/* Each element by its row's curvature (sparsity.h), constant operands' terms dropped. */
static void rv_ew_pattern(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P) {
    const rv_ew_blk *h = (const rv_ew_blk *)p;
    rv_ew ew, *e = &ew;
    (void)i;
    rv_ew_init(e, h, t->val, t->cst, t->cptr);
    int k = rv_curve(h->op);
    if (rv_ew_arity(h->op) == 1) k &= RV_DEP_A | RV_AA;
    if (rv_ew_arity(h->op) == 1 || !e->slots[1]) k &= ~(RV_DEP_B | RV_AB | RV_BB);
    if (!e->slots[0]) k &= ~(RV_DEP_A | RV_AA | RV_AB);
    if (!k) return;  /* the outputs depend on nothing: their sets stay empty */
    const int64_t sa = e->s[0], sb = e->s[1];
    RV_EW_FOR_LINES(e, 0, e->n, line, yo, oa, ob, k0, k1, {
        for (int64_t j = k0; j < k1; ++j) {
            if (!rv_pat_begin(P, yo + j)) continue;
            rv_pat_operands(P, k, oa + j * sa, ob + j * sb);
        }
    });
}

/* SUMS: its backward sweeps the elementwise group below it too where it may (rv_sums_fused). */
static inline int64_t rv_sums_kind_backward(const rv_sweep *s, const int64_t *p, int64_t i) {
    const rv_sums_blk *h = (const rv_sums_blk *)p;
    const rv_cols *t = &s->t;
    const rv_ew_blk *q = rv_sums_fused(t->op, t->arg0, t->blk, h, s->clean);
    if (q) {  /* the sum and the elementwise group below it, in one pass */
        if (q->n >= s->split) return -1;
        rv_ew_backward(q, t->val, t->cst, t->cptr, s->adj, s->clean, h,
                       !rv_reads_below(t->op, t->arg0, t->arg1, t->blk, s->seed, i, q->out,
                                       q->out + q->n));
        memset(s->adj + h->out, 0, (size_t)h->n * sizeof(double));
        return q->out;
    }
    if (h->n >= s->split) return -1;
    rv_sums_backward(h, s->adj, s->clean);
    return h->out;
}
static inline void rv_sums_kind_tangent(const rv_cols *t, const int64_t *p, int64_t i,
                                        double *tng) {
    (void)t; (void)i;
    rv_sums_tangent((const rv_sums_blk *)p, tng);
}
static inline int64_t rv_sums_kind_second(const rv_sweep2 *s, const int64_t *p, int64_t i) {
    (void)i;
    rv_sums_second((const rv_sums_blk *)p, s->adj, s->adt);
    return ((const rv_sums_blk *)p)->out;
}
static inline int rv_sums_reads(const int64_t *p, int64_t a, int64_t b) {
    const rv_sums_blk *h = (const rv_sums_blk *)p;
    int64_t lo, hi;
    if (!rv_view_span(h->first, h->nd, h->shape, rv_sums_ostride(h), &lo, &hi) || h->count <= 0)
        return 0;
    const int64_t r = h->stride * (h->count - 1);
    if (r < 0) lo += r; else hi += r;
    return rv_meets(lo, hi, a, b);
}
/* The group the replay s left unwritten (rv_replay) that the sum h sums over (rv_sums_over),
 * or NULL: the sum's values then come from that group's operands, as when it was recorded. A
 * lazy group the sum reads otherwise (none is recorded so: rv_replay) is written first. */
static inline const rv_ew_blk *rv_replay_lazy_source(const rv_replay *s, const rv_sums_blk *h,
                                                     double *val) {
    int64_t lo, hi;
    const rv_ew_blk *over = NULL;
    if (s->n_lazy == 0 || h->count <= 0
        || !rv_view_span(h->first, h->nd, h->shape, rv_sums_ostride(h), &lo, &hi))
        return NULL;
    const int64_t r = h->stride * (h->count - 1);
    if (r < 0) lo += r; else hi += r;
    for (int64_t k = rv_replay_lazy_from(s, lo); k < s->n_lazy; ++k) {
        const rv_ew_blk *q = (const rv_ew_blk *)(s->t.blk + s->t.arg0[s->lazy[k]]);
        if (q->out > hi) break;
        if (!over && rv_sums_over(h, q)) over = q;
        else if (rv_sums_reads((const int64_t *)h, q->out, q->out + q->n))
            rv_ew_forward_part(q, val, s->t.cst, s->t.cptr, 0, q->n);
    }
    return over;
}
static inline int rv_sums_kind_forward(const rv_replay *s, const int64_t *p, int64_t i,
                                       double *val) {
    const rv_sums_blk *h = (const rv_sums_blk *)p;
    (void)i;
    if (h->n >= s->split) return 1;  /* for threads */
    const rv_ew_blk *q = rv_replay_lazy_source(s, h, val);
    if (q) rv_sums_forward_lazy(h, q, val, s->t.cst, s->t.cptr, 0, h->n);
    else rv_sums_forward_part(h, val, 0, h->n);
    return 0;
}
static inline int64_t rv_sums_cut(const int64_t *p) {
    return rv_sums_splittable((const rv_sums_blk *)p) ? RV_CUT_ANY : RV_CUT_NONE;
}

static void rv_sums_pattern(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P) {
    const rv_sums_blk *h = (const rv_sums_blk *)p;
    (void)t; (void)i;
    RV_SUMS_FOR_LINES(h, 0, h->n, {
        if (rv_pat_begin(P, yo)) {
            for (int64_t j = 0; j < count; ++j) rv_pat_dep(P, start + j * stride);
            rv_pat_end(P);
        }
    });
}

/* CALL: every backward stops for the caller, which calls Python, unless no adjoint of the
 * outputs is nonzero: then nothing passes down, as for any other entry. */
static inline int64_t rv_call_kind_backward(const rv_sweep *s, const int64_t *p, int64_t i) {
    const rv_call_blk *h = (const rv_call_blk *)p;
    (void)i;
    for (int64_t k = h->out; k < h->out + h->n; ++k)
        if (s->adj[k] != 0.0) return -1;
    return h->out;
}
/* CALL and PAIR values come from Python (the user's function, SciPy): the caller's. */
static inline int rv_python_forward(const rv_replay *s, const int64_t *p, int64_t i,
                                    double *val) {
    (void)s; (void)p; (void)i; (void)val;
    return 1;
}
static inline int rv_call_reads(const int64_t *p, int64_t a, int64_t b) {
    const rv_call_blk *h = (const rv_call_blk *)p;
    for (int64_t k = 0; k < h->n_in; ++k)
        if (h->span[2 * k + 1] > 0
            && rv_meets(h->span[2 * k], h->span[2 * k] + h->span[2 * k + 1] - 1, a, b))
            return 1;
    return 0;
}

/* A Python function is opaque: every output reads every input, all of them interacting. The
 * outputs share one set (the first live output's). */
static void rv_call_pattern(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P) {
    const rv_call_blk *h = (const rv_call_blk *)p;
    int64_t first = -1;
    (void)t; (void)i;
    for (int64_t o = h->out; o < h->out + h->n; ++o) {
        if (!rv_pat_begin(P, o)) continue;
        if (first < 0) {
            for (int64_t k = 0; k < h->n_in; ++k)
                for (int64_t s = 0; s < h->span[2 * k + 1]; ++s) rv_pat_dep(P, h->span[2 * k] + s);
        } else {
            rv_pat_dep(P, first);
        }
        rv_pat_end(P);
        if (first < 0) first = o;
        if (P->mode == RV_PAT_LIVE) return;  /* every input is live already */
    }
    if (first >= 0) rv_pat_cross(P, first, first);
}

/* PAIR: its loops are light (one multiply-add an element), so it runs where the sweep meets it. */
static inline int64_t rv_pair_kind_backward(const rv_sweep *s, const int64_t *p, int64_t i) {
    (void)i;
    rv_pair_backward((const rv_pair_blk *)p, s->t.cptr, s->adj, s->clean);
    return ((const rv_pair_blk *)p)->out;
}
static inline void rv_pair_kind_tangent(const rv_cols *t, const int64_t *p, int64_t i,
                                        double *tng) {
    (void)i;
    rv_pair_tangent((const rv_pair_blk *)p, t->cptr, tng);
}
static inline int rv_pair_reads(const int64_t *p, int64_t a, int64_t b) {
    return rv_pair_reads_slots((const rv_pair_blk *)p, a, b);
}

/* A SciPy function, elementwise: each output reads its operands' elements at its index, and is
 * taken as nonlinear in each and in each pair of them. */
static void rv_pair_pattern(const rv_cols *t, const int64_t *p, int64_t i, rv_pat *P) {
    const rv_pair_blk *h = (const rv_pair_blk *)p;
    (void)t; (void)i;
    for (int64_t k = 0; k < h->n; ++k) {
        if (!rv_pat_begin(P, h->out + k)) continue;
        for (int64_t j = 0; j < h->nargs; ++j) {
            const rv_pair_operand *q = rv_pair_operand_at(h, j);
            int64_t s = q->off, r = k;
            for (int64_t d = h->nd - 1; d >= 0; --d) {
                s += (r % h->shape[d]) * q->stride[d];
                r /= h->shape[d];
            }
            rv_pat_dep(P, s);
        }
        rv_pat_end(P);
        rv_pat_cross(P, h->out + k, h->out + k);  /* the union of its operands' sets, squared */
    }
}

/* Indexed by op code - RV_DOTC. The placeholder (RV_GROUP_SLOT) has no functions: sweeps pass over it,
 * and a walk steps from a group's end to its first slot. */
static const rv_kind rv_kinds[] = {
    {"dot", 0, rv_self_first, rv_dotc_kind_backward, rv_dotc_kind_tangent, rv_dotc_kind_second,
     rv_dotc_kind_forward, rv_dotc_reads, RV_RUN_NONE, NULL, rv_shows_code, rv_dotc_pattern},
    {"dot", 0, rv_self_first, rv_dot_kind_backward, rv_dot_kind_tangent, rv_dot_kind_second,
     rv_dot_kind_forward, rv_dot_reads, RV_RUN_NONE, NULL, rv_shows_code, rv_dot_pattern},
    {"matmul", 1, rv_group_first, rv_mm_kind_backward, rv_mm_kind_tangent, rv_mm_kind_second,
     rv_mm_kind_forward, rv_mm_reads, RV_RUN_BLAS, NULL, rv_shows_code, rv_mm_pattern},
    {"elementwise", 1, rv_group_first, rv_ew_kind_backward, rv_ew_kind_tangent,
     rv_ew_kind_second, rv_ew_kind_forward, rv_ew_reads, RV_RUN_EW_BACKWARD, rv_ew_cut,
     rv_ew_shows, rv_ew_pattern},
    {"sum", 1, rv_group_first, rv_sums_kind_backward, rv_sums_kind_tangent, rv_sums_kind_second,
     rv_sums_kind_forward, rv_sums_reads, RV_RUN_SUMS_BACKWARD, rv_sums_cut, rv_shows_code,
     rv_sums_pattern},
    /* (a Python function's second order is its VJP differentiated: the recorded route) */
    {"call", 1, rv_group_first, rv_call_kind_backward, NULL, NULL, rv_python_forward,
     rv_call_reads, RV_RUN_PYTHON, NULL, rv_shows_code, rv_call_pattern},
    /* (SciPy gives its rows' first partials only: the recorded route differentiates those) */
    {"special", 1, rv_group_first, rv_pair_kind_backward, rv_pair_kind_tangent, NULL,
     rv_python_forward, rv_pair_reads, RV_RUN_NONE, NULL, rv_shows_code, rv_pair_pattern},
    {"group", 1, NULL, NULL, NULL, NULL, NULL, NULL, RV_RUN_NONE, NULL, NULL, NULL},
};
/* Every code from RV_DOTC on has a row, in enum order. */
typedef char rv_kinds_complete[
    (sizeof(rv_kinds) / sizeof(rv_kinds[0]) == RV_N_OPS - RV_DOTC) ? 1 : -1];

/* The descriptor of op code c >= RV_DOTC. */
static inline const rv_kind *rv_kind_of(int c) { return &rv_kinds[c - RV_DOTC]; }

/* The loops of a group run `run` over outputs [e0, e1) (C order), or, an elementwise backward
 * cut along dimension d >= 0, over the outputs whose index along d is in [e0, e1)
 * (rv_ew_backward_box). ps, zero: the sum fused with an elementwise backward (rv_ewb_sum), or
 * the lazy elementwise group a sum's values come from. */
static inline void rv_run_part(int run, const int64_t *p, double *val, const double *cst,
                               const double *const *cptr, double *adj, int clean, int64_t e0,
                               int64_t e1, int64_t d, const int64_t *ps, int zero) {
    const rv_ew_blk *ew = (const rv_ew_blk *)p, *lazy = (const rv_ew_blk *)ps;
    const rv_sums_blk *sums = (const rv_sums_blk *)p, *sum = (const rv_sums_blk *)ps;
    switch (run) {
    case RV_RUN_EW_FORWARD: rv_ew_forward_part(ew, val, cst, cptr, e0, e1); break;
    case RV_RUN_EW_BACKWARD: case RV_RUN_EW_SUM_BACKWARD:
        if (d < 0) rv_ew_backward_part(ew, val, cst, cptr, adj, clean, e0, e1, sum, zero);
        else rv_ew_backward_box(ew, val, cst, cptr, adj, clean, d, e0, e1, sum, zero);
        break;
    case RV_RUN_SUMS_FORWARD: rv_sums_forward_part(sums, val, e0, e1); break;
    case RV_RUN_SUMS_LAZY_FORWARD: rv_sums_forward_lazy(sums, lazy, val, cst, cptr, e0, e1); break;
    case RV_RUN_SUMS_BACKWARD: rv_sums_backward_part(sums, adj, clean, e0, e1); break;
    default: break;
    }
}

/* Where threads may cut a run: RV_CUT_ANY (a forward writes only its own outputs), a dimension
 * (an elementwise backward), or RV_CUT_NONE. */
static inline int64_t rv_run_cut(int run, const int64_t *p) {
    switch (run) {
    case RV_RUN_EW_BACKWARD: case RV_RUN_EW_SUM_BACKWARD: return rv_kind_of(RV_EW)->cut(p);
    case RV_RUN_SUMS_BACKWARD: return rv_kind_of(RV_SUMS)->cut(p);
    default: return RV_CUT_ANY;
    }
}

#endif
