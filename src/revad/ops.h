/* revad's op table: every differentiable op, defined once.
 *
 * Each row gives the op's forward value and its local partial derivatives side by side, as
 * C expressions in the operands `a`, `b` and the saved output `y` (ops whose local gradient is
 * cheapest from their output, like exp, tanh and sigmoid, use `y`: the tape saves it anyway).
 * Everything else -- the op-code enum, the forward functions used while recording, the
 * reverse sweep, the forward-mode tangent sweep, the names and formulas shown in docstrings --
 * is generated from these rows.
 *
 * Where an op is not differentiable we follow PyTorch; the NOTE column says what we chose.
 * A name starting with "_" is internal: it gets no public function.
 *
 * UNARY(CODE, name, forward(a), d/da, note)
 * BINARY(CODE, name, forward(a, b), d/da, d/db, note)
 */
#ifndef REVAD_OPS_H
#define REVAD_OPS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "vmath.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Group sweeps are big loops run once per array op: kept out of line, so that the per-entry
 * loop of the scalar sweeps stays small and tight. */
#if defined(_MSC_VER)
#define RV_NOINLINE __declspec(noinline)
#else
#define RV_NOINLINE __attribute__((noinline, unused))
#endif

/* Helpers so the table rows stay one line each. */
static inline double rv_sigmoid(double a) {
    /* Two branches so exp never overflows: both are exact forms of 1/(1+e^-a). */
    if (a >= 0) return 1.0 / (1.0 + exp(-a));
    double e = exp(a);
    return e / (1.0 + e);
}
static inline double rv_softplus(double a) { return fmax(a, 0.0) + log1p(exp(-fabs(a))); }
static inline double rv_sign(double a) { return a > 0 ? 1.0 : (a < 0 ? -1.0 : (a == 0 ? 0.0 : a)); }
/* d(a**b)/da: PyTorch takes 0 where b == 0, so that x**0 is flat even at x = 0. */
static inline double rv_dpow_da(double a, double b) { return b == 0 ? 0.0 : b * pow(a, b - 1.0); }
/* d(a**b)/db = a**b log a; PyTorch takes 0 at a == 0, b >= 0 instead of 0 * -inf. */
static inline double rv_dpow_db(double a, double b, double y) {
    return (a == 0 && b >= 0) ? 0.0 : y * log(a);
}
/* maximum/minimum at a tie: the gradient is split evenly, as in PyTorch. */
/* The seed's local gradients from the saved output, y(1-y) and 1-y^2, cancel catastrophically
 * where y nears 1 (at a = 30 they lose every digit); sigmoid's takes an exact form without 1-y
 * there, and tanh's is sech^2 a from a itself (vmath.h). */
static inline double rv_dsigmoid(double a, double y) { return a <= 0 ? y * (1.0 - y) : y * y * exp(-a); }
/* NumPy's maximum/minimum propagate nan from either side (C's fmax/fmin do not). */
static inline double rv_max(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double rv_min(double a, double b) { return (a < b || a != a) ? a : b; }
static inline double rv_dmax(double a, double b) { return a > b ? 1.0 : (a == b ? 0.5 : 0.0); }

#define REVAD_UNARY_OPS(U) \
    U(NEG,      "negative", -a,                -1.0,                               "") \
    U(ABS,      "abs",      fabs(a),           rv_sign(a),                         "abs'(0) = 0, as PyTorch") \
    U(SQUARE,   "square",   a * a,             2.0 * a,                            "") \
    U(EXP,      "exp",      exp(a),            y,                                  "") \
    U(LOG,      "log",      log(a),            1.0 / a,                            "log(0) = -inf and log of a negative is nan, as NumPy") \
    U(LOG1P,    "log1p",    log1p(a),          1.0 / (1.0 + a),                    "") \
    U(EXPM1,    "expm1",    expm1(a),          exp(a),                             "") \
    U(SQRT,     "sqrt",     sqrt(a),           0.5 / y,                            "sqrt'(0) = inf, as PyTorch") \
    U(SIN,      "sin",      sin(a),            cos(a),                             "") \
    U(COS,      "cos",      cos(a),            -sin(a),                            "") \
    U(TAN,      "tan",      tan(a),            1.0 + y * y,                        "") \
    U(ARCSIN,   "arcsin",   asin(a),           1.0 / sqrt(1.0 - a * a),            "derivative is inf at +-1") \
    U(ARCCOS,   "arccos",   acos(a),           -1.0 / sqrt(1.0 - a * a),           "derivative is -inf at +-1") \
    U(ARCTAN,   "arctan",   atan(a),           1.0 / (1.0 + a * a),                "") \
    U(SINH,     "sinh",     sinh(a),           cosh(a),                            "") \
    U(COSH,     "cosh",     cosh(a),           sinh(a),                            "") \
    U(TANH,     "tanh",     rv_vm_tanh(a),     rv_vm_dtanh(a),                     "") \
    U(SIGMOID,  "sigmoid",  rv_sigmoid(a),     rv_dsigmoid(a, y),                  "") \
    U(RELU,     "relu",     (a > 0 || a != a) ? a : 0.0, a > 0 ? 1.0 : 0.0, "relu'(0) = 0, relu(nan) = nan") \
    U(SOFTPLUS, "softplus", rv_softplus(a),    rv_sigmoid(a),                      "") \
    U(ERF,      "erf",      erf(a),            1.1283791670955126 * exp(-a * a),   "") \
    U(COPY,     "_copy",    a,                 1.0,                                "internal: the gather of an array element")

#define REVAD_BINARY_OPS(B) \
    B(ADD,     "add",      a + b,          1.0,                     1.0,                          "") \
    B(SUB,     "subtract", a - b,          1.0,                     -1.0,                         "") \
    B(MUL,     "multiply", a * b,          b,                       a,                            "") \
    B(DIV,     "divide",   a / b,          1.0 / b,                 -y / b,                       "") \
    B(POW,     "power",    pow(a, b),      rv_dpow_da(a, b),        rv_dpow_db(a, b, y),          "d/da = 0 where b == 0; d/db = 0 where a == 0 and b >= 0, as PyTorch") \
    B(MAXIMUM, "maximum",  rv_max(a, b),   rv_dmax(a, b),           1.0 - rv_dmax(a, b),          "at a tie the gradient is split evenly, as PyTorch; nan propagates") \
    B(MINIMUM, "minimum",  rv_min(a, b),   1.0 - rv_dmax(a, b),     rv_dmax(a, b),                "at a tie the gradient is split evenly, as PyTorch; nan propagates") \
    B(ARCTAN2, "arctan2",  atan2(a, b),    b / (a * a + b * b),     -a / (a * a + b * b),         "the gradient at (0, 0) is nan, as PyTorch") \
    B(HYPOT,   "hypot",    hypot(a, b),    a / y,                   b / y,                        "the gradient at (0, 0) is nan, as PyTorch")

/* Comparisons carry no gradient; they are recorded so that a replayed tape can check that it
 * takes the branches the recording took. */
#define REVAD_COMPARE_OPS(C) \
    C(LT, "less",          a < b)  \
    C(LE, "less_equal",    a <= b) \
    C(GT, "greater",       a > b)  \
    C(GE, "greater_equal", a >= b) \
    C(EQ, "equal",         a == b) \
    C(NE, "not_equal",     a != b)

/* Op codes. Each binary op has three: both operands on the tape (VV), the second a constant
 * from the tape's constant pool (VC, `x * 2.0`), or the first (CV, `2.0 / x`). A constant is
 * an immediate, never a node. */
#define RV_ENUM_U(N, name, f, da, note) RV_##N,
#define RV_ENUM_B(N, name, f, da, db, note) RV_##N, RV_##N##_VC, RV_##N##_CV,
#define RV_ENUM_C(N, name, f) RV_##N, RV_##N##_VC, RV_##N##_CV,
enum rv_op {
    RV_LEAF = 0,
    REVAD_UNARY_OPS(RV_ENUM_U)
    REVAD_BINARY_OPS(RV_ENUM_B)
    REVAD_COMPARE_OPS(RV_ENUM_C)
    RV_CONST,   /* a constant node: a saved value with no operands and no gradient (not an input) */
    RV_DOTC,    /* block entries, below */
    RV_DOT,
    /* Groups and their placeholders come last: the reverse sweep tests `op >= RV_MM`. */
    RV_MM,      /* a matrix product group: its last output slot (below) */
    RV_EW,      /* an elementwise group (one array op): its last output slot (below) */
    RV_SUMS,    /* a sum group (a reduction along axes): its last output slot (below) */
    RV_MMP,     /* a group's other output slots: placeholders the sweeps pass over */
    RV_N_OPS
};

/* Forward values. Inlined with a constant op code, each switch folds to its one row. */
#define RV_FWD_U(N, name, f, da, note) case RV_##N: return (f);
static inline double rv_unary(int op, double a) {
    switch (op) { REVAD_UNARY_OPS(RV_FWD_U) default: return NAN; }
}
#define RV_FWD_B(N, name, f, da, db, note) case RV_##N: return (f);
#define RV_FWD_C(N, name, f) case RV_##N: return (f) ? 1.0 : 0.0;
static inline double rv_binary(int op, double a, double b) {
    switch (op) {
        REVAD_BINARY_OPS(RV_FWD_B)
        REVAD_COMPARE_OPS(RV_FWD_C)
        default: return NAN;
    }
}

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

/* An elementwise group: one array op, y = f(a) or f(a, b) with NumPy's broadcasting, on n
 * consecutive output slots (C order). As in a matrix product group, only the LAST output slot
 * carries the group (RV_EW) and the others are RV_MMP placeholders; the reverse sweep takes all
 * n outputs there in one tight loop per line and then jumps below the group. So an array op
 * costs 9 bytes per element (its value and a placeholder byte), and its backward reads no
 * operand slots or op codes per element. The row's own formulas are the loop bodies.
 *
 * The shape is collapsed before recording (unit dimensions dropped, mergeable ones merged;
 * nd >= 1). An operand is a base -- src -1: the tape's slots (val, adj, tng); -2: the constant
 * pool cst; c >= 0: the constant array cptr[c] -- an offset, and one stride per dimension,
 * counted in slots or doubles, 0 where the operand is broadcast.
 *
 *   EW  blk: out, n, op, nd, shape[nd], then per operand (1 or 2): src, off, stride[nd]
 *
 * A zero adjoint passes nothing on here either (0 * inf is not taken), so a group gives the
 * scalar entries' gradients exactly. */
#define RV_EW_MAXD 64
/* A zero tangent passes nothing on (see rv_forward_tangent). */
#define RV_TNG(t, d) ((t) == 0.0 ? 0.0 : (t) * (d))

static inline int rv_ew_arity(int64_t op) { return op < RV_ADD ? 1 : 2; } /* unary rows come first */
static inline int64_t rv_ew_width(int64_t nd, int arity) { return 4 + nd + arity * (2 + nd); }

typedef struct {
    int64_t out, n, op, nd, len;
    const int64_t *shape, *st[2];
    int64_t off[2], s[2];   /* offsets; innermost strides */
    int slots[2];           /* operand j is tape slots (it has adjoints and tangents) */
    const double *v[2];     /* operand j's values */
} rv_ew;

static inline void rv_ew_init(rv_ew *e, const int64_t *p, const double *val, const double *cst,
                              const double *const *cptr) {
    e->out = p[0]; e->n = p[1]; e->op = p[2]; e->nd = p[3]; e->shape = p + 4;
    const int arity = rv_ew_arity(e->op);
    const int64_t *q = p + 4 + e->nd;
    for (int j = 0; j < 2; ++j) {
        if (j == arity) { /* unary: a second operand that is never read */
            e->st[1] = e->st[0]; e->off[1] = 0; e->s[1] = 0; e->slots[1] = 0; e->v[1] = NULL;
            break;
        }
        e->slots[j] = q[0] == -1;
        e->v[j] = q[0] == -1 ? val : (q[0] == -2 ? cst : cptr[q[0]]);
        e->off[j] = q[1];
        e->st[j] = q + 2;
        e->s[j] = q[2 + e->nd - 1];
        q += 2 + e->nd;
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
#define RV_EWF_U(N, name, f, da, note) case RV_##N: RV_EWF_LINES(f); break;
#define RV_EWF_B(N, name, f, da, db, note) case RV_##N: RV_EWF_LINES(f); break;
#define RV_EWF_C(N, name, f) case RV_##N: RV_EWF_LINES((f) ? 1.0 : 0.0); break;
/* Elements [e0, e1) of the group's output (all of it: [0, n)). */
static RV_NOINLINE void rv_ew_forward_part(const int64_t *p, double *val, const double *cst,
                                      const double *const *cptr, int64_t e0, int64_t e1) {
    rv_ew ew, *e = &ew;
    rv_ew_init(e, p, val, cst, cptr);
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
#if defined(__clang__)
#define RV_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define RV_IVDEP _Pragma("GCC ivdep")
#elif defined(_MSC_VER)
#define RV_IVDEP __pragma(loop(ivdep))
#else
#define RV_IVDEP
#endif
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
#define RV_EWB_U(N, name, f, da, note) case RV_##N: RV_EWB_LINES(da, 0.0); break;
#define RV_EWB_B(N, name, f, da, db, note) case RV_##N: RV_EWB_LINES(da, db); break;
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
static RV_NOINLINE void rv_ew_backward_part(const int64_t *p, const double *val, const double *cst,
                                       const double *const *cptr, double *adj, int clean,
                                       int64_t e0, int64_t e1, const int64_t *ps, int zero) {
    rv_ew ew, *e = &ew;
    rv_ewb_sum sum, *s = NULL;
    rv_ew_init(e, p, val, cst, cptr);
    if (ps) {
        sum.zero = zero;
        sum.gs = adj + ps[0];
        sum.count = ps[4 + 2 * ps[2]];
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
static inline void rv_ew_backward(const int64_t *p, const double *val, const double *cst,
                                  const double *const *cptr, double *adj, int clean,
                                  const int64_t *ps, int zero) {
    rv_ew_backward_part(p, val, cst, cptr, adj, clean, 0, p[1], ps, zero);
}

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
static inline int64_t rv_ew_split_dim(const int64_t *p) {
    const int64_t nd = p[3], *shape = p + 4;
    const int arity = rv_ew_arity(p[2]);
    const int64_t *q[2] = {p + 4 + nd, p + 4 + nd + 2 + nd};
    int64_t lo[2], hi[2], off[2];
    int slot[2] = {0, 0}, slots = 0;
    for (int j = 0; j < arity; ++j) {
        if (q[j][0] != -1) continue;
        if (!rv_view_injective(nd, shape, q[j] + 2, lo + j, hi + j)) return -1;
        off[j] = q[j][1];
        slot[j] = 1;
        ++slots;
    }
    if (slots == 2 && memcmp(q[0], q[1], (size_t)(2 + nd) * sizeof(int64_t)) != 0
        && !(off[0] + hi[0] < off[1] + lo[1] || off[1] + hi[1] < off[0] + lo[0]))
        return -1;
    for (int64_t d = 0; d < nd; ++d) {
        if (shape[d] <= 1) continue;
        if ((!slot[0] || q[0][2 + d] != 0) && (!slot[1] || q[1][2 + d] != 0)) return d;
    }
    return -1;
}

/* Backward of the outputs whose index along dimension d is in [a, b): one run of C-order
 * outputs per index of the dimensions before d. */
static RV_NOINLINE void rv_ew_backward_box(const int64_t *p, const double *val, const double *cst,
                                           const double *const *cptr, double *adj, int clean,
                                           int64_t d, int64_t a, int64_t b, const int64_t *ps,
                                           int zero) {
    const int64_t nd = p[3], *shape = p + 4;
    int64_t inner = 1, outer = 1;
    for (int64_t j = d + 1; j < nd; ++j) inner *= shape[j];
    for (int64_t j = 0; j < d; ++j) outer *= shape[j];
    const int64_t span = shape[d] * inner;
    for (int64_t o = 0; o < outer; ++o)
        rv_ew_backward_part(p, val, cst, cptr, adj, clean, o * span + a * inner,
                            o * span + b * inner, ps, zero);
}

static inline int rv_sums_splittable(const int64_t *p) {
    int64_t shape[RV_EW_MAXD + 1], st[RV_EW_MAXD + 1], lo, hi;
    const int64_t nd = p[2];
    for (int64_t d = 0; d < nd; ++d) {  /* outputs are split anywhere: none may be broadcast */
        shape[d] = p[3 + d]; st[d] = p[4 + nd + d];
        if (shape[d] > 1 && st[d] == 0) return 0;
    }
    shape[nd] = p[4 + 2 * nd]; st[nd] = p[5 + 2 * nd];  /* a broadcast line: one part adds it */
    return rv_view_injective(nd + 1, shape, st, &lo, &hi);
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
#define RV_EWT_U(N, name, f, da, note) case RV_##N: RV_EWT_LINES(da, 0.0); break;
#define RV_EWT_B(N, name, f, da, db, note) case RV_##N: RV_EWT_LINES(da, db); break;
static RV_NOINLINE void rv_ew_tangent(const int64_t *p, const double *val, const double *cst,
                                 const double *const *cptr, double *tng) {
    rv_ew ew, *e = &ew;
    const int64_t e0 = 0, e1 = p[1];
    rv_ew_init(e, p, val, cst, cptr);
    switch (e->op) {
        REVAD_UNARY_OPS(RV_EWT_U)
        REVAD_BINARY_OPS(RV_EWT_B)
        default: /* comparisons: no derivative */
            for (int64_t k = 0; k < e->n; ++k) tng[e->out + k] = 0.0;
            break;
    }
}

/* A sum group: n sums over strided lines, one per output (a reduction along some axes), on n
 * consecutive output slots (C order of the kept axes), carried by the last (RV_SUMS) like the
 * groups above. Output k sums `count` slots `stride` apart from its start; the starts step
 * through the kept axes by their strides (an odometer), so the group costs O(nd) parameters,
 * not three per output as one block entry per output would.
 *
 *   SUMS  blk: out, n, nd, shape[nd], first, ostride[nd], count, stride
 *
 * Each line is summed in one fixed order (rv_sum_line), so a replay gives the same bits. */
static inline int64_t rv_sums_width(int64_t nd) { return 6 + 2 * nd; }

#define RV_SUMS_FOR_LINES(p, k0, k1, ...) do { \
    const int64_t nd_ = (p)[2], *shp_ = (p) + 3, *ost_ = (p) + 4 + nd_; \
    const int64_t count = (p)[4 + 2 * nd_], stride = (p)[5 + 2 * nd_]; \
    int64_t idx_[RV_EW_MAXD] = {0}, start = (p)[3 + nd_], r_ = (k0); \
    (void)count; (void)stride; \
    for (int64_t d_ = nd_ - 1; d_ >= 0 && (k0) < (k1); --d_) { \
        idx_[d_] = r_ % shp_[d_]; r_ /= shp_[d_]; start += idx_[d_] * ost_[d_]; \
    } \
    for (int64_t k = (k0); k < (k1); ++k) { \
        const int64_t yo = (p)[0] + k; \
        __VA_ARGS__ \
        for (int64_t d_ = nd_ - 1; d_ >= 0; --d_) { \
            start += ost_[d_]; \
            if (++idx_[d_] < shp_[d_]) break; \
            start -= ost_[d_] * shp_[d_]; \
            idx_[d_] = 0; \
        } \
    } } while (0)

/* A line of up to 128 (count n, stride s): eight running sums, then the rest; inline, so that
 * the short unit-stride lines that come by the hundred thousand (GMM's d = 10) cost no call
 * (a call for each took a third longer). */
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
 * still, so a replay gives the same bits. */
static inline int64_t rv_sum_half(int64_t n) { return n / 2 - (n / 2) % 8; }
static double rv_sum_line(const double *x, int64_t n, int64_t s) {
    if (n <= 128) return rv_sum_block(x, n, s);
    const int64_t h = rv_sum_half(n);
    return rv_sum_line(x, h, s) + rv_sum_line(x + h * s, n - h, s);
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
#define RV_EWL_U(N, name, f, da, note) case RV_##N: if (rv_ew_lazy(RV_##N)) RV_EWF_RANGE(f); break;
#define RV_EWL_B(N, name, f, da, db, note) case RV_##N: if (rv_ew_lazy(RV_##N)) RV_EWF_RANGE(f); break;
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
static RV_NOINLINE void rv_sums_forward_part(const int64_t *p, double *val, int64_t k0, int64_t k1) {
    if (p[5 + 2 * p[2]] == 1 && p[4 + 2 * p[2]] <= 128) {
        RV_SUMS_FOR_LINES(p, k0, k1, { val[yo] = rv_sum_block(val + start, count, 1); });
        return;
    }
    RV_SUMS_FOR_LINES(p, k0, k1, {
        val[yo] = stride == 1 ? rv_sum_line(val + start, count, 1)
                              : rv_sum_line(val + start, count, stride);
    });
}

static RV_NOINLINE void rv_sums_backward_part(const int64_t *p, double *adj, int clean,
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

static inline void rv_sums_backward(const int64_t *p, double *adj, int clean) {
    rv_sums_backward_part(p, adj, clean, 0, p[1]);
}

/* Whether the sum group ps reads the outputs of the elementwise group q whole and in order,
 * `count` consecutive ones to each of its outputs (a sum over the last axis, or over all). */
static inline int rv_sums_over(const int64_t *ps, const int64_t *q) {
    const int64_t n = ps[1], nd = ps[2], *shp = ps + 3, *ost = ps + 4 + nd;
    const int64_t first = ps[3 + nd], count = ps[4 + 2 * nd], stride = ps[5 + 2 * nd];
    if (count < 1 || (stride != 1 && count > 1) || q[0] != first || q[1] != count * n) return 0;
    for (int64_t d = nd - 1, step = count; d >= 0; step *= shp[d], --d)
        if (shp[d] > 1 && ost[d] != step) return 0;
    return 1;
}

/* Outputs [k0, k1) of the sum group ps over the outputs of the lazy elementwise group pe
 * (rv_ew_lazy, rv_sums_over), computed from pe's operands: the same additions in the same
 * order as summing pe's values, so the same bits. */
#define RV_EWS_LINES(expr) RV_EW_FOR_LINES(e, e0, e1, { \
        double Y[128]; \
        const double *A = e->v[0] + oa, *B = e->v[1] ? e->v[1] + ob : A; \
        RV_EWF_RANGE(expr); \
        val[ps[0] + line_] = rv_sum_block(Y, k1, 1); })
#define RV_EWS_U(N, name, f, da, note) case RV_##N: if (rv_ew_lazy(RV_##N)) RV_EWS_LINES(f); break;
#define RV_EWS_B(N, name, f, da, db, note) case RV_##N: if (rv_ew_lazy(RV_##N)) RV_EWS_LINES(f); break;
static RV_NOINLINE void rv_sums_forward_lazy(const int64_t *ps, const int64_t *pe, double *val,
                                             const double *cst, const double *const *cptr,
                                             int64_t k0, int64_t k1) {
    rv_ew ew, *e = &ew;
    const int64_t count = ps[4 + 2 * ps[2]];
    if (k0 >= k1) return;
    rv_ew_init(e, pe, val, cst, cptr);
    if (count == e->len && count <= 128) {  /* a sum for each line (GMM's): the op's loop inside */
        const int64_t e0 = k0 * count, e1 = k1 * count, sa = e->s[0], sb = e->v[1] ? e->s[1] : 0;
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
            for (int64_t j = 0; j < m; ++j) val[ps[0] + k + j] = rv_sum_block(x + j * count, count, 1);
        }
        return;
    }
    for (int64_t k = k0; k < k1; ++k) val[ps[0] + k] = rv_sum_lazy(e, &c, count);
}

/* The elementwise group that the sum group ps may be swept with (rv_ew_backward_part), or NULL.
 * The sum must read the group's outputs whole and in order (rv_sums_over) and come right after
 * the group on the tape: no entry recorded between them reads the group's outputs, so when the
 * sweep reaches the sum every other reader has added its part to their adjoints, and nothing
 * after the sum adds more. Clean sweeps only: the others keep each output's adjoint, which the
 * fused loop does not write. */
static inline const int64_t *rv_sums_fused(const uint8_t *op, const int32_t *arg0,
                                           const int64_t *blk, const int64_t *ps, int clean) {
    const int64_t out = ps[0];
    if (!clean || out < 1 || op[out - 1] != RV_EW) return NULL;
    const int64_t *q = blk + arg0[out - 1];
    return q[0] + q[1] == out && rv_sums_over(ps, q) ? q : NULL;
}

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
#define RV_MEETS(lo, hi, a, b) ((lo) < (b) && (hi) >= (a))

/* Whether an entry that a sweep from slot `top` meets before it reaches slot `stop` may read a
 * slot in [a, b): that is, may add to their adjoints. It looks at a few thousand entries at most
 * (leaves apart), and counts an entry it does not know, or one past that, as a reader. */
static inline int rv_reads_below(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                                 const int64_t *blk, int64_t top, int64_t stop, int64_t a,
                                 int64_t b) {
    int64_t budget = 4096, lo, hi;
    for (int64_t i = top; i > stop; --i) {
        const int c = op[i];
        if (c == RV_LEAF) continue;
        if (--budget < 0) return 1;
        if (c >= RV_MM) {
            if (c == RV_MMP) return 1;  /* not met: a walk steps from group to group */
            const int64_t *p = blk + arg0[i];
            if (c == RV_EW) {
                const int64_t nd = p[3], *q = p + 4 + nd;
                for (int j = 0; j < rv_ew_arity(p[2]); ++j, q += 2 + nd)
                    if (q[0] == -1 && rv_view_span(q[1], nd, p + 4, q + 2, &lo, &hi)
                        && RV_MEETS(lo, hi, a, b)) return 1;
            } else if (c == RV_SUMS) {
                const int64_t nd = p[2], count = p[4 + 2 * nd], stride = p[5 + 2 * nd];
                if (rv_view_span(p[3 + nd], nd, p + 3, p + 4 + nd, &lo, &hi) && count > 0) {
                    const int64_t r = stride * (count - 1);
                    if (r < 0) lo += r; else hi += r;
                    if (RV_MEETS(lo, hi, a, b)) return 1;
                }
            } else {  /* MM: A (m, n) at p + 4, B (n, q) at p + 8 */
                const int64_t sa[2] = {p[1], p[2]}, sb[2] = {p[2], p[3]};
                if (p[4] < 0 && rv_view_span(p[5], 2, sa, p + 6, &lo, &hi) && RV_MEETS(lo, hi, a, b))
                    return 1;
                if (p[8] < 0 && rv_view_span(p[9], 2, sb, p + 10, &lo, &hi) && RV_MEETS(lo, hi, a, b))
                    return 1;
            }
            i = p[0];
            continue;
        }
        if (c == RV_CONST) continue;
        if (c < RV_ADD) {  /* unary */
            if (arg0[i] >= a && arg0[i] < b) return 1;
        } else if (c < RV_CONST) {  /* binary and comparisons: VV, VC (arg1 a constant), CV */
            const int k = (c - RV_ADD) % 3;
            if (k != 2 && arg0[i] >= a && arg0[i] < b) return 1;
            if (k != 1 && arg1[i] >= a && arg1[i] < b) return 1;
        } else if (c == RV_DOTC || c == RV_DOT) {
            const int64_t *p = blk + arg0[i], n = c == RV_DOT ? p[4] : p[2];
            if (rv_view_span(p[0], 1, &n, p + 1, &lo, &hi) && RV_MEETS(lo, hi, a, b)) return 1;
            if (c == RV_DOT && rv_view_span(p[2], 1, &n, p + 3, &lo, &hi) && RV_MEETS(lo, hi, a, b))
                return 1;
        } else {
            return 1;
        }
    }
    return 0;
}

static RV_NOINLINE void rv_sums_tangent(const int64_t *p, double *tng) {
    RV_SUMS_FOR_LINES(p, 0, p[1], {
        const double *t = tng + start;
        double s = 0.0;
        for (int64_t j = 0; j < count; ++j) s += t[j * stride];
        tng[yo] = s;
    });
}

/* The last slot of the group that slot i belongs to (i itself if it is an ordinary entry): a
 * sweep seeded at a group's output must start where the group is carried. */
static inline int64_t rv_group_end(const uint8_t *op, int64_t i) {
    while (op[i] == RV_MMP) ++i;
    return i;
}

/* The reverse sweep over a tape's flat columns, from slot `top` down to 0.
 * adj[i] holds dOutput/dNode_i; an entry whose adjoint is zero has nothing to pass down.
 * Reads only plain arrays: it runs without the GIL. Argument slots are always below i. */
#define RV_BWD_U(N, name, f, da, note) \
    case RV_##N: { \
        const int32_t i0 = arg0[i]; const double a = val[i0]; (void)a; \
        adj[i0] += g * (da); \
    } break;
#define RV_BWD_B(N, name, f, da, db, note) \
    case RV_##N: { \
        const int32_t i0 = arg0[i], i1 = arg1[i]; const double a = val[i0], b = val[i1]; (void)a; (void)b; \
        const double pa = (da), pb = (db); \
        adj[i0] += g * pa; adj[i1] += g * pb; \
    } break; \
    case RV_##N##_VC: { \
        const int32_t i0 = arg0[i]; const double a = val[i0], b = cst[arg1[i]]; (void)a; (void)b; \
        adj[i0] += g * (da); \
    } break; \
    case RV_##N##_CV: { \
        const int32_t i1 = arg1[i]; const double a = cst[arg0[i]], b = val[i1]; (void)a; (void)b; \
        adj[i1] += g * (db); \
    } break;

/* Returns -1 when done, or the slot of a group it stopped at (not taken: the caller takes it,
 * then resumes the sweep just below it): a BLAS matrix-product group, or an elementwise or sum
 * group of at least `split` outputs (a sum fused with the elementwise group below it: when
 * that group has), which the caller shares out to threads where it may (rv_ew_split_dim,
 * rv_sums_splittable).
 *
 * `seed`: the slot the sweep started at (rv_reads_below walks down from it).
 *
 * `clean`: zero each adjoint once it has been read (every slot but the leaves', which the
 * caller reads afterwards). A sweep whose intermediate adjoints nobody reads (the functional
 * API's) then leaves its buffer zero for the next one, instead of the next one zeroing it all
 * first: an extra pass over memory as large as the tape's values. */
static inline int64_t rv_backward(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                                  const double *val, const double *cst, const int64_t *blk,
                                  const double *const *cptr, double *adj, int64_t top, int clean,
                                  int64_t split, int64_t seed) {
    for (int64_t i = top; i >= 0; --i) {
        const int c = op[i];
        /* Groups (their codes come last) before the zero test: the group's other outputs may
         * be nonzero. Done, the sweep jumps below the group (i = its first slot, then --i).
         * One comparison keeps them off the path of ordinary entries. */
        if (c >= RV_MM) {
            if (c == RV_MMP) continue; /* a placeholder: not met, sweeps start at a group's end */
            const int64_t *p = blk + arg0[i];
            const int64_t *q = c == RV_SUMS ? rv_sums_fused(op, arg0, blk, p, clean) : NULL;
            if (q) {  /* the sum and the elementwise group below it, in one pass */
                if (q[1] >= split) return i;
                rv_ew_backward(q, val, cst, cptr, adj, clean, p,
                               !rv_reads_below(op, arg0, arg1, blk, seed, i, q[0], q[0] + q[1]));
                memset(adj + p[0], 0, (size_t)p[1] * sizeof(double));
                i = q[0];
                continue;
            }
            if (c != RV_MM && p[1] >= split) return i;  /* for threads, if it splits */
            if (c == RV_EW) rv_ew_backward(p, val, cst, cptr, adj, clean, NULL, 0);
            else if (c == RV_SUMS) rv_sums_backward(p, adj, clean);
            else {
                if (p[12]) return i;
                rv_mm_backward(p, val, cptr, adj, clean);
            }
            i = p[0];
            continue;
        }
        if (c == RV_LEAF) { /* leaves pass nothing down: skip a run of them (an Array leaf's
                             * block) eight op codes (zero bytes) at a time */
            uint64_t w;
            while (i >= 8 && (memcpy(&w, op + i - 8, 8), w == 0)) i -= 8;
            continue;
        }
        const double g = adj[i];
        if (g == 0.0) continue;
        if (clean) adj[i] = 0.0;
        const double y = val[i];
        (void)y;
        switch (c) {
            REVAD_UNARY_OPS(RV_BWD_U)
            REVAD_BINARY_OPS(RV_BWD_B)
            case RV_DOTC: case RV_DOT:
                rv_block_backward(c, blk + arg0[i], g, val, cptr, adj);
                break;
            default: break; /* leaves, constants, comparisons and placeholders pass nothing down */
        }
    }
    return -1;
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

/* A leaf block's adjoints added into its gradient (or, `assign`, written over a gradient not
 * yet set); after a clean sweep, zeroed as they are read. */
static inline void rv_take_adjoints(double *grad, double *adj, int64_t n, int clean, int assign) {
    if (assign && clean) { RV_IVDEP for (int64_t k = 0; k < n; ++k) { grad[k] = adj[k]; adj[k] = 0.0; } }
    else if (assign) memcpy(grad, adj, (size_t)n * sizeof(double));
    else if (clean) { RV_IVDEP for (int64_t k = 0; k < n; ++k) { grad[k] += adj[k]; adj[k] = 0.0; } }
    else { RV_IVDEP for (int64_t k = 0; k < n; ++k) grad[k] += adj[k]; }
}

/* The tangent (forward-mode) sweep over the same columns, from slot 0 up to `top`: the same
 * local partials applied the other way, tng[i] = da * tng[a0] + db * tng[a1]. The caller seeds
 * the leaves' tangents and zeroes the rest; constant operands have tangent zero. A zero tangent
 * passes nothing on, as a zero adjoint does in rv_backward: an input held still never turns an
 * infinite partial (sqrt at 0) into nan, and jvp along e_i equals the reverse sweep's dy/dx_i. */
#define RV_TAN_U(N, name, f, da, note) \
    case RV_##N: { \
        const double a = val[arg0[i]]; (void)a; \
        tng[i] = RV_TNG(tng[arg0[i]], (da)); \
    } break;
#define RV_TAN_B(N, name, f, da, db, note) \
    case RV_##N: { \
        const double a = val[arg0[i]], b = val[arg1[i]]; (void)a; (void)b; \
        tng[i] = RV_TNG(tng[arg0[i]], (da)) + RV_TNG(tng[arg1[i]], (db)); \
    } break; \
    case RV_##N##_VC: { \
        const double a = val[arg0[i]], b = cst[arg1[i]]; (void)a; (void)b; \
        tng[i] = RV_TNG(tng[arg0[i]], (da)); \
    } break; \
    case RV_##N##_CV: { \
        const double a = cst[arg0[i]], b = val[arg1[i]]; (void)a; (void)b; \
        tng[i] = RV_TNG(tng[arg1[i]], (db)); \
    } break;

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

static inline void rv_forward_tangent(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                                      const double *val, const double *cst, const int64_t *blk,
                                      const double *const *cptr, double *tng, int64_t top) {
    for (int64_t i = 0; i <= top; ++i) {
        const double y = val[i];
        (void)y;
        switch (op[i]) {
            case RV_LEAF: break; /* seeded by the caller */
            REVAD_UNARY_OPS(RV_TAN_U)
            REVAD_BINARY_OPS(RV_TAN_B)
            case RV_DOTC: case RV_DOT:
                tng[i] = rv_block_tangent(op[i], blk + arg0[i], val, cptr, tng);
                break;
            case RV_MM: rv_mm_tangent(blk + arg0[i], val, cptr, tng); break;
            case RV_EW: rv_ew_tangent(blk + arg0[i], val, cst, cptr, tng); break;
            case RV_SUMS: rv_sums_tangent(blk + arg0[i], tng); break;
            case RV_MMP: break; /* set by the group's last slot, before anything reads it */
            default: tng[i] = 0.0; break; /* constants and comparisons carry no derivative */
        }
    }
}

/* Names and formulas as text, for docstrings and error messages. */
#define RV_NAME_U(N, name, f, da, note) {RV_##N, 1, name, #f, #da, "", note},
#define RV_NAME_B(N, name, f, da, db, note) {RV_##N, 2, name, #f, #da, #db, note},
#define RV_NAME_C(N, name, f) {RV_##N, 0, name, #f, "0", "0", "no gradient"},
typedef struct {
    int code;
    int arity; /* 0 marks a comparison */
    const char *name, *forward, *d_da, *d_db, *note;
} rv_op_info;
static const rv_op_info rv_op_table[] = {
    REVAD_UNARY_OPS(RV_NAME_U)
    REVAD_BINARY_OPS(RV_NAME_B)
    REVAD_COMPARE_OPS(RV_NAME_C)
};
static const int rv_n_op_table = (int)(sizeof(rv_op_table) / sizeof(rv_op_table[0]));

#endif
